//! Graceful degradation shared by the adapters (channels.md §6): splitting long text at a
//! channel's limit on word boundaries, and the numbered text menu used where buttons are missing.
//!
//! Matching a customer's reply to a numbered menu ("2", "Billing") is not here: that is
//! `flows::parse_choice_reply`, which reads the same item order this menu prints.

use switchboard_core::Choice;

/// How a channel measures its text limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Unicode scalar values (WhatsApp).
    Chars,
    /// UTF-16 code units (Telegram counts entity offsets and lengths in them, and a UTF-16
    /// count is never below the character count, so it is the safe measure there).
    Utf16,
    /// UTF-8 bytes (signal-cli truncates bodies above 2000 bytes into a long-text attachment).
    Bytes,
}

impl Unit {
    /// The size of `s` in this unit.
    pub fn measure(self, s: &str) -> usize {
        match self {
            Unit::Chars => s.chars().count(),
            Unit::Utf16 => s.encode_utf16().count(),
            Unit::Bytes => s.len(),
        }
    }

    fn of_char(self, c: char) -> usize {
        match self {
            Unit::Chars => 1,
            Unit::Utf16 => c.len_utf16(),
            Unit::Bytes => c.len_utf8(),
        }
    }
}

/// Splits `text` into parts of at most `limit` units each.
///
/// Each cut prefers, within the last half of the allowed window, a paragraph break, then a line
/// break, then a sentence end, then any whitespace; only a single word longer than the limit is
/// cut mid-word (on a character boundary). Whitespace at the cuts is dropped; nothing else is.
/// Text that fits is returned as one part unchanged. `limit` 0 is treated as 1.
pub fn split_text(text: &str, limit: usize, unit: Unit) -> Vec<String> {
    let limit = limit.max(1);
    if unit.measure(text) <= limit {
        return vec![text.to_string()];
    }
    let mut parts = Vec::new();
    let mut rest = text.trim_start();
    while unit.measure(rest) > limit {
        // Byte index just past the longest prefix that fits.
        let mut used = 0;
        let mut window_end = 0;
        for (i, c) in rest.char_indices() {
            let w = unit.of_char(c);
            if used + w > limit {
                break;
            }
            used += w;
            window_end = i + c.len_utf8();
        }
        if window_end == 0 {
            // A single character wider than the limit (limit 1 with UTF-16 surrogates or
            // multi-byte UTF-8): emit it alone rather than loop forever.
            window_end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let cut = best_cut(&rest[..window_end]).unwrap_or(window_end);
        let part = rest[..cut].trim_end();
        if !part.is_empty() {
            parts.push(part.to_string());
        }
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

/// The byte index to cut `window` at: the end of the best boundary in its second half.
fn best_cut(window: &str) -> Option<usize> {
    let half = window.len() / 2;
    let after = |idx: Option<usize>, len: usize| idx.map(|i| i + len).filter(|&i| i > half);
    after(window.rfind("\n\n"), 2)
        .or_else(|| after(window.rfind('\n'), 1))
        .or_else(|| {
            [". ", "! ", "? ", "。"]
                .iter()
                .filter_map(|p| window.rfind(p).map(|i| i + p.len()))
                .max()
                .filter(|&i| i > half)
        })
        .or_else(|| {
            window
                .char_indices()
                .filter(|(_, c)| c.is_whitespace())
                .map(|(i, c)| i + c.len_utf8())
                .next_back()
                .filter(|&i| i > 0)
        })
}

/// Renders choices as a numbered text menu: the prompt, one `n. title` line per item (with
/// ` - description` when given), and an instruction line. The numbering (1-based, in item
/// order) is what `flows::parse_choice_reply` maps back to the choice.
///
/// The instruction is English for now; localising it belongs with the flow's language.
pub fn numbered_menu(prompt: &str, items: &[Choice]) -> String {
    let mut out = String::new();
    let prompt = prompt.trim();
    if !prompt.is_empty() {
        out.push_str(prompt);
        out.push_str("\n\n");
    }
    for (n, item) in items.iter().enumerate() {
        out.push_str(&format!("{}. {}", n + 1, item.title.trim()));
        if let Some(d) = item
            .description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            out.push_str(" - ");
            out.push_str(d);
        }
        out.push('\n');
    }
    out.push_str("\nReply with the number of your choice.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_one_unchanged_part() {
        assert_eq!(
            split_text(" hi there ", 20, Unit::Chars),
            vec![" hi there "]
        );
    }

    #[test]
    fn splits_prefer_paragraphs_then_sentences_then_words() {
        let cases = [
            (
                "aaaa bbbb\n\ncccc dddd",
                12,
                vec!["aaaa bbbb", "cccc dddd"],
                "paragraph",
            ),
            (
                "One two. Three four",
                12,
                vec!["One two.", "Three four"],
                "sentence",
            ),
            (
                "alpha beta gamma delta",
                11,
                vec!["alpha beta", "gamma delta"],
                "word",
            ),
            (
                "abcdefghij",
                4,
                vec!["abcd", "efgh", "ij"],
                "one long word is cut",
            ),
        ];
        for (text, limit, expected, why) in cases {
            assert_eq!(split_text(text, limit, Unit::Chars), expected, "{why}");
        }
    }

    #[test]
    fn units_measure_what_each_provider_counts() {
        let s = "é😀";
        assert_eq!(Unit::Chars.measure(s), 2);
        assert_eq!(Unit::Utf16.measure(s), 3);
        assert_eq!(Unit::Bytes.measure(s), 6);
        // Signal counts bytes: 1500 two-byte letters need two parts at 2000 bytes.
        let long = "é".repeat(1500);
        let parts = split_text(&long, 2000, Unit::Bytes);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.len() <= 2000));
    }

    #[test]
    fn menu_numbers_items_in_order() {
        let items = vec![
            Choice {
                id: "a".into(),
                title: "Billing".into(),
                description: None,
            },
            Choice {
                id: "b".into(),
                title: "Sales".into(),
                description: Some("New plans".into()),
            },
        ];
        assert_eq!(
            numbered_menu("How can we help?", &items),
            "How can we help?\n\n1. Billing\n2. Sales - New plans\n\nReply with the number of your choice."
        );
    }

    proptest! {
        #[test]
        fn parts_fit_the_limit_and_keep_every_word(text in "\\PC{0,300}|[a-z \\n.]{0,400}", limit in 1usize..60) {
            for unit in [Unit::Chars, Unit::Utf16, Unit::Bytes] {
                let parts = split_text(&text, limit, unit);
                let fits = |p: &String| unit.measure(p) <= limit || p.chars().count() == 1;
                prop_assert!(parts.iter().all(fits), "{:?}", parts);
                let squash = |s: &str| s.split_whitespace().collect::<String>();
                prop_assert_eq!(squash(&parts.concat()), squash(&text));
            }
        }
    }
}
