//! Table tests for `step`, one small flow per node type and rule.

use serde_json::json;
use switchboard_core::{Content, MediaKind};
use switchboard_flows::{
    Action, FlowDefinition, FlowSession, Input, SessionState, Value, check, parse_flow, step,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2025-03-10 09:00 UTC);

fn flow(yaml: &str) -> FlowDefinition {
    let def = parse_flow(yaml).unwrap_or_else(|p| panic!("{p:?}"));
    let problems = check(&def);
    assert!(problems.is_empty(), "{problems:#?}");
    def
}

/// Runs inputs from a fresh session and returns every action and the final session.
fn run(def: &FlowDefinition, inputs: Vec<Input>) -> (Vec<Action>, FlowSession) {
    let mut session = FlowSession::new("s1", def.id.clone()).with_contact("name", "Thandi");
    let mut all = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let out = step(def, session, input, NOW + Duration::seconds(i as i64));
        all.extend(out.actions);
        session = out.session;
    }
    (all, session)
}

fn texts(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                content: Content::Text { body },
            } => Some(body.clone()),
            Action::Send {
                content: Content::Choices { prompt, .. },
            } => Some(format!("[menu] {prompt}")),
            _ => None,
        })
        .collect()
}

#[test]
fn send_renders_text_and_media_with_escaped_values() {
    let def = flow(
        r#"
id: f
nodes:
  - id: hi
    type: send
    text: "Hi {{contact.name}}"
    media: {kind: image, url: "https://cdn.test/{{contact.name}}.png", caption: "for {{contact.name}}"}
  - id: bye
    type: end
"#,
    );
    let (actions, _) = run(&def, vec![Input::Start]);
    assert_eq!(texts(&actions), vec!["Hi Thandi"]);
    assert!(actions.iter().any(|a| matches!(a, Action::Send { content: Content::Media { kind: MediaKind::Image, caption: Some(c), .. } } if c == "for Thandi")));

    let session = FlowSession::new("s1", "f").with_contact("name", "{{env.secret}}");
    let out = step(&def, session, Input::Start, NOW);
    assert_eq!(
        texts(&out.actions),
        vec!["Hi {{env.secret}}"],
        "a value is never expanded again"
    );
}

#[test]
fn set_and_branch_route_on_expressions() {
    let def = flow(
        r#"
id: f
nodes:
  - id: ask
    type: ask
    prompt: Amount?
    save: amount
    validate: {type: money}
  - id: calc
    type: set
    set:
      fee: vars.amount * 0.015
      total: vars.amount + vars.fee
    contact:
      language: "'af'"
  - id: route
    type: branch
    cases:
      - when: vars.total > 1000 and contains(contact.name, 'thandi')
        next: big
    else: small
  - id: big
    type: end
    text: "Big: {{vars.total}} (fee {{vars.fee}})"
    outcome: big
  - id: small
    type: end
    text: "Small: {{vars.total}}"
    outcome: small
"#,
    );
    let cases = [
        ("2000", "Big: 2030.00 (fee 30.00)", "big"),
        ("R10.10", "Small: 10.25", "small"),
    ];
    for (reply, expected, outcome) in cases {
        let (actions, session) = run(&def, vec![Input::Start, Input::text(reply)]);
        assert_eq!(
            texts(&actions).last().map(String::as_str),
            Some(expected),
            "{reply}"
        );
        assert_eq!(
            session.state,
            SessionState::Ended {
                outcome: outcome.into()
            }
        );
        assert_eq!(session.language.as_deref(), Some("af"));
        assert!(actions.contains(&Action::SetContactAttribute {
            key: "language".into(),
            value: json!("af")
        }));
    }
}

#[test]
fn a_failing_expression_returns_the_same_session_and_an_error() {
    let def = flow(
        r#"
id: f
nodes:
  - id: ask
    type: ask
    prompt: n?
    save: n
    validate: {type: number}
  - id: div
    type: set
    set: {x: 100 / vars.n}
  - id: done
    type: end
"#,
    );
    let (_, waiting) = run(&def, vec![Input::Start]);
    let out = step(&def, waiting.clone(), Input::text("0"), NOW);
    assert_eq!(
        out.session, waiting,
        "never loses or half-updates a session"
    );
    assert!(
        matches!(&out.actions[..], [Action::Error { message }] if message.contains("division by zero")),
        "{:?}",
        out.actions
    );
}

#[test]
fn menus_accept_buttons_numbers_and_titles_then_give_up_to_a_person() {
    let def = flow(
        r#"
id: f
settings:
  max_retries: 1
nodes:
  - id: m
    type: menu
    prompt: Pick
    save: picked
    options:
      - {id: a, title: Apples, next: done}
      - {id: b, title: Bananas, next: done, set: {price: "money('3.5')"}}
  - id: done
    type: end
    text: "Got {{vars.picked}}"
"#,
    );
    for (input, expected) in [
        (Input::Choice { id: "a".into() }, "Got a"),
        (Input::text("2"), "Got b"),
        (Input::text("banana"), "Got b"),
    ] {
        let (actions, _) = run(&def, vec![Input::Start, input.clone()]);
        assert_eq!(
            texts(&actions).last().map(String::as_str),
            Some(expected),
            "{input:?}"
        );
    }
    let (actions, session) = run(
        &def,
        vec![Input::Start, Input::text("cherries"), Input::text("kiwi")],
    );
    assert_eq!(
        texts(&actions)[1..3],
        [
            "Sorry, I didn't understand that.".to_string(),
            "[menu] Pick".to_string()
        ]
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Handoff { queue, .. } if queue == "general")),
        "{actions:?}"
    );
    assert_eq!(session.state, SessionState::HandedOff);
}

#[test]
fn ask_reprompts_then_follows_on_fail() {
    let def = flow(
        r#"
id: f
nodes:
  - id: q
    type: ask
    prompt: Email?
    save: email
    validate: {type: email}
    max_retries: 1
    on_fail: gave_up
  - id: ok
    type: end
    text: "Thanks {{vars.email}}"
  - id: gave_up
    type: end
    text: Never mind
    outcome: no_email
"#,
    );
    let (actions, s) = run(
        &def,
        vec![
            Input::Start,
            Input::text("nope"),
            Input::Other {
                kind: "image".into(),
            },
        ],
    );
    assert_eq!(
        texts(&actions),
        vec![
            "Email?",
            "Please send an e-mail address such as name@example.com.",
            "Never mind"
        ]
    );
    assert_eq!(
        s.state,
        SessionState::Ended {
            outcome: "no_email".into()
        }
    );
    let (actions, _) = run(&def, vec![Input::Start, Input::text("a@B.com")]);
    assert_eq!(
        texts(&actions).last().map(String::as_str),
        Some("Thanks a@b.com")
    );
}

#[test]
fn http_requests_are_rendered_and_results_mapped() {
    let def = flow(
        r#"
id: f
env: {base: "https://api.test"}
nodes:
  - id: q
    type: ask
    prompt: Who?
    save: who
  - id: call
    type: http
    method: POST
    url: "{{env.base}}/people/{{vars.who}}"
    headers: {X-Who: "{{vars.who}}"}
    body: {name: "{{vars.who}}", note: "hi {{vars.who}}", n: 1}
    save: {score: data.score, first: data.items.0, code: $status}
    on_error: failed
  - id: ok
    type: end
    text: "Score {{vars.score}}, first {{vars.first}}, status {{vars.code}}"
  - id: failed
    type: end
    text: "Failed with {{vars.code}}"
"#,
    );
    let (actions, waiting) = run(&def, vec![Input::Start, Input::text("a/b?c")]);
    let Some(Action::HttpRequest {
        request_id,
        method,
        url,
        headers,
        body,
        ..
    }) = actions.last()
    else {
        panic!("{actions:?}")
    };
    assert_eq!(
        (method.as_str(), url.as_str()),
        ("POST", "https://api.test/people/a%2Fb%3Fc"),
        "values cannot add path segments"
    );
    assert_eq!(headers, &vec![("X-Who".to_string(), "a/b?c".to_string())]);
    assert_eq!(
        body,
        &Some(json!({"name": "a/b?c", "note": "hi a/b?c", "n": 1}))
    );

    let cases = [
        (
            true,
            200,
            json!({"data": {"score": 7, "items": ["x", "y"]}}),
            "Score 7, first x, status 200",
        ),
        (true, 503, json!(null), "Failed with 503"),
        (false, 0, json!(null), "Failed with 0"),
    ];
    for (ok, status, body, expected) in cases {
        let out = step(
            &def,
            waiting.clone(),
            Input::HttpResult {
                request_id: request_id.clone(),
                ok,
                status,
                body,
            },
            NOW,
        );
        assert_eq!(texts(&out.actions), vec![expected.to_string()], "{status}");
    }
    let stray = step(
        &def,
        waiting.clone(),
        Input::HttpResult {
            request_id: "other".into(),
            ok: true,
            status: 200,
            body: json!({}),
        },
        NOW,
    );
    assert_eq!(stray.session, waiting);
    assert!(matches!(&stray.actions[..], [Action::Error { .. }]));
    let typed = step(&def, waiting.clone(), Input::text("hello?"), NOW);
    assert!(
        typed.actions.is_empty(),
        "typing while a lookup runs is ignored"
    );
}

#[test]
fn wait_takes_a_reply_or_times_out() {
    let def = flow(
        r#"
id: f
nodes:
  - id: w
    type: wait
    text: Anything else?
    timeout_seconds: 60
    save: reply
    on_timeout: quiet
  - id: got
    type: end
    text: "You said {{vars.reply}}"
  - id: quiet
    type: end
    text: Bye
    outcome: timeout
"#,
    );
    let (actions, waiting) = run(&def, vec![Input::Start]);
    assert!(
        actions.contains(&Action::ScheduleTimeout {
            at: NOW + Duration::seconds(60)
        }),
        "{actions:?}"
    );
    let early = step(
        &def,
        waiting.clone(),
        Input::Timeout,
        NOW + Duration::seconds(30),
    );
    assert!(early.actions.is_empty(), "a stale timer does nothing");
    let late = step(
        &def,
        waiting.clone(),
        Input::Timeout,
        NOW + Duration::seconds(61),
    );
    assert_eq!(texts(&late.actions), vec!["Bye"]);
    let reply = step(
        &def,
        waiting,
        Input::text("yes"),
        NOW + Duration::seconds(10),
    );
    assert_eq!(texts(&reply.actions), vec!["You said yes"]);
}

#[test]
fn commands_work_in_the_contacts_language_and_in_english() {
    let def = flow(
        r#"
id: f
settings:
  commands:
    af: {agent: [mens], menu: [kieslys], stop: [kanselleer]}
nodes:
  - id: m
    type: ask
    prompt: Naam?
    save: naam
  - id: e
    type: end
"#,
    );
    let cases = [
        ("mens", Some("agent_requested"), "Afrikaans agent word"),
        (
            "Kanselleer!",
            Some("opted_out"),
            "Afrikaans stop word, any case and punctuation",
        ),
        ("unsubscribe", Some("opted_out"), "English always works"),
        ("kieslys", None, "menu restarts: still waiting"),
        (
            "please stop calling me",
            Some("completed"),
            "a sentence is an answer, not a command",
        ),
    ];
    for (text, outcome, why) in cases {
        let mut s = FlowSession::new("s", "f");
        s.language = Some("af".into());
        let s = step(&def, s, Input::Start, NOW).session;
        let out = step(&def, s, Input::text(text), NOW);
        let got = out.actions.iter().find_map(|a| match a {
            Action::End { outcome } => Some(outcome.as_str()),
            _ => None,
        });
        assert_eq!(got, outcome, "{text}: {why}");
        if outcome == Some("opted_out") {
            assert!(out.actions.contains(&Action::OptOut));
        }
    }
}

#[test]
fn subflows_return_to_the_caller_and_missing_ones_are_errors() {
    let main = flow(
        "id: main\ninputs: [x]\nnodes:\n  - id: call\n    type: subflow\n    flow: sub\n  - id: after\n    type: end\n    text: 'back with {{vars.x}}'\n",
    );
    let sub = flow(
        "id: sub\nnodes:\n  - id: s\n    type: set\n    set: {x: 42}\n  - id: r\n    type: return\n",
    );
    let mut lib = switchboard_flows::FlowLibrary::default();
    lib.insert(main.clone());
    lib.insert(sub);
    let out = step(&lib, FlowSession::new("s", "main"), Input::Start, NOW);
    assert_eq!(texts(&out.actions), vec!["back with 42"]);

    let alone = step(&main, FlowSession::new("s", "main"), Input::Start, NOW);
    assert!(
        matches!(&alone.actions[..], [Action::Error { message }] if message.contains("`sub` is not loaded"))
    );
    assert_eq!(alone.session, FlowSession::new("s", "main"));
}

#[test]
fn finished_sessions_refuse_input_but_restart_on_start() {
    let def = flow("id: f\nnodes:\n  - id: e\n    type: end\n    text: done\n");
    let (_, ended) = run(&def, vec![Input::Start]);
    let out = step(&def, ended.clone(), Input::text("hello"), NOW);
    assert_eq!(out.session, ended);
    assert!(matches!(&out.actions[..], [Action::Error { .. }]));
    let again = step(&def, ended, Input::Start, NOW);
    assert_eq!(texts(&again.actions), vec!["done"]);
}

#[test]
fn an_expired_session_greets_a_returning_customer_with_the_expiry_message() {
    let def = flow(
        "id: f\nsettings: {expiry_minutes: 5, expiry_message: Timed out.}\nnodes:\n  - id: q\n    type: ask\n    prompt: Name?\n    save: n\n  - id: e\n    type: end\n",
    );
    let (_, waiting) = run(&def, vec![Input::Start]);
    let out = step(
        &def,
        waiting,
        Input::text("Thandi"),
        NOW + Duration::minutes(6),
    );
    assert_eq!(texts(&out.actions), vec!["Timed out.", "Name?"]);
    assert_eq!(
        out.session.vars.get("n"),
        None::<&Value>,
        "the late reply is not taken as an answer"
    );
}

#[test]
fn send_renders_a_template_with_its_variables_before_text() {
    let def = flow(
        r#"
id: f
nodes:
  - id: open
    type: send
    template: {name: payment_reminder, variables: ["{{contact.name}}", "R 120"]}
  - id: bye
    type: end
"#,
    );
    let (actions, _) = run(&def, vec![Input::Start]);
    assert_eq!(
        actions.first(),
        Some(&Action::Send {
            content: Content::Template {
                name: "payment_reminder".into(),
                language: "en_US".into(),
                variables: vec!["Thandi".into(), "R 120".into()],
            }
        }),
        "the template comes first, with its variables rendered and the default language"
    );
}

#[test]
fn menu_goes_to_the_menu_flow_when_one_is_set_else_restarts_the_root() {
    let main = flow(
        r#"
id: main
nodes:
  - id: pick
    type: menu
    prompt: "Main menu"
    options: [{id: a, title: A, next: done}]
  - id: done
    type: end
"#,
    );
    let keyword = flow(
        r#"
id: balance
nodes:
  - id: ask
    type: ask
    prompt: "Your account number?"
    save: account
  - id: done
    type: end
"#,
    );
    let mut lib = switchboard_flows::FlowLibrary::default();
    lib.insert(main);
    lib.insert(keyword);
    let cases = [
        (
            Some("main"),
            "[menu] Main menu",
            "main",
            "a keyword session goes to the main flow",
        ),
        (
            None,
            "Your account number?",
            "balance",
            "no menu flow: the root restarts",
        ),
        (
            Some("gone"),
            "Your account number?",
            "balance",
            "an unknown menu flow is ignored",
        ),
    ];
    for (menu_flow, want, root, why) in cases {
        let session = FlowSession::new("s1", "balance").with_menu_flow(menu_flow.map(String::from));
        let started = step(&lib, session, Input::Start, NOW);
        let out = step(&lib, started.session, Input::text("menu"), NOW);
        assert_eq!(texts(&out.actions), vec![want.to_string()], "{why}");
        assert_eq!(out.session.root, root, "{why}");
        assert_eq!(
            out.session.menu_flow, None,
            "{why}: the menu flow is used up"
        );
    }
}
