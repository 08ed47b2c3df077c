//! Transcripts of every bundled flow as customers see them on WhatsApp (reply buttons and
//! lists, tapped) and on Signal (numbered text menus, answered by typing the number).
//!
//! Each customer turn is what the runtime passes to the engine (a tap is a choice; a typed
//! reply is text, which the engine matches to the pending menu), each bot message is rendered
//! by the channel's own pure `render`, and HTTP calls are answered from the demo accounts the
//! server exposes. Snapshots live in `tests/snapshots/`: review them like code.

use std::fmt::Write;

use switchboard_channels::OutboundMessage;
use switchboard_core::{ChannelKind, Choice, Content};
use switchboard_flows::{Action, FlowLibrary, FlowSession, Input, parse_flow, step};
use time::OffsetDateTime;
use time::macros::datetime;

#[derive(Clone, Copy, PartialEq)]
enum Channel {
    WhatsApp,
    Signal,
}

/// One customer turn.
enum Turn<'a> {
    /// Picks the menu option with this id: tapped on WhatsApp, its number typed on Signal.
    Pick(&'a str),
    /// Types this.
    Type(&'a str),
}
use Turn::*;

fn library() -> FlowLibrary {
    let mut lib = FlowLibrary::default();
    for (name, src) in switchboard_app::flows_runtime::BUNDLED_FLOWS {
        lib.insert(parse_flow(src).unwrap_or_else(|p| panic!("{name}: {p:?}")));
    }
    lib.env.insert("base_url".into(), "http://bank.test".into());
    lib
}

fn render(channel: Channel, content: &Content) -> String {
    let msg = OutboundMessage::new("27820000000", content.clone(), "key");
    let calls = match channel {
        Channel::WhatsApp => switchboard_channels::whatsapp::outbound::render(
            &msg,
            &ChannelKind::Whatsapp.capabilities(),
        ),
        Channel::Signal => {
            let creds: switchboard_channels::signal::Credentials = serde_json::from_value(
                serde_json::json!({"account": "+27820000001", "api_base": "http://127.0.0.1:1"}),
            )
            .expect("signal credentials");
            switchboard_channels::signal::outbound::render(
                &msg,
                &creds,
                &ChannelKind::Signal.capabilities(),
            )
        }
    };
    match calls {
        Ok(calls) => calls
            .iter()
            .map(|c| {
                let shown = match channel {
                    // The customer reads the message text; the rest is JSON-RPC framing.
                    Channel::Signal => c.body["params"]["message"]
                        .as_str()
                        .map(|m| format!("text:\n{m}"))
                        .unwrap_or_else(|| c.body.to_string()),
                    Channel::WhatsApp => {
                        let mut b = c.body.clone();
                        if let Some(o) = b.as_object_mut() {
                            for k in [
                                "messaging_product",
                                "recipient_type",
                                "to",
                                "biz_opaque_callback_data",
                            ] {
                                o.remove(k);
                            }
                        }
                        serde_json::to_string_pretty(&b).expect("json")
                    }
                };
                format!("  < {}: {}", c.method, shown.replace('\n', "\n    "))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("  < cannot render: {e}"),
    }
}

fn http_answer(url: &str) -> (bool, u16, serde_json::Value) {
    let account = url.rsplit('/').next().unwrap_or_default();
    match switchboard_app::demo::demo_account(account) {
        Some(body) => (true, 200, body),
        None => (
            true,
            404,
            serde_json::json!({"error": {"code": "not_found"}}),
        ),
    }
}

fn transcript(channel: Channel, turns: &[Turn]) -> String {
    let lib = library();
    let now: OffsetDateTime = datetime!(2025-03-10 09:00 UTC);
    let mut session = FlowSession::new("conv-1", "main_menu").with_contact("name", "Thandi");
    let mut menu: Vec<Choice> = Vec::new();
    let mut out = String::new();
    for turn in std::iter::once(&Type("hi")).chain(turns) {
        let mut input = match turn {
            Pick(id) => {
                let pos = menu
                    .iter()
                    .position(|c| c.id == *id)
                    .unwrap_or_else(|| panic!("option `{id}` is not in the last menu {menu:?}"));
                match channel {
                    Channel::WhatsApp => {
                        let _ = writeln!(out, "> tap [{}] {}", id, menu[pos].title);
                        Input::Choice { id: id.to_string() }
                    }
                    Channel::Signal => {
                        let _ = writeln!(out, "> {:?}", (pos + 1).to_string());
                        Input::text((pos + 1).to_string())
                    }
                }
            }
            Type(t) => {
                let _ = writeln!(out, "> {t:?}");
                Input::text(*t)
            }
        };
        loop {
            let outcome = step(&lib, session, input, now);
            session = outcome.session;
            let mut http = None;
            for a in &outcome.actions {
                match a {
                    Action::Send { content } => {
                        if let Content::Choices { items, .. } = content {
                            menu = items.clone();
                        }
                        out.push_str(&render(channel, content));
                        out.push('\n');
                    }
                    Action::HttpRequest {
                        request_id, url, ..
                    } => {
                        let _ = writeln!(out, "  (GET {url})");
                        http = Some((request_id.clone(), url.clone()));
                    }
                    Action::ScheduleTimeout { .. } => {}
                    other => {
                        let _ =
                            writeln!(out, "  [{}]", serde_json::to_string(other).expect("json"));
                    }
                }
            }
            let Some((request_id, url)) = http else { break };
            let (ok, status, body) = http_answer(&url);
            input = Input::HttpResult {
                request_id,
                ok,
                status,
                body,
            };
        }
    }
    out
}

fn both(name: &str, turns: &[Turn]) {
    insta::assert_snapshot!(
        format!("{name}__whatsapp"),
        transcript(Channel::WhatsApp, turns)
    );
    insta::assert_snapshot!(
        format!("{name}__signal"),
        transcript(Channel::Signal, turns)
    );
}

#[test]
fn balance_enquiry() {
    both(
        "balance_enquiry",
        &[Pick("balance"), Type("12345678"), Pick("done")],
    );
}

#[test]
fn loan_application_handed_to_loans() {
    both(
        "loan_application",
        &[
            Pick("loan"),
            Type("R20 000"),
            Type("24"),
            Type("R25 000"),
            Type("8001015009087"),
            Pick("yes"),
        ],
    );
}

#[test]
fn collections_promise_to_pay() {
    both(
        "collections_promise_to_pay",
        &[
            Pick("collections"),
            Type("12345678"),
            Pick("promise"),
            Type("20/03/2025"),
            Pick("yes"),
            Pick("done"),
        ],
    );
}

#[test]
fn shop_order() {
    both(
        "shop_order",
        &[
            Pick("order"),
            Pick("coffee"),
            Pick("beans"),
            Type("2"),
            Pick("cart"),
            Pick("checkout"),
            Type("12 Long Street, Gardens, Cape Town"),
            Pick("yes"),
            Pick("done"),
        ],
    );
}

#[test]
fn talk_to_an_agent_and_stop() {
    both("talk_to_an_agent", &[Pick("agent")]);
    both("stop_opts_out", &[Type("stop")]);
}
