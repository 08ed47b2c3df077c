//! Customers and their identities on each channel.
//!
//! One person is one [`Contact`]; each channel they write from is an [`Identity`]
//! (WhatsApp `wa_id` or BSUID, Telegram user id, Signal ACI, web chat visitor id), so a
//! customer who moves from WhatsApp to Signal keeps their history once the identities are linked.

use serde::{Deserialize, Serialize};

use crate::{ChannelId, ChannelKind, ContactId, TenantId, Timestamp};

/// A customer of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Its id.
    pub id: ContactId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Best known name (from the provider profile, or set by an agent).
    pub display_name: Option<String>,
    /// Free-form attributes (account number, language, ...).
    pub attributes: serde_json::Value,
    /// First seen.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// A contact's address on one channel instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The contact it belongs to.
    pub contact_id: ContactId,
    /// The channel instance.
    pub channel_id: ChannelId,
    /// The channel kind (denormalised for display).
    pub kind: ChannelKind,
    /// The provider's stable key for this person on that channel.
    pub external_id: String,
    /// E.164 phone number when the channel verified one.
    pub phone: Option<String>,
    /// Why the customer cannot be reached here (e.g. they blocked the Telegram bot); `None`
    /// while reachable. Sends to an unreachable identity fail at once with this reason.
    #[serde(default)]
    pub unreachable: Option<String>,
    /// How this identity was linked to its contact, when it was not first seen there:
    /// `phone_e164` (equal verified numbers on WhatsApp and Signal) or `merge` (staff).
    #[serde(default)]
    pub linked_by: Option<String>,
}

/// A contact card shared in a message (vCard-like).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactCard {
    /// Formatted name.
    pub name: String,
    /// Phone numbers as given.
    #[serde(default)]
    pub phones: Vec<String>,
    /// E-mail addresses as given.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}
