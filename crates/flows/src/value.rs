//! Values held in flow variables and produced by expressions.
//!
//! Money is kept as an integer number of cents ([`Money`]), never as a float, so an amount
//! the customer typed as `1234.50` is shown as `1234.50` after any number of additions.
//! Plain numbers are `f64` (quantities, terms, scores), always finite: an operation that would
//! produce NaN or infinity is an error, which also keeps sessions JSON-serialisable.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in cents (the currency is a property of the tenant, not of the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    /// Largest accepted amount (a trillion units): keeps every product far from `i64` overflow.
    pub const MAX_CENTS: i64 = 100_000_000_000_000;

    /// Parses what a customer types: `1234.5`, `R 1 234,50`, `1,234.50`, `$20`.
    ///
    /// Accepts an optional currency sign (`R`, `ZAR`, `$`, `€`, `£`), spaces, `,` or spaces as
    /// thousands separators, and at most two decimals after `.` (or after a single `,` when
    /// followed by exactly one or two digits, as in `99,95`). Returns `None` otherwise.
    pub fn parse(text: &str) -> Option<Money> {
        let mut s = text.trim().to_ascii_lowercase();
        for sign in ["zar", "r", "$", "€", "£"] {
            if let Some(rest) = s.strip_prefix(sign) {
                s = rest.to_string();
                break;
            }
        }
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let (negative, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest.to_string()),
            None => (false, s),
        };
        // A lone comma followed by 1-2 digits is a decimal comma (`99,95`).
        let s = match s.rfind(',') {
            Some(i)
                if !s.contains('.')
                    && s.matches(',').count() == 1
                    && (1..=2).contains(&(s.len() - i - 1)) =>
            {
                format!("{}.{}", &s[..i], &s[i + 1..])
            }
            _ => s.replace(',', ""),
        };
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s.as_str(), ""),
        };
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        if !whole.chars().all(|c| c.is_ascii_digit())
            || !frac.chars().all(|c| c.is_ascii_digit())
            || frac.len() > 2
            || whole.len() > 15
        {
            return None;
        }
        let units: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let cents: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().ok()? * 10,
            _ => frac.parse().ok()?,
        };
        let total = units.checked_mul(100)?.checked_add(cents)?;
        if total > Self::MAX_CENTS {
            return None;
        }
        Some(Money(if negative { -total } else { total }))
    }

    /// Converts a float, rounding half away from zero to the cent; `None` when out of range.
    pub fn from_f64(x: f64) -> Option<Money> {
        let cents = (x * 100.0).round();
        if cents.is_finite() && cents.abs() <= Self::MAX_CENTS as f64 {
            Some(Money(cents as i64))
        } else {
            None
        }
    }

    /// The amount as a float (for comparisons with plain numbers only).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// A flow variable or expression result.
///
/// Serialised externally tagged (`{"money": 123450}`) so a session round-trips through JSON
/// without turning money into a float.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// Nothing (a missing variable reads as null).
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A finite number.
    Number(f64),
    /// An amount in cents.
    Money(Money),
    /// Text.
    Text(String),
    /// A list (a shopping cart's lines, for example).
    List(Vec<Value>),
}

impl Value {
    /// A number, or `None` when it is not finite.
    pub fn number(x: f64) -> Option<Value> {
        x.is_finite().then_some(Value::Number(x))
    }

    /// Short type name for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::Money(_) => "money",
            Value::Text(_) => "text",
            Value::List(_) => "list",
        }
    }

    /// The JSON form used in records and HTTP bodies: money becomes a decimal string
    /// (`"1234.50"`) so no float rounding can creep in on the other side.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 9.0e15 {
                    serde_json::Value::from(*n as i64)
                } else {
                    serde_json::Number::from_f64(*n)
                        .map_or(serde_json::Value::Null, serde_json::Value::Number)
                }
            }
            Value::Money(m) => serde_json::Value::String(m.to_string()),
            Value::Text(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
        }
    }

    /// Converts JSON (an HTTP response, say) into a value; objects become their compact JSON text.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                n.as_f64().and_then(Value::number).unwrap_or(Value::Null)
            }
            serde_json::Value::String(s) => Value::Text(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(_) => Value::Text(json.to_string()),
        }
    }
}

impl fmt::Display for Value {
    /// The text shown to a customer: null is empty, integral numbers have no decimals,
    /// money always has two, lists are joined with `, `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(true) => f.write_str("yes"),
            Value::Bool(false) => f.write_str("no"),
            Value::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    write!(f, "{}", *n as i64)
                } else {
                    write!(f, "{n}")
                }
            }
            Value::Money(m) => write!(f, "{m}"),
            Value::Text(s) => f.write_str(s),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

/// Variables of one session by name.
pub type Vars = BTreeMap<String, Value>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_what_customers_type() {
        let cases = [
            ("1234.5", Some(123_450), "one decimal"),
            (
                "R 1 234,50",
                Some(123_450),
                "rand sign, space thousands, decimal comma",
            ),
            ("1,234.50", Some(123_450), "comma thousands"),
            ("$20", Some(2_000), "dollar sign"),
            ("R5000", Some(500_000), "no space after R"),
            ("0.07", Some(7), "cents only"),
            ("-3", Some(-300), "negative"),
            ("1,000", Some(100_000), "comma thousands without decimals"),
            ("12.345", None, "three decimals"),
            ("abc", None, "not a number"),
            ("", None, "empty"),
            (".", None, "only a dot"),
            ("1e5", None, "exponent"),
            ("9999999999999999", None, "too large"),
        ];
        for (input, expected, why) in cases {
            assert_eq!(
                Money::parse(input).map(|m| m.0),
                expected,
                "{input:?}: {why}"
            );
        }
    }

    #[test]
    fn money_displays_two_decimals_exactly() {
        let cases = [
            (123_450, "1234.50"),
            (7, "0.07"),
            (-5, "-0.05"),
            (0, "0.00"),
            (-12_300, "-123.00"),
        ];
        for (cents, shown) in cases {
            assert_eq!(Money(cents).to_string(), shown);
        }
    }

    #[test]
    fn values_show_plainly() {
        assert_eq!(Value::Number(12.0).to_string(), "12");
        assert_eq!(Value::Number(0.5).to_string(), "0.5");
        assert_eq!(Value::Null.to_string(), "");
        assert_eq!(
            Value::List(vec![Value::Text("a".into()), Value::Number(2.0)]).to_string(),
            "a, 2"
        );
        assert_eq!(
            Value::Money(Money(100)).to_json(),
            serde_json::json!("1.00")
        );
    }
}
