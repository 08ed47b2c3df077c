//! `app::clock`: where the runtime's job worker and flow runtime read the time.
//!
//! [`SystemClock`] is the real one. [`ShiftedClock`] is the system clock moved forward by an
//! offset that can grow: tests inject it with [`crate::App::with_clock`] and call
//! [`ShiftedClock::advance`] to make flow timers and inactivity expiry due at once, without
//! sleeping or timed assertions. Time keeps flowing under the offset, so rows written with the
//! real time (ingest's jobs) stay due as they would be.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use switchboard_core::Timestamp;
use switchboard_core::ports::Clock;

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        time::OffsetDateTime::now_utc()
    }
}

/// The system clock plus an offset that only grows (see the module docs).
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset_ms: AtomicI64,
}

impl ShiftedClock {
    /// A clock `offset` ahead of the system clock (zero for "now").
    pub fn new(offset: std::time::Duration) -> Arc<ShiftedClock> {
        let clock = ShiftedClock::default();
        clock.advance(offset);
        Arc::new(clock)
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// How far ahead of the system clock it is.
    pub fn offset(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.offset_ms.load(Ordering::SeqCst).max(0) as u64)
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        time::OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_runs_ahead_by_what_it_was_advanced() {
        let clock = ShiftedClock::new(std::time::Duration::from_secs(60));
        clock.advance(std::time::Duration::from_secs(30 * 60));
        let ahead = clock.now() - SystemClock.now();
        assert!(
            ahead >= time::Duration::minutes(31) - time::Duration::seconds(5)
                && ahead <= time::Duration::minutes(31),
            "31 minutes ahead, give or take the time this test takes: {ahead}"
        );
        assert_eq!(clock.offset(), std::time::Duration::from_secs(31 * 60));
    }
}
