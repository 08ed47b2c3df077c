//! When to try a failed send again: exponential backoff with full jitter.
//!
//! Pure: the random draw is an argument, so tests pin it. Full jitter (a uniform draw between
//! zero and the exponential cap) spreads retries of many messages that failed together, so a
//! provider that recovers is not hit by a synchronised wave.

use std::time::Duration;

/// Retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total before giving up.
    pub max_attempts: u32,
    /// Cap of the first delay.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this delay.
    After(Duration),
    /// Stop: the message fails permanently.
    GiveUp,
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1 = the first attempt just failed).
    /// `jitter` is a uniform draw in `[0, 1)`; `at_least` is a provider-imposed minimum
    /// delay (a 429's `retry_after`).
    pub fn next(&self, attempt: u32, jitter: f64, at_least: Option<Duration>) -> RetryDecision {
        if attempt >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        let exp = attempt.saturating_sub(1).min(30);
        let cap = self.base.saturating_mul(1u32 << exp).min(self.max);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let delay = cap.mul_f64(jitter).max(Duration::from_millis(50));
        RetryDecision::After(match at_least {
            Some(min) => delay.max(min),
            None => delay,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        base: Duration::from_secs(1),
        max: Duration::from_secs(5),
    };

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_then_give_up() {
        let cases = [
            (
                1,
                0.999,
                RetryDecision::After(Duration::from_millis(999)),
                "first retry under base",
            ),
            (
                2,
                0.999,
                RetryDecision::After(Duration::from_millis(1998)),
                "doubles",
            ),
            (
                3,
                0.999,
                RetryDecision::After(Duration::from_millis(3996)),
                "doubles again",
            ),
            (4, 0.5, RetryDecision::GiveUp, "max attempts reached"),
        ];
        for (attempt, jitter, expected, why) in cases {
            assert_eq!(P.next(attempt, jitter, None), expected, "{why}");
        }
        let long = RetryPolicy {
            max_attempts: 100,
            ..P
        };
        assert_eq!(
            long.next(40, 0.999_999, None),
            RetryDecision::After(Duration::from_secs(5).mul_f64(0.999_999))
        );
    }

    #[test]
    fn provider_retry_after_is_a_floor() {
        assert_eq!(
            P.next(1, 0.1, Some(Duration::from_secs(30))),
            RetryDecision::After(Duration::from_secs(30))
        );
    }

    #[test]
    fn nonsense_jitter_does_not_panic() {
        for j in [f64::NAN, f64::INFINITY, -3.0, 7.0] {
            assert!(matches!(P.next(1, j, None), RetryDecision::After(_)));
        }
    }
}
