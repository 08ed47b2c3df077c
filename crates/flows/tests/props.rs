//! Property tests: the expression language and `step` never panic, errors are values, and a
//! session is never lost (it always survives JSON, and a failed step returns it unchanged).

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use switchboard_flows::expr::{self, Context};
use switchboard_flows::value::Vars;
use switchboard_flows::{Action, FlowLibrary, FlowSession, Input, Money, Value, parse_flow, step};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn library() -> &'static FlowLibrary {
    static LIB: std::sync::OnceLock<FlowLibrary> = std::sync::OnceLock::new();
    LIB.get_or_init(load)
}

fn load() -> FlowLibrary {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows");
    let mut lib = FlowLibrary::default();
    for entry in std::fs::read_dir(dir).expect("flows/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            lib.insert(parse_flow(&std::fs::read_to_string(&path).expect("read")).expect("parses"));
        }
    }
    lib
}

fn vars() -> Vars {
    let mut v = Vars::new();
    v.insert("n".into(), Value::Number(3.0));
    v.insert("m".into(), Value::Money(Money(1050)));
    v.insert("t".into(), Value::Text("abc".into()));
    v.insert("l".into(), Value::List(vec![Value::Bool(true)]));
    v
}

/// Expression-like strings built from the language's own tokens, so most parse.
fn token_soup() -> impl Strategy<Value = String> {
    let tok = prop_oneof![
        Just("vars.n"),
        Just("vars.m"),
        Just("vars.t"),
        Just("vars.l"),
        Just("vars.x"),
        Just("contact.name"),
        Just("env.a"),
        Just("1"),
        Just("0"),
        Just("2.5"),
        Just("'x'"),
        Just("true"),
        Just("null"),
        Just("+"),
        Just("-"),
        Just("*"),
        Just("/"),
        Just("%"),
        Just("=="),
        Just("!="),
        Just("<"),
        Just(">="),
        Just("and"),
        Just("or"),
        Just("not"),
        Just("("),
        Just(")"),
        Just(","),
        Just("len("),
        Just("upper("),
        Just("money("),
        Just("round("),
        Just("push("),
        Just("join("),
        Just("if("),
        Just("today()"),
        Just("reference("),
        Just("days_until("),
        Just("min("),
    ];
    proptest::collection::vec(tok, 0..24).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_the_parser(src in "\\PC{0,80}") {
        let _ = expr::parse(&src);
    }

    #[test]
    fn token_soup_parses_or_errors_and_evaluates_or_errors(src in token_soup()) {
        let vars = vars();
        let contact = Vars::new();
        let env = BTreeMap::new();
        let ctx = Context { vars: &vars, contact: &contact, env: [&env, &env], now: datetime!(2025-01-01 0:00 UTC), seed: 1 };
        // Every value can be stored: its JSON round trip is exact.
        if let Ok(v) = expr::parse(&src).and_then(|e| expr::eval(&e, &ctx)) {
            let json = serde_json::to_string(&v).expect("serialises");
            let back: Value = serde_json::from_str(&json).expect("deserialises");
            prop_assert_eq!(back, v);
        }
    }

    #[test]
    fn money_addition_is_exact(a in -100_000_000_i64..100_000_000, b in -100_000_000_i64..100_000_000) {
        let mut vars = Vars::new();
        vars.insert("a".into(), Value::Money(Money(a)));
        vars.insert("b".into(), Value::Money(Money(b)));
        let contact = Vars::new();
        let env = BTreeMap::new();
        let ctx = Context { vars: &vars, contact: &contact, env: [&env, &env], now: datetime!(2025-01-01 0:00 UTC), seed: 1 };
        prop_assert_eq!(expr::eval_str("vars.a + vars.b - vars.b", &ctx), Ok(Value::Money(Money(a))));
        let shown = expr::eval_str("text(vars.a)", &ctx).expect("text");
        prop_assert_eq!(Money::parse(&shown.to_string()), Some(Money(a)), "display parses back to the same cents");
    }

    #[test]
    fn nesting_is_bounded_without_stack_overflow(depth in 0usize..400, op in prop_oneof![Just("("), Just("-"), Just("not "), Just("len(")]) {
        let src = format!("{}1", op.repeat(depth));
        let _ = expr::parse(&src);
    }
}

fn input() -> impl Strategy<Value = (Input, i64)> {
    let text = prop_oneof![
        Just("1".to_string()),
        Just("2".to_string()),
        Just("3".to_string()),
        Just("4".to_string()),
        Just("5".to_string()),
        Just("yes".to_string()),
        Just("no".to_string()),
        Just("menu".to_string()),
        Just("agent".to_string()),
        Just("12345678".to_string()),
        Just("R5000".to_string()),
        Just("24".to_string()),
        Just("8001015009087".to_string()),
        Just("20/03/2025".to_string()),
        Just("coffee".to_string()),
        Just("check out".to_string()),
        "\\PC{0,30}",
    ];
    let kind = prop_oneof![
        4 => text.prop_map(Input::text),
        1 => Just(Input::Start),
        1 => Just(Input::Timeout),
        1 => "[a-z]{1,8}".prop_map(|id| Input::Choice { id }),
        1 => Just(Input::Other { kind: "image".into() }),
        1 => (any::<bool>(), prop_oneof![Just(200u16), Just(404), Just(500)]).prop_map(|(ok, status)| Input::HttpResult {
            request_id: "any".into(), ok, status,
            body: serde_json::json!({"holder": "T", "currency": "ZAR", "balance": "10.00", "available": 5, "arrears": "1.00"}),
        }),
    ];
    (kind, 0i64..3_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn step_never_panics_and_never_loses_the_session(
        root in prop_oneof![Just("main_menu"), Just("balance"), Just("loan_application"), Just("collections"), Just("order")],
        inputs in proptest::collection::vec(input(), 1..40),
    ) {
        let lib = library();
        let mut now: OffsetDateTime = datetime!(2025-03-10 09:00 UTC);
        let mut session = FlowSession::new("p", root);
        let mut pending: Option<String> = None;
        for (mut input, secs) in inputs {
            now += Duration::seconds(secs);
            // Answer the real pending request id most of the time, so HTTP paths get exercised.
            if let (Input::HttpResult { request_id, .. }, Some(p)) = (&mut input, &pending) {
                *request_id = p.clone();
            }
            let before = session.clone();
            let out = step(lib, session, input, now);
            if out.actions.iter().any(|a| matches!(a, Action::Error { .. })) {
                prop_assert_eq!(out.actions.len(), 1, "an error comes alone");
                prop_assert_eq!(&out.session, &before, "a failed step returns the session unchanged");
            }
            for a in &out.actions {
                if let Action::HttpRequest { request_id, .. } = a {
                    pending = Some(request_id.clone());
                }
            }
            let json = serde_json::to_string(&out.session).expect("serialises");
            let back: FlowSession = serde_json::from_str(&json).expect("deserialises");
            prop_assert_eq!(&back, &out.session);
            session = out.session;
        }
    }
}

/// The bundled flow files' sources, the seeds for mutated flow files.
fn bundled_sources() -> &'static [String] {
    static SRC: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SRC.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows");
        let mut out: Vec<String> = std::fs::read_dir(dir)
            .expect("flows/")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .map(|p| std::fs::read_to_string(p).expect("read"))
            .collect();
        out.sort();
        out
    })
}

/// Every problem a flow file gets must be something an author can act on: a message, a hint,
/// and a line that exists in the file when one is named.
fn assert_actionable(
    src: &str,
    problems: &[switchboard_flows::Problem],
) -> Result<(), TestCaseError> {
    let lines = src.lines().count().max(1);
    for p in problems {
        prop_assert!(
            !p.message.trim().is_empty(),
            "a problem without a message: {p:?}"
        );
        prop_assert!(!p.hint.trim().is_empty(), "a problem without a hint: {p:?}");
        if let Some(line) = p.line {
            prop_assert!(
                line >= 1 && line <= lines + 1,
                "line {line} outside a {lines}-line file: {p:?}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Arbitrary text as a flow file: `flows check` answers with problems, never a panic.
    #[test]
    fn arbitrary_text_as_a_flow_file_gets_actionable_problems(src in "\\PC{0,400}") {
        let problems = switchboard_flows::check_source(&src);
        assert_actionable(&src, &problems)?;
    }

    /// A real flow file with one line replaced by arbitrary text, or cut short anywhere: still
    /// no panic, and every problem names what is wrong and what to do.
    #[test]
    fn a_mutated_bundled_flow_gets_actionable_problems(
        which in 0usize..64,
        line in 0usize..400,
        replacement in "\\PC{0,60}",
        cut in proptest::option::of(0usize..20_000),
    ) {
        let sources = bundled_sources();
        let original = &sources[which % sources.len()];
        let mut lines: Vec<&str> = original.lines().collect();
        let at = line % lines.len().max(1);
        if !lines.is_empty() {
            lines[at] = &replacement;
        }
        let mut src = lines.join("\n");
        if let Some(cut) = cut {
            let mut cut = cut.min(src.len());
            while !src.is_char_boundary(cut) {
                cut -= 1;
            }
            src.truncate(cut);
        }
        let problems = switchboard_flows::check_source(&src);
        assert_actionable(&src, &problems)?;
    }
}
