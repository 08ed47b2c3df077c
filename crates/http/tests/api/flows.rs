//! Self-service flows end to end: a web chat customer talks to the bundled demo flows (the
//! demo web chat's default flow is `main_menu`), through the real job worker, outbox and,
//! for balances, a real HTTP call to this server's own demo account endpoint.

use serde_json::{Value, json};
use switchboard_core::Content;

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_in};

/// A customer on the demo web chat, with a logged-in agent to read the conversation.
struct Chat {
    token: String,
    conversation: Option<String>,
    n: u32,
}

impl Chat {
    async fn open(app: &mut TestApp) -> Chat {
        if app.csrf.is_none() {
            app.login("ann@demo.example").await;
        }
        Chat {
            token: app.new_visitor().await,
            conversation: None,
            n: 0,
        }
    }

    /// Sends `text` and returns what the bot answered (each message as readable text).
    async fn say(&mut self, app: &TestApp, text: &str) -> Vec<String> {
        self.n += 1;
        let (status, accepted) = app
            .customer_says(&self.token, &format!("m-{}", self.n), text)
            .await;
        assert_eq!(status, 202, "{accepted}");
        let conv = accepted["conversation_id"]
            .as_str()
            .expect("conversation")
            .to_string();
        self.conversation = Some(conv.clone());
        let message_id = accepted["message_id"]
            .as_str()
            .expect("message id")
            .to_string();
        eventually(10, &format!("the bot's answer to {text:?}"), || {
            let (conv, message_id) = (conv.clone(), message_id.clone());
            async move {
                let (_, m) = app
                    .get(&format!("/api/v1/conversations/{conv}/messages"))
                    .await;
                let list = m["messages"].as_array()?.clone();
                let at = list.iter().position(|x| x["id"] == message_id.as_str())?;
                let after: Vec<String> = list[at + 1..]
                    .iter()
                    .filter(|x| x["direction"] == "outbound")
                    .map(readable)
                    .collect();
                (!after.is_empty()).then_some(after)
            }
        })
        .await
    }

    fn id(&self) -> &str {
        self.conversation
            .as_deref()
            .expect("the customer wrote first")
    }
}

fn readable(m: &Value) -> String {
    let content: Content = serde_json::from_value(m["content"].clone()).expect("content");
    match content {
        Content::Choices { prompt, items, .. } => format!(
            "{prompt} [{}]",
            items
                .iter()
                .map(|c| c.title.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        ),
        other => other.preview(),
    }
}

async fn state(app: &TestApp, conv: &str) -> Value {
    let (s, body) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(s, 200, "{body}");
    body
}

#[tokio::test]
async fn a_customer_checks_a_balance_through_the_main_menu() {
    let mut app = spawn_app().await;
    let mut chat = Chat::open(&mut app).await;

    let hello = chat.say(&app, "hi").await;
    assert!(
        hello[0].contains("Demo Bank") && hello[0].contains("automated assistant"),
        "the first message says which business and that a bot answers: {hello:?}"
    );
    assert!(
        hello[1].starts_with("How can we help you today?"),
        "{hello:?}"
    );
    assert_eq!(state(&app, chat.id()).await["conversation"]["state"], "bot");

    let ask = chat.say(&app, "1").await;
    assert_eq!(ask, ["Please send your account number (8 to 12 digits)."]);
    let balance = chat.say(&app, "12345678").await;
    assert_eq!(
        balance[0],
        "Account 12345678 (T. Nkosi (demo))\nBalance: ZAR 1234.50\nAvailable: ZAR 1000.00",
        "looked up over HTTP on the server's own demo endpoint"
    );
    assert!(
        balance[1].starts_with("Is there anything else"),
        "{balance:?}"
    );

    // An unknown account is a 404 from the endpoint, which the flow explains.
    chat.say(&app, "main menu").await;
    chat.say(&app, "balance").await;
    let unknown = chat.say(&app, "99999999").await;
    assert!(
        unknown[0].contains("couldn't find account 99999999"),
        "{unknown:?}"
    );

    let bye = chat.say(&app, "no thanks").await;
    // "no thanks" is not an option of the not-found menu: the bot asks again.
    assert!(!bye.is_empty());
}

#[tokio::test]
async fn a_loan_application_is_handed_to_the_loans_queue_with_a_summary() {
    let mut app = spawn_app().await;
    let mut chat = Chat::open(&mut app).await;
    chat.say(&app, "hello").await;
    let intro = chat.say(&app, "Apply for a loan").await;
    assert!(
        intro[1].starts_with("How much would you like to borrow"),
        "{intro:?}"
    );
    chat.say(&app, "R20 000").await;
    chat.say(&app, "24").await;
    chat.say(&app, "R25 000").await;
    chat.say(&app, "8001015009087").await;
    let done = chat.say(&app, "yes").await;
    assert!(done[0].starts_with("Good news"), "{done:?}");
    assert!(
        done[1].contains("passing your application to a person"),
        "the customer is told a person is joining: {done:?}"
    );

    let body = state(&app, chat.id()).await;
    assert_eq!(body["conversation"]["state"], "queued");
    let summary = &body["bot_summary"];
    assert_eq!(summary["queue"], "loans");
    assert_eq!(summary["skill"], "lending");
    assert_eq!(summary["priority"], 5);
    let text = summary["summary"].as_str().expect("summary");
    assert!(
        text.starts_with("Loan application LN-") && text.contains("R20000.00 over 24 months"),
        "{text}"
    );
    let kinds: Vec<&str> = body["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["loan_application", "handoff"]);
    assert_eq!(body["records"][0]["data"]["amount"], "20000.00");

    // The router places it by its hand-off record: queue `loans`, skill `lending`,
    // priority 5 (nobody is available, so it waits there).
    let (_, queues) = app.get("/api/v1/queues").await;
    let loans = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "loans")
        .and_then(|q| q["id"].as_str())
        .expect("the demo has a loans queue")
        .to_string();
    let routing = eventually(10, "placed by the router", || async {
        let b = state(&app, chat.id()).await;
        (!b["routing"]["queue"].is_null()).then(|| b["routing"].clone())
    })
    .await;
    assert_eq!(routing["queue"], loans.as_str(), "{routing}");
    assert_eq!(routing["required_skills"]["lending"], 1, "{routing}");
    assert_eq!(routing["priority"], 5, "{routing}");

    // From now on the customer's messages are for people: the bot stays quiet.
    let (s, _) = app
        .customer_says(&chat.token, "after-handoff", "are you there?")
        .await;
    assert_eq!(s, 202);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, m) = app
        .get(&format!("/api/v1/conversations/{}/messages", chat.id()))
        .await;
    let last = m["messages"].as_array().expect("messages").last().cloned();
    assert_eq!(last.expect("a message")["direction"], "inbound");
}

#[tokio::test]
async fn a_promise_to_pay_and_an_order_are_recorded() {
    let mut app = spawn_app().await;
    let mut chat = Chat::open(&mut app).await;
    chat.say(&app, "hi").await;
    chat.say(&app, "pay my account").await;
    let options = chat.say(&app, "12345678").await;
    assert!(options[0].contains("R850.00 outstanding"), "{options:?}");
    chat.say(&app, "2").await;
    let date = (switchboard_app::now() + time::Duration::days(3)).date();
    let date = format!(
        "{:02}/{:02}/{}",
        date.day(),
        u8::from(date.month()),
        date.year()
    );
    let confirm = chat.say(&app, &date).await;
    assert!(confirm[0].starts_with("Please confirm"), "{confirm:?}");
    let thanks = chat.say(&app, "yes").await;
    assert!(
        thanks[0].contains("recorded under reference PTP-"),
        "{thanks:?}"
    );

    // Back to the menu, then the shop.
    chat.say(&app, "main menu").await;
    chat.say(&app, "order").await;
    chat.say(&app, "coffee").await;
    chat.say(&app, "beans").await;
    chat.say(&app, "2").await;
    chat.say(&app, "view cart").await;
    chat.say(&app, "check out").await;
    chat.say(&app, "12 Long Street, Gardens, Cape Town").await;
    let placed = chat.say(&app, "yes").await;
    assert!(placed[0].contains("Order ORD-"), "{placed:?}");

    let body = state(&app, chat.id()).await;
    let records = body["records"].as_array().expect("records");
    let promise = records
        .iter()
        .find(|r| r["kind"] == "promise_to_pay")
        .expect("a promise to pay");
    assert_eq!(promise["data"]["amount"], "850.00");
    assert_eq!(promise["data"]["account"], "12345678");
    let order = records
        .iter()
        .find(|r| r["kind"] == "order")
        .expect("an order");
    assert_eq!(order["data"]["total"], "190.00");
    assert_eq!(
        order["data"]["delivery_address"],
        "12 Long Street, Gardens, Cape Town"
    );
    assert_eq!(body["conversation"]["state"], "bot", "the bot still serves");
}

#[tokio::test]
async fn agent_hands_off_and_stop_records_an_opt_out() {
    let mut app = spawn_app().await;
    let mut chat = Chat::open(&mut app).await;
    chat.say(&app, "hi").await;
    let handed = chat.say(&app, "agent").await;
    assert!(!handed.is_empty());
    let body = state(&app, chat.id()).await;
    assert_eq!(body["conversation"]["state"], "queued");
    assert!(
        body["bot_summary"]["summary"]
            .as_str()
            .expect("summary")
            .contains("Customer asked for a person"),
        "{body}"
    );

    let mut other = Chat::open(&mut app).await;
    other.say(&app, "hi").await;
    let bye = other.say(&app, "STOP").await;
    assert!(!bye.is_empty());
    let body = state(&app, other.id()).await;
    assert_eq!(body["conversation"]["state"], "resolved");
    let tenant = app.demo.tenant_id.parse().expect("tenant id");
    let contact = body["contact"]["id"]
        .as_str()
        .expect("contact")
        .parse()
        .expect("id");
    let consents = app
        .app
        .store
        .consents(tenant, contact)
        .await
        .expect("consents");
    assert_eq!(consents.len(), 1);
    assert_eq!(
        consents[0].status,
        switchboard_core::ports::ConsentStatus::OptedOut
    );
    // Opt-out words are answered by the privacy layer in every state (app::privacy).
    assert_eq!(consents[0].source, "chat:webchat");
    assert_eq!(consents[0].wording.as_deref(), Some("STOP"));
}

#[tokio::test]
async fn staff_start_a_flow_and_unknown_flows_are_refused() {
    let mut app = spawn_app().await;
    let mut chat = Chat::open(&mut app).await;
    chat.say(&app, "hi").await;
    chat.say(&app, "agent").await;
    let conv = chat.id().to_string();

    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/flow"),
            json!({"flow_id": "no_such_flow"}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    assert_eq!(state(&app, &conv).await["conversation"]["state"], "queued");

    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conv}/flow"),
            json!({"flow_id": "balance"}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["conversation"]["state"], "bot");
    let app_ref = &app;
    let conv_ref = &conv;
    eventually(10, "the balance flow asks for the account", || async move {
        let (_, m) = app_ref
            .get(&format!("/api/v1/conversations/{conv_ref}/messages"))
            .await;
        m["messages"]
            .as_array()?
            .iter()
            .any(|x| x["content"]["body"] == "Please send your account number (8 to 12 digits).")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_flow_continues_where_it_was_after_a_restart() {
    let mut app = spawn_app().await;
    let mut chat = Chat::open(&mut app).await;
    chat.say(&app, "hi").await;
    chat.say(&app, "loan").await;
    chat.say(&app, "R20 000").await;
    let token = chat.token.clone();
    let conv = chat.id().to_string();
    let dir = app.stop().await;

    // Act: the server starts again on the same data and the customer answers the pending question.
    let mut again = spawn_app_in(dir, None).await;
    again.login("ann@demo.example").await;
    let mut chat = Chat {
        token,
        conversation: Some(conv.clone()),
        n: 100,
    };
    let next = chat.say(&again, "24").await;
    assert_eq!(
        next,
        ["What is your monthly income after tax?"],
        "the flow resumed at the same node"
    );
    assert_eq!(chat.id(), conv);
}

#[tokio::test]
async fn the_demo_account_endpoint_answers_fake_accounts_only() {
    let app = spawn_app().await;
    let (s, body) = app.get("/api/v1/demo/accounts/12345678").await;
    assert_eq!(s, 200);
    assert_eq!(body["balance"], "1234.50");
    assert_eq!(app.get("/api/v1/demo/accounts/11111111").await.0, 404);
    assert_eq!(app.get("/api/v1/demo/accounts/12ab").await.0, 400);
}

#[tokio::test]
async fn invalid_flow_yaml_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let tenant = app.demo.tenant_id.parse().expect("tenant id");
    let before = app.app.store.flows(tenant).await.expect("flows");
    let err = app
        .app
        .load_flows(
            tenant,
            &[
                ("good.yaml", "id: good\nnodes:\n  - id: a\n    type: end\n"),
                ("bad.yaml", "id: bad\nnodes:\n  - id: a\n    type: sned\n"),
            ],
        )
        .await
        .expect_err("a broken file stops the load");
    assert!(err.to_string().contains("bad.yaml"), "{err}");
    assert_eq!(app.app.store.flows(tenant).await.expect("flows"), before);

    // Loading the bundled flows again adds no versions.
    let again = app
        .app
        .load_flows(tenant, &switchboard_app::flows_runtime::BUNDLED_FLOWS)
        .await
        .expect("loads");
    assert!(again.iter().all(|f| !f.created && f.flow.version == 1));
}

/// The customer's messages and what followed them, readable, once `text` is stored.
async fn after_message(app: &TestApp, conv: &str, message_id: &str) -> Vec<String> {
    let (_, m) = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    let list = m["messages"].as_array().cloned().unwrap_or_default();
    let at = list
        .iter()
        .position(|x| x["id"] == message_id)
        .expect("the customer's message is stored");
    list[at + 1..].iter().map(readable).collect()
}

const BALANCE_PROMPT: &str = "Please send your account number (8 to 12 digits).";

#[tokio::test]
async fn a_first_message_that_is_a_keyword_starts_that_flow() {
    let mut app = spawn_app().await;
    for (word, why) in [
        ("balance", "an English keyword"),
        (
            "Saldo!",
            "an Afrikaans keyword, case and punctuation ignored",
        ),
    ] {
        let mut chat = Chat::open(&mut app).await;
        let answer = chat.say(&app, word).await;
        assert!(
            answer[0].contains("Demo Bank") && answer[0].contains("automated assistant"),
            "{why}: the channel's welcome says who answers: {answer:?}"
        );
        assert_eq!(
            answer.last().map(String::as_str),
            Some(BALANCE_PROMPT),
            "{why}: {answer:?}"
        );
        assert!(
            !answer.iter().any(|a| a.starts_with("How can we help")),
            "{why}: not the main menu: {answer:?}"
        );
        assert_eq!(state(&app, chat.id()).await["conversation"]["state"], "bot");
        let balance = chat.say(&app, "12345678").await;
        assert!(
            balance[0].starts_with("Account 12345678"),
            "{why}: {balance:?}"
        );
    }

    // Inside an active flow a keyword is an ordinary reply: the balance flow re-asks.
    let mut chat = Chat::open(&mut app).await;
    chat.say(&app, "hi").await;
    chat.say(&app, "1").await;
    let reply = chat.say(&app, "loan").await;
    assert!(
        reply.iter().any(|r| r.contains("8 to 12 digits")),
        "`loan` inside the balance flow does not start the loan flow: {reply:?}"
    );
}

#[tokio::test]
async fn a_queued_conversation_keeps_keywords_for_the_agent() {
    let mut app = spawn_app().await;
    let mut chat = Chat::open(&mut app).await;
    chat.say(&app, "hi").await;
    chat.say(&app, "agent").await;
    assert_eq!(
        state(&app, chat.id()).await["conversation"]["state"],
        "queued"
    );

    let (status, accepted) = app.customer_says(&chat.token, "queued-1", "balance").await;
    assert_eq!(status, 202, "{accepted}");
    let message_id = accepted["message_id"].as_str().expect("message id");
    // No job is even created for it; give a wrong implementation time to answer anyway.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        after_message(&app, chat.id(), message_id).await,
        Vec::<String>::new(),
        "the bot does not answer"
    );
    let body = state(&app, chat.id()).await;
    assert_eq!(body["conversation"]["state"], "queued");
    assert_eq!(
        body["conversation"]["last_message_preview"], "balance",
        "the agent sees it"
    );
}

#[tokio::test]
async fn keywords_start_flows_on_a_channel_without_a_default_flow() {
    let mut app = spawn_app().await;
    let tenant = app.demo.tenant_id.parse().expect("tenant id");
    let channel_id = app.demo.webchat_channel_id.parse().expect("channel id");
    let mut channel = app
        .app
        .store
        .channel(channel_id)
        .await
        .expect("read")
        .expect("channel");
    channel.settings.default_flow = None;
    app.app
        .store
        .set_channel_settings(tenant, channel_id, &channel.settings)
        .await
        .expect("settings saved");

    let mut chat = Chat::open(&mut app).await;
    let answer = chat.say(&app, "my balance").await;
    assert_eq!(
        answer.last().map(String::as_str),
        Some(BALANCE_PROMPT),
        "{answer:?}"
    );
    assert_eq!(state(&app, chat.id()).await["conversation"]["state"], "bot");

    let mut other = Chat::open(&mut app).await;
    let answer = other.say(&app, "hello").await;
    assert_eq!(
        answer.len(),
        1,
        "only the welcome, as without flows: {answer:?}"
    );
    assert!(answer[0].contains("Demo Bank"), "{answer:?}");
    assert_eq!(
        state(&app, other.id()).await["conversation"]["state"],
        "queued"
    );
}

#[tokio::test]
async fn supervisors_start_a_flow_for_a_contact_unless_they_opted_out() {
    let mut app = spawn_app().await;
    let mut chat = Chat::open(&mut app).await;
    chat.say(&app, "hi").await;
    let body = state(&app, chat.id()).await;
    let contact = body["contact"]["id"].as_str().expect("contact").to_string();
    let channel = app.demo.webchat_channel_id.clone();
    let start = json!({"contact_id": contact, "channel_id": channel});

    // Agents may not (the session is ann's, an agent).
    let (s, body) = app.post("/api/v1/flows/balance/start", start.clone()).await;
    assert_eq!(s, 403, "{body}");

    app.login("admin@demo.example").await;
    let (s, body) = app.post("/api/v1/flows/nope/start", start.clone()).await;
    assert_eq!(s, 404, "{body}");
    let (s, body) = app
        .post(
            "/api/v1/flows/balance/start",
            json!({"contact_id": "not-an-id", "channel_id": channel}),
        )
        .await;
    assert_eq!(s, 400, "{body}");

    let (s, body) = app.post("/api/v1/flows/balance/start", start).await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["conversation"]["id"], chat.id());
    let (app_ref, conv) = (&app, chat.id().to_string());
    let conv = &conv;
    eventually(10, "the balance flow asks for the account", || async move {
        let (_, m) = app_ref
            .get(&format!("/api/v1/conversations/{conv}/messages"))
            .await;
        m["messages"]
            .as_array()?
            .iter()
            .any(|x| x["content"]["body"] == BALANCE_PROMPT)
            .then_some(())
    })
    .await;

    // A contact who opted out on the channel is refused.
    let mut other = Chat::open(&mut app).await;
    other.say(&app, "hi").await;
    other.say(&app, "stop").await;
    let body = state(&app, other.id()).await;
    let contact = body["contact"]["id"].as_str().expect("contact");
    let (s, body) = app
        .post(
            "/api/v1/flows/balance/start",
            json!({"contact_id": contact, "channel_id": channel}),
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("opted out")),
        "{body}"
    );
}

/// Web chat sends as the sender hands them over: (conversation, lane, readable text). The
/// lane is what the channel's rate limiter orders by (live replies before bulk sends).
#[derive(Default)]
struct LaneRecorder {
    sent: std::sync::Mutex<Vec<(String, switchboard_core::ports::Lane, String)>>,
}

#[async_trait::async_trait]
impl switchboard_app::sender::Transport for LaneRecorder {
    async fn send(
        &self,
        item: &switchboard_core::ports::OutboxItem,
    ) -> Result<Option<String>, switchboard_app::sender::AttemptError> {
        self.sent.lock().expect("lock").push((
            item.message.conversation_id.to_string(),
            item.lane,
            item.message.content.preview(),
        ));
        Ok(None)
    }
}

#[tokio::test]
async fn a_campaign_for_many_contacts_sends_on_the_bulk_lane_and_answers_customers_on_the_live_lane()
 {
    use switchboard_core::ports::Lane;
    // Arrange: a server whose web chat sends are recorded with their lane.
    crate::helpers::init();
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let config = crate::helpers::test_config(dir.path());
    let listen = config.listen;
    let app = switchboard_app::App::open(config).await.expect("app opens");
    let recorder = std::sync::Arc::new(LaneRecorder::default());
    app.set_transport(switchboard_core::ChannelKind::Webchat, recorder.clone());
    let demo = app
        .seed_demo(Some(crate::helpers::DEMO_PASSWORD))
        .await
        .expect("demo seeds");
    let server = switchboard_http::Server::with_app(app.clone(), listen)
        .await
        .expect("server binds");
    let addr = server.addr();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(server.run_until_stopped(stop.clone()));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let mut app = TestApp::from_parts(addr, app, client, demo, stop, dir);
    // Five customers talk to the main menu, then a supervisor starts the balance flow for
    // all of them (a campaign).
    let mut chats = Vec::new();
    for _ in 0..5 {
        let mut chat = Chat::open(&mut app).await;
        chat.say(&app, "hi").await;
        chats.push(chat);
    }
    app.login("admin@demo.example").await;
    let channel = app.demo.webchat_channel_id.clone();
    for chat in &chats {
        let contact = state(&app, chat.id()).await["contact"]["id"]
            .as_str()
            .expect("contact")
            .to_string();
        let (s, body) = app
            .post(
                "/api/v1/flows/balance/start",
                json!({"contact_id": contact, "channel_id": channel}),
            )
            .await;
        assert_eq!(s, 202, "{body}");
    }

    // Act: every prompt goes out; one customer answers it.
    let sent_prompts = || {
        recorder
            .sent
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, _, text)| text == BALANCE_PROMPT)
            .count()
    };
    let contacts = chats.len();
    eventually(10, "the campaign's prompts are sent", || async move {
        (sent_prompts() == contacts).then_some(())
    })
    .await;
    let answer = chats[0].say(&app, "12345678").await;
    eventually(10, "the answer is sent", || async {
        let sent = recorder.sent.lock().expect("lock");
        sent.iter()
            .any(|(c, _, text)| c == chats[0].id() && answer.iter().any(|a| a.starts_with(text)))
            .then_some(())
    })
    .await;

    // Assert: the campaign's messages were bulk; everything answering a customer was live.
    let sent = recorder.sent.lock().expect("lock").clone();
    for (conv, lane, text) in &sent {
        let want = if text == BALANCE_PROMPT {
            Lane::Bulk
        } else {
            Lane::Live
        };
        assert_eq!(*lane, want, "{text:?} in {conv}: {sent:?}");
    }
    assert!(
        sent.iter()
            .filter(|(_, lane, _)| *lane == Lane::Live)
            .count()
            > contacts,
        "the main menus and the answer were recorded too: {sent:?}"
    );
}
