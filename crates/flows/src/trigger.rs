//! Keyword triggers: which flow a customer's message starts, when nobody (bot or person) is
//! talking to them yet. Pure; the runtime decides *when* to ask (see `app::flows_runtime`).

use crate::definition::{FlowDefinition, FlowLibrary, Triggers};

/// Characters ignored at the ends of a message or keyword ("Balance!" is "balance").
const EDGE_PUNCTUATION: &[char] = &['.', ',', '!', '?', ';', ':', '"', '\'', '¿', '¡'];

/// The comparable form of a message or keyword: lower case, words separated by one space,
/// no surrounding spaces or punctuation. An empty result means "nothing to match".
pub fn normalize(text: &str) -> String {
    let joined = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    joined
        .trim_matches(|c: char| EDGE_PUNCTUATION.contains(&c) || c.is_whitespace())
        .to_string()
}

impl Triggers {
    /// Whether the keywords apply on a channel of this kind (`webchat`, ...) and id; an empty
    /// `channels` list means every channel.
    pub fn applies_to(&self, channel_kind: &str, channel_id: &str) -> bool {
        self.channels.is_empty()
            || self
                .channels
                .iter()
                .any(|c| c.trim().eq_ignore_ascii_case(channel_kind) || c.trim() == channel_id)
    }

    /// Every keyword in comparable form (all languages), skipping empty ones.
    pub fn normalized_keywords(&self) -> impl Iterator<Item = String> + '_ {
        self.keywords
            .values()
            .flatten()
            .map(|k| normalize(k))
            .filter(|k| !k.is_empty())
    }
}

/// Whether a normalized message is the normalized keyword, or starts with it and a space.
fn matches(message: &str, keyword: &str) -> bool {
    message
        .strip_prefix(keyword)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// The flow a customer message starts on a channel, by its keyword triggers.
///
/// Case-insensitive, surrounding spaces and punctuation ignored; the whole message must be a
/// keyword, or start with one followed by whitespace ("balance please"). Keywords of every
/// language count (the contact's language is often unknown on a first message). When several
/// flows match, the longest keyword wins, then the smallest flow id, so the answer never
/// depends on load order.
pub fn match_keyword<'a>(
    library: &'a FlowLibrary,
    channel_kind: &str,
    channel_id: &str,
    text: &str,
) -> Option<&'a FlowDefinition> {
    let message = normalize(text);
    if message.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'a FlowDefinition)> = None;
    // `flows` is ordered by id, so on equal length the first (smallest id) is kept.
    for def in library.flows.values() {
        if !def.triggers.applies_to(channel_kind, channel_id) {
            continue;
        }
        for keyword in def.triggers.normalized_keywords() {
            let len = keyword.chars().count();
            if matches(&message, &keyword) && best.is_none_or(|(l, _)| len > l) {
                best = Some((len, def));
            }
        }
    }
    best.map(|(_, def)| def)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{EndNode, Node, Settings};

    fn flow(id: &str, keywords: &[(&str, &[&str])], channels: &[&str]) -> FlowDefinition {
        let mut def = FlowDefinition::from_parts(
            id,
            "end",
            Settings::default(),
            vec![Node::End(EndNode {
                id: "end".into(),
                text: None,
                outcome: None,
            })],
        );
        def.triggers = Triggers {
            keywords: keywords
                .iter()
                .map(|(lang, words)| {
                    (
                        lang.to_string(),
                        words.iter().map(|w| w.to_string()).collect(),
                    )
                })
                .collect(),
            channels: channels.iter().map(|c| c.to_string()).collect(),
        };
        def
    }

    fn library() -> FlowLibrary {
        let mut lib = FlowLibrary::default();
        lib.insert(flow(
            "balance",
            &[("en", &["balance", "my balance"]), ("af", &["saldo"])],
            &[],
        ));
        lib.insert(flow("loan", &[("en", &["loan"])], &["whatsapp"]));
        lib.insert(flow("b_pay", &[("en", &["pay"])], &[]));
        lib.insert(flow("a_pay", &[("en", &["pay"])], &[]));
        lib.insert(flow("balance_pay", &[("en", &["balance pay"])], &["CH1"]));
        lib.insert(flow("plain", &[], &[]));
        lib
    }

    #[test]
    fn keywords_pick_flows() {
        let lib = library();
        let cases: &[(&str, &str, &str, Option<&str>, &str)] = &[
            ("webchat", "c", "balance", Some("balance"), "exact keyword"),
            (
                "webchat",
                "c",
                "  BALANCE  ",
                Some("balance"),
                "case and spaces ignored",
            ),
            (
                "webchat",
                "c",
                "Balance?",
                Some("balance"),
                "trailing punctuation ignored",
            ),
            (
                "webchat",
                "c",
                "balance please",
                Some("balance"),
                "keyword then a space",
            ),
            (
                "webchat",
                "c",
                "balances",
                None,
                "a longer word is not the keyword",
            ),
            (
                "webchat",
                "c",
                "what is my balance",
                None,
                "the keyword must come first",
            ),
            (
                "webchat",
                "c",
                "my   balance",
                Some("balance"),
                "inner spaces collapse",
            ),
            (
                "webchat",
                "c",
                "saldo",
                Some("balance"),
                "another language's keyword",
            ),
            ("webchat", "c", "loan", None, "loan is limited to whatsapp"),
            ("whatsapp", "c", "Loan", Some("loan"), "channel kind listed"),
            (
                "webchat",
                "c",
                "pay",
                Some("a_pay"),
                "equal length: smallest flow id",
            ),
            (
                "webchat",
                "CH1",
                "balance pay",
                Some("balance_pay"),
                "longest keyword wins",
            ),
            (
                "webchat",
                "c",
                "balance pay",
                Some("balance"),
                "balance_pay is only on channel CH1",
            ),
            ("webchat", "c", "", None, "empty message"),
            ("webchat", "c", "  ?! ", None, "only punctuation"),
            ("webchat", "c", "hello", None, "no keyword"),
        ];
        for (kind, id, text, want, why) in cases {
            let got = match_keyword(&lib, kind, id, text).map(|d| d.id.as_str());
            assert_eq!(got, *want, "{why}: {text:?} on {kind}/{id}");
        }
    }

    #[test]
    fn normalize_cases() {
        let cases = [
            ("  Hello   World! ", "hello world", "spaces and punctuation"),
            ("SALDO", "saldo", "lower case"),
            ("", "", "empty"),
            ("¿Qué?", "qué", "non-ASCII kept, edges trimmed"),
        ];
        for (input, want, why) in cases {
            assert_eq!(normalize(input), want, "{why}");
        }
    }
}
