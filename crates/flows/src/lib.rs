//! Flow engine (filled in by the self-service flows issue).
