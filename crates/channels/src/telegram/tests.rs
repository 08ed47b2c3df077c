//! Telegram adapter tests: every fixture in `shared/fixtures/telegram` is parsed or used as a
//! canned API answer; sends are checked against a wiremock Bot API.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_core::{
    ChannelKind, Choice, ChoiceStyle, Content, ErrorClass, InboundEvent, MediaKind, MediaRef,
};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::ErrorScope;
use crate::testkit::{fixture, fixture_json, http_client, summarize};

fn creds() -> Credentials {
    Credentials {
        bot_token: "123:ABC".into(),
        webhook_secret: "s3cret-token".into(),
    }
}

fn parse_body(body: Vec<u8>) -> crate::Parsed {
    let req =
        RawRequest::from_body(body).with_header("X-Telegram-Bot-Api-Secret-Token", "s3cret-token");
    verify(&req, &creds()).expect("our secret token verifies");
    parse(&req).unwrap()
}

/// Message-object fixtures are wrapped into an Update, as a webhook would deliver them.
fn as_update(message_fixture: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"update_id": 42, "message": fixture_json(message_fixture)})).unwrap()
}

#[test]
fn every_update_fixture_maps_to_the_content_model() {
    let cases: &[(&str, &[&str])] = &[
        (
            "telegram/update_message_text.json",
            &["msg 218485655 218485655:6557 1569518342 text:hello there"],
        ),
        (
            "telegram/update_message_start_command.json",
            &["msg 1111111 1111111:1365 1441645532 text:/start"],
        ),
        (
            "telegram/update_message_reply.json",
            &["msg 1111111 1111111:1365 1441645532 text:/start"],
        ),
        (
            "telegram/update_edited_message.json",
            &["msg 1111111 1111111:1365:edit:1441646600 1441646600 text:Edited text"],
        ),
        (
            "telegram/update_message_voice.json",
            &["msg 1111111 1111111:1365 1441645532 media:Voice:AwADBAADbXXXXXXXXXXXGBdhD2l6_XX:-"],
        ),
        (
            "telegram/update_message_audio.json",
            &["msg 1111111 1111111:1365 1441645532 media:Audio:AwADBAADbXXXXXXXXXXXGBdhD2l6_XX:-"],
        ),
        (
            "telegram/update_message_document.json",
            &[
                "msg 1111111 1111111:1365 1441645532 media:Document:AwADBAADbXXXXXXXXXXXGBdhD2l6_XX:-",
            ],
        ),
        (
            "telegram/update_message_contact.json",
            &["msg 6021847733 6021847733:412 1764073012 contacts:Sipho Dlamini/+27825550143"],
        ),
        (
            "telegram/update_message_venue_location.json",
            &[
                "msg 6021847733 6021847733:413 1764073080 location:-26.107567,28.056702:Sandton City branch",
            ],
        ),
        (
            "telegram/update_callback_query_inline_message.json",
            &[
                "msg 1111111 callback:4382bfdwdsb323b2d9 - choice:Data from button callback:Data from button callback",
                "notice answer 4382bfdwdsb323b2d9",
            ],
        ),
        (
            "telegram/update_message_reaction.json",
            &[
                "msg 1459074222 update:71651249 1721306082 unsupported:telegram reaction in a supergroup chat",
            ],
        ),
        (
            "telegram/update_message_reaction_removed_anonymous.json",
            &["notice unhandled anonymous telegram reaction"],
        ),
        (
            "telegram/update_my_chat_member_bot_blocked.json",
            &[
                "msg 0 update:0 1644677726 system:The customer blocked the Telegram bot; messages to them will fail.",
                "notice reachable 0 false",
            ],
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(summarize(&parse_body(fixture(name))), *expected, "{name}");
    }
    let messages: &[(&str, &str)] = &[
        (
            "telegram/message_photo_with_caption.json",
            "msg 27433968 27433968:3460 1655671349 media:Image:AgACAgQAAxkBAAINhGKvijUVSn2i3980bQIIc1fqWGNCAAJpvDEbEmaBUfuA43fR-BnlAQADAgADeQADJAQ:www.example.com",
        ),
        (
            "telegram/message_video.json",
            "msg 250918540 250918540:198283 1567927221 media:Video:BAADAgADpgQAAgX9qEud6QcgPiOAlhYE:-",
        ),
        (
            "telegram/message_sticker.json",
            "msg 250918540 250918540:199787 1568290188 media:Sticker:CAACAgIAAxkBAAESLdBjMImep-J0W8XaTN6S_Lz1-j1QIQACIwADsND4DGmmygHGlyggKQQ:😡",
        ),
    ];
    for (name, expected) in messages {
        assert_eq!(
            summarize(&parse_body(as_update(name))),
            vec![expected.to_string()],
            "{name}"
        );
    }
}

#[test]
fn a_self_shared_contact_is_a_verified_phone_and_the_photo_is_the_largest_size() {
    let parsed = parse_body(fixture("telegram/update_message_contact.json"));
    let InboundEvent::Message(m) = &parsed.events[0] else {
        panic!("a message")
    };
    assert_eq!(
        m.phone.as_deref(),
        Some("+27825550143"),
        "contact.user_id == from.id"
    );
    assert_eq!(m.contact_name.as_deref(), Some("Sipho Dlamini"));

    let parsed = parse_body(as_update("telegram/message_photo_with_caption.json"));
    let InboundEvent::Message(m) = &parsed.events[0] else {
        panic!("a message")
    };
    let Content::Media { media, .. } = &m.content else {
        panic!("media")
    };
    assert_eq!(media.size, Some(162061), "1280x1280 is the original");
}

#[test]
fn a_callback_on_our_keyboard_takes_the_buttons_label() {
    let mut cb = fixture_json("telegram/api/callback_query_object.json");
    cb["message"] = json!({
        "message_id": 7, "date": 1, "chat": {"id": 12345, "type": "private"},
        "text": "Pick", "reply_markup": {"inline_keyboard": [[{"text": "Some data", "callback_data": "some_data"}]]}
    });
    let parsed =
        parse_body(serde_json::to_vec(&json!({"update_id": 9, "callback_query": cb})).unwrap());
    assert_eq!(
        summarize(&parsed),
        vec![
            "msg 12345 callback:id - choice:some_data:Some data",
            "notice answer id"
        ]
    );
}

#[test]
fn a_missing_or_wrong_secret_token_is_rejected() {
    let body = fixture("telegram/update_message_text.json");
    assert_eq!(
        verify(&RawRequest::from_body(body.clone()), &creds()),
        Err(Rejected::MissingHeader("X-Telegram-Bot-Api-Secret-Token"))
    );
    let wrong =
        RawRequest::from_body(body.clone()).with_header("x-telegram-bot-api-secret-token", "nope");
    assert_eq!(verify(&wrong, &creds()), Err(Rejected::Mismatch));
    let empty = Credentials {
        webhook_secret: String::new(),
        ..creds()
    };
    let blank = RawRequest::from_body(body).with_header("X-Telegram-Bot-Api-Secret-Token", "");
    assert_eq!(
        verify(&blank, &empty),
        Err(Rejected::Mismatch),
        "an unset secret never verifies"
    );
}

#[test]
fn get_updates_answers_parse_every_update() {
    let answer = json!({"ok": true, "result": [
        fixture_json("telegram/update_message_text.json"),
        fixture_json("telegram/update_message_voice.json"),
        {"update_id": 3, "poll": {"id": "p"}}
    ]});
    let parsed = parse(&RawRequest::from_body(serde_json::to_vec(&answer).unwrap())).unwrap();
    assert_eq!(parsed.events.len(), 2);
    assert_eq!(
        summarize(&parsed)[2],
        "notice unhandled telegram update kind we do not handle"
    );
}

fn out(content: Content) -> OutboundMessage {
    OutboundMessage::new("218485655", content, "k")
}

fn calls(msg: &OutboundMessage) -> Vec<(String, Value)> {
    render(msg, &ChannelKind::Telegram.capabilities())
        .unwrap()
        .into_iter()
        .map(|c| (c.method, c.body))
        .collect()
}

#[test]
fn choices_become_an_inline_keyboard_or_a_numbered_menu() {
    let items = vec![
        Choice {
            id: "billing".into(),
            title: "Billing".into(),
            description: None,
        },
        Choice {
            id: "sales".into(),
            title: "Sales".into(),
            description: None,
        },
    ];
    let got = calls(&out(Content::Choices {
        prompt: "How can we help?".into(),
        items: items.clone(),
        style: ChoiceStyle::Auto,
    }));
    assert_eq!(
        got,
        vec![(
            "sendMessage".to_string(),
            json!({
                "chat_id": 218485655, "text": "How can we help?",
                "reply_markup": {"inline_keyboard": [[{"text": "Billing", "callback_data": "billing"}], [{"text": "Sales", "callback_data": "sales"}]]}
            })
        )]
    );
    let long_id = vec![Choice {
        id: "x".repeat(65),
        title: "X".into(),
        description: None,
    }];
    let got = calls(&out(Content::Choices {
        prompt: "Pick".into(),
        items: long_id,
        style: ChoiceStyle::Auto,
    }));
    assert_eq!(
        got[0].1["text"], "Pick\n\n1. X\n\nReply with the number of your choice.",
        "callback_data over 64 bytes"
    );
}

#[test]
fn text_splits_in_utf16_units_and_media_reply_and_reactions_render() {
    let emoji_text = "😀 ".repeat(1500); // 4500 chars, 4500*1.5 = 4500 UTF-16 units + spaces
    let got = calls(&out(Content::text(emoji_text)));
    assert!(got.len() >= 2);
    assert!(
        got.iter()
            .all(|(_, b)| b["text"].as_str().unwrap().encode_utf16().count() <= 4096)
    );

    let photo = OutboundMessage {
        reply_to: Some("218485655:6557".into()),
        ..out(Content::Media {
            kind: MediaKind::Image,
            media: MediaRef {
                provider_id: Some("AgAC".into()),
                ..MediaRef::default()
            },
            caption: Some("look".into()),
        })
    };
    assert_eq!(
        calls(&photo),
        vec![(
            "sendPhoto".to_string(),
            json!({
                "chat_id": 218485655, "photo": "AgAC", "caption": "look",
                "reply_parameters": {"message_id": 6557, "allow_sending_without_reply": true}
            })
        )]
    );
    let react = out(Content::Reaction {
        target_provider_id: "218485655:6557".into(),
        emoji: Some("👍".into()),
    });
    assert_eq!(
        calls(&react)[0],
        (
            "setMessageReaction".to_string(),
            json!({
                "chat_id": 218485655, "message_id": 6557, "reaction": [{"type": "emoji", "emoji": "👍"}]
            })
        )
    );
    assert!(
        render(
            &out(Content::Template {
                name: "t".into(),
                language: "en".into(),
                variables: vec![]
            }),
            &ChannelKind::Telegram.capabilities()
        )
        .is_err()
    );
}

#[tokio::test]
async fn send_posts_send_message_and_returns_chat_and_message_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/bot123:ABC/sendMessage"))
        .and(body_json(json!({"chat_id": 218485655, "text": "hello there"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": fixture_json("telegram/update_message_text.json")["message"]})))
        .expect(1)
        .mount(&server)
        .await;
    let tg = Telegram::new(http_client(), creds(), Some(&server.uri()));
    let receipt = tg.send(&out(Content::text("hello there"))).await.unwrap();
    assert_eq!(receipt.provider_id, "218485655:6557");
}

#[tokio::test]
async fn bot_api_errors_map_to_classified_send_errors() {
    let cases = [
        (
            "telegram/api/error_429_too_many_requests.json",
            429,
            ErrorClass::BackOff,
            Some(8),
        ),
        (
            "telegram/api/error_403_bot_blocked.json",
            403,
            ErrorClass::Unreachable,
            None,
        ),
        (
            "telegram/api/error_400_group_migrated.json",
            400,
            ErrorClass::Permanent,
            None,
        ),
    ];
    for (name, status, class, retry) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(fixture_json(name)))
            .mount(&server)
            .await;
        let tg = Telegram::new(http_client(), creds(), Some(&server.uri()));
        let err = tg.send(&out(Content::text("hi"))).await.unwrap_err();
        assert_eq!(err.class, class, "{name}");
        assert_eq!(
            err.retry_after,
            retry.map(std::time::Duration::from_secs),
            "{name}"
        );
        assert!(
            !err.message.contains("123:ABC"),
            "the token never appears in errors"
        );
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
            ),
        )
        .mount(&server)
        .await;
    let tg = Telegram::new(http_client(), creds(), Some(&server.uri()));
    assert_eq!(
        tg.send(&out(Content::text("hi"))).await.unwrap_err().scope,
        ErrorScope::Channel
    );
}

#[tokio::test]
async fn callback_answer_and_get_file_download() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/bot123:ABC/answerCallbackQuery"))
        .and(body_json(
            json!({"callback_query_id": "4382bfdwdsb323b2d9"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": true})))
        .expect(1)
        .mount(&server)
        .await;
    let mut file = fixture_json("telegram/api/get_file_result_file_object.json");
    file["file_path"] = json!("photos/file_1.jpg");
    Mock::given(method("POST"))
        .and(path("/bot123:ABC/getFile"))
        .and(body_json(json!({"file_id": "FILE_ID"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": file})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/file/bot123:ABC/photos/file_1.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"JPEG".to_vec()))
        .mount(&server)
        .await;
    let tg = Telegram::new(http_client(), creds(), Some(&server.uri()));
    tg.answer_callback_query("4382bfdwdsb323b2d9", None)
        .await
        .unwrap();
    let info = tg.get_file("FILE_ID").await.unwrap();
    assert_eq!(info.file_size, Some(42));
    let bytes = tg
        .download_file(info.file_path.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"JPEG");
}

proptest! {
    #[test]
    fn no_bytes_make_the_parser_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&RawRequest::from_body(body));
    }

    #[test]
    fn no_json_in_an_update_makes_the_parser_panic(
        slot in crate::testkit::json_value(),
        kind in prop_oneof![Just("message"), Just("edited_message"), Just("callback_query"), Just("message_reaction"), Just("my_chat_member")],
        field in "[a-z_]{1,12}",
    ) {
        let mut update = fixture_json("telegram/update_message_text.json");
        update["message"][field.as_str()] = slot.clone();
        let mut other = json!({"update_id": 1});
        other[kind] = slot;
        let _ = parse(&RawRequest::from_body(serde_json::to_vec(&update).unwrap()));
        let _ = parse(&RawRequest::from_body(serde_json::to_vec(&other).unwrap()));
    }
}
