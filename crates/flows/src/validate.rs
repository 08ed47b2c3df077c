//! Validators for `ask` nodes: turn a customer's reply into a typed value, or explain
//! (in words a customer understands) what was expected.

use switchboard_core::Choice;
use time::{Date, Month, OffsetDateTime};

use crate::choice::match_choice;
use crate::definition::Validator;
use crate::expr::iso_date;
use crate::value::{Money, Value};

/// A reply that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The value stored in the `save` variable.
    pub value: Value,
    /// Extra variables: `(suffix, value)`, stored as `<save><suffix>` (the ID's birth date).
    pub extra: Vec<(&'static str, Value)>,
}

fn ok(value: Value) -> Result<Accepted, String> {
    Ok(Accepted {
        value,
        extra: Vec::new(),
    })
}

fn fmt_num(x: f64) -> String {
    Value::Number(x).to_string()
}

/// The choices shown for validators that render as a menu (`yes_no`, `choice`).
pub fn choices_for(v: &Validator) -> Option<Vec<Choice>> {
    match v {
        Validator::YesNo => Some(vec![
            Choice {
                id: "yes".into(),
                title: "Yes".into(),
                description: None,
            },
            Choice {
                id: "no".into(),
                title: "No".into(),
                description: None,
            },
        ]),
        Validator::Choice { options } => Some(
            options
                .iter()
                .map(|o| Choice {
                    id: o.id.clone(),
                    title: o.title.clone(),
                    description: None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Checks a reply against a validator; `now` anchors relative dates and ages.
pub fn validate(v: &Validator, reply: &str, now: OffsetDateTime) -> Result<Accepted, String> {
    let reply = reply.trim();
    if reply.is_empty() {
        return Err("Please type a reply.".into());
    }
    match v {
        Validator::Text => ok(Value::Text(reply.chars().take(4_000).collect())),
        Validator::TextLength { min, max } => {
            let n = reply.chars().count();
            match (min, max) {
                (Some(lo), _) if n < *lo => Err(format!("Please use at least {lo} characters.")),
                (_, Some(hi)) if n > *hi => Err(format!("Please use at most {hi} characters.")),
                _ => ok(Value::Text(reply.to_string())),
            }
        }
        Validator::Number { min, max, integer } => {
            let range = describe_range(min.map(fmt_num), max.map(fmt_num));
            let cleaned: String = reply
                .chars()
                .filter(|c| !c.is_whitespace() && *c != ',')
                .collect();
            let Some(n) = cleaned.parse::<f64>().ok().filter(|n| n.is_finite()) else {
                return Err(format!("Please send a number{range}."));
            };
            if *integer && n.fract() != 0.0 {
                return Err(format!("Please send a whole number{range}."));
            }
            if min.is_some_and(|lo| n < lo) || max.is_some_and(|hi| n > hi) {
                return Err(format!("Please send a number{range}."));
            }
            ok(Value::Number(n))
        }
        Validator::Money { min, max } => {
            let lo = min.and_then(Money::from_f64);
            let hi = max.and_then(Money::from_f64);
            let range = describe_range(lo.map(|m| m.to_string()), hi.map(|m| m.to_string()));
            match Money::parse(reply) {
                Some(m) if lo.is_none_or(|lo| m >= lo) && hi.is_none_or(|hi| m <= hi) => {
                    ok(Value::Money(m))
                }
                _ => Err(format!("Please send an amount such as 1500.00{range}.")),
            }
        }
        Validator::Date { min_days, max_days } => {
            let today = now.date();
            let earliest = min_days.and_then(|d| today.checked_add(time::Duration::days(d)));
            let latest = max_days.and_then(|d| today.checked_add(time::Duration::days(d)));
            let range = describe_range(earliest.map(iso_date), latest.map(iso_date));
            match parse_date(reply, today) {
                Some(d) if earliest.is_none_or(|e| d >= e) && latest.is_none_or(|l| d <= l) => {
                    ok(Value::Text(iso_date(d)))
                }
                Some(_) => Err(format!("Please choose a date{range}.")),
                None => Err(format!(
                    "Please send a date as YYYY-MM-DD or DD/MM/YYYY{range}."
                )),
            }
        }
        Validator::YesNo => match parse_yes_no(reply) {
            Some(b) => ok(Value::Bool(b)),
            None => Err("Please answer yes or no.".into()),
        },
        Validator::Email => match normalise_email(reply) {
            Some(e) => ok(Value::Text(e)),
            None => Err("Please send an e-mail address such as name@example.com.".into()),
        },
        Validator::Phone { country_code } => {
            match normalise_phone(reply, country_code.as_deref()) {
                Some(p) => ok(Value::Text(p)),
                None => Err(
                    "Please send a phone number with its country code, such as +27 82 123 4567."
                        .into(),
                ),
            }
        }
        Validator::Choice { options } => {
            let items = choices_for(v).unwrap_or_default();
            match match_choice(&items, reply) {
                Some(c) => ok(Value::Text(c.id.clone())),
                None => {
                    let titles: Vec<&str> = options.iter().map(|o| o.title.as_str()).collect();
                    Err(format!("Please choose one of: {}.", titles.join(", ")))
                }
            }
        }
        Validator::Regex { pattern } => {
            if pattern.0.is_match(reply) {
                ok(Value::Text(reply.to_string()))
            } else {
                Err("That does not look right; please check and send it again.".into())
            }
        }
        Validator::SaId { min_age } => match parse_sa_id(reply, now.date()) {
            Ok((id, birth)) => {
                if let Some(min) = min_age
                    && age_on(birth, now.date()) < *min
                {
                    return Err(format!("You need to be at least {min} years old."));
                }
                Ok(Accepted {
                    value: Value::Text(id),
                    extra: vec![("_birth_date", Value::Text(iso_date(birth)))],
                })
            }
            Err(why) => Err(format!(
                "{why} Please check your 13-digit ID number and send it again."
            )),
        },
    }
}

fn describe_range(lo: Option<String>, hi: Option<String>) -> String {
    match (lo, hi) {
        (Some(lo), Some(hi)) => format!(" from {lo} to {hi}"),
        (Some(lo), None) => format!(" of at least {lo}"),
        (None, Some(hi)) => format!(" of at most {hi}"),
        (None, None) => String::new(),
    }
}

/// Yes / no in English, Afrikaans and isiZulu, plus the button numbers 1 and 2.
pub fn parse_yes_no(reply: &str) -> Option<bool> {
    let r = reply.trim().trim_end_matches(['.', '!']).to_lowercase();
    match r.as_str() {
        "yes" | "y" | "yeah" | "yep" | "ok" | "okay" | "sure" | "i agree" | "agree" | "1"
        | "true" | "ja" | "yebo" => Some(true),
        "no" | "n" | "nope" | "2" | "false" | "nee" | "cha" | "i do not agree"
        | "i don't agree" => Some(false),
        _ => None,
    }
}

fn month_from_name(s: &str) -> Option<Month> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let s = s.to_lowercase();
    let i = NAMES
        .iter()
        .position(|m| s.len() >= 3 && s.starts_with(m))?;
    Month::try_from(i as u8 + 1).ok()
}

/// Dates as customers write them: `2025-03-31`, `31/03/2025`, `31-03-2025`, `31.03.2025`,
/// `31 March 2025`, `today`, `tomorrow`.
pub fn parse_date(reply: &str, today: Date) -> Option<Date> {
    let r = reply.trim().to_lowercase();
    match r.as_str() {
        "today" => return Some(today),
        "tomorrow" => return today.next_day(),
        _ => {}
    }
    let parts: Vec<&str> = r
        .split(['-', '/', '.', ' '])
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() != 3 {
        return None;
    }
    let num = |s: &str| s.parse::<i32>().ok();
    let (y, m, d) = if parts[0].len() == 4 {
        (
            num(parts[0])?,
            Month::try_from(u8::try_from(num(parts[1])?).ok()?).ok()?,
            num(parts[2])?,
        )
    } else {
        let month = match num(parts[1]) {
            Some(m) => Month::try_from(u8::try_from(m).ok()?).ok()?,
            None => month_from_name(parts[1])?,
        };
        (
            num(parts[2]).filter(|_| parts[2].len() == 4)?,
            month,
            num(parts[0])?,
        )
    };
    Date::from_calendar_date(y, m, u8::try_from(d).ok()?).ok()
}

/// A plausible e-mail address, with the domain lower-cased; `None` otherwise.
pub fn normalise_email(reply: &str) -> Option<String> {
    let r = reply.trim();
    if r.len() > 254 || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = r.rsplit_once('@')?;
    let labels_ok = domain.split('.').all(|l| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if local.is_empty()
        || local.len() > 64
        || local.contains('@')
        || !domain.contains('.')
        || !labels_ok
    {
        return None;
    }
    Some(format!("{local}@{}", domain.to_lowercase()))
}

/// A phone number in E.164 (`+27821234567`). Accepts `+27 82 123 4567`, `0027…`, and
/// `082 123 4567` when `country_code` is given.
pub fn normalise_phone(reply: &str, country_code: Option<&str>) -> Option<String> {
    let r = reply.trim();
    if r.chars()
        .any(|c| !(c.is_ascii_digit() || " +-()./".contains(c)))
    {
        return None;
    }
    let digits: String = r.chars().filter(char::is_ascii_digit).collect();
    let international = if r.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if let (Some(rest), Some(cc)) = (digits.strip_prefix('0'), country_code) {
        format!("{cc}{rest}")
    } else {
        return None;
    };
    if !(8..=15).contains(&international.len()) || international.starts_with('0') {
        return None;
    }
    Some(format!("+{international}"))
}

fn age_on(birth: Date, today: Date) -> u32 {
    let mut age = today.year() - birth.year();
    if (today.month() as u8, today.day()) < (birth.month() as u8, birth.day()) {
        age -= 1;
    }
    u32::try_from(age).unwrap_or(0)
}

/// Checks a South African ID number (`YYMMDD SSSS C A Z`): 13 digits, a real birth date
/// (the century is the latest one that does not put the birth in the future), citizenship
/// digit 0 (citizen), 1 (permanent resident) or 2 (refugee), and the Luhn check digit.
/// Returns the digits and the birth date.
pub fn parse_sa_id(reply: &str, today: Date) -> Result<(String, Date), &'static str> {
    let digits: String = reply
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if digits.len() != 13 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("An ID number has 13 digits.");
    }
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    let yy = (d[0] * 10 + d[1]) as i32;
    let mm = (d[2] * 10 + d[3]) as u8;
    let dd = (d[4] * 10 + d[5]) as u8;
    let month = Month::try_from(mm).map_err(|_| "That ID number has no valid birth date.")?;
    let century = if 2000 + yy <= today.year() {
        2000
    } else {
        1900
    };
    let mut birth = Date::from_calendar_date(century + yy, month, dd)
        .map_err(|_| "That ID number has no valid birth date.")?;
    if birth > today {
        birth = Date::from_calendar_date(1900 + yy, month, dd)
            .map_err(|_| "That ID number has no valid birth date.")?;
    }
    if d[10] > 2 {
        return Err("That ID number has an invalid citizenship digit.");
    }
    // Luhn: from the right, double every second digit.
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    if !sum.is_multiple_of(10) {
        return Err("That ID number's check digit does not match.");
    }
    Ok((digits, birth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{ChoiceOption, Pattern};
    use time::macros::{date, datetime};

    const NOW: OffsetDateTime = datetime!(2025-03-10 09:00 UTC);

    fn check(v: &Validator, cases: &[(&str, Result<Value, &str>, &str)]) {
        for (reply, expected, why) in cases {
            let got = validate(v, reply, NOW);
            match (got, expected) {
                (Ok(a), Ok(e)) => assert_eq!(&a.value, e, "{reply:?}: {why}"),
                (Err(msg), Err(needle)) => assert!(
                    msg.contains(needle),
                    "{reply:?}: {why}: message `{msg}` lacks `{needle}`"
                ),
                (got, _) => panic!("{reply:?}: {why}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn text_validators() {
        check(
            &Validator::Text,
            &[
                ("  hello ", Ok(Value::Text("hello".into())), "trimmed"),
                ("   ", Err("type a reply"), "blank"),
            ],
        );
        check(
            &Validator::TextLength {
                min: Some(2),
                max: Some(5),
            },
            &[
                ("ab", Ok(Value::Text("ab".into())), "at min"),
                ("a", Err("at least 2"), "too short"),
                ("abcdef", Err("at most 5"), "too long"),
            ],
        );
    }

    #[test]
    fn number_validator_checks_range_and_integers() {
        let v = Validator::Number {
            min: Some(6.0),
            max: Some(60.0),
            integer: true,
        };
        check(
            &v,
            &[
                ("12", Ok(Value::Number(12.0)), "in range"),
                ("6", Ok(Value::Number(6.0)), "lower bound inclusive"),
                ("60", Ok(Value::Number(60.0)), "upper bound inclusive"),
                ("5", Err("from 6 to 60"), "below"),
                ("61", Err("from 6 to 60"), "above"),
                ("12.5", Err("whole number"), "fraction"),
                ("twelve", Err("a number"), "words"),
                ("inf", Err("a number"), "infinity"),
                ("NaN", Err("a number"), "nan"),
            ],
        );
        check(
            &Validator::Number {
                min: None,
                max: None,
                integer: false,
            },
            &[("1,500.5", Ok(Value::Number(1500.5)), "thousands comma")],
        );
    }

    #[test]
    fn money_validator_keeps_cents_exact() {
        let v = Validator::Money {
            min: Some(500.0),
            max: Some(50_000.0),
        };
        check(
            &v,
            &[
                (
                    "R5 000",
                    Ok(Value::Money(Money(500_000))),
                    "rand with space",
                ),
                ("1234.56", Ok(Value::Money(Money(123_456))), "cents"),
                ("499.99", Err("from 500.00 to 50000.00"), "below"),
                ("50000.01", Err("from 500.00 to 50000.00"), "above"),
                ("lots", Err("amount such as"), "words"),
            ],
        );
    }

    #[test]
    fn date_validator_accepts_common_forms_within_limits() {
        let v = Validator::Date {
            min_days: Some(1),
            max_days: Some(14),
        };
        check(
            &v,
            &[
                ("2025-03-15", Ok(Value::Text("2025-03-15".into())), "iso"),
                (
                    "15/03/2025",
                    Ok(Value::Text("2025-03-15".into())),
                    "day first",
                ),
                (
                    "24 March 2025",
                    Ok(Value::Text("2025-03-24".into())),
                    "month name",
                ),
                ("tomorrow", Ok(Value::Text("2025-03-11".into())), "tomorrow"),
                ("today", Err("from 2025-03-11 to 2025-03-24"), "too early"),
                ("2025-03-25", Err("choose a date"), "too late"),
                ("31/02/2025", Err("YYYY-MM-DD"), "no such day"),
                ("next week", Err("YYYY-MM-DD"), "words"),
            ],
        );
        assert_eq!(
            parse_date("1/2/25", date!(2025 - 01 - 01)),
            None,
            "two-digit years are ambiguous"
        );
    }

    #[test]
    fn yes_no_email_phone() {
        check(
            &Validator::YesNo,
            &[
                ("Yes", Ok(Value::Bool(true)), "yes"),
                ("ja", Ok(Value::Bool(true)), "afrikaans"),
                ("1", Ok(Value::Bool(true)), "button number"),
                ("nope", Ok(Value::Bool(false)), "nope"),
                ("2", Ok(Value::Bool(false)), "second button"),
                ("maybe", Err("yes or no"), "maybe"),
            ],
        );
        check(
            &Validator::Email,
            &[
                (
                    "Thandi@Example.CO.ZA",
                    Ok(Value::Text("Thandi@example.co.za".into())),
                    "domain lower-cased",
                ),
                ("no-at.example.com", Err("e-mail"), "no @"),
                ("a@b", Err("e-mail"), "no dot in domain"),
                ("a b@c.com", Err("e-mail"), "space"),
                ("a@-b.com", Err("e-mail"), "label starts with hyphen"),
            ],
        );
        let phone = Validator::Phone {
            country_code: Some("27".into()),
        };
        check(
            &phone,
            &[
                (
                    "+27 82 123 4567",
                    Ok(Value::Text("+27821234567".into())),
                    "international",
                ),
                (
                    "082-123-4567",
                    Ok(Value::Text("+27821234567".into())),
                    "national with country default",
                ),
                (
                    "0027821234567",
                    Ok(Value::Text("+27821234567".into())),
                    "00 prefix",
                ),
                ("123", Err("phone number"), "too short"),
                ("call me", Err("phone number"), "words"),
            ],
        );
        check(
            &Validator::Phone { country_code: None },
            &[(
                "0821234567",
                Err("country code"),
                "national without a default",
            )],
        );
    }

    #[test]
    fn choice_and_regex() {
        let v = Validator::Choice {
            options: vec![
                ChoiceOption {
                    id: "6".into(),
                    title: "6 months".into(),
                },
                ChoiceOption {
                    id: "12".into(),
                    title: "12 months".into(),
                },
            ],
        };
        check(
            &v,
            &[
                ("2", Ok(Value::Text("12".into())), "position"),
                ("12 months", Ok(Value::Text("12".into())), "title"),
                ("forever", Err("6 months, 12 months"), "lists the options"),
            ],
        );
        let re: Validator = Validator::Regex {
            pattern: Pattern(regex::Regex::new("^(?:[A-Z]{2}[0-9]{4})$").expect("test pattern")),
        };
        check(
            &re,
            &[
                ("AB1234", Ok(Value::Text("AB1234".into())), "matches"),
                ("AB12345", Err("does not look right"), "anchored"),
            ],
        );
    }

    #[test]
    fn south_african_id_numbers() {
        let today = date!(2025 - 03 - 10);
        let cases = [
            ("8001015009087", Ok(date!(1980 - 01 - 01)), "valid, 1980"),
            (
                "800101 5009 087",
                Ok(date!(1980 - 01 - 01)),
                "spaces allowed",
            ),
            ("0501015800086", Ok(date!(2005 - 01 - 01)), "valid, 2000s"),
            ("8001015009088", Err("check digit"), "wrong check digit"),
            ("8013015009087", Err("birth date"), "month 13"),
            ("8002305009087", Err("birth date"), "30 February"),
            ("8001015009387", Err("citizenship"), "citizenship 3"),
            ("800101500908", Err("13 digits"), "too short"),
            ("80010150090AB", Err("13 digits"), "letters"),
        ];
        for (id, expected, why) in cases {
            match (parse_sa_id(id, today), expected) {
                (Ok((_, birth)), Ok(e)) => assert_eq!(birth, e, "{id}: {why}"),
                (Err(msg), Err(needle)) => assert!(msg.contains(needle), "{id}: {why}: {msg}"),
                (got, _) => panic!("{id}: {why}: got {got:?}"),
            }
        }
        let accepted = validate(&Validator::SaId { min_age: Some(18) }, "8001015009087", NOW)
            .expect("valid id");
        assert_eq!(
            accepted.extra,
            vec![("_birth_date", Value::Text("1980-01-01".into()))]
        );
        let minor = validate(&Validator::SaId { min_age: Some(21) }, "0501015800086", NOW)
            .expect_err("too young");
        assert!(minor.contains("at least 21"), "{minor}");
    }
}
