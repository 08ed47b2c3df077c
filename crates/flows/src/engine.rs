//! [`step`]: the pure heart of the flow engine.
//!
//! `step(flows, session, input, now)` moves a session through its flow until it has to wait
//! (for the customer, for an HTTP answer) or ends, and returns the [`Action`]s the runtime
//! must carry out together with the session to store. It reads no clock (time is `now`),
//! does no IO and never panics on bad input: when anything goes wrong (a broken definition,
//! a failing expression, an input that does not fit the session) it returns the session it
//! was given, unchanged, and a single [`Action::Error`]. Partial actions of a failed step
//! are dropped, so a step either happens completely or not at all.
//!
//! Global commands (`agent`, `menu`, `stop` and their per-language words) are checked on
//! every text reply before the current node sees it. Inactivity expiry is checked on every
//! input: a due [`Input::Timeout`] ends the session with the flow's expiry message; a
//! message after expiry gets that message and a fresh start.

use std::collections::BTreeMap;

use switchboard_core::{Choice, ChoiceStyle, Content, MediaRef};
use thiserror::Error;
use time::{Duration, OffsetDateTime};

use crate::choice::match_choice;
use crate::definition::{
    AskNode, CommandWords, Expression, FlowDefinition, Flows, HttpNode, MenuNode, Node, Ordered,
};
use crate::expr::{self, Context};
use crate::session::{Action, FlowSession, Frame, Input, SessionState, StepOutcome};
use crate::template;
use crate::validate::{choices_for, validate};
use crate::value::Value;

/// Most nodes one step may pass through (a guard against cycles `check` would report).
pub const MAX_HOPS: usize = 200;
/// Deepest subflow nesting.
pub const MAX_CALL_DEPTH: usize = 8;

/// Why a step failed. Returned to the runtime as [`Action::Error`] with the message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StepError {
    /// The session names a flow that is not loaded.
    #[error("flow `{0}` is not loaded")]
    UnknownFlow(String),
    /// A target node does not exist.
    #[error("flow `{flow}` has no node `{node}`")]
    UnknownNode {
        /// Flow id.
        flow: String,
        /// Node id.
        node: String,
    },
    /// A node without `next` is the last one.
    #[error("node `{0}` has no next node")]
    FallsOffEnd(String),
    /// An expression failed.
    #[error("node `{node}`: expression `{source_text}` failed: {error}")]
    Expression {
        /// Node id.
        node: String,
        /// The expression.
        source_text: String,
        /// What went wrong.
        error: expr::ExprError,
    },
    /// A branch condition did not give true or false.
    #[error("node `{0}`: a branch condition must give true or false")]
    NotABoolean(String),
    /// Too many nodes in one step: the flow loops without waiting.
    #[error(
        "more than {MAX_HOPS} nodes in one step; the flow loops without waiting for the customer"
    )]
    TooManyHops,
    /// Subflows nest too deeply.
    #[error("subflows nest deeper than {MAX_CALL_DEPTH}")]
    CallStackTooDeep,
    /// The session is over (ended or handed off); start a new one.
    #[error("the session is finished; start a new session or send Input::Start")]
    Finished,
    /// An HTTP result that the session is not waiting for.
    #[error("unexpected HTTP result `{0}`")]
    UnexpectedHttpResult(String),
    /// The stored session does not fit the flow (edited flow, corrupt data).
    #[error("the session does not fit the flow: {0}")]
    Inconsistent(String),
}

/// Advances a session by one input. See the module docs.
pub fn step<F: Flows + ?Sized>(
    flows: &F,
    session: FlowSession,
    input: Input,
    now: OffsetDateTime,
) -> StepOutcome {
    let mut work = session.clone();
    let mut engine = Engine {
        flows,
        now,
        actions: Vec::new(),
        hops: 0,
    };
    match engine.run(&mut work, input) {
        Ok(()) => StepOutcome {
            actions: engine.actions,
            session: work,
        },
        Err(e) => StepOutcome {
            actions: vec![Action::Error {
                message: e.to_string(),
            }],
            session,
        },
    }
}

struct Engine<'f, F: Flows + ?Sized> {
    flows: &'f F,
    now: OffsetDateTime,
    actions: Vec<Action>,
    hops: usize,
}

enum Command {
    Agent,
    Menu,
    Stop,
}

static EMPTY_ENV: BTreeMap<String, String> = BTreeMap::new();

fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn normalise_command(text: &str) -> String {
    text.trim()
        .trim_matches(['.', '!', '?', '"', '\''])
        .trim()
        .to_lowercase()
}

impl<'f, F: Flows + ?Sized> Engine<'f, F> {
    fn def(&self, flow: &str) -> Result<&'f FlowDefinition, StepError> {
        self.flows
            .flow(flow)
            .ok_or_else(|| StepError::UnknownFlow(flow.to_string()))
    }

    fn current(&self, s: &FlowSession) -> Result<(&'f FlowDefinition, &'f Node), StepError> {
        let frame = s
            .stack
            .last()
            .ok_or_else(|| StepError::Inconsistent("no current node".into()))?;
        let def = self.def(&frame.flow)?;
        let node = def
            .node(&frame.node)
            .ok_or_else(|| StepError::UnknownNode {
                flow: frame.flow.clone(),
                node: frame.node.clone(),
            })?;
        Ok((def, node))
    }

    fn ctx<'a>(&self, def: &'a FlowDefinition, s: &'a FlowSession, salt: &str) -> Context<'a>
    where
        'f: 'a,
    {
        Context {
            vars: &s.vars,
            contact: &s.contact,
            env: [self.flows.env().unwrap_or(&EMPTY_ENV), &def.env],
            now: self.now,
            // Only `reference(..)` reads the seed, and only expressions (never templates) call it.
            seed: if salt.is_empty() {
                0
            } else {
                fnv(&[s.id.as_bytes(), &s.seq.to_le_bytes(), salt.as_bytes()])
            },
        }
    }

    fn render(&self, def: &FlowDefinition, s: &FlowSession, t: &str) -> String {
        template::render(t, &self.ctx(def, s, ""))
    }

    fn send(&mut self, content: Content) {
        self.actions.push(Action::Send { content });
    }

    fn eval(
        &self,
        def: &FlowDefinition,
        s: &FlowSession,
        node: &str,
        src: &str,
    ) -> Result<Value, StepError> {
        let wrap = |error| StepError::Expression {
            node: node.to_string(),
            source_text: src.to_string(),
            error,
        };
        let e = def.expr(src).map_err(wrap)?;
        expr::eval(&e, &self.ctx(def, s, node)).map_err(wrap)
    }

    fn run(&mut self, s: &mut FlowSession, input: Input) -> Result<(), StepError> {
        s.seq = s.seq.wrapping_add(1);
        let customer_input = matches!(
            input,
            Input::Text { .. } | Input::Choice { .. } | Input::Other { .. }
        );
        match (&s.state, &input) {
            (_, Input::Start) => return self.restart(s),
            (SessionState::Ended { .. } | SessionState::HandedOff, _) => {
                return Err(StepError::Finished);
            }
            (SessionState::New, Input::Timeout) => return Ok(()),
            (SessionState::New, Input::HttpResult { request_id, .. }) => {
                return Err(StepError::UnexpectedHttpResult(request_id.clone()));
            }
            (SessionState::New, _) => return self.restart(s),
            _ => {}
        }
        let root = self.def(&s.root)?;
        self.current(s)?; // the stored position must still exist in the flow
        // Conversation-wide settings (expiry, commands, opt-out, fallback hand-off) come from
        // the root flow, so a subflow cannot change how the conversation as a whole behaves.
        let settings = &root.settings;
        let expired = settings.expiry_minutes > 0
            && s.last_activity.is_some_and(|last| {
                self.now >= last + Duration::minutes(i64::from(settings.expiry_minutes))
            });

        if let Input::Timeout = input {
            if s.state == SessionState::AwaitingInput && s.wait_until.is_some_and(|w| self.now >= w)
            {
                let Node::Wait(w) = self.current(s)?.1 else {
                    return Err(StepError::Inconsistent(
                        "a wait deadline outside a wait node".into(),
                    ));
                };
                s.wait_until = None;
                return self.go(s, &w.on_timeout);
            }
            if expired {
                self.send(Content::text(settings.expiry_message.clone()));
                return self.end(s, "expired");
            }
            return Ok(()); // a stale timer: nothing is due
        }

        if customer_input {
            if expired {
                self.send(Content::text(settings.expiry_message.clone()));
                return self.restart(s);
            }
            s.last_activity = Some(self.now);
            if let Input::Text { text } = &input
                && let Some(cmd) = self.command(root, s, text)
            {
                return self.run_command(s, cmd, text);
            }
        }

        match (&s.state, input) {
            (
                SessionState::AwaitingHttp { .. },
                Input::Text { .. } | Input::Choice { .. } | Input::Other { .. },
            ) => Ok(()),
            (
                SessionState::AwaitingHttp { request_id },
                Input::HttpResult {
                    request_id: got,
                    ok,
                    status,
                    body,
                },
            ) => {
                if *request_id != got {
                    return Err(StepError::UnexpectedHttpResult(got));
                }
                let (def, node) = self.current(s)?;
                let Node::Http(h) = node else {
                    return Err(StepError::Inconsistent(
                        "waiting for HTTP outside an http node".into(),
                    ));
                };
                self.http_result(def, h, s, ok, status, &body)
            }
            (
                SessionState::AwaitingInput,
                input @ (Input::Text { .. } | Input::Choice { .. } | Input::Other { .. }),
            ) => {
                let (def, node) = self.current(s)?;
                match node {
                    Node::Menu(m) => self.menu_reply(def, m, s, &input),
                    Node::Ask(a) => self.ask_reply(def, a, s, &input),
                    Node::Wait(w) => {
                        s.wait_until = None;
                        if let Some(var) = &w.save {
                            let v = match &input {
                                Input::Text { text } => Value::Text(text.clone()),
                                Input::Choice { id } => Value::Text(id.clone()),
                                _ => Value::Null,
                            };
                            s.vars.insert(var.clone(), v);
                        }
                        let next = def
                            .next_of(node, w.next.as_deref())
                            .ok_or_else(|| StepError::FallsOffEnd(w.id.clone()))?;
                        self.go(s, &next)
                    }
                    other => Err(StepError::Inconsistent(format!(
                        "waiting for input at `{}`, which does not take input",
                        other.id()
                    ))),
                }
            }
            (_, Input::HttpResult { request_id, .. }) => {
                Err(StepError::UnexpectedHttpResult(request_id))
            }
            _ => Ok(()),
        }
    }

    fn command(&self, root: &FlowDefinition, s: &FlowSession, text: &str) -> Option<Command> {
        let t = normalise_command(text);
        if t.is_empty() || t.len() > 40 {
            return None;
        }
        let settings = &root.settings;
        let lang = s.language.as_deref().unwrap_or(&settings.default_language);
        let local = settings
            .commands
            .get(lang)
            .or_else(|| settings.commands.get(&settings.default_language));
        let english = settings.commands.get("en");
        let has = |pick: fn(&CommandWords) -> &Vec<String>, builtin: &[&str]| {
            let configured = local.into_iter().chain(english).any(|w| {
                pick(w)
                    .iter()
                    .any(|x| x.trim().eq_ignore_ascii_case(&t) || x.trim().to_lowercase() == t)
            });
            // Built-in English words apply unless the flow configures `en` itself.
            configured || (english.is_none() && builtin.contains(&t.as_str()))
        };
        if has(|w| &w.stop, CommandWords::ENGLISH_STOP) {
            Some(Command::Stop)
        } else if has(|w| &w.agent, CommandWords::ENGLISH_AGENT) {
            Some(Command::Agent)
        } else if has(|w| &w.menu, CommandWords::ENGLISH_MENU) {
            Some(Command::Menu)
        } else {
            None
        }
    }

    fn run_command(
        &mut self,
        s: &mut FlowSession,
        cmd: Command,
        text: &str,
    ) -> Result<(), StepError> {
        let (def, node) = self.current(s)?;
        let root = self.def(&s.root)?;
        match cmd {
            Command::Stop => {
                self.send(Content::text(root.settings.opt_out_message.clone()));
                self.actions.push(Action::OptOut);
                self.end(s, "opted_out")
            }
            Command::Menu => {
                // A keyword-started session's menu is the channel's main flow, when loaded.
                if let Some(menu) = s.menu_flow.take()
                    && self.flows.flow(&menu).is_some()
                {
                    s.root = menu;
                }
                self.restart(s)
            }
            Command::Agent => {
                let reason = format!(
                    "Customer asked for a person (\"{}\") in {} at step `{}`.",
                    text.trim(),
                    def.name,
                    node.id()
                );
                self.fallback_handoff(def, s, &reason, "agent_requested")
            }
        }
    }

    fn restart(&mut self, s: &mut FlowSession) -> Result<(), StepError> {
        let root = self.def(&s.root)?;
        s.stack.clear();
        s.stack.push(Frame {
            flow: root.id.clone(),
            node: root.start.clone(),
        });
        s.retries = 0;
        s.wait_until = None;
        s.last_activity = Some(self.now);
        let start = root.start.clone();
        self.go(s, &start)
    }

    fn end(&mut self, s: &mut FlowSession, outcome: &str) -> Result<(), StepError> {
        s.state = SessionState::Ended {
            outcome: outcome.to_string(),
        };
        s.wait_until = None;
        self.actions.push(Action::End {
            outcome: outcome.to_string(),
        });
        Ok(())
    }

    fn summary_of_answers(&self, s: &FlowSession) -> String {
        let answers: Vec<String> = s
            .vars
            .iter()
            .filter(|(_, v)| !matches!(v, Value::Null | Value::List(_)))
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if answers.is_empty() {
            String::new()
        } else {
            format!(" Answers so far: {}.", answers.join("; "))
        }
    }

    /// A hand-off with the flow's defaults (used by the `agent` command, failed retries and failed HTTP calls).
    fn fallback_handoff(
        &mut self,
        def: &FlowDefinition,
        s: &mut FlowSession,
        reason: &str,
        outcome: &str,
    ) -> Result<(), StepError> {
        let root = self.def(&s.root).unwrap_or(def);
        let h = &root.settings.handoff;
        let summary = format!("{reason}{}", self.summary_of_answers(s));
        self.send(Content::text(self.render(root, s, &h.message)));
        self.actions.push(Action::Handoff {
            queue: h.queue.clone(),
            skill: h.skill.clone(),
            priority: h.priority,
            summary,
            default_wording: true,
        });
        self.actions.push(Action::End {
            outcome: outcome.to_string(),
        });
        s.state = SessionState::HandedOff;
        s.wait_until = None;
        Ok(())
    }

    fn arm_timer(&mut self, def: &FlowDefinition, s: &FlowSession) {
        let minutes = self
            .flows
            .flow(&s.root)
            .unwrap_or(def)
            .settings
            .expiry_minutes;
        let expiry = (minutes > 0).then(|| self.now + Duration::minutes(i64::from(minutes)));
        let at = match (s.wait_until, expiry) {
            (Some(w), Some(e)) => Some(w.min(e)),
            (w, e) => w.or(e),
        };
        if let Some(at) = at {
            self.actions.push(Action::ScheduleTimeout { at });
        }
    }

    fn wait_for_input(
        &mut self,
        def: &FlowDefinition,
        s: &mut FlowSession,
    ) -> Result<(), StepError> {
        s.state = SessionState::AwaitingInput;
        self.arm_timer(def, s);
        Ok(())
    }

    fn menu_items(&self, def: &FlowDefinition, s: &FlowSession, m: &MenuNode) -> Vec<Choice> {
        m.options
            .iter()
            .map(|o| Choice {
                id: o.id.clone(),
                title: self.render(def, s, &o.title),
                description: o.description.as_ref().map(|d| self.render(def, s, d)),
            })
            .collect()
    }

    fn show_menu(&mut self, def: &FlowDefinition, s: &FlowSession, m: &MenuNode) {
        let items = self.menu_items(def, s, m);
        let prompt = self.render(def, s, &m.prompt);
        self.send(Content::Choices {
            prompt,
            items,
            style: m.style,
        });
    }

    fn show_ask(&mut self, def: &FlowDefinition, s: &FlowSession, a: &AskNode) {
        let prompt = self.render(def, s, &a.prompt);
        match choices_for(&a.validate) {
            Some(items) => self.send(Content::Choices {
                prompt,
                items,
                style: ChoiceStyle::Buttons,
            }),
            None => self.send(Content::text(prompt)),
        }
    }

    fn assign(
        &self,
        def: &FlowDefinition,
        s: &mut FlowSession,
        node: &str,
        set: &Ordered<Expression>,
    ) -> Result<(), StepError> {
        for (name, src) in set.iter() {
            let v = self.eval(def, s, node, src)?;
            s.vars.insert(name.clone(), v);
        }
        Ok(())
    }

    /// Retries left: re-prompt; none left: `on_fail`, or a hand-off to a person.
    fn retry_or_fail(
        &mut self,
        def: &FlowDefinition,
        s: &mut FlowSession,
        node: &Node,
        max: Option<u32>,
        on_fail: Option<&str>,
        message: String,
    ) -> Result<(), StepError> {
        s.retries += 1;
        if s.retries > max.unwrap_or(def.settings.max_retries) {
            s.retries = 0;
            return match on_fail {
                Some(target) => self.go(s, target),
                None => {
                    let reason = format!(
                        "The customer could not answer `{}` in {} after several tries.",
                        node.id(),
                        def.name
                    );
                    self.fallback_handoff(def, s, &reason, "input_failed")
                }
            };
        }
        self.send(Content::text(message));
        match node {
            Node::Menu(m) => self.show_menu(def, s, m),
            Node::Ask(a) if choices_for(&a.validate).is_some() => self.show_ask(def, s, a),
            _ => {}
        }
        self.arm_timer(def, s);
        Ok(())
    }

    fn menu_reply(
        &mut self,
        def: &'f FlowDefinition,
        m: &'f MenuNode,
        s: &mut FlowSession,
        input: &Input,
    ) -> Result<(), StepError> {
        let picked = match input {
            Input::Choice { id } => m.options.iter().find(|o| &o.id == id),
            Input::Text { text } => {
                let items = self.menu_items(def, s, m);
                match_choice(&items, text).and_then(|c| m.options.iter().find(|o| o.id == c.id))
            }
            _ => None,
        };
        let Some(option) = picked else {
            let message = self.render(
                def,
                s,
                m.invalid
                    .as_deref()
                    .unwrap_or(&def.settings.invalid_message),
            );
            let node = def
                .node(&m.id)
                .ok_or_else(|| StepError::Inconsistent(m.id.clone()))?;
            return self.retry_or_fail(def, s, node, m.max_retries, m.on_fail.as_deref(), message);
        };
        s.retries = 0;
        if let Some(var) = &m.save {
            s.vars.insert(var.clone(), Value::Text(option.id.clone()));
        }
        self.assign(def, s, &m.id, &option.set)?;
        let node = def
            .node(&m.id)
            .ok_or_else(|| StepError::Inconsistent(m.id.clone()))?;
        let next = def
            .next_of(node, option.next.as_deref().or(m.next.as_deref()))
            .ok_or_else(|| StepError::FallsOffEnd(m.id.clone()))?;
        self.go(s, &next)
    }

    fn ask_reply(
        &mut self,
        def: &'f FlowDefinition,
        a: &'f AskNode,
        s: &mut FlowSession,
        input: &Input,
    ) -> Result<(), StepError> {
        let node = def
            .node(&a.id)
            .ok_or_else(|| StepError::Inconsistent(a.id.clone()))?;
        let reply = match input {
            Input::Text { text } => Ok(text.as_str()),
            Input::Choice { id } => Ok(id.as_str()),
            _ => Err("Please type your answer.".to_string()),
        };
        match reply.and_then(|r| validate(&a.validate, r, self.now)) {
            Ok(accepted) => {
                s.retries = 0;
                s.vars.insert(a.save.clone(), accepted.value);
                for (suffix, v) in accepted.extra {
                    s.vars.insert(format!("{}{suffix}", a.save), v);
                }
                let next = def
                    .next_of(node, a.next.as_deref())
                    .ok_or_else(|| StepError::FallsOffEnd(a.id.clone()))?;
                self.go(s, &next)
            }
            Err(why) => {
                let message = match &a.invalid {
                    Some(t) => self.render(def, s, t),
                    None => why,
                };
                self.retry_or_fail(def, s, node, a.max_retries, a.on_fail.as_deref(), message)
            }
        }
    }

    fn http_result(
        &mut self,
        def: &'f FlowDefinition,
        h: &'f HttpNode,
        s: &mut FlowSession,
        ok: bool,
        status: u16,
        body: &serde_json::Value,
    ) -> Result<(), StepError> {
        let success = ok && (200..300).contains(&status);
        for (var, path) in h.save.iter() {
            let v = if path == "$status" {
                Value::Number(f64::from(status))
            } else if success {
                lookup_json(body, path).map_or(Value::Null, Value::from_json)
            } else {
                continue;
            };
            s.vars.insert(var.clone(), v);
        }
        let node = def
            .node(&h.id)
            .ok_or_else(|| StepError::Inconsistent(h.id.clone()))?;
        if success {
            let next = def
                .next_of(node, h.next.as_deref())
                .ok_or_else(|| StepError::FallsOffEnd(h.id.clone()))?;
            return self.go(s, &next);
        }
        match &h.on_error {
            Some(target) => self.go(s, target),
            None => {
                let reason = format!(
                    "An automated lookup failed (status {status}) at `{}` in {}.",
                    h.id, def.name
                );
                self.fallback_handoff(def, s, &reason, "http_failed")
            }
        }
    }

    /// Moves to `target` in the current flow and runs nodes until the session has to wait.
    fn go(&mut self, s: &mut FlowSession, target: &str) -> Result<(), StepError> {
        let mut target = target.to_string();
        loop {
            self.hops += 1;
            if self.hops > MAX_HOPS {
                return Err(StepError::TooManyHops);
            }
            let frame = s
                .stack
                .last_mut()
                .ok_or_else(|| StepError::Inconsistent("empty call stack".into()))?;
            frame.node.clone_from(&target);
            let flow_id = frame.flow.clone();
            let def = self.def(&flow_id)?;
            let node = def.node(&target).ok_or_else(|| StepError::UnknownNode {
                flow: flow_id.clone(),
                node: target.clone(),
            })?;
            s.retries = 0;
            let next_after = |explicit: Option<&str>| {
                def.next_of(node, explicit)
                    .ok_or_else(|| StepError::FallsOffEnd(node.id().to_string()))
            };
            target = match node {
                Node::Send(n) => {
                    if let Some(t) = &n.template {
                        let variables =
                            t.variables.iter().map(|v| self.render(def, s, v)).collect();
                        self.send(Content::Template {
                            name: t.name.clone(),
                            language: t.language.clone(),
                            variables,
                        });
                    }
                    if let Some(t) = &n.text {
                        let body = self.render(def, s, t);
                        self.send(Content::text(body));
                    }
                    if let Some(m) = &n.media {
                        let url = self.render(def, s, &m.url);
                        let caption = m.caption.as_ref().map(|c| self.render(def, s, c));
                        let media = MediaRef {
                            url: Some(url),
                            filename: m.filename.clone(),
                            ..MediaRef::default()
                        };
                        self.send(Content::Media {
                            kind: m.kind,
                            media,
                            caption,
                        });
                    }
                    next_after(n.next.as_deref())?
                }
                Node::Menu(m) => {
                    self.show_menu(def, s, m);
                    return self.wait_for_input(def, s);
                }
                Node::Ask(a) => {
                    self.show_ask(def, s, a);
                    return self.wait_for_input(def, s);
                }
                Node::Wait(w) => {
                    if let Some(t) = &w.text {
                        let body = self.render(def, s, t);
                        self.send(Content::text(body));
                    }
                    let secs = i64::try_from(w.timeout_seconds)
                        .unwrap_or(i64::MAX)
                        .min(366 * 86_400);
                    s.wait_until = Some(self.now + Duration::seconds(secs));
                    return self.wait_for_input(def, s);
                }
                Node::Set(n) => {
                    self.assign(def, s, &n.id, &n.set)?;
                    for (key, src) in n.contact.iter() {
                        let v = self.eval(def, s, &n.id, src)?;
                        self.actions.push(Action::SetContactAttribute {
                            key: key.clone(),
                            value: v.to_json(),
                        });
                        if key == "language"
                            && let Value::Text(l) = &v
                        {
                            s.language = Some(l.clone());
                        }
                        s.contact.insert(key.clone(), v);
                    }
                    next_after(n.next.as_deref())?
                }
                Node::Branch(b) => {
                    let mut chosen = None;
                    for c in &b.cases {
                        match self.eval(def, s, &b.id, &c.when)? {
                            Value::Bool(true) => {
                                chosen = Some(c.next.clone());
                                break;
                            }
                            Value::Bool(false) => {}
                            _ => return Err(StepError::NotABoolean(b.id.clone())),
                        }
                    }
                    chosen.unwrap_or_else(|| b.otherwise.clone())
                }
                Node::Record(r) => {
                    let mut data = serde_json::Map::new();
                    for (field, src) in r.data.iter() {
                        data.insert(field.clone(), self.eval(def, s, &r.id, src)?.to_json());
                    }
                    self.actions.push(Action::RecordData {
                        kind: r.kind.clone(),
                        data: serde_json::Value::Object(data),
                    });
                    next_after(r.next.as_deref())?
                }
                Node::Http(h) => {
                    let ctx = self.ctx(def, s, &h.id);
                    let url = render_url(&h.url, &ctx);
                    let headers = h
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), template::render(v, &ctx)))
                        .collect();
                    let body = h.body.as_ref().map(|b| render_json(b, &ctx));
                    let request_id = format!("{}:{}", s.id, s.seq);
                    let method = serde_json::to_value(h.method)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_else(|| "GET".into());
                    self.actions.push(Action::HttpRequest {
                        request_id: request_id.clone(),
                        method,
                        url,
                        headers,
                        body,
                        timeout_ms: h.timeout_ms.clamp(1, 30_000),
                    });
                    s.state = SessionState::AwaitingHttp { request_id };
                    return Ok(());
                }
                Node::Handoff(h) => {
                    let d = &def.settings.handoff;
                    let message = self.render(def, s, h.message.as_deref().unwrap_or(&d.message));
                    let summary = match &h.summary {
                        Some(t) => self.render(def, s, t),
                        None => format!(
                            "Handed off from {} at `{}`.{}",
                            def.name,
                            h.id,
                            self.summary_of_answers(s)
                        ),
                    };
                    self.send(Content::text(message));
                    self.actions.push(Action::Handoff {
                        queue: h.queue.clone().unwrap_or_else(|| d.queue.clone()),
                        skill: h.skill.clone().or_else(|| d.skill.clone()),
                        priority: h.priority.unwrap_or(d.priority),
                        summary,
                        default_wording: h.message.is_none(),
                    });
                    self.actions.push(Action::End {
                        outcome: h.outcome.clone().unwrap_or_else(|| "handoff".into()),
                    });
                    s.state = SessionState::HandedOff;
                    s.wait_until = None;
                    return Ok(());
                }
                Node::Subflow(sf) => {
                    if s.stack.len() >= MAX_CALL_DEPTH {
                        return Err(StepError::CallStackTooDeep);
                    }
                    let sub = self.def(&sf.flow)?;
                    s.stack.push(Frame {
                        flow: sub.id.clone(),
                        node: sub.start.clone(),
                    });
                    sub.start.clone()
                }
                Node::Return(_) => {
                    s.stack.pop();
                    let Some(parent) = s.stack.last() else {
                        // Returning from the root flow ends the conversation with the bot.
                        s.stack.push(Frame {
                            flow: flow_id,
                            node: target.clone(),
                        });
                        return self.end(s, "completed");
                    };
                    let pdef = self.def(&parent.flow)?;
                    let call = pdef
                        .node(&parent.node)
                        .ok_or_else(|| StepError::UnknownNode {
                            flow: parent.flow.clone(),
                            node: parent.node.clone(),
                        })?;
                    let Node::Subflow(sf) = call else {
                        return Err(StepError::Inconsistent(format!(
                            "caller `{}` is not a subflow node",
                            parent.node
                        )));
                    };
                    pdef.next_of(call, sf.next.as_deref())
                        .ok_or_else(|| StepError::FallsOffEnd(sf.id.clone()))?
                }
                Node::End(e) => {
                    if let Some(t) = &e.text {
                        let body = self.render(def, s, t);
                        self.send(Content::text(body));
                    }
                    let outcome = e.outcome.clone().unwrap_or_else(|| "completed".into());
                    return self.end(s, &outcome);
                }
            };
        }
    }
}

/// Reads a dotted path (`account.balance`, `items.0.name`) from JSON.
pub fn lookup_json<'a>(body: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut cur = body;
    for seg in path.split('.').filter(|p| !p.is_empty()) {
        cur = match cur {
            serde_json::Value::Object(o) => o.get(seg)?,
            serde_json::Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Renders a URL template: `vars`/`contact` values are percent-encoded (they cannot add path
/// segments or query parameters); `env` values are deployment settings and go in as written.
fn render_url(t: &str, ctx: &Context<'_>) -> String {
    let Ok(segments) = template::parse(t) else {
        return t.to_string();
    };
    let mut out = String::with_capacity(t.len() + 16);
    for seg in segments {
        match seg {
            template::Segment::Text(x) => out.push_str(x),
            template::Segment::Path(root @ expr::Root::Env, name) => {
                out.push_str(&ctx.lookup(root, name).to_string())
            }
            template::Segment::Path(root, name) => {
                for b in ctx.lookup(root, name).to_string().bytes() {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        out.push(b as char);
                    } else {
                        out.push_str(&format!("%{b:02X}"));
                    }
                }
            }
        }
    }
    out
}

/// Renders templates inside a JSON body; a string that is exactly one placeholder keeps the
/// value's JSON type (numbers stay numbers, money becomes a decimal string).
fn render_json(v: &serde_json::Value, ctx: &Context<'_>) -> serde_json::Value {
    match v {
        serde_json::Value::String(s) => match template::whole_path(s) {
            Some((root, name)) => ctx.lookup(root, name).to_json(),
            None => serde_json::Value::String(template::render(s, ctx)),
        },
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.iter().map(|x| render_json(x, ctx)).collect())
        }
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), render_json(x, ctx)))
                .collect(),
        ),
        other => other.clone(),
    }
}
