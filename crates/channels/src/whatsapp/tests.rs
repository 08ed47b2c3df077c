//! WhatsApp adapter tests: every fixture in `shared/fixtures/whatsapp` parses to the expected
//! events; renders match Meta's request examples; sends are checked against a wiremock Graph API.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_core::{
    ChannelKind, Choice, ChoiceStyle, Content, ErrorClass, InboundEvent, MediaKind, MediaRef,
};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::testkit::{fixture, fixture_json, http_client, json_value, summarize};
use crate::{ErrorScope, Notice};

const SECRET: &str = "app-secret";

fn creds() -> Credentials {
    Credentials {
        access_token: "token-123".into(),
        phone_number_id: "106540352242922".into(),
        app_secret: SECRET.into(),
        verify_token: "verify-me".into(),
        business_account_id: Some("102290129340398".into()),
    }
}

fn signed(body: Vec<u8>) -> RawRequest {
    let sig = inbound::sign(&body, SECRET);
    RawRequest::from_body(body).with_header("x-hub-signature-256", &sig)
}

fn parse_fixture(name: &str) -> crate::Parsed {
    let req = signed(fixture(name));
    verify(&req, &creds()).expect("a correctly signed fixture verifies");
    parse(&req).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_inbound_fixture_maps_to_the_content_model() {
    let cases: &[(&str, &[&str])] = &[
        (
            "whatsapp/inbound_text.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA= 1749416383 text:Does it come in another color?",
            ],
        ),
        (
            "whatsapp/inbound_text_product_inquiry_context.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTA2NTUwRkNEMDdFQjJCRUU0NQA= 1750016800 text:Is this still available?",
            ],
        ),
        (
            "whatsapp/inbound_text_ctwa_ad_referral.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUQ0N0VFMDA2MTQ0RkJFNkNDNAA= 1750275992 text:Hello! Can I get more info on this?",
            ],
        ),
        (
            "whatsapp/inbound_text_reply_context.json",
            &["msg 972987654321 wamid.xyzxyz 1697044746 text:replied text"],
        ),
        (
            "whatsapp/inbound_text_bsuid_only_username_user.json",
            &[
                "msg ZA.7731902244 wamid.HBgLMjc4MjU1NTAxMDAVAgASGBQzQUI5RkQ1QzYxQjBFMjU0QTdBMQA= 1764072301 text:Hi, I would like to check my loan balance",
            ],
        ),
        (
            "whatsapp/inbound_image.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA= 1744344496 media:Image:1003383421387256:Taj Mahal",
            ],
        ),
        (
            "whatsapp/inbound_video_forwarded.json",
            &["msg 972987654321 wamid.xyzxyz 1697044362 media:Video:765756756:caption"],
        ),
        (
            "whatsapp/inbound_audio.json",
            &["msg 972987654321 wamid.xyzxyz 1697043509 media:Audio:1234567890987654321:-"],
        ),
        (
            "whatsapp/inbound_audio_voice_note.json",
            &["msg 972987654321 wamid.xyzxyz 1697043473 media:Voice:1234567890987654321:-"],
        ),
        (
            "whatsapp/inbound_document.json",
            &[
                "msg 972987654321 wamid.xyzxyz 1697043666 media:Document:1234567890987654321:caption",
            ],
        ),
        (
            "whatsapp/inbound_sticker_animated.json",
            &["msg 972987654321 wamid.xyzxyz 1697043785 media:Sticker:1234567890987654321:-"],
        ),
        (
            "whatsapp/inbound_location.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTU2MjZEMDBGRkE3MENEMDE0RQA= 1744344496 location:37.44221496582,-122.16165924072:Philz Coffee",
            ],
        ),
        (
            "whatsapp/inbound_contacts.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA= 1744344496 contacts:Lucía Gómez/+1 (983) 555-2319",
            ],
        ),
        (
            "whatsapp/inbound_interactive_button_reply.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTZBQzg0MzQ4QjRCM0NGNkVGOAA= 1750025136 choice:cancel-button:Cancel",
            ],
        ),
        (
            "whatsapp/inbound_interactive_list_reply.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUJDQ0NDM0FEODY4ODkzOTc5RgA= 1749854575 choice:priority_express:Priority Mail Express",
            ],
        ),
        (
            "whatsapp/inbound_interactive_nfm_reply_flow.json",
            &[
                "msg 972987654321 wamid.wegrchytvwcggt== 1702502473 unsupported:whatsapp interactive `nfm_reply`",
            ],
        ),
        (
            "whatsapp/inbound_button_template_quick_reply.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUU0M0MxQzQzMUJCMTMwNUZFOQA= 1750091045 choice:Unsubscribe:Unsubscribe",
            ],
        ),
        (
            "whatsapp/inbound_reaction.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA= 1749419544 reaction:wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA:👍",
            ],
        ),
        (
            "whatsapp/inbound_reaction_removed.json",
            &["msg 972987654321 wamid.xyzxyz 1697044456 reaction:wamid.yzxyzx=:removed"],
        ),
        (
            "whatsapp/inbound_order.json",
            &[
                "msg 16505551234 wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTEyQjFGNzI1QTQxMjI5QTMyOQA= 1750096325 unsupported:whatsapp message type `order`",
            ],
        ),
        (
            "whatsapp/inbound_system_user_changed_number.json",
            &[
                "msg 16505551234 wamid.HBgLMTk4MzU1NTE5NzQVAgASGAoxMTgyMDg2MjY3AA== 1750269342 system:User Sheena Nelson changed from 16505551234 to 12195555358",
            ],
        ),
        (
            "whatsapp/inbound_system_identity_changed.json",
            &["msg 972987654321 wamid.xyzxyz 1697044706 system:User identity changed"],
        ),
        (
            "whatsapp/inbound_unsupported.json",
            &[
                "msg 16505551234 wamid.HBgLMTQyMDU1NTA3NDkVAgASGBI5N0MwRjg0RTVBNUI1RDA2OTkA 1750090702 unsupported:whatsapp unsupported message (131051: Message type unknown)",
            ],
        ),
        (
            "whatsapp/inbound_value_errors_131000.json",
            &[
                "msg 972987654321 wamid.wegrchytvwcggt= 1700505494 unsupported:whatsapp interactive message Meta could not deliver (131000)",
                "notice error RetryLater/131000",
            ],
        ),
        (
            "whatsapp/webhook_value_errors_130429.json",
            &["notice error BackOff/130429"],
        ),
        (
            "whatsapp/status_sent.json",
            &["status wamid.xyzxyz sent 1698266945 -"],
        ),
        (
            "whatsapp/status_delivered.json",
            &["status wamid.xyzxyz delivered 1698266945 -"],
        ),
        (
            "whatsapp/status_read.json",
            &["status wamid.xyzxyz read 1689380458 -"],
        ),
        (
            "whatsapp/status_failed_130472.json",
            &["status wamid.xyzxyz failed 1689380458 Permanent/130472"],
        ),
        (
            "whatsapp/status_failed_131047.json",
            &["status wamid.xyzxyz failed 1689380458 NeedsTemplate/131047"],
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(summarize(&parse_fixture(name)), *expected, "{name}");
    }
}

#[test]
fn sender_profile_phone_and_media_details_are_kept() {
    let parsed = parse_fixture("whatsapp/inbound_document.json");
    let InboundEvent::Message(m) = &parsed.events[0] else {
        panic!("a message")
    };
    assert_eq!(m.contact_name.as_deref(), Some("Test Name"));
    assert_eq!(
        m.phone.as_deref(),
        Some("+972987654321"),
        "wa_id is E.164 digits without +"
    );
    let Content::Media { media, .. } = &m.content else {
        panic!("media")
    };
    assert_eq!(media.filename.as_deref(), Some("filename.pdf"));
    assert_eq!(media.mime_type.as_deref(), Some("application/pdf"));

    let parsed = parse_fixture("whatsapp/inbound_text_bsuid_only_username_user.json");
    let InboundEvent::Message(m) = &parsed.events[0] else {
        panic!("a message")
    };
    assert_eq!(m.phone, None, "a username-only user has no phone number");
    assert_eq!(m.contact_name.as_deref(), Some("Thandi M"));
}

#[test]
fn failed_status_carries_the_providers_reason_and_unsupported_keeps_raw() {
    let parsed = parse_fixture("whatsapp/status_failed_131047.json");
    let InboundEvent::Status(s) = &parsed.events[0] else {
        panic!("a status")
    };
    let f = s.failure.as_ref().expect("failure");
    assert!(f.reason.contains("24 hours"), "{}", f.reason);

    let parsed = parse_fixture("whatsapp/inbound_value_errors_131000.json");
    let InboundEvent::Message(m) = &parsed.events[0] else {
        panic!("a message")
    };
    let Content::Unsupported { raw, .. } = &m.content else {
        panic!("unsupported")
    };
    assert_eq!(
        raw["errors"][0]["code"], 131000,
        "the change-level error travels with the message"
    );
}

#[test]
fn batched_entries_changes_and_items_are_all_visited() {
    let text = fixture_json("whatsapp/inbound_text.json");
    let status = fixture_json("whatsapp/status_read.json");
    let mut batch = text.clone();
    let entry = batch["entry"][0].clone();
    batch["entry"] = json!([entry, status["entry"][0].clone(), text["entry"][0].clone()]);
    batch["entry"][0]["changes"][0]["value"]["statuses"] = json!([
        {"id": "wamid.a", "status": "played", "timestamp": "1"},
        {"id": "wamid.b", "status": "deleted", "timestamp": "1"}
    ]);
    let parsed = parse(&RawRequest::from_body(serde_json::to_vec(&batch).unwrap())).unwrap();
    assert_eq!(
        parsed.events.len(),
        3,
        "two messages and one read status; played/deleted ignored"
    );
    assert!(parsed.notices.is_empty());
}

#[test]
fn bad_or_missing_signatures_are_rejected() {
    let body = fixture("whatsapp/inbound_text.json");
    let good = inbound::sign(&body, SECRET);
    let cases = [
        (
            None,
            Rejected::MissingHeader("X-Hub-Signature-256"),
            "no header",
        ),
        (
            Some("sha1=abc".to_string()),
            Rejected::MalformedHeader("X-Hub-Signature-256"),
            "wrong scheme",
        ),
        (
            Some("sha256=zz".to_string()),
            Rejected::MalformedHeader("X-Hub-Signature-256"),
            "not hex",
        ),
        (
            Some(inbound::sign(&body, "other-secret")),
            Rejected::Mismatch,
            "other key",
        ),
        (
            Some(good.replace("sha256=", "sha256=00")),
            Rejected::Mismatch,
            "wrong length",
        ),
    ];
    for (sig, expected, why) in cases {
        let mut req = RawRequest::from_body(body.clone());
        if let Some(s) = &sig {
            req = req.with_header("X-Hub-Signature-256", s);
        }
        assert_eq!(verify(&req, &creds()), Err(expected), "{why}");
    }
    // A single changed byte in the body breaks the signature.
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let req = RawRequest::from_body(tampered).with_header("X-Hub-Signature-256", &good);
    assert_eq!(verify(&req, &creds()), Err(Rejected::Mismatch));
}

#[test]
fn subscription_handshake_echoes_the_challenge_only_for_our_token() {
    let req = |mode: &str, token: &str| {
        RawRequest::default()
            .with_query("hub.mode", mode)
            .with_query("hub.verify_token", token)
            .with_query("hub.challenge", "1158201444")
    };
    assert_eq!(
        verify_subscription(&req("subscribe", "verify-me"), &creds()),
        Ok("1158201444".into())
    );
    assert!(verify_subscription(&req("subscribe", "wrong"), &creds()).is_err());
    assert!(verify_subscription(&req("unsubscribe", "verify-me"), &creds()).is_err());
}

fn out(content: Content) -> OutboundMessage {
    OutboundMessage::new("{{Recipient-Phone-Number}}", content, "")
}

fn bodies(msg: &OutboundMessage) -> Vec<Value> {
    render(msg, &ChannelKind::Whatsapp.capabilities())
        .unwrap()
        .into_iter()
        .map(|c| c.body)
        .collect()
}

fn choice(id: &str, title: &str) -> Choice {
    Choice {
        id: id.into(),
        title: title.into(),
        description: None,
    }
}

#[test]
fn renders_match_metas_request_examples() {
    let cases: Vec<(&str, OutboundMessage)> = vec![
        (
            "whatsapp/api/send_text_request.json",
            out(Content::text("text-message-content")),
        ),
        (
            "whatsapp/api/send_text_reply_context_request.json",
            OutboundMessage {
                reply_to: Some("<MSGID_OF_PREV_MSG>".into()),
                ..out(Content::text("<TEXT_MSG_CONTENT>"))
            },
        ),
        (
            "whatsapp/api/send_image_by_media_id_request.json",
            out(Content::Media {
                kind: MediaKind::Image,
                media: MediaRef {
                    provider_id: Some("<IMAGE_OBJECT_ID>".into()),
                    ..MediaRef::default()
                },
                caption: None,
            }),
        ),
        (
            "whatsapp/api/send_interactive_reply_buttons_request.json",
            out(Content::Choices {
                prompt: "<BUTTON_TEXT>".into(),
                items: vec![
                    choice("<UNIQUE_BUTTON_ID_1>", "<BUTTON_TITLE_1>"),
                    choice("<UNIQUE_BUTTON_ID_2>", "<BUTTON_TITLE_2>"),
                ],
                style: ChoiceStyle::Buttons,
            }),
        ),
    ];
    for (name, msg) in cases {
        assert_eq!(bodies(&msg), vec![fixture_json(name)], "{name}");
    }
}

#[test]
fn list_render_matches_the_list_example_in_one_section() {
    // Meta's example has a header, a footer and two sections; our content model has none of
    // those, so we send the same rows in one untitled section (allowed for a single section).
    let example = fixture_json("whatsapp/api/send_interactive_list_request.json");
    let rows: Vec<Value> = example["interactive"]["action"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["rows"].as_array().unwrap().clone())
        .collect();
    let items: Vec<Choice> = rows
        .iter()
        .map(|r| Choice {
            id: r["id"].as_str().unwrap().into(),
            title: r["title"].as_str().unwrap().into(),
            description: r["description"].as_str().map(str::to_string),
        })
        .collect();
    let got = bodies(&out(Content::Choices {
        prompt: "<BODY_TEXT>".into(),
        items,
        style: ChoiceStyle::List,
    }));
    let mut expected = example.clone();
    expected["interactive"]["action"] = json!({"button": "Options", "sections": [{"rows": rows}]});
    expected["interactive"]
        .as_object_mut()
        .unwrap()
        .remove("header");
    expected["interactive"]
        .as_object_mut()
        .unwrap()
        .remove("footer");
    assert_eq!(got, vec![expected]);
}

#[test]
fn templates_render_with_variables_and_rich_components() {
    let example = fixture_json("whatsapp/api/send_template_text_request.json");
    let params = example["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap()
        .clone();
    let calls = render_template(
        &out(Content::text("unused")),
        "template-name",
        "language-and-locale-code",
        &[TemplateComponent {
            kind: "body".into(),
            parameters: params.clone(),
        }],
    );
    assert_eq!(calls[0].body, example);

    let example = fixture_json("whatsapp/api/send_template_media_header_request.json");
    let header = example["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap()
        .clone();
    let calls = render_template(
        &out(Content::text("unused")),
        "template-name",
        "language-and-locale-code",
        &[
            TemplateComponent {
                kind: "header".into(),
                parameters: header,
            },
            TemplateComponent {
                kind: "body".into(),
                parameters: params,
            },
        ],
    );
    assert_eq!(calls[0].body, example);

    // Content::Template: body variables become text parameters.
    let got = bodies(&out(Content::Template {
        name: "order_update".into(),
        language: "en_US".into(),
        variables: vec!["Ana".into(), "#123".into()],
    }));
    assert_eq!(
        got[0]["template"]["components"],
        json!([{"type": "body", "parameters": [
            {"type": "text", "text": "Ana"}, {"type": "text", "text": "#123"}
        ]}])
    );
}

#[test]
fn choices_degrade_from_buttons_to_list_to_numbered_menu() {
    let items = |n: usize| {
        (1..=n)
            .map(|i| choice(&format!("id{i}"), &format!("Option {i}")))
            .collect::<Vec<_>>()
    };
    let caps = ChannelKind::Whatsapp.capabilities();
    let kind = |msg: &OutboundMessage, caps: &switchboard_core::Capabilities| {
        let b = render(msg, caps).unwrap();
        b.iter()
            .map(|c| {
                c.body["interactive"]["type"]
                    .as_str()
                    .unwrap_or(c.body["type"].as_str().unwrap())
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    let menu = |n, style| {
        out(Content::Choices {
            prompt: "Pick".into(),
            items: items(n),
            style,
        })
    };
    let no_buttons = switchboard_core::Capabilities {
        reply_buttons: 0,
        list_rows: 0,
        ..caps
    };
    let long_title = out(Content::Choices {
        prompt: "Pick".into(),
        items: vec![choice("a", "A title far longer than twenty-four")],
        style: ChoiceStyle::Auto,
    });
    let cases = [
        (
            kind(&menu(3, ChoiceStyle::Auto), &caps),
            vec!["button"],
            "3 items: reply buttons",
        ),
        (
            kind(&menu(3, ChoiceStyle::List), &caps),
            vec!["list"],
            "list asked for",
        ),
        (
            kind(&menu(4, ChoiceStyle::Buttons), &caps),
            vec!["list"],
            "4 items do not fit buttons",
        ),
        (
            kind(&menu(10, ChoiceStyle::Auto), &caps),
            vec!["list"],
            "10 rows fit a list",
        ),
        (
            kind(&menu(11, ChoiceStyle::Auto), &caps),
            vec!["text"],
            "11 items: numbered menu",
        ),
        (
            kind(&menu(2, ChoiceStyle::Auto), &no_buttons),
            vec!["text"],
            "no interactive capability",
        ),
        (
            kind(&long_title, &caps),
            vec!["text"],
            "title too long for a row",
        ),
    ];
    for (got, expected, why) in cases {
        assert_eq!(got, expected, "{why}");
    }
    let text = bodies(&menu(11, ChoiceStyle::Auto))[0]["text"]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.starts_with("Pick\n\n1. Option 1\n") && text.contains("\n11. Option 11\n"),
        "{text}"
    );

    // An interactive body is capped at 1024: the overflow goes first as plain text.
    let long_prompt = "word ".repeat(400);
    let got = bodies(&out(Content::Choices {
        prompt: long_prompt,
        items: items(2),
        style: ChoiceStyle::Auto,
    }));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["type"], "text");
    assert!(
        got[1]["interactive"]["body"]["text"]
            .as_str()
            .unwrap()
            .chars()
            .count()
            <= 1024
    );
}

#[test]
fn long_text_splits_at_4096_and_captions_fall_back_to_text() {
    let text = "lorem ipsum ".repeat(700); // 8400 chars
    let got = bodies(&OutboundMessage {
        reply_to: Some("wamid.X".into()),
        ..out(Content::text(text))
    });
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|b| b["text"]["body"].as_str().unwrap().chars().count() <= 4096)
    );
    assert_eq!(
        got[0]["context"]["message_id"], "wamid.X",
        "reply context on the first part only"
    );
    assert!(got[1].get("context").is_none());

    let voice = out(Content::Media {
        kind: MediaKind::Voice,
        media: MediaRef {
            url: Some("https://example.com/a.ogg".into()),
            ..MediaRef::default()
        },
        caption: Some("listen".into()),
    });
    let got = bodies(&voice);
    assert_eq!(
        got[0]["audio"],
        json!({"link": "https://example.com/a.ogg"}),
        "no caption on audio"
    );
    assert_eq!(got[1]["text"]["body"], "listen");

    let bsuid = OutboundMessage::new("US.13491208655302741918", Content::text("hi"), "key-1");
    let got = bodies(&bsuid);
    assert_eq!(got[0]["recipient"], "US.13491208655302741918");
    assert!(got[0].get("to").is_none());
    assert_eq!(
        got[0]["biz_opaque_callback_data"], "key-1",
        "the idempotency key is echoed in statuses"
    );
}

#[tokio::test]
async fn send_posts_the_exact_request_and_returns_the_wamid() {
    let server = MockServer::start().await;
    let mut expected = fixture_json("whatsapp/api/send_text_request.json");
    expected["to"] = json!("16505551234");
    expected["biz_opaque_callback_data"] = json!("outbox-1");
    Mock::given(method("POST"))
        .and(path("/106540352242922/messages"))
        .and(header("authorization", "Bearer token-123"))
        .and(body_json(&expected))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_json("whatsapp/api/send_message_response_200.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let wa = WhatsApp::new(http_client(), creds(), Some(&server.uri()));
    let receipt = wa
        .send(&OutboundMessage::new(
            "16505551234",
            Content::text("text-message-content"),
            "outbox-1",
        ))
        .await
        .unwrap();
    assert_eq!(
        receipt.provider_id,
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA"
    );
}

#[tokio::test]
async fn provider_errors_map_to_classified_send_errors() {
    let cases = [
        (
            "whatsapp/api/error_response_130429_rate_limit.json",
            400,
            ErrorClass::BackOff,
            ErrorScope::Channel,
            "130429",
        ),
        (
            "whatsapp/api/error_response_131056_pair_rate_limit.json",
            400,
            ErrorClass::BackOff,
            ErrorScope::Recipient,
            "131056",
        ),
    ];
    for (name, status, class, scope, code) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_json(fixture_json(name))
                    .insert_header("retry-after", "7"),
            )
            .mount(&server)
            .await;
        let wa = WhatsApp::new(http_client(), creds(), Some(&server.uri()));
        let err = wa
            .send(&OutboundMessage::new(
                "16505551234",
                Content::text("hi"),
                "k",
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (err.class, err.scope, err.code.as_deref()),
            (class, scope, Some(code)),
            "{name}"
        );
        assert_eq!(
            err.retry_after,
            Some(std::time::Duration::from_secs(7)),
            "Retry-After is honoured"
        );
    }
    // Codes from the channels.md table.
    let table = [
        (131047, ErrorClass::NeedsTemplate),
        (131026, ErrorClass::Unreachable),
        (131000, ErrorClass::RetryLater),
        (131053, ErrorClass::RetryLater),
        (132001, ErrorClass::Permanent),
        (190, ErrorClass::Permanent),
        (80007, ErrorClass::BackOff),
    ];
    for (code, class) in table {
        assert_eq!(classify(code).0, class, "{code}");
    }
    assert_eq!(
        classify(190).1,
        ErrorScope::Channel,
        "an invalid token pauses the channel"
    );
}

#[tokio::test]
async fn a_failed_second_part_reports_the_first_so_a_retry_skips_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture_json("whatsapp/api/send_message_response_200.json")),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let wa = WhatsApp::new(http_client(), creds(), Some(&server.uri()));
    let msg = OutboundMessage::new("16505551234", Content::text("word ".repeat(1000)), "k");
    let err = wa.send(&msg).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::RetryLater);
    assert_eq!(err.sent_part_ids.len(), 1);
}

#[tokio::test]
async fn mark_read_and_media_lookup_use_the_documented_requests() {
    let server = MockServer::start().await;
    let read = fixture_json("whatsapp/api/mark_read_with_typing_indicator_request.json");
    Mock::given(method("POST"))
        .and(path("/106540352242922/messages"))
        .and(body_json(&read))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    let mut info = fixture_json("whatsapp/api/media_retrieve_url_response.json");
    info["url"] = json!(format!("{}/media-bytes", server.uri()));
    Mock::given(method("GET"))
        .and(path("/2621233374848975"))
        .and(header("authorization", "Bearer token-123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&info))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/media-bytes"))
        .and(header("authorization", "Bearer token-123"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"JPEG".to_vec()))
        .mount(&server)
        .await;
    let wa = WhatsApp::new(http_client(), creds(), Some(&server.uri()));
    wa.mark_read(read["message_id"].as_str().unwrap(), true)
        .await
        .unwrap();
    let media = wa.media_info("2621233374848975").await.unwrap();
    assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(&wa.download_media(&media.url).await.unwrap()[..], b"JPEG");
}

#[test]
fn unknown_fields_and_types_never_fail_the_batch() {
    let mut hook = fixture_json("whatsapp/inbound_text.json");
    hook["entry"][0]["changes"][0]["value"]["messages"] = json!([
        {"from": "1", "id": "wamid.1", "timestamp": "1", "type": "hologram", "hologram": {}},
        {"from": "1", "id": "wamid.2", "timestamp": "nope", "type": "image"},
        {"id": 5}
    ]);
    let parsed = parse(&RawRequest::from_body(serde_json::to_vec(&hook).unwrap())).unwrap();
    let s = summarize(&parsed);
    assert_eq!(
        s[0],
        "msg 1 wamid.1 1 unsupported:whatsapp message type `hologram`"
    );
    assert!(s[1].starts_with("msg 1 wamid.2 - unsupported:"), "{}", s[1]);
    assert!(
        matches!(parsed.notices[0], Notice::Unhandled { .. }),
        "no sender or id: a notice"
    );
}

proptest! {
    #[test]
    fn no_bytes_make_the_parser_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&RawRequest::from_body(body));
    }

    #[test]
    fn no_json_in_a_message_slot_makes_the_parser_panic(slot in json_value(), field in "[a-z_]{1,10}") {
        let mut hook = fixture_json("whatsapp/inbound_text.json");
        hook["entry"][0]["changes"][0]["value"]["messages"][0][field.as_str()] = slot.clone();
        hook["entry"][0]["changes"][0]["value"]["statuses"] = json!([slot.clone()]);
        let _ = parse(&RawRequest::from_body(serde_json::to_vec(&hook).unwrap()));
    }
}

#[test]
fn files_whatsapp_cannot_carry_as_their_kind_go_as_documents_and_huge_ones_not_at_all() {
    use super::outbound::fit_media_kind;
    const MB: u64 = 1024 * 1024;
    assert_eq!(
        fit_media_kind(MediaKind::Image, "image/png", MB),
        Some(MediaKind::Image)
    );
    assert_eq!(
        fit_media_kind(MediaKind::Image, "image/gif", MB),
        Some(MediaKind::Document)
    );
    assert_eq!(
        fit_media_kind(MediaKind::Image, "image/jpeg", 6 * MB),
        Some(MediaKind::Document)
    );
    assert_eq!(
        fit_media_kind(MediaKind::Video, "video/mp4", 17 * MB),
        Some(MediaKind::Document)
    );
    assert_eq!(
        fit_media_kind(MediaKind::Audio, "audio/ogg; codecs=opus", MB),
        Some(MediaKind::Audio)
    );
    assert_eq!(
        fit_media_kind(MediaKind::Document, "application/pdf", 101 * MB),
        None
    );
}

#[test]
fn a_template_list_page_keeps_approved_templates_and_counts_their_distinct_placeholders() {
    // The shape of Graph's `GET /{WABA-ID}/message_templates` (written from Meta's reference).
    let page = json!({
        "data": [
            {"name": "shipping", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
             "components": [{"type": "HEADER", "format": "TEXT", "text": "Hi {{1}}"},
                            {"type": "BODY", "text": "Order {{1}} ships {{2}}; ref {{1}}."}]},
            {"name": "named", "language": "pt_BR", "status": "APPROVED", "category": "MARKETING",
             "components": [{"type": "BODY", "text": "Olá {{ first_name }}, {{code}}"}]},
            {"name": "no_body", "language": "en", "status": "APPROVED", "category": "AUTHENTICATION",
             "components": [{"type": "BUTTONS"}]},
            {"name": "draft", "language": "en", "status": "REJECTED", "category": "UTILITY",
             "components": [{"type": "BODY", "text": "x"}]}
        ],
        "paging": {"cursors": {"before": "b", "after": "a2"}, "next": "https://graph.facebook.com/next"}
    });
    let (list, next) = outbound::parse_templates(page.to_string().as_bytes()).unwrap();
    let summary: Vec<(&str, usize)> = list
        .iter()
        .map(|t| (t.name.as_str(), t.variables))
        .collect();
    assert_eq!(summary, [("shipping", 2), ("named", 2), ("no_body", 0)]);
    assert_eq!(
        list[0].body.as_deref(),
        Some("Order {{1}} ships {{2}}; ref {{1}}.")
    );
    assert_eq!(list[2].body, None);
    assert_eq!(next.as_deref(), Some("a2"));
    // The last page has cursors but no `next`.
    let last = json!({"data": [], "paging": {"cursors": {"after": "zz"}}});
    assert_eq!(
        outbound::parse_templates(last.to_string().as_bytes())
            .unwrap()
            .1,
        None
    );
    assert!(outbound::parse_templates(b"{\"data\": 3}").is_err());
}
