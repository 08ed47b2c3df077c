//! `check` and `parse_flow` report each problem with its line, node and a hint.

use switchboard_flows::check_source;

/// Returns `(line, node, message)` of each problem, for compact assertions.
fn problems(yaml: &str) -> Vec<(Option<usize>, Option<String>, String)> {
    check_source(yaml)
        .into_iter()
        .map(|p| (p.line, p.node, format!("{} ({})", p.message, p.hint)))
        .collect()
}

fn expect(yaml: &str, line: usize, node: Option<&str>, needle: &str, why: &str) {
    let found = problems(yaml);
    assert!(
        found
            .iter()
            .any(|(l, n, m)| *l == Some(line) && n.as_deref() == node && m.contains(needle)),
        "{why}: expected line {line}, node {node:?}, `{needle}`; got {found:#?}"
    );
}

#[test]
fn a_correct_flow_has_no_problems() {
    let yaml = r#"
id: ok
nodes:
  - id: hello
    type: send
    text: "Hi {{contact.name}}"
  - id: ask
    type: ask
    prompt: Amount?
    save: amount
    validate: {type: money, min: 1, max: 100}
  - id: bye
    type: end
    text: "Thanks, R{{vars.amount}}"
"#;
    assert_eq!(problems(yaml), vec![]);
}

#[test]
fn each_kind_of_problem_is_reported_where_it_is() {
    let cases: &[(&str, usize, Option<&str>, &str, &str)] = &[
        (
            "id: f\nnodes:\n  - id: a\n    type: send\n    text: hi\n    next: nowhere\n  - id: b\n    type: end\n",
            3,
            Some("a"),
            "unknown node `nowhere`",
            "unknown target",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: send\n    text: hi\n    next: endd\n  - id: end\n    type: end\n",
            3,
            Some("a"),
            "did you mean `end`",
            "suggests a close name",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: end\n  - id: lonely\n    type: end\n",
            5,
            Some("lonely"),
            "cannot be reached",
            "unreachable node",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: send\n    text: '{{vars.who}}'\n  - id: b\n    type: end\n",
            3,
            Some("a"),
            "`vars.who` is read but never set",
            "missing variable in a template",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: branch\n    cases:\n      - when: vars.x > 1\n        next: b\n    else: b\n  - id: b\n    type: end\n",
            3,
            Some("a"),
            "`vars.x` is read but never set",
            "missing variable in an expression",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: set\n    set:\n      x: 1 +\n  - id: b\n    type: end\n",
            3,
            Some("a"),
            "bad expression `1 +`",
            "bad expression",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: send\n    text: 'Hi {{name}}'\n  - id: b\n    type: end\n",
            3,
            Some("a"),
            "bad template",
            "bad template",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: set\n    set: {x: 1}\n    next: b\n  - id: b\n    type: send\n    text: loop\n    next: a\n",
            3,
            Some("a"),
            "loop without ever waiting",
            "cycle without input",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: send\n    text: hi\n",
            3,
            Some("a"),
            "run off its end",
            "falls off the end",
        ),
        (
            "id: f\nstart: nope\nnodes:\n  - id: a\n    type: end\n",
            2,
            None,
            "start node `nope` does not exist",
            "bad start",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: send\n    text: hi\n  - id: a\n    type: end\n",
            6,
            Some("a"),
            "used twice",
            "duplicate id",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: menu\n    prompt: Pick\n    options: []\n    next: a\n",
            3,
            Some("a"),
            "no options",
            "empty menu",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: ask\n    prompt: n?\n    save: n\n    validate: {type: number, min: 5, max: 1}\n  - id: b\n    type: end\n",
            3,
            Some("a"),
            "larger than",
            "inverted range",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: http\n    url: 'https://x/{{env.host}}'\n  - id: b\n    type: end\n",
            3,
            Some("a"),
            "`env.host` is not declared",
            "undeclared env",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: http\n    url: 'https://x/'\n  - id: b\n    type: end\n",
            3,
            Some("a"),
            "no `on_error`",
            "http without failure branch",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: sned\n    text: hi\n",
            4,
            None,
            "a node's `type` is one of",
            "unknown node type",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: send\n    txet: hi\n  - id: b\n    type: end\n",
            5,
            None,
            "unknown field",
            "misspelt field",
        ),
        (
            "id: f\nnodes:\n  - id: a\n    type: ask\n    prompt: x\n    save: v\n    validate: {type: regex, pattern: '(['}\n",
            7,
            None,
            "bad regex",
            "bad regex",
        ),
        (
            "id: f\nnodes: [\n",
            2,
            None,
            "unclosed bracket",
            "broken YAML",
        ),
    ];
    for (yaml, line, node, needle, why) in cases {
        expect(yaml, *line, *node, needle, why);
    }
}

#[test]
fn problems_print_as_line_node_message_and_hint() {
    let p = check_source("id: f\nnodes:\n  - id: a\n    type: send\n    text: hi\n    next: b\n");
    assert_eq!(
        p[0].to_string(),
        "3: node `a`: `next` names unknown node `b` (add a node with id `b` or fix the name)"
    );
}

#[test]
fn keyword_triggers_are_checked() {
    let yaml = r#"
id: kw
triggers:
  keywords:
    en: [balance, "  ", agent]
  channels: [webchat, ""]
nodes:
  - id: bye
    type: end
"#;
    let found = problems(yaml);
    let line = found.first().and_then(|p| p.0);
    assert!(
        matches!(line, Some(3) | Some(4)),
        "reported at the triggers block: {found:#?}"
    );
    for (needle, why) in [
        (
            "an empty keyword under `triggers.keywords.en`",
            "blank keyword",
        ),
        ("keyword `agent` is also a command word", "command word"),
        ("an empty entry under `triggers.channels`", "blank channel"),
    ] {
        assert!(
            found
                .iter()
                .any(|(_, n, m)| n.is_none() && m.contains(needle)),
            "{why}: {found:#?}"
        );
    }
    assert_eq!(found.len(), 3, "`balance` is fine: {found:#?}");
    expect(
        "id: x\ntriggers: {keywords: {en: [x]}, channel: [webchat]}\nnodes:\n  - {id: e, type: end}\n",
        2,
        None,
        "unknown field `channel`",
        "a misspelt triggers field is refused",
    );
}

#[test]
fn a_keyword_of_two_flows_is_reported_on_both() {
    use switchboard_flows::{FlowLibrary, check_library, parse_flow};
    let flow = |id: &str, triggers: &str| {
        parse_flow(&format!(
            "id: {id}\n{triggers}\nnodes:\n  - {{id: e, type: end}}\n"
        ))
        .expect("parses")
    };
    let cases = [
        (
            "triggers: {keywords: {en: [Balance]}}",
            "triggers: {keywords: {af: [saldo], en: [' balance ']}}",
            2,
            "same keyword (case and spaces ignored), every channel",
        ),
        (
            "triggers: {keywords: {en: [balance]}, channels: [webchat]}",
            "triggers: {keywords: {en: [balance]}, channels: [whatsapp]}",
            0,
            "disjoint channels may share a keyword",
        ),
        (
            "triggers: {keywords: {en: [balance]}, channels: [WebChat]}",
            "triggers: {keywords: {en: [balance]}}",
            2,
            "one flow on every channel overlaps",
        ),
        (
            "triggers: {keywords: {en: [balance]}}",
            "triggers: {keywords: {en: [my balance]}}",
            0,
            "different keywords",
        ),
    ];
    for (a, b, n, why) in cases {
        let mut lib = FlowLibrary::default();
        lib.insert(flow("a", a));
        lib.insert(flow("b", b));
        let found = check_library(&lib);
        assert_eq!(found.len(), n, "{why}: {found:#?}");
        for (id, p) in &found {
            assert_eq!(p.line, Some(2), "{why}: line of `triggers:`");
            assert!(p.message.contains("keyword `balance`"), "{why}: {p}");
            let other = if id == "a" { "`b`" } else { "`a`" };
            assert!(
                p.message.contains(other),
                "{why}: names the other flow: {p}"
            );
        }
    }
}
