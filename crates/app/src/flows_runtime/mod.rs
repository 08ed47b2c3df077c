//! `app::flows_runtime`: runs the pure flow engine (`switchboard_flows::step`) for
//! conversations in state `bot`, and carries out what it asks for.
//!
//! One job (a customer message, a flow timer, a staff "start flow") is handled like this:
//! load the tenant's flows (cached per node), take the conversation's stored session and the
//! job's message as the job worker read them for its whole batch (`Store::decision_inputs`,
//! a few statements per batch, each message decrypted once), map the trigger to an
//! [`Input`], `step`, perform any HTTP call the step asked for (behind the
//! [`ssrf`] guard, with a timeout) and step again with the answer, up to
//! `flows.max_chained_steps` times, then hand the job worker everything to commit in ONE
//! transaction (`Store::apply_decisions`, with other jobs' decisions): the new session with its timer, the bot's messages, the
//! records, consent, contact attributes, the state change and the job's completion. A crash
//! before the commit reruns the job (so an HTTP GET may run twice; nothing else happens
//! twice); a session changed meanwhile by another node is a conflict and the job retries.
//!
//! What each action becomes:
//! - `Send` → a bot message in the outbox.
//! - `Handoff` → state `queued`, and a record of kind `handoff` (queue, skill, priority,
//!   summary) the agent sees as `bot_summary`; the customer is told a person is joining (the
//!   flow's hand-off message, or a system notice when the flow sent none).
//! - `OptOut` → an `opted_out` consent row for the contact on this channel.
//! - `RecordData` → a record; `SetContactAttribute` → the contact's attributes.
//! - `ScheduleTimeout` → the session's single timer (a `flow_timeout` job).
//! - `End` → state `resolved`, unless the same step handed off (then `queued`).
//! - `Error` → logged, and the customer is handed to a person (state `queued`, a system
//!   notice, a `handoff` record naming the failure); the session is left as it was.
//!
//! Keyword triggers (`triggers.keywords` of a flow, matched by `switchboard_flows::match_keyword`)
//! apply only while nobody talks to the customer: a message to a `bot` conversation without an
//! active session (new, or its session ended) that is a keyword starts that flow instead of the
//! channel's default flow, the keyword message being consumed as the start; the job worker also
//! asks [`FlowRuntime::keyword_flow`] for a brand-new conversation that started `queued` (a
//! channel without a default flow) and, on a match, runs [`Trigger::Keyword`], which moves it
//! to `bot`. Inside an active session keywords are ordinary replies, and `queued`/`assigned`
//! conversations are never taken from people. A keyword-started flow on a new conversation is
//! preceded by the channel's `welcome_message`, since it does not introduce the business itself.
//!
//! Versions: a new session records the version of every flow loaded at that moment
//! (`FlowSession::versions`) and keeps running them; the runtime reads a pinned version that
//! is no longer the latest from the database once and caches it. A keyword-started session
//! also records where `menu` goes (`FlowSession::menu_flow`: the channel's `menu_flow`, else
//! its `default_flow`).
//!
//! Campaigns (`JobKind::StartFlow` with `campaign`, see `admin::App::start_campaign_flow`):
//! the step's messages go on the bulk lane; with an `opening_template` (WhatsApp outside the
//! 24-hour window) only the template is sent and the session is stored unstarted, so the
//! customer's answer starts the flow.
//!
//! Time: every step reads the runtime's [`Clock`] (the same one the job worker claims due
//! timers with), so tests move both forward together.
//!
//! Text replies are passed to the engine as text: it matches them to the pending menu itself
//! (`match_choice`) after checking the global commands, so a customer typing "stop" is never
//! mistaken for a menu option that starts with "stop".

pub mod admin;
pub mod ssrf;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;
use switchboard_core::ports::{
    Clock, ConsentStatus, Decision, FlowEffects, FlowSessionWrite, Job, JobKind, Lane, NewConsent,
    NewOutbound, NewRecord, Store, StoredFlowSession, TimerChange,
};
use switchboard_core::{
    Channel, Content, ConversationState, ConversationSummary, Message, MessageId, Sender, TenantId,
};
use switchboard_flows::{
    Action, FlowDefinition, FlowLibrary, FlowSession, Flows, Input, SessionState, match_keyword,
    parse_flow, step,
};

use crate::config::FlowsConfig;

/// The flows shipped with Switchboard (`flows/*.yaml`), embedded so the binary works anywhere.
pub const BUNDLED_FLOWS: [(&str, &str); 5] = [
    (
        "main_menu.yaml",
        include_str!("../../../../flows/main_menu.yaml"),
    ),
    (
        "balance.yaml",
        include_str!("../../../../flows/balance.yaml"),
    ),
    (
        "loan_application.yaml",
        include_str!("../../../../flows/loan_application.yaml"),
    ),
    (
        "collections.yaml",
        include_str!("../../../../flows/collections.yaml"),
    ),
    ("order.yaml", include_str!("../../../../flows/order.yaml")),
];

/// Customer-facing notice when a flow hands off without saying so itself.
pub const HANDOFF_NOTICE: &str =
    "A person from our team is joining this chat; they can see what you told the assistant.";
/// Customer-facing notice when the bot fails.
pub const FAILURE_NOTICE: &str =
    "Sorry, something went wrong on my side. A person from our team will take over this chat.";

/// Largest HTTP answer body a flow reads.
const MAX_HTTP_BODY: usize = 256 * 1024;

/// What woke the flow.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A customer message.
    Message(MessageId),
    /// The session's timer.
    Timeout,
    /// Staff started this flow.
    Start(String),
    /// A customer's keyword (the job's message) starts this flow on a conversation that is
    /// not with the bot yet (a new conversation that started `queued`); it moves to `bot`.
    Keyword(String),
}

/// The state a brand-new conversation on `channel` starts in: `bot` when the channel has a
/// default flow, else `queued`. Every inbound path (web chat, webhooks) should use this.
pub fn initial_state(channel: &Channel) -> ConversationState {
    if channel.settings.default_flow.is_some() {
        ConversationState::Bot
    } else {
        ConversationState::Queued
    }
}

/// A tenant's flows as loaded: the latest version of each, and which version that is.
struct Loaded {
    lib: Arc<FlowLibrary>,
    versions: BTreeMap<String, i64>,
}

/// Older versions of flows that running sessions are pinned to, parsed once (a stored version
/// never changes). Bounded: when full it is emptied and refilled from the database.
const PINNED_CACHE_MAX: usize = 256;

/// The flows one session runs: the versions it is pinned to where they differ from the latest
/// (see [`FlowSession::versions`]), the latest otherwise.
struct SessionFlows<'a> {
    latest: &'a FlowLibrary,
    pinned: HashMap<String, Arc<FlowDefinition>>,
}

impl Flows for SessionFlows<'_> {
    fn flow(&self, id: &str) -> Option<&FlowDefinition> {
        match self.pinned.get(id) {
            Some(def) => Some(def.as_ref()),
            None => self.latest.flow(id),
        }
    }
    fn env(&self) -> Option<&BTreeMap<String, String>> {
        Some(&self.latest.env)
    }
}

/// Runs flows for the job worker. Cheap to share.
pub struct FlowRuntime {
    store: Arc<dyn Store>,
    config: FlowsConfig,
    own_addr: Arc<OnceLock<SocketAddr>>,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<TenantId, (Instant, Arc<Loaded>)>>,
    pinned: Mutex<HashMap<(TenantId, String, i64), Arc<FlowDefinition>>>,
    http: OnceLock<reqwest::Client>,
}

impl FlowRuntime {
    /// A runtime over `store`. `own_addr` is filled in once the server has bound its listener;
    /// `clock` is the time flows step at (session activity, expiry, `wait` deadlines).
    pub fn new(
        store: Arc<dyn Store>,
        config: FlowsConfig,
        own_addr: Arc<OnceLock<SocketAddr>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        FlowRuntime {
            store,
            config,
            own_addr,
            clock,
            cache: Mutex::new(HashMap::new()),
            pinned: Mutex::new(HashMap::new()),
            http: OnceLock::new(),
        }
    }

    /// Forgets a tenant's cached flows (after loading new versions).
    pub fn invalidate(&self, tenant: TenantId) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&tenant);
    }

    /// The tenant's flows (latest versions), with `env.base_url` set for this deployment.
    pub async fn library(&self, tenant: TenantId) -> anyhow::Result<Arc<FlowLibrary>> {
        Ok(self.loaded(tenant).await?.lib.clone())
    }

    async fn loaded(&self, tenant: TenantId) -> anyhow::Result<Arc<Loaded>> {
        let ttl = Duration::from_secs(self.config.cache_secs);
        if let Some((at, loaded)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
            && at.elapsed() < ttl
        {
            return Ok(loaded.clone());
        }
        let mut lib = FlowLibrary::default();
        let mut versions = BTreeMap::new();
        for stored in self.store.flows(tenant).await? {
            match parse_flow(&stored.source) {
                Ok(def) => {
                    versions.insert(def.id.clone(), stored.version);
                    lib.insert(def);
                }
                Err(problems) => tracing::error!(
                    flow = %stored.flow_id, version = stored.version, ?problems,
                    "a stored flow no longer parses; it is skipped"
                ),
            }
        }
        if let Some(base) = self.base_url() {
            lib.env.insert("base_url".into(), base);
        }
        let loaded = Arc::new(Loaded {
            lib: Arc::new(lib),
            versions,
        });
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant, (Instant::now(), loaded.clone()));
        Ok(loaded)
    }

    /// The definitions a session is pinned to that are no longer the latest, read from the
    /// database once per version. A pinned version that is gone falls back to the latest.
    async fn pinned_for(
        &self,
        tenant: TenantId,
        loaded: &Loaded,
        pins: &BTreeMap<String, i64>,
    ) -> anyhow::Result<HashMap<String, Arc<FlowDefinition>>> {
        let mut out = HashMap::new();
        for (flow_id, version) in pins {
            if loaded.versions.get(flow_id) == Some(version) {
                continue;
            }
            let key = (tenant, flow_id.clone(), *version);
            let cached = self
                .pinned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .cloned();
            let def = match cached {
                Some(def) => def,
                None => {
                    let Some(stored) = self.store.flow_version(tenant, flow_id, *version).await?
                    else {
                        tracing::warn!(flow = %flow_id, version, "a session's pinned flow version is gone; it runs the latest");
                        continue;
                    };
                    let def = match parse_flow(&stored.source) {
                        Ok(def) => Arc::new(def),
                        Err(problems) => {
                            tracing::error!(flow = %flow_id, version, ?problems, "a pinned flow version no longer parses; the session runs the latest");
                            continue;
                        }
                    };
                    let mut cache = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
                    if cache.len() >= PINNED_CACHE_MAX {
                        cache.clear();
                    }
                    cache.insert(key, def.clone());
                    def
                }
            };
            out.insert(flow_id.clone(), def);
        }
        Ok(out)
    }

    fn base_url(&self) -> Option<String> {
        self.config
            .base_url
            .clone()
            .or_else(|| self.own_addr.get().map(|a| format!("http://{a}")))
            .map(|u| u.trim_end_matches('/').to_string())
    }

    fn allowed(&self) -> ssrf::Allowed {
        let mut hosts = Vec::new();
        let mut own = None;
        for h in &self.config.allow_hosts {
            if h.trim().eq_ignore_ascii_case("self") {
                own = self.own_addr.get().map(|a| a.to_string());
            } else {
                hosts.push(h.trim().to_ascii_lowercase());
            }
        }
        ssrf::Allowed { hosts, own }
    }

    fn client(&self) -> anyhow::Result<reqwest::Client> {
        if let Some(c) = self.http.get() {
            return Ok(c.clone());
        }
        let c = base_client()
            .build()
            .context("building the flow HTTP client")?;
        Ok(self.http.get_or_init(|| c).clone())
    }

    /// The flow a customer message starts by keyword on this channel, if any (see
    /// `switchboard_flows::match_keyword`). Only text (or a media caption) can be a keyword.
    /// `message` is the job's message as the worker read it (`None`: gone).
    pub async fn keyword_flow(
        &self,
        tenant: TenantId,
        conv: switchboard_core::ConversationId,
        channel: &Channel,
        message: Option<&Message>,
    ) -> anyhow::Result<Option<String>> {
        let lib = self.library(tenant).await?;
        let Input::Text { text } = input_of(conv, message) else {
            return Ok(None);
        };
        Ok(keyword_in(&lib, channel, &text))
    }

    /// Takes the decision for one job of a conversation the bot owns (or a timer / start
    /// request): steps the flow, performing its HTTP calls, and returns what to commit. The
    /// job worker commits it (`Store::apply_decisions`, batched with other jobs' decisions).
    /// `stored` is the conversation's bot session and `message` the job's message, as the
    /// worker read them with the job's batch (`Store::decision_inputs`).
    pub async fn decide(
        &self,
        job: &Job,
        conv: &ConversationSummary,
        channel: &Channel,
        trigger: Trigger,
        stored: Option<&StoredFlowSession>,
        message: Option<&Message>,
    ) -> anyhow::Result<(Decision, FlowEffects)> {
        let tenant = job.tenant_id;
        let conv_id = conv.conversation.id;
        let decision = |new_state, outbound| Decision {
            job_id: job.id,
            tenant_id: tenant,
            conversation_id: conv_id,
            new_state,
            outbound,
        };
        let now = self.clock.now();
        let loaded = self.loaded(tenant).await?;
        let expected_version = stored.map(|s| s.version);
        let stored_session = stored.and_then(|s| FlowSession::deserialize(&s.session).ok());
        // A new session runs the versions loaded now, whatever is loaded later.
        let fresh = |root: &str| {
            let mut s = FlowSession::new(conv_id.to_string(), root);
            s.versions = loaded.versions.clone();
            match &conv.contact_name {
                Some(name) => s.with_contact("name", name.clone()),
                None => s.with_contact("name", "there"),
            }
        };
        // Inside a keyword's flow, `menu` opens the channel's main flow.
        let keyword_session = |flow_id: &str| {
            let menu = channel
                .settings
                .menu_flow
                .clone()
                .or_else(|| channel.settings.default_flow.clone());
            fresh(flow_id).with_menu_flow(menu)
        };
        let campaign = match &job.kind {
            JobKind::StartFlow { campaign, .. } => campaign.clone(),
            _ => None,
        };
        // A campaign's messages wait behind live replies on the channel account.
        let lane = if campaign.is_some() {
            Lane::Bulk
        } else {
            Lane::Live
        };
        let mut by_keyword = false;
        let (session, input) = match &trigger {
            Trigger::Start(flow_id) => {
                if let Some(template) = campaign.as_ref().and_then(|c| c.opening_template.clone()) {
                    // Outside WhatsApp's window only the template may go; the flow starts
                    // when the customer answers it (a `New` session starts on any input).
                    let session = fresh(flow_id);
                    let effects = FlowEffects {
                        session: Some(FlowSessionWrite {
                            session: serde_json::to_value(&session)
                                .context("encoding the flow session")?,
                            expected_version,
                            timer: TimerChange::Cancel,
                        }),
                        ..FlowEffects::default()
                    };
                    let opening = NewOutbound {
                        sender: Sender::Bot,
                        content: template,
                        lane,
                    };
                    return Ok((decision(None, vec![opening]), effects));
                }
                (fresh(flow_id), Input::Start)
            }
            Trigger::Keyword(flow_id) => {
                by_keyword = true;
                (keyword_session(flow_id), Input::Start)
            }
            Trigger::Timeout => {
                let current = stored.and_then(|s| s.timer_job) == Some(job.id);
                match stored_session {
                    Some(s) if current && conv.conversation.state == ConversationState::Bot => {
                        (s, Input::Timeout)
                    }
                    // A stale timer: complete it and change nothing.
                    _ => return Ok((decision(None, vec![]), FlowEffects::default())),
                }
            }
            Trigger::Message(_) => {
                let input = input_of(conv_id, message);
                let keyword = match (&input, stored_session.as_ref()) {
                    // Inside an active session keywords are ordinary replies.
                    (_, Some(s)) if !s.is_finished() => None,
                    (Input::Text { text }, _) => keyword_in(&loaded.lib, channel, text),
                    _ => None,
                };
                match (stored_session.filter(|s| !s.is_finished()), keyword) {
                    (Some(s), _) => (s, input),
                    (None, Some(flow_id)) => {
                        by_keyword = true;
                        // The keyword message is consumed: the flow starts at its first node.
                        (keyword_session(&flow_id), Input::Start)
                    }
                    (None, None) => match &channel.settings.default_flow {
                        Some(root) => (fresh(root), input),
                        None => {
                            // Nothing to run: give the customer to people rather than drop them.
                            tracing::warn!(conversation_id = %conv_id, "bot conversation without a flow; queued for people");
                            return Ok((
                                decision(
                                    Some(ConversationState::Queued),
                                    vec![system(handoff_notice(channel))],
                                ),
                                FlowEffects::default(),
                            ));
                        }
                    },
                }
            }
        };
        let customer_text = match &input {
            Input::Text { text } => Some(text.clone()),
            _ => None,
        };
        let root = session.root.clone();
        let lib = SessionFlows {
            latest: &loaded.lib,
            pinned: self.pinned_for(tenant, &loaded, &session.versions).await?,
        };

        // Step, answering HTTP requests, until the session waits or ends.
        let mut session = session;
        let mut input = input;
        let mut actions = Vec::new();
        let mut steps = 0u32;
        loop {
            steps += 1;
            let outcome = step(&lib, session.clone(), input, now);
            let failed = outcome
                .actions
                .iter()
                .any(|a| matches!(a, Action::Error { .. }));
            session = outcome.session;
            let mut next = None;
            for a in outcome.actions {
                match a {
                    Action::HttpRequest {
                        request_id,
                        method,
                        url,
                        headers,
                        body,
                        timeout_ms,
                    } if !failed => {
                        next = Some((request_id, method, url, headers, body, timeout_ms));
                    }
                    other => actions.push(other),
                }
            }
            if failed {
                break;
            }
            let Some((request_id, method, url, headers, body, timeout_ms)) = next else {
                break;
            };
            if steps >= self.config.max_chained_steps.max(1) {
                actions.push(Action::Error {
                    message: format!(
                        "more than {} chained steps in one job (flows.max_chained_steps)",
                        self.config.max_chained_steps
                    ),
                });
                break;
            }
            let (ok, status, body) = self
                .call(&method, &url, &headers, body.as_ref(), timeout_ms)
                .await;
            input = Input::HttpResult {
                request_id,
                ok,
                status,
                body,
            };
        }

        // Translate the actions into one decision.
        let mut outbound = Vec::new();
        let mut effects = FlowEffects::default();
        let mut timer = TimerChange::Keep;
        let mut handed_off = false;
        let mut ended = false;
        let mut error = None;
        for a in actions {
            match a {
                Action::Send { content } => match content.validate_outbound() {
                    Ok(()) => outbound.push(NewOutbound {
                        sender: Sender::Bot,
                        content,
                        lane,
                    }),
                    Err(why) => {
                        tracing::warn!(conversation_id = %conv_id, flow = %root, %why, "flow message skipped")
                    }
                },
                Action::Handoff {
                    queue,
                    skill,
                    priority,
                    summary,
                    default_wording,
                } => {
                    handed_off = true;
                    // The channel's own hand-off wording replaces the flow's default one.
                    if default_wording
                        && let Some(text) = channel_handoff_message(channel)
                        && let Some(last) = outbound.last_mut()
                    {
                        last.content = Content::text(text);
                    }
                    effects.records.push(NewRecord {
                        kind: "handoff".into(),
                        data: serde_json::json!({
                            "queue": queue, "skill": skill, "priority": priority,
                            "summary": summary, "flow": root,
                        }),
                    });
                }
                Action::SetContactAttribute { key, value } => {
                    effects.contact_attributes.push((key, value))
                }
                Action::OptOut => effects.consents.push(NewConsent {
                    status: ConsentStatus::OptedOut,
                    source: format!("flow:{root}"),
                    wording: customer_text.clone(),
                }),
                Action::RecordData { kind, data } => effects.records.push(NewRecord { kind, data }),
                Action::ScheduleTimeout { at } => timer = TimerChange::Set(at),
                Action::End { .. } => ended = true,
                Action::Error { message } => error = Some(message),
                Action::HttpRequest { .. } => {}
            }
        }
        let new_state = if let Some(message) = error {
            tracing::error!(conversation_id = %conv_id, flow = %root, error = %message, "flow step failed; handing the customer to a person");
            outbound = vec![system(FAILURE_NOTICE)];
            effects = FlowEffects::default();
            effects.records.push(NewRecord {
                kind: "handoff".into(),
                data: serde_json::json!({
                    "queue": null, "skill": null, "priority": 0, "flow": root,
                    "summary": format!("The assistant failed and handed over: {message}"),
                }),
            });
            // The session stays as it was; only its timer is disarmed.
            if let Some(prev) = stored {
                effects.session = Some(FlowSessionWrite {
                    session: prev.session.clone(),
                    expected_version,
                    timer: TimerChange::Cancel,
                });
            }
            Some(ConversationState::Queued)
        } else {
            if handed_off && outbound.is_empty() {
                outbound.push(system(handoff_notice(channel)));
            }
            // A keyword-started flow does not introduce the business; the welcome does.
            let new_conversation = matches!(
                job.kind,
                JobKind::ProcessInbound {
                    new_conversation: true,
                    ..
                }
            );
            if by_keyword
                && new_conversation
                && let Some(welcome) = channel.settings.welcome_message.as_deref()
                && !welcome.trim().is_empty()
            {
                outbound.insert(
                    0,
                    NewOutbound {
                        sender: Sender::Bot,
                        content: Content::text(welcome),
                        lane,
                    },
                );
            }
            if session.is_finished() || matches!(session.state, SessionState::AwaitingHttp { .. }) {
                timer = TimerChange::Cancel;
            }
            effects.session = Some(FlowSessionWrite {
                session: serde_json::to_value(&session).context("encoding the flow session")?,
                expected_version,
                timer,
            });
            if handed_off {
                Some(ConversationState::Queued)
            } else if ended {
                Some(ConversationState::Resolved)
            } else if by_keyword {
                // A new conversation that started `queued` now belongs to the bot.
                Some(ConversationState::Bot)
            } else {
                None
            }
        };
        let new_state = new_state.filter(|s| *s != conv.conversation.state);
        Ok((decision(new_state, outbound), effects))
    }

    /// Performs one flow HTTP call; never fails, the flow gets `ok: false` instead.
    async fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&serde_json::Value>,
        timeout_ms: u64,
    ) -> (bool, u16, serde_json::Value) {
        let failed = (false, 0, serde_json::Value::Null);
        let Ok(parsed) = reqwest::Url::parse(url) else {
            tracing::warn!(%url, "flow HTTP call refused: not a URL");
            return failed;
        };
        let client = match ssrf::check(&parsed, &self.allowed()).await {
            Ok(ssrf::Verdict::Allowed) => self.client(),
            Ok(ssrf::Verdict::Pinned { host, addrs }) => base_client()
                .resolve_to_addrs(&host, &addrs)
                .build()
                .context("building a pinned HTTP client"),
            Err(refused) => {
                tracing::warn!(%url, reason = %refused, "flow HTTP call refused by the SSRF guard");
                return failed;
            }
        };
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "flow HTTP client");
                return failed;
            }
        };
        let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
            return failed;
        };
        let timeout =
            Duration::from_millis(timeout_ms.clamp(1, self.config.http_timeout_ms.max(1)));
        let mut req = client.request(method, parsed).timeout(timeout);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let result = tokio::time::timeout(timeout, async {
            let mut resp = req.send().await?;
            let status = resp.status().as_u16();
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                if bytes.len() + chunk.len() > MAX_HTTP_BODY {
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, bytes))
        })
        .await;
        match result {
            Ok(Ok((status, bytes))) => (
                true,
                status,
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            ),
            Ok(Err(e)) => {
                tracing::warn!(%url, error = %e, "flow HTTP call failed");
                failed
            }
            Err(_) => {
                tracing::warn!(%url, "flow HTTP call timed out");
                failed
            }
        }
    }
}

/// The flow engine's input for a customer message: its text (or media caption), a chosen
/// option, or what kind of message it was. A message that is gone, or that is not the
/// conversation's, is reported as no longer available.
fn input_of(conv: switchboard_core::ConversationId, message: Option<&Message>) -> Input {
    let content = message
        .filter(|m| m.conversation_id == conv)
        .map(|m| &m.content);
    match content {
        Some(Content::Text { body }) => Input::Text { text: body.clone() },
        Some(Content::ChoiceSelected { id, .. }) => Input::Choice { id: id.clone() },
        Some(Content::Media {
            caption: Some(c), ..
        }) if !c.trim().is_empty() => Input::Text { text: c.clone() },
        Some(other) => Input::Other {
            kind: other.preview(),
        },
        None => Input::Other {
            kind: "message no longer available".into(),
        },
    }
}

/// The channel's configured hand-off wording, when it has one.
fn channel_handoff_message(channel: &Channel) -> Option<&str> {
    channel
        .settings
        .handoff_message
        .as_deref()
        .filter(|t| !t.trim().is_empty())
}

/// What the customer is told when people take over without the flow saying so.
fn handoff_notice(channel: &Channel) -> &str {
    channel_handoff_message(channel).unwrap_or(HANDOFF_NOTICE)
}

/// The id of the flow `text` starts by keyword on `channel`.
fn keyword_in(lib: &FlowLibrary, channel: &Channel, text: &str) -> Option<String> {
    match_keyword(lib, channel.kind.as_str(), &channel.id.to_string(), text).map(|d| d.id.clone())
}

fn base_client() -> reqwest::ClientBuilder {
    // reqwest is built without a default TLS provider (see docs/dependencies.md).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .user_agent("Switchboard-flows/1")
}

fn system(text: &str) -> NewOutbound {
    NewOutbound {
        sender: Sender::System,
        content: Content::System {
            body: text.to_string(),
        },
        lane: Lane::Live,
    }
}
