//! Signal adapter tests: every fixture in `shared/fixtures/signal` is parsed or compared with a
//! rendered request; sends are checked against a wiremock signal-cli (JSON-RPC and REST).

use proptest::prelude::*;
use serde_json::json;
use switchboard_core::{ChannelKind, Choice, ChoiceStyle, Content, ErrorClass, InboundEvent};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::ErrorScope;
use crate::testkit::{fixture, fixture_json, http_client, json_value, summarize};

fn creds(mode: Mode, account: &str) -> Credentials {
    Credentials {
        account: account.into(),
        api_base: "http://127.0.0.1:1".into(),
        mode,
        multi_account: false,
    }
}

fn parse_fixture(name: &str) -> crate::Parsed {
    let req = RawRequest::from_body(fixture(name));
    verify(&req).expect("signal-cli frames are trusted (loopback)");
    parse(&req).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_received_frame_fixture_maps_to_events() {
    let cases: &[(&str, &[&str])] = &[
        (
            "signal/jsonrpc_receive_data_message.json",
            &["msg uuid uuid:1631458508784 1631458508 text:foobar"],
        ),
        (
            "signal/jsonrpc_receive_receipt_delivered.json",
            &["status 1577882098000 delivered 1577882097 -"],
        ),
        (
            "signal/jsonrpc_receive_receipt_read.json",
            &["status 1577882098000 read 1577882099 -"],
        ),
        (
            "signal/jsonrpc_receive_typing_started.json",
            &["notice typing 3689ed97-01b2-4fa5-8ed8-18174ad5cf15"],
        ),
        (
            "signal/jsonrpc_receive_sync_sent_message_subscription.json",
            &["notice unhandled signal sync message from our own linked device"],
        ),
        (
            "signal/jsonrpc_error_invalid_request.json",
            &["notice error Permanent/-32600"],
        ),
        (
            "signal/rest_ws_receive_attachment.json",
            &[
                "msg <uuid> <uuid>:1632576001632 1632576001 media:Image:1qeCjjWOOo9Gxv8pfdCw.png:Uhrzeit",
            ],
        ),
        (
            "signal/rest_ws_receive_group_message.json",
            &["msg <uuid> <uuid>:1632576001632 1632576001 unsupported:signal group message"],
        ),
        (
            "signal/rest_ws_receive_group_update.json",
            &["notice unhandled signal group update"],
        ),
        (
            "signal/rest_ws_receive_reaction_sync.json",
            &["notice unhandled signal sync message from our own linked device"],
        ),
        (
            "signal/rest_ws_receive_quote_sync.json",
            &["notice unhandled signal sync message from our own linked device"],
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(summarize(&parse_fixture(name)), *expected, "{name}");
    }
}

#[test]
fn typing_shows_when_a_customer_starts_alone_and_is_never_an_error() {
    // The fixture's envelope as the REST wrapper's websocket delivers it, then variations.
    let rpc = fixture_json("signal/jsonrpc_receive_typing_started.json");
    let rest = |typing: serde_json::Value| {
        let mut env = rpc["params"]["envelope"].clone();
        env["typingMessage"] = typing;
        let frame = json!({"envelope": env, "account": "+493023125000"});
        parse(&RawRequest::from_body(serde_json::to_vec(&frame).unwrap())).map(|p| summarize(&p))
    };
    let started = rpc["params"]["envelope"]["typingMessage"].clone();
    assert_eq!(
        rest(started.clone()).unwrap(),
        vec!["notice typing 3689ed97-01b2-4fa5-8ed8-18174ad5cf15"]
    );
    let mut stopped = started.clone();
    stopped["action"] = json!("STOPPED");
    assert_eq!(rest(stopped).unwrap(), Vec::<String>::new());
    let mut in_group = started.clone();
    in_group["groupId"] = json!("aGVsbG8gZ3JvdXA=");
    assert_eq!(rest(in_group).unwrap(), Vec::<String>::new());
    assert_eq!(rest(json!({})).unwrap(), Vec::<String>::new());
    assert_eq!(rest(json!("odd")).unwrap(), Vec::<String>::new());
}

#[test]
fn sender_identity_uses_the_aci_and_keeps_the_number() {
    let parsed = parse_fixture("signal/jsonrpc_receive_data_message.json");
    let InboundEvent::Message(m) = &parsed.events[0] else {
        panic!("a message")
    };
    assert_eq!(m.external_contact_id, "uuid");
    assert_eq!(m.phone.as_deref(), Some("+33123456789"));
    assert_eq!(m.contact_name.as_deref(), Some("name"));
}

#[test]
fn a_customer_reaction_to_our_message_targets_its_send_timestamp() {
    // The sync fixture's inner message, delivered as a customer's own dataMessage.
    let sync = fixture_json("signal/rest_ws_receive_reaction_sync.json");
    let mut data = sync["envelope"]["syncMessage"]["sentMessage"].clone();
    data.as_object_mut().unwrap().remove("groupInfo");
    data["reaction"]["targetAuthor"] = json!("+49987654321");
    data["reaction"]["targetAuthorNumber"] = json!("+49987654321");
    let frame = json!({"envelope": {"sourceUuid": "cust", "timestamp": 5, "dataMessage": data}, "account": "+49987654321"});
    let parsed = parse(&RawRequest::from_body(serde_json::to_vec(&frame).unwrap())).unwrap();
    assert_eq!(
        summarize(&parsed),
        vec!["msg cust cust:5 0 reaction:1632576001632:👍"]
    );
}

#[test]
fn rendered_sends_match_the_signal_cli_and_rest_examples() {
    let rpc = fixture_json("signal/jsonrpc_send_request.json");
    let msg = OutboundMessage::new("+YYY", Content::text("MESSAGE"), "4");
    let calls = render(
        &msg,
        &creds(Mode::JsonRpc, "+XXX"),
        &ChannelKind::Signal.capabilities(),
    )
    .unwrap();
    let mut expected = rpc.clone();
    expected["id"] = json!("4:0"); // our ids are `{idempotency_key}:{part}`
    assert_eq!(calls[0].body, expected);

    let rest = fixture_json("signal/rest_v2_send_request.json");
    let msg = OutboundMessage::new("+44987654", Content::text("Test via Signal API!"), "k");
    let calls = render(
        &msg,
        &creds(Mode::Rest, "+4412345"),
        &ChannelKind::Signal.capabilities(),
    )
    .unwrap();
    assert_eq!(
        (calls[0].method.as_str(), &calls[0].body),
        ("v2/send", &rest)
    );
}

#[test]
fn choices_are_a_numbered_menu_and_text_splits_at_2000_bytes() {
    let c = creds(Mode::JsonRpc, "+1");
    let items = vec![
        Choice {
            id: "a".into(),
            title: "Billing".into(),
            description: None,
        },
        Choice {
            id: "b".into(),
            title: "Sales".into(),
            description: None,
        },
    ];
    let msg = OutboundMessage::new(
        "cust",
        Content::Choices {
            prompt: "Help?".into(),
            items,
            style: ChoiceStyle::Buttons,
        },
        "k",
    );
    let calls = render(&msg, &c, &ChannelKind::Signal.capabilities()).unwrap();
    assert_eq!(
        calls[0].body["params"]["message"],
        "Help?\n\n1. Billing\n2. Sales\n\nReply with the number of your choice."
    );

    let msg = OutboundMessage {
        reply_to: Some("cust-uuid:1631458508784".into()),
        ..OutboundMessage::new("cust", Content::text("ü ".repeat(800)), "k")
    };
    let calls = render(&msg, &c, &ChannelKind::Signal.capabilities()).unwrap();
    assert_eq!(calls.len(), 2, "2400 bytes need two parts");
    assert!(
        calls
            .iter()
            .all(|c| c.body["params"]["message"].as_str().unwrap().len() <= 2000)
    );
    assert_eq!(calls[0].body["params"]["quoteTimestamp"], 1631458508784_i64);
    assert_eq!(calls[0].body["params"]["quoteAuthor"], "cust-uuid");
    assert!(calls[1].body["params"].get("quoteTimestamp").is_none());
}

#[tokio::test]
async fn json_rpc_send_returns_the_timestamp_and_maps_result_types() {
    let server = MockServer::start().await;
    let mut request = fixture_json("signal/jsonrpc_send_request.json");
    request["id"] = json!("4:0");
    Mock::given(method("POST"))
        .and(path("/api/v1/rpc"))
        .and(body_json(&request))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_json("signal/jsonrpc_send_response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let signal = Signal::new(
        http_client(),
        creds(Mode::JsonRpc, "+XXX"),
        Some(&server.uri()),
    );
    let receipt = signal
        .send(&OutboundMessage::new("+YYY", Content::text("MESSAGE"), "4"))
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, "999");

    let cases = [
        (
            json!({"jsonrpc": "2.0", "id": "k:0", "result": {"timestamp": 1, "results": [{"type": "UNREGISTERED_FAILURE"}]}}),
            ErrorClass::Unreachable,
            None,
        ),
        (
            json!({"jsonrpc": "2.0", "id": "k:0", "result": {"timestamp": 1, "results": [{"type": "RATE_LIMIT_FAILURE", "retryAfterSeconds": 30}]}}),
            ErrorClass::BackOff,
            Some(30),
        ),
        (
            json!({"jsonrpc": "2.0", "id": "k:0", "result": {"timestamp": 1, "results": [{"type": "NETWORK_FAILURE"}]}}),
            ErrorClass::RetryLater,
            None,
        ),
        (
            json!({"jsonrpc": "2.0", "id": "k:0", "error": {"code": -5, "message": "Rate limit"}}),
            ErrorClass::BackOff,
            None,
        ),
        (
            fixture_json("signal/jsonrpc_error_invalid_request.json"),
            ErrorClass::Permanent,
            None,
        ),
    ];
    for (answer, class, retry) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&answer))
            .mount(&server)
            .await;
        let signal = Signal::new(
            http_client(),
            creds(Mode::JsonRpc, "+XXX"),
            Some(&server.uri()),
        );
        let err = signal
            .send(&OutboundMessage::new("+YYY", Content::text("hi"), "k"))
            .await
            .unwrap_err();
        assert_eq!(err.class, class, "{answer}");
        assert_eq!(
            err.retry_after,
            retry.map(std::time::Duration::from_secs),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn rest_send_posts_v2_send_and_maps_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/send"))
        .and(body_json(fixture_json("signal/rest_v2_send_request.json")))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"timestamp": "1631458508784"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let signal = Signal::new(
        http_client(),
        creds(Mode::Rest, "+4412345"),
        Some(&server.uri()),
    );
    let receipt = signal
        .send(&OutboundMessage::new(
            "+44987654",
            Content::text("Test via Signal API!"),
            "k",
        ))
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, "1631458508784");

    let cases = [
        (
            400,
            json!({"error": "Failed to send message: Unregistered user +44987654"}),
            ErrorClass::Unreachable,
            ErrorScope::Recipient,
        ),
        (
            429,
            json!({"error": "rate limited", "challenge_tokens": ["t"], "account": "+4412345"}),
            ErrorClass::BackOff,
            ErrorScope::Channel,
        ),
        (
            500,
            json!({"error": "boom"}),
            ErrorClass::RetryLater,
            ErrorScope::Message,
        ),
    ];
    for (status, body, class, scope) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(&body))
            .mount(&server)
            .await;
        let signal = Signal::new(
            http_client(),
            creds(Mode::Rest, "+4412345"),
            Some(&server.uri()),
        );
        let err = signal
            .send(&OutboundMessage::new("+44987654", Content::text("hi"), "k"))
            .await
            .unwrap_err();
        assert_eq!((err.class, err.scope), (class, scope), "{body}");
    }
}

proptest! {
    #[test]
    fn no_bytes_make_the_parser_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&RawRequest::from_body(body));
    }

    #[test]
    fn no_json_in_an_envelope_makes_the_parser_panic(slot in json_value(), field in prop_oneof![
        Just("dataMessage"), Just("receiptMessage"), Just("syncMessage"), Just("editMessage"), Just("timestamp"), Just("sourceUuid")
    ]) {
        let mut frame = fixture_json("signal/rest_ws_receive_attachment.json");
        frame["envelope"][field] = slot.clone();
        let _ = parse(&RawRequest::from_body(serde_json::to_vec(&frame).unwrap()));
        frame["envelope"]["dataMessage"] = json!({"attachments": [slot.clone()], "reaction": slot.clone(), "contacts": [slot]});
        let _ = parse(&RawRequest::from_body(serde_json::to_vec(&frame).unwrap()));
    }
}
