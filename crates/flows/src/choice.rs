//! Mapping a typed reply back to a menu option.
//!
//! Channels without buttons show menus as numbered text, and customers on channels with
//! buttons often type anyway. [`match_choice`] accepts, ignoring case, punctuation and extra
//! spaces: the option's number (`2`, `2.`, `2)`), its id, its exact title,
//! or a prefix of its title that only one option has (`bal` for "Balance enquiry").

use switchboard_core::Choice;

/// Lower case, punctuation dropped, runs of spaces collapsed: `"No, thanks!"` → `"no thanks"`.
fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '&' && c != '+'))
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Finds the option a customer meant, or `None` when the reply matches none or several.
pub fn match_choice<'a>(items: &'a [Choice], text: &str) -> Option<&'a Choice> {
    let reply = normalise(text);
    if reply.is_empty() {
        return None;
    }
    if let Ok(n) = reply.parse::<usize>() {
        return n.checked_sub(1).and_then(|i| items.get(i));
    }
    if let Some(c) = items.iter().find(|c| normalise(&c.title) == reply) {
        return Some(c);
    }
    if let Some(c) = items.iter().find(|c| c.id.to_lowercase() == reply) {
        return Some(c);
    }
    let mut prefixed = items
        .iter()
        .filter(|c| normalise(&c.title).starts_with(&reply));
    match (prefixed.next(), prefixed.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Choice> {
        [
            ("balance", "Balance enquiry"),
            ("loan", "Apply for a loan"),
            ("pay", "Pay my account"),
            ("pay_later", "Pay later"),
        ]
        .into_iter()
        .map(|(id, title)| Choice {
            id: id.into(),
            title: title.into(),
            description: None,
        })
        .collect()
    }

    #[test]
    fn replies_map_to_the_option_the_customer_meant() {
        let items = items();
        let cases = [
            ("1", Some("balance"), "number"),
            (" 2. ", Some("loan"), "number with a dot and spaces"),
            ("3)", Some("pay"), "number with a parenthesis"),
            ("5", None, "number out of range"),
            ("0", None, "zero is not an option"),
            ("BALANCE ENQUIRY", Some("balance"), "exact title, any case"),
            ("bal", Some("balance"), "unambiguous prefix"),
            ("pay", Some("pay"), "id wins over the ambiguous prefix"),
            ("pay l", Some("pay_later"), "longer prefix disambiguates"),
            ("Pa", None, "ambiguous prefix"),
            ("apply for a loan!", Some("loan"), "trailing punctuation"),
            ("loan", Some("loan"), "id"),
            ("", None, "empty"),
            ("...", None, "only punctuation"),
            ("xyz", None, "nothing matches"),
            ("99999999999999999999999", None, "huge number"),
        ];
        for (reply, expected, why) in cases {
            assert_eq!(
                match_choice(&items, reply).map(|c| c.id.as_str()),
                expected,
                "{reply:?}: {why}"
            );
        }
    }
}
