//! End-to-end transcripts of the bundled flows: scripted customer inputs and HTTP answers
//! through `step`, snapshotted with insta (review `tests/snapshots/*.snap` like code).
//! Rendering per channel is not the engine's job, so the snapshots show the engine's actions.

use std::fmt::Write;
use std::path::PathBuf;

use serde_json::json;
use switchboard_core::Content;
use switchboard_flows::{Action, FlowLibrary, FlowSession, Input, parse_flow, step};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn library() -> FlowLibrary {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows");
    let mut lib = FlowLibrary::default();
    for entry in std::fs::read_dir(dir).expect("flows/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let src = std::fs::read_to_string(&path).expect("readable");
            lib.insert(parse_flow(&src).unwrap_or_else(|p| panic!("{}: {p:?}", path.display())));
        }
    }
    lib.env
        .insert("base_url".into(), "https://bank.test".into());
    lib
}

/// One scripted event.
enum Say<'a> {
    Start,
    Text(&'a str),
    Tap(&'a str),
    /// Answer the pending HTTP request.
    Http(u16, serde_json::Value),
    /// The HTTP call failed without a response (timeout, SSRF guard).
    HttpFailed,
    /// Let time pass, then fire the session's timer.
    TimeoutAfter(i64),
}

fn describe(content: &Content) -> String {
    match content {
        Content::Text { body } => format!("text: {}", body.replace('\n', "\n        ")),
        Content::Choices {
            prompt,
            items,
            style,
        } => {
            let mut s = format!(
                "choices ({style:?}): {}",
                prompt.replace('\n', "\n        ")
            );
            for (i, c) in items.iter().enumerate() {
                let _ = write!(s, "\n      {}. [{}] {}", i + 1, c.id, c.title);
                if let Some(d) = &c.description {
                    let _ = write!(s, " — {d}");
                }
            }
            s
        }
        other => format!("{other:?}"),
    }
}

fn transcript(root: &str, contact: &str, script: &[Say]) -> String {
    let lib = library();
    let mut now: OffsetDateTime = datetime!(2025-03-10 09:00 UTC);
    let mut session = FlowSession::new("conv-1", root).with_contact("name", contact);
    let mut pending_http: Option<String> = None;
    let mut out = String::new();
    for say in script {
        let input = match say {
            Say::Start => {
                out.push_str("> start\n");
                Input::Start
            }
            Say::Text(t) => {
                let _ = writeln!(out, "> {t:?}");
                now += Duration::seconds(20);
                Input::text(*t)
            }
            Say::Tap(id) => {
                let _ = writeln!(out, "> tap [{id}]");
                now += Duration::seconds(5);
                Input::Choice {
                    id: (*id).to_string(),
                }
            }
            Say::Http(status, body) => {
                let _ = writeln!(out, "> http {status} {body}");
                Input::HttpResult {
                    request_id: pending_http.take().expect("a pending request"),
                    ok: true,
                    status: *status,
                    body: body.clone(),
                }
            }
            Say::HttpFailed => {
                out.push_str("> http failed (timeout)\n");
                Input::HttpResult {
                    request_id: pending_http.take().expect("a pending request"),
                    ok: false,
                    status: 0,
                    body: serde_json::Value::Null,
                }
            }
            Say::TimeoutAfter(minutes) => {
                now += Duration::minutes(*minutes);
                let _ = writeln!(out, "> timer fires after {minutes} min");
                Input::Timeout
            }
        };
        let outcome = step(&lib, session, input, now);
        for a in &outcome.actions {
            let line = match a {
                Action::Send { content } => describe(content),
                Action::HttpRequest {
                    request_id,
                    method,
                    url,
                    headers,
                    body,
                    timeout_ms,
                } => {
                    pending_http = Some(request_id.clone());
                    format!(
                        "http {method} {url} headers={headers:?} body={body:?} timeout={timeout_ms}ms"
                    )
                }
                Action::Handoff {
                    queue,
                    skill,
                    priority,
                    summary,
                    ..
                } => format!(
                    "handoff queue={queue} skill={skill:?} priority={priority}\n        summary: {summary}"
                ),
                Action::RecordData { kind, data } => format!("record {kind}: {data}"),
                Action::ScheduleTimeout { at } => {
                    format!("timer at {}", at.format(&Rfc3339).expect("formattable"))
                }
                Action::End { outcome } => format!("end: {outcome}"),
                Action::Error { message } => panic!("unexpected error action: {message}\n{out}"),
                other => format!("{other:?}"),
            };
            let _ = writeln!(out, "  < {line}");
        }
        // The session always survives a JSON round trip.
        let json = serde_json::to_string(&outcome.session).expect("session serialises");
        let back: FlowSession = serde_json::from_str(&json).expect("session deserialises");
        assert_eq!(back, outcome.session);
        session = outcome.session;
    }
    let where_ = session
        .current()
        .map(|f| format!("{}/{}", f.flow, f.node))
        .unwrap_or_default();
    let _ = writeln!(out, "= {:?} at {where_}", session.state);
    out
}

fn account() -> serde_json::Value {
    json!({"account": "12345678", "holder": "T. Nkosi", "currency": "ZAR", "balance": "1234.50", "available": 1000, "arrears": "850.00"})
}

#[test]
fn balance_enquiry() {
    insta::assert_snapshot!(transcript(
        "main_menu",
        "Thandi",
        &[
            Say::Start,
            Say::Text("1"),
            Say::Text("1234"),
            Say::Text("12345678"),
            Say::Http(200, account()),
            Say::Text("no thanks")
        ]
    ));
}

#[test]
fn balance_enquiry_unknown_account_and_outage() {
    insta::assert_snapshot!(transcript(
        "main_menu",
        "Sipho",
        &[
            Say::Start,
            Say::Tap("balance"),
            Say::Text("99999999"),
            Say::Http(404, json!({"error": "not found"})),
            Say::Text("try again"),
            Say::Text("12345678"),
            Say::HttpFailed,
            Say::Tap("done"),
        ]
    ));
}

#[test]
fn loan_application_eligible_then_handed_to_loans() {
    insta::assert_snapshot!(transcript(
        "main_menu",
        "Thandi",
        &[
            Say::Start,
            Say::Text("loan"),
            Say::Text("R20 000"),
            Say::Text("100"),
            Say::Text("24"),
            Say::Text("R25 000"),
            Say::Text("8001015009088"),
            Say::Text("8001015009087"),
            Say::Text("yes"),
        ]
    ));
}

#[test]
fn loan_application_not_eligible_and_no_consent() {
    insta::assert_snapshot!(transcript(
        "loan_application",
        "Lerato",
        &[
            Say::Start,
            Say::Text("250000"),
            Say::Text("12"),
            Say::Text("8000"),
            Say::Text("8001015009087"),
            Say::Tap("no")
        ]
    ));
}

#[test]
fn collections_promise_to_pay() {
    insta::assert_snapshot!(transcript(
        "main_menu",
        "Thandi",
        &[
            Say::Start,
            Say::Text("pay my account"),
            Say::Text("12345678"),
            Say::Http(200, account()),
            Say::Text("2"),
            Say::Text("2025-04-30"),
            Say::Text("20/03/2025"),
            Say::Tap("yes"),
            Say::Text("main menu"),
        ]
    ));
}

#[test]
fn collections_pay_in_full() {
    insta::assert_snapshot!(transcript(
        "collections",
        "Thandi",
        &[
            Say::Start,
            Say::Text("12345678"),
            Say::Http(200, account()),
            Say::Tap("full")
        ]
    ));
}

#[test]
fn shop_order_with_two_items() {
    insta::assert_snapshot!(transcript(
        "main_menu",
        "Thandi",
        &[
            Say::Start,
            Say::Text("4"),
            Say::Text("coffee"),
            Say::Text("beans"),
            Say::Text("2"),
            Say::Text("tea"),
            Say::Text("rooibos"),
            Say::Text("25"),
            Say::Text("3"),
            Say::Text("view cart"),
            Say::Text("check out"),
            Say::Text("12 Long Street, Gardens, Cape Town"),
            Say::Text("yes"),
            Say::Text("2"),
        ]
    ));
}

#[test]
fn talk_to_an_agent_from_the_menu_and_by_command() {
    insta::assert_snapshot!(transcript(
        "main_menu",
        "Thandi",
        &[Say::Start, Say::Text("5")]
    ));
    insta::assert_snapshot!(transcript(
        "main_menu",
        "Thandi",
        &[
            Say::Start,
            Say::Text("2"),
            Say::Text("5000"),
            Say::Text("Human")
        ]
    ));
}

#[test]
fn stop_opts_out_and_menu_restarts() {
    insta::assert_snapshot!(transcript(
        "main_menu",
        "Thandi",
        &[
            Say::Start,
            Say::Text("3"),
            Say::Text("menu"),
            Say::Text("STOP")
        ]
    ));
}

#[test]
fn inactivity_expires_the_session() {
    insta::assert_snapshot!(transcript(
        "main_menu",
        "Thandi",
        &[
            Say::Start,
            Say::Text("1"),
            Say::TimeoutAfter(10),
            Say::TimeoutAfter(25)
        ]
    ));
}
