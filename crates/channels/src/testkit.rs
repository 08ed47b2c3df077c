//! Test helpers shared by the adapters' `tests.rs`: fixture loading (a missing fixture fails the
//! test) and the rustls crypto provider that reqwest's `rustls-no-provider` needs.

use std::path::PathBuf;
use std::sync::Once;

use proptest::strategy::Strategy;

/// `../shared/fixtures` as seen from this crate (CI keeps `shared/` beside the checkout).
pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

/// The bytes of `fixtures/<rel>`; panics (fails the test) when the file is missing.
pub(crate) fn fixture(rel: &str) -> Vec<u8> {
    let path = fixtures_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {} is missing: {e}", path.display()))
}

/// `fixtures/<rel>` parsed as JSON.
pub(crate) fn fixture_json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(rel))
        .unwrap_or_else(|e| panic!("fixture {rel} is not JSON: {e}"))
}

/// Installs the ring provider once per test binary; without it `reqwest::Client::new()` panics
/// (dependencies.md, pitfall 3).
pub(crate) fn http_client() -> reqwest::Client {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err only means another provider is installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::new()
}

/// A one-line summary of each event and notice, so case tables stay readable.
pub(crate) fn summarize(parsed: &crate::Parsed) -> Vec<String> {
    use switchboard_core::{Content, InboundEvent};
    let mut out = Vec::new();
    for e in &parsed.events {
        out.push(match e {
            InboundEvent::Message(m) => {
                let content = match &m.content {
                    Content::Text { body } => format!("text:{body}"),
                    Content::Media {
                        kind,
                        media,
                        caption,
                    } => format!(
                        "media:{kind:?}:{}:{}",
                        media.provider_id.as_deref().unwrap_or("-"),
                        caption.as_deref().unwrap_or("-")
                    ),
                    Content::Location {
                        latitude,
                        longitude,
                        name,
                        ..
                    } => {
                        format!(
                            "location:{latitude},{longitude}:{}",
                            name.as_deref().unwrap_or("-")
                        )
                    }
                    Content::Contacts { contacts } => format!(
                        "contacts:{}",
                        contacts
                            .iter()
                            .map(|c| format!("{}/{}", c.name, c.phones.join(",")))
                            .collect::<Vec<_>>()
                            .join(";")
                    ),
                    Content::ChoiceSelected { id, title } => format!("choice:{id}:{title}"),
                    Content::Reaction {
                        target_provider_id,
                        emoji,
                    } => {
                        format!(
                            "reaction:{target_provider_id}:{}",
                            emoji.as_deref().unwrap_or("removed")
                        )
                    }
                    Content::System { body } => format!("system:{body}"),
                    Content::Unsupported { reason, raw } => {
                        assert!(
                            !raw.is_null(),
                            "unsupported content must keep its raw payload"
                        );
                        format!("unsupported:{reason}")
                    }
                    other => format!("{other:?}"),
                };
                let ts = m
                    .provider_ts
                    .map_or("-".to_string(), |t| t.unix_timestamp().to_string());
                format!(
                    "msg {} {} {ts} {content}",
                    m.external_contact_id, m.provider_message_id
                )
            }
            InboundEvent::Status(s) => {
                let failure = s.failure.as_ref().map_or("-".to_string(), |f| {
                    format!("{:?}/{}", f.class, f.code.as_deref().unwrap_or("-"))
                });
                format!(
                    "status {} {} {} {failure}",
                    s.provider_message_id,
                    s.status,
                    s.at.unix_timestamp()
                )
            }
        });
    }
    for n in &parsed.notices {
        out.push(match n {
            crate::Notice::ProviderError { failure } => {
                format!(
                    "notice error {:?}/{}",
                    failure.class,
                    failure.code.as_deref().unwrap_or("-")
                )
            }
            crate::Notice::Typing {
                external_contact_id,
            } => format!("notice typing {external_contact_id}"),
            crate::Notice::ReachabilityChanged {
                external_contact_id,
                reachable,
                ..
            } => {
                format!("notice reachable {external_contact_id} {reachable}")
            }
            crate::Notice::AnswerCallback { callback_query_id } => {
                format!("notice answer {callback_query_id}")
            }
            crate::Notice::Unhandled { reason, .. } => format!("notice unhandled {reason}"),
        });
    }
    out
}

/// Arbitrary JSON values, a few levels deep.
pub(crate) fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    let leaf = proptest::prop_oneof![
        proptest::strategy::Just(serde_json::Value::Null),
        proptest::arbitrary::any::<bool>().prop_map(serde_json::Value::from),
        proptest::arbitrary::any::<i64>().prop_map(serde_json::Value::from),
        proptest::arbitrary::any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        proptest::prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn every_fixture_is_referenced_by_a_test_case() {
    let sources = [
        ("whatsapp", include_str!("whatsapp/tests.rs")),
        ("telegram", include_str!("telegram/tests.rs")),
        ("signal", include_str!("signal/tests.rs")),
    ];
    let mut missing = Vec::new();
    for (channel, source) in sources {
        let mut stack = vec![fixtures_dir().join(channel)];
        let mut seen = 0;
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("fixture folder {} is missing: {e}", dir.display()));
            for entry in entries {
                let path = entry.expect("readable dir entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    seen += 1;
                    let rel = path
                        .strip_prefix(fixtures_dir())
                        .expect("under fixtures")
                        .to_string_lossy()
                        .replace('\\', "/");
                    if !source.contains(&format!("\"{rel}\"")) {
                        missing.push(rel);
                    }
                }
            }
        }
        assert!(seen > 0, "no fixtures found for {channel}");
    }
    assert!(
        missing.is_empty(),
        "fixtures no test case references: {missing:#?}"
    );
}
