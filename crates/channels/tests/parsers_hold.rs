//! Parsers hold (issues #3 and #6): no input makes a webhook or frame parser panic, and input
//! that cannot be read is refused with a clear error instead.
//!
//! Three kinds of input reach every parser (WhatsApp, Telegram, Signal, web chat frames):
//! arbitrary bytes, arbitrary JSON documents, and every real fixture from `shared/fixtures`
//! with one node (any depth, chosen at random) replaced by arbitrary JSON, which is where a
//! parser that trusts a field's type or presence would break. Verification (signature and
//! secret checks) gets arbitrary headers too.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value;
use switchboard_channels::{ParseError, Parsed, RawRequest, signal, telegram, webchat, whatsapp};

fn fixtures(channel: &str) -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(channel);
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures {} are missing: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("fixture is readable");
            let mut value: Value = serde_json::from_str(&text).expect("fixture is JSON");
            let bare_message = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("message_"));
            if channel == "telegram" && bare_message {
                // Telegram `Message` samples: delivered inside an `Update`.
                value = serde_json::json!({"update_id": 1, "message": value});
            }
            (p.display().to_string(), value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no fixtures for {channel}");
    out
}

/// Any JSON document: scalars, and arrays and objects nested a few levels. Object keys come
/// from the names providers use, so the mutation often lands on a field a parser reads.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
    ];
    let keys = prop_oneof![
        "[a-z_]{1,10}",
        prop::sample::select(vec![
            "type",
            "id",
            "from",
            "text",
            "body",
            "message",
            "messages",
            "statuses",
            "entry",
            "changes",
            "value",
            "envelope",
            "dataMessage",
            "timestamp",
            "chat",
            "update_id",
            "attachments",
            "caption",
            "photo",
            "error",
            "errors",
            "method",
            "params",
            "result",
            "receiptMessage",
            "timestamps",
            "sourceUuid",
            "client_msg_id",
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(4, 48, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every node of a document, as paths of object keys and array indexes.
fn paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(Step::Key(k.clone()));
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(Step::Index(i));
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn replace_at(doc: &mut Value, path: &[Step], with: Value) {
    let mut node = doc;
    for step in path {
        node = match (step, node) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k).expect("path exists"),
            (Step::Index(i), Value::Array(a)) => &mut a[*i],
            _ => unreachable!("paths come from the same document"),
        };
    }
    *node = with;
}

/// The fixture `pick` (modulo the count) with the node `at` (modulo its node count) replaced.
fn mutated(all: &[(String, Value)], pick: usize, at: usize, with: Value) -> (String, Vec<u8>) {
    let (name, doc) = &all[pick % all.len()];
    let mut doc = doc.clone();
    let mut found = Vec::new();
    paths(&doc, &mut Vec::new(), &mut found);
    let path = &found[at % found.len()];
    replace_at(&mut doc, path, with);
    (
        format!("{name} at {path:?}"),
        serde_json::to_vec(&doc).expect("JSON serialises"),
    )
}

/// A parser's answer is either events or an error that says what was wrong.
fn assert_clear(result: &Result<Parsed, ParseError>, input: &str) {
    if let Err(e) = result {
        let text = e.to_string();
        assert!(
            text.len() > "unexpected payload: ".len(),
            "{input}: an error must say what was wrong, got `{text}`"
        );
    }
}

/// Inbound bodies: WhatsApp and Telegram webhooks and Signal frames (fixtures of outbound API
/// answers under `api/` are not inbound and are left out by `fixtures`).
type Parser = fn(&RawRequest) -> Result<Parsed, ParseError>;
const PARSERS: [(&str, Parser); 3] = [
    ("whatsapp", whatsapp::parse),
    ("telegram", telegram::parse),
    ("signal", signal::parse),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_bytes_make_a_parser_panic_and_non_json_is_refused_as_such(
        body in prop::collection::vec(any::<u8>(), 0..1024)
    ) {
        let is_json = serde_json::from_slice::<Value>(&body).is_ok();
        for (name, parse) in PARSERS {
            let result = parse(&RawRequest::from_body(body.clone()));
            assert_clear(&result, name);
            if !is_json {
                prop_assert!(
                    matches!(result, Err(ParseError::NotJson(_))),
                    "{name}: bytes that are not JSON are refused as not JSON, got {result:?}"
                );
            }
        }
        if let Ok(text) = std::str::from_utf8(&body) {
            let _ = webchat::parse_client_frame(text);
        }
    }

    #[test]
    fn no_json_document_makes_a_parser_panic(doc in json_value()) {
        let body = serde_json::to_vec(&doc).expect("JSON serialises");
        for (name, parse) in PARSERS {
            let result = parse(&RawRequest::from_body(body.clone()));
            assert_clear(&result, name);
        }
        let text = String::from_utf8(body).expect("serde_json writes UTF-8");
        if let Err(e) = webchat::parse_client_frame(&text) {
            prop_assert!(!e.code.is_empty() && !e.message.is_empty(), "web chat errors say why");
        }
    }

    #[test]
    fn a_real_payload_with_any_node_replaced_never_makes_a_parser_panic(
        pick in any::<usize>(), at in any::<usize>(), with in json_value()
    ) {
        for (name, parse) in PARSERS {
            let all = fixtures(name);
            let (input, body) = mutated(&all, pick, at, with.clone());
            let result = parse(&RawRequest::from_body(body));
            assert_clear(&result, &input);
        }
    }

    #[test]
    fn web_chat_frames_with_any_field_replaced_are_accepted_or_refused_with_a_code(
        pick in 0usize..4, field in prop::sample::select(vec!["type", "client_msg_id", "text", "id", "title", "token"]),
        with in json_value()
    ) {
        let frames = [
            serde_json::json!({"type": "hello", "token": "t"}),
            serde_json::json!({"type": "message", "client_msg_id": "c-1", "text": "hi"}),
            serde_json::json!({"type": "choice", "client_msg_id": "c-2", "id": "yes", "title": "Yes"}),
            serde_json::json!({"type": "ping"}),
        ];
        let mut frame = frames[pick].clone();
        frame[field] = with;
        match webchat::parse_client_frame(&frame.to_string()) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.code.is_empty() && !e.message.is_empty()),
        }
    }

    #[test]
    fn no_headers_make_verification_panic_and_a_wrong_signature_is_refused(
        name in prop::sample::select(vec![
            "X-Hub-Signature-256", "x-hub-signature-256", "X-Telegram-Bot-Api-Secret-Token", "Other",
        ]),
        value in "\\PC{0,80}",
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let req = RawRequest::from_body(body).with_header(name, &value);
        let wa: whatsapp::Credentials = serde_json::from_value(serde_json::json!({
            "access_token": "t", "phone_number_id": "1", "app_secret": "secret", "verify_token": "v",
        })).expect("credentials");
        let tg: telegram::Credentials = serde_json::from_value(serde_json::json!({
            "bot_token": "1:a", "webhook_secret": "the-secret",
        })).expect("credentials");
        // A random value is never the HMAC of the body nor the secret token.
        prop_assert!(whatsapp::verify(&req, &wa).is_err());
        prop_assert!(telegram::verify(&req, &tg).is_err() || value == "the-secret");
        let _ = whatsapp::verify_subscription(&req.clone().with_query("hub.mode", &value), &wa);
    }
}

#[test]
fn every_inbound_fixture_parses_without_an_error() {
    for (name, parse) in PARSERS {
        for (file, doc) in fixtures(name) {
            let body = serde_json::to_vec(&doc).expect("JSON serialises");
            let result = parse(&RawRequest::from_body(body));
            // Request/response samples of the Signal JSON-RPC API are not receive frames.
            let is_api_sample = file.contains("send_re") || file.contains("error_invalid");
            if !is_api_sample {
                assert!(result.is_ok(), "{file}: {result:?}");
            }
        }
    }
}
