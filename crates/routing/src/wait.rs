//! The expected-wait estimate sent to customers with their position.
//!
//! The estimate is deliberately simple, so an agent or a customer can check it by hand:
//!
//! ```text
//! expected wait = average handle time × position ÷ slots
//! ```
//!
//! where *slots* is the total capacity (concurrent conversations) of the queue's agents who
//! are available and skilled for the queue right now. With 4 agents taking 3 chats each
//! (12 slots) and 6 minutes per conversation, a slot frees about every 30 seconds, so the
//! 5th in line waits about 2½ minutes. It ignores conversations of other queues sharing the
//! same agents and the time left on current conversations; it is a hint, not a promise.
//! No estimate (`None`) when the queue has no measured handle time or nobody available.

use time::Duration;

/// `average_handle_time × position ÷ slots`, rounded down to the second.
pub fn expected_wait(
    average_handle_time: Option<Duration>,
    position: u32,
    slots: u32,
) -> Option<Duration> {
    let aht = average_handle_time?;
    if slots == 0 || aht.is_negative() {
        return None;
    }
    let seconds = i128::from(aht.whole_seconds()) * i128::from(position) / i128::from(slots);
    Some(Duration::seconds(
        i64::try_from(seconds).unwrap_or(i64::MAX),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_wait_table() {
        let six = Some(Duration::minutes(6));
        let cases = [
            (
                six,
                5,
                12,
                Some(Duration::seconds(150)),
                "the worked example in the docs",
            ),
            (
                six,
                1,
                1,
                Some(Duration::minutes(6)),
                "one agent, next in line",
            ),
            (six, 3, 0, None, "nobody available: no promise"),
            (None, 3, 4, None, "no measured handle time yet"),
            (
                six,
                0,
                4,
                Some(Duration::ZERO),
                "position 0 never occurs but is harmless",
            ),
        ];
        for (aht, position, slots, expected, why) in cases {
            assert_eq!(expected_wait(aht, position, slots), expected, "{why}");
        }
    }
}
