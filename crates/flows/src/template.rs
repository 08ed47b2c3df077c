//! Message templates: `Hello {{contact.name}}, you owe {{vars.amount}}.`
//!
//! A placeholder is a path (`vars.x`, `contact.x`, `env.x`) between `{{` and `}}`, with
//! optional spaces. Output is plain text for messaging channels (no HTML). Rendering is a
//! single pass over the template: a substituted value is never scanned again, so a customer
//! who types `{{env.secret}}` as their name sees exactly that text and nothing is expanded.
//! Control characters other than newline and tab are removed from substituted values.
//! A missing variable renders as empty text; `check` reports it before a flow goes live.

use crate::expr::{Context, Root};

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Literal text.
    Text(&'a str),
    /// A placeholder.
    Path(Root, &'a str),
}

/// Splits a template into segments, or says what is wrong (with a 1-based character column).
pub fn parse(template: &str) -> Result<Vec<Segment<'_>>, (usize, String)> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Segment::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            let column = template[..offset + open].chars().count() + 1;
            return Err((column, "`{{` is not closed; add `}}`".to_string()));
        };
        let inner = after[..close].trim();
        let column = template[..offset + open].chars().count() + 1;
        let Some((root, name)) = inner.split_once('.') else {
            return Err((
                column,
                format!(
                    "`{{{{{inner}}}}}` is not a path; write `{{{{vars.{inner}}}}}` or `{{{{contact.{inner}}}}}`"
                ),
            ));
        };
        let Some(root) = Root::parse(root) else {
            return Err((
                column,
                format!("`{root}` is not known; placeholders start with vars., contact. or env."),
            ));
        };
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err((
                column,
                format!("`{inner}` is not a valid name (letters, digits and _ only)"),
            ));
        }
        out.push(Segment::Path(root, name));
        let consumed = open + 2 + close + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        out.push(Segment::Text(rest));
    }
    Ok(out)
}

/// Renders a template. Malformed placeholders are left as written (`check` reports them).
pub fn render(template: &str, ctx: &Context<'_>) -> String {
    if !template.contains("{{") {
        return template.to_string();
    }
    let Ok(segments) = parse(template) else {
        return template.to_string();
    };
    let mut out = String::with_capacity(template.len() + 16);
    for seg in segments {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Path(root, name) => {
                let value = ctx.lookup(root, name).to_string();
                out.extend(
                    value
                        .chars()
                        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t'),
                );
            }
        }
    }
    out
}

/// A template as a whole placeholder (`"{{vars.amount}}"`), so JSON bodies keep the type.
pub fn whole_path(template: &str) -> Option<(Root, &str)> {
    match parse(template.trim()) {
        Ok(segs) if segs.len() == 1 => match segs[0] {
            Segment::Path(root, name) => Some((root, name)),
            Segment::Text(_) => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Money, Value, Vars};
    use std::collections::BTreeMap;
    use time::macros::datetime;

    #[test]
    fn templates_render_plain_text_and_never_expand_values() {
        let mut vars = Vars::new();
        vars.insert("amount".into(), Value::Money(Money(123_450)));
        vars.insert("evil".into(), Value::Text("{{env.secret}}\u{7}<b>".into()));
        let mut contact = Vars::new();
        contact.insert("name".into(), Value::Text("Thandi".into()));
        let env = BTreeMap::from([("secret".to_string(), "hunter2".to_string())]);
        let ctx = Context {
            vars: &vars,
            contact: &contact,
            env: [&env, &env],
            now: datetime!(2025-01-01 0:00 UTC),
            seed: 0,
        };
        let cases = [
            ("Hi {{contact.name}}!", "Hi Thandi!", "contact field"),
            (
                "You owe R{{ vars.amount }}.",
                "You owe R1234.50.",
                "money keeps two decimals; spaces allowed",
            ),
            ("[{{vars.missing}}]", "[]", "missing renders empty"),
            (
                "{{vars.evil}}",
                "{{env.secret}}<b>",
                "values are not expanded; control chars dropped; no HTML escaping",
            ),
            ("no placeholders", "no placeholders", "plain"),
            ("{{oops", "{{oops", "malformed stays as written"),
        ];
        for (t, expected, why) in cases {
            assert_eq!(render(t, &ctx), expected, "{t}: {why}");
        }
    }

    #[test]
    fn template_errors_name_the_column() {
        let cases = [
            ("Hi {{name}}", 4, "not a path"),
            ("x {{foo.bar}}", 3, "not known"),
            ("{{vars.a", 1, "not closed"),
            ("{{vars.a-b}}", 1, "not a valid name"),
        ];
        for (t, column, needle) in cases {
            let (c, msg) = parse(t).expect_err(t);
            assert_eq!(c, column, "{t}");
            assert!(msg.contains(needle), "{t}: {msg}");
        }
    }
}
