//! Per channel account send limiters (channels.md rule 0.4): one limiter per sender identity
//! (WhatsApp number, Telegram bot, Signal account) and one per (sender, recipient) pair, plus
//! the pauses a provider's back-off answers impose.
//!
//! Lanes: storage already claims live rows before bulk ones, but a batch of claimed rows is
//! sent concurrently, so the limiter itself must keep bulk from taking live replies' turns. A
//! live send registers itself as waiting; a bulk send only tries the account limiter while no
//! live send waits. A campaign therefore never delays an agent's reply by more than one tick.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_core::ChannelKind;
use switchboard_core::ports::Lane;
use tokio::time::Instant;

use crate::config::ChannelsConfig;

/// Pauses shorter than this are waited out in place; longer ones reschedule the row.
const MAX_INLINE_PAUSE: Duration = Duration::from_secs(2);
/// How often a bulk send looks again while live sends wait.
const BULK_YIELD: Duration = Duration::from_millis(2);

/// The limiters of one channel account.
pub struct AccountLimiter {
    account: DefaultDirectRateLimiter,
    pair: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    live_waiting: AtomicUsize,
    paused_until: Mutex<Option<Instant>>,
    recipient_paused: Mutex<HashMap<String, Instant>>,
    /// The configured account rate, for reports.
    pub per_second: u32,
}

/// Decrements the live-waiter count when a live send stops waiting (also on cancellation).
struct LiveGuard<'a>(&'a AtomicUsize);

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl AccountLimiter {
    /// The limiters for a channel of `kind`; `override_rate` is the channel's own setting.
    pub fn new(kind: ChannelKind, config: &ChannelsConfig, override_rate: Option<u32>) -> Self {
        let (rate, pair) = match kind {
            ChannelKind::Whatsapp => {
                let interval =
                    Duration::from_secs(u64::from(config.whatsapp_pair_interval_secs.max(1)));
                let pair = Quota::with_period(interval)
                    .map(|q| q.allow_burst(nz(config.whatsapp_pair_burst)));
                (config.whatsapp_per_second, pair)
            }
            ChannelKind::Telegram => (
                config.telegram_per_second,
                Some(Quota::per_second(nz(config.telegram_per_chat_per_second))),
            ),
            ChannelKind::Signal => (config.signal_per_second, None),
            ChannelKind::Webchat => (u32::MAX, None),
        };
        let rate = override_rate.unwrap_or(rate).max(1);
        // Burst 1: sends are spaced evenly at 1/rate, so no one-second window ever holds
        // more than `rate` messages (a provider counting per second never sees a spike).
        let account = RateLimiter::direct(Quota::per_second(nz(rate)).allow_burst(NonZeroU32::MIN));
        AccountLimiter {
            account,
            pair: pair.map(RateLimiter::keyed),
            clock: DefaultClock::default(),
            live_waiting: AtomicUsize::new(0),
            paused_until: Mutex::new(None),
            recipient_paused: Mutex::new(HashMap::new()),
            per_second: rate,
        }
    }

    /// Waits for a turn to send to `recipient`. Returns `Err(wait)` instead of waiting when
    /// the turn is further away than `deadline` (or the account or recipient is paused for
    /// longer than a moment): the caller reschedules the row after `wait`.
    pub async fn acquire(
        &self,
        lane: Lane,
        recipient: &str,
        deadline: Instant,
    ) -> Result<(), Duration> {
        if let Some(until) = self.pause_of(recipient) {
            let left = until.saturating_duration_since(Instant::now());
            if left > MAX_INLINE_PAUSE {
                return Err(left);
            }
            tokio::time::sleep(left).await;
        }
        if let Some(pair) = &self.pair {
            let key = recipient.to_string();
            loop {
                match pair.check_key(&key) {
                    Ok(()) => break,
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(self.clock.now());
                        if Instant::now() + wait > deadline {
                            return Err(wait);
                        }
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        let _guard = (lane == Lane::Live).then(|| {
            self.live_waiting.fetch_add(1, Ordering::SeqCst);
            LiveGuard(&self.live_waiting)
        });
        loop {
            if lane == Lane::Bulk && self.live_waiting.load(Ordering::SeqCst) > 0 {
                if Instant::now() > deadline {
                    return Err(BULK_YIELD * 100);
                }
                tokio::time::sleep(BULK_YIELD).await;
                continue;
            }
            match self.account.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    if Instant::now() + wait > deadline {
                        return Err(wait);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Pauses the whole account (provider throughput limit) for `wait`.
    pub fn pause_account(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }

    /// Pauses sends to one recipient (WhatsApp pair limit) for `wait`.
    pub fn pause_recipient(&self, recipient: &str, wait: Duration) {
        let until = Instant::now() + wait;
        let mut m = self
            .recipient_paused
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.retain(|_, t| *t > now);
        m.insert(recipient.to_string(), until);
    }

    fn pause_of(&self, recipient: &str) -> Option<Instant> {
        let now = Instant::now();
        let account = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        let person = self
            .recipient_paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(recipient)
            .copied();
        [account, person]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ChannelsConfig {
        ChannelsConfig {
            telegram_per_second: 50,
            telegram_per_chat_per_second: 1000,
            ..ChannelsConfig::default()
        }
    }

    #[tokio::test]
    async fn sends_are_spaced_at_the_configured_rate() {
        let l = AccountLimiter::new(ChannelKind::Telegram, &config(), None);
        let start = std::time::Instant::now();
        let far = Instant::now() + Duration::from_secs(10);
        for i in 0..26 {
            l.acquire(Lane::Live, &format!("chat{i}"), far)
                .await
                .expect("in time");
        }
        let took = start.elapsed();
        // 26 sends at 50/s: the first is immediate, 25 more take 0.5 s.
        assert!(took >= Duration::from_millis(480), "{took:?}");
        assert!(took < Duration::from_millis(900), "{took:?}");
    }

    #[tokio::test]
    async fn a_live_reply_goes_ahead_of_a_waiting_campaign() {
        let l = std::sync::Arc::new(AccountLimiter::new(
            ChannelKind::Telegram,
            &ChannelsConfig {
                telegram_per_second: 20,
                telegram_per_chat_per_second: 1000,
                ..ChannelsConfig::default()
            },
            None,
        ));
        let far = Instant::now() + Duration::from_secs(30);
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (l, order) = (l.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                l.acquire(Lane::Bulk, &format!("b{i}"), far).await.ok();
                order.lock().unwrap().push(format!("bulk{i}"));
            }));
        }
        tokio::time::sleep(Duration::from_millis(120)).await;
        let (l2, order2) = (l.clone(), order.clone());
        let live = tokio::spawn(async move {
            l2.acquire(Lane::Live, "customer", far).await.ok();
            order2.lock().unwrap().push("live".to_string());
        });
        live.await.unwrap();
        let position = order.lock().unwrap().iter().position(|s| s == "live");
        for t in tasks {
            t.await.unwrap();
        }
        // About 3 bulk sends went before the live one arrived; it must not wait for the
        // remaining ~17.
        assert!(position.is_some_and(|p| p <= 5), "live was at {position:?}");
    }

    #[tokio::test]
    async fn a_long_pause_is_reported_instead_of_waited() {
        let l = AccountLimiter::new(ChannelKind::Whatsapp, &ChannelsConfig::default(), None);
        l.pause_account(Duration::from_secs(8));
        let far = Instant::now() + Duration::from_secs(30);
        let wait = l.acquire(Lane::Live, "4915", far).await.unwrap_err();
        assert!(wait > Duration::from_secs(7), "{wait:?}");
        l.pause_recipient("4916", Duration::from_secs(16));
        assert!(l.acquire(Lane::Live, "4916", far).await.is_err());
    }
}
