//! The agent desk's live extras: the inbox view counts, typing state in both directions and
//! the WhatsApp template catalogue.
//!
//! Typing is best effort and never enters the outbox. An agent's typing reaches the
//! customer's channel at most once per [`TYPING_EVERY`] per conversation: Telegram
//! `sendChatAction`, WhatsApp's typing indicator (sent with a read mark of the customer's
//! latest message), Signal `sendTyping`, or a `typing` frame on the web chat page. The
//! provider call runs in the background and a failure is logged and dropped. A web chat or
//! Signal customer's typing reaches the desks as a [`TypingSignal`] on the event socket: not a
//! numbered event, since there is nothing to replay after a reconnect.
//!
//! With several nodes, every notice that went out on one node is also handed to the
//! [`TypingRelay`] (plain NATS, `bus_nats::TypingNatsRelay`): the other nodes show a
//! customer's typing on their desks, an agent's on their web chat pages, and count it in their
//! throttles, so the 5 s limit holds across nodes too (give or take one NATS round trip).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use switchboard_channels::TemplateInfo;
use switchboard_channels::webchat::ServerFrame;
use switchboard_core::ports::DeskCounts;
use switchboard_core::{
    ChannelId, ChannelKind, ConversationId, ConversationState, Direction, TenantId, User,
};
use tokio::sync::broadcast;

use crate::cache::TtlCache;
use crate::services::{ServiceError, ServiceResult};
use crate::webchat::WebchatHub;
use crate::{App, now};

/// At most one typing notice per conversation and direction in this interval (Telegram
/// shows "typing…" for 5 s; the web chat page and the desk hide it after 6 s).
pub const TYPING_EVERY: Duration = Duration::from_secs(5);

/// How long a channel's template catalogue is kept before the provider is asked again.
pub const TEMPLATES_TTL: Duration = Duration::from_secs(300);

/// Conversations remembered per throttle map before old entries are dropped.
const THROTTLE_ENTRIES: usize = 10_000;

/// A customer is typing in a conversation (web chat, Signal), for the desks of its tenant.
#[derive(Debug, Clone, Serialize)]
pub struct TypingSignal {
    /// The business.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// The conversation.
    pub conversation_id: ConversationId,
}

/// Who is typing, in a notice relayed between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "who", rename_all = "snake_case")]
pub enum Typist {
    /// The customer (web chat); the desks show it.
    Customer,
    /// An agent; `webchat` says whether the customer's page shows it (other channels were told
    /// by the node the agent uses, so the others only count it in their throttle).
    Agent {
        /// The agent's name, as the web chat page shows it.
        name: String,
        /// Whether the conversation is a web chat one.
        webchat: bool,
    },
}

/// A typing notice that went out on one node, for the others (never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingNotice {
    /// The business.
    pub tenant_id: TenantId,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Who is typing.
    #[serde(flatten)]
    pub typist: Typist,
}

/// Carries typing notices to the other nodes.
pub trait TypingRelay: Send + Sync + 'static {
    /// Announces `notice` to the other nodes (fire and forget; must not block).
    fn publish(&self, notice: &TypingNotice);
}

/// What an agent's typing notice did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypingOutcome {
    /// Handed to the channel (the provider call runs in the background).
    Sent,
    /// One was sent less than [`TYPING_EVERY`] ago; this one is dropped.
    Throttled,
    /// The channel has no typing state (or no message to mark read yet).
    Unsupported,
}

/// Shared state of the desk extras: the typing throttles and signal, the template cache.
pub struct DeskLive {
    typing: broadcast::Sender<TypingSignal>,
    agent_typing: Mutex<HashMap<ConversationId, Instant>>,
    customer_typing: Mutex<HashMap<ConversationId, Instant>>,
    templates: TtlCache<ChannelId, Vec<TemplateInfo>>,
    relay: OnceLock<Arc<dyn TypingRelay>>,
}

impl Default for DeskLive {
    fn default() -> Self {
        let (typing, _) = broadcast::channel(1024);
        DeskLive {
            typing,
            agent_typing: Mutex::new(HashMap::new()),
            customer_typing: Mutex::new(HashMap::new()),
            templates: TtlCache::new(Some(TEMPLATES_TTL), 1_000),
            relay: OnceLock::new(),
        }
    }
}

impl DeskLive {
    /// Customer typing signals from now on (every tenant: filter by tenant).
    pub fn subscribe_typing(&self) -> broadcast::Receiver<TypingSignal> {
        self.typing.subscribe()
    }

    /// Hands this node's typing notices to `relay` from now on (set once, at start-up, when
    /// several nodes share NATS).
    pub fn set_relay(&self, relay: Arc<dyn TypingRelay>) {
        let _ = self.relay.set(relay);
    }

    fn relay(&self, notice: TypingNotice) {
        if let Some(relay) = self.relay.get() {
            relay.publish(&notice);
        }
    }

    /// A notice that went out on another node: counts it in this node's throttle and shows it
    /// to this node's desks (customer typing) or web chat pages (agent typing).
    pub fn receive_relayed(&self, hub: &WebchatHub, notice: TypingNotice) {
        match notice.typist {
            Typist::Customer => {
                record(&self.customer_typing, notice.conversation_id);
                let _ = self.typing.send(TypingSignal {
                    tenant_id: notice.tenant_id,
                    conversation_id: notice.conversation_id,
                });
            }
            Typist::Agent { name, webchat } => {
                record(&self.agent_typing, notice.conversation_id);
                if webchat {
                    hub.deliver(notice.conversation_id, &ServerFrame::Typing { name });
                }
            }
        }
    }
}

/// Records a notice for `conversation` sent elsewhere just now.
fn record(map: &Mutex<HashMap<ConversationId, Instant>>, conversation: ConversationId) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    insert(&mut map, conversation, Instant::now());
}

/// Records a notice for `conversation` at `now` (dropping stale entries when the map is full).
fn insert(map: &mut HashMap<ConversationId, Instant>, conversation: ConversationId, now: Instant) {
    if map.len() >= THROTTLE_ENTRIES {
        map.retain(|_, at| now.duration_since(*at) < TYPING_EVERY);
    }
    map.insert(conversation, now);
}

/// Whether a typing notice for `conversation` may go now; records it when it may.
fn due(map: &Mutex<HashMap<ConversationId, Instant>>, conversation: ConversationId) -> bool {
    let now = Instant::now();
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if map
        .get(&conversation)
        .is_some_and(|at| now.duration_since(*at) < TYPING_EVERY)
    {
        return false;
    }
    insert(&mut map, conversation, now);
    true
}

impl App {
    /// How many open conversations each desk view holds for `staff`: `mine`, `my_queues`,
    /// `unassigned` and `all` (the route shows `all` to supervisors only).
    pub async fn desk_counts(&self, staff: &User) -> ServiceResult<DeskCounts> {
        let t = staff.tenant_id;
        let me = crate::routing::settings_or_default(
            &self.store.agent_settings(t, now()).await?,
            staff.id,
            now(),
        );
        Ok(self.store.desk_counts(t, staff.id, &me.queues).await?)
    }

    /// An agent is typing in `conversation`: tells the customer where the channel can
    /// (throttled, best effort; see the module docs). `Invalid` for a resolved conversation.
    pub async fn agent_typing(
        &self,
        staff: &User,
        conversation: ConversationId,
    ) -> ServiceResult<TypingOutcome> {
        let conv = self.conversation_for(staff, conversation).await?;
        if conv.conversation.state == ConversationState::Resolved {
            return Err(ServiceError::Invalid(
                "this conversation is resolved; nobody is waiting for an answer".into(),
            ));
        }
        if !due(&self.desk.agent_typing, conversation) {
            return Ok(TypingOutcome::Throttled);
        }
        if conv.channel_kind == ChannelKind::Webchat {
            self.webchat.deliver(
                conversation,
                &ServerFrame::Typing {
                    name: staff.name.clone(),
                },
            );
            self.desk.relay(TypingNotice {
                tenant_id: staff.tenant_id,
                conversation_id: conversation,
                typist: Typist::Agent {
                    name: staff.name.clone(),
                    webchat: true,
                },
            });
            return Ok(TypingOutcome::Sent);
        }
        let c = &conv.conversation;
        let Some(channel) = self
            .store
            .channel(c.channel_id)
            .await?
            .filter(|ch| ch.tenant_id == staff.tenant_id && ch.paused.is_none())
        else {
            return Ok(TypingOutcome::Unsupported);
        };
        let Some(to) = self
            .store
            .contact(c.tenant_id, c.contact_id)
            .await?
            .and_then(|(_, ids)| {
                ids.into_iter()
                    .find(|i| i.channel_id == c.channel_id && i.unreachable.is_none())
            })
            .map(|i| i.external_id)
        else {
            return Ok(TypingOutcome::Unsupported);
        };
        // WhatsApp shows typing with a read mark of the customer's latest message.
        let last_inbound = if channel.kind == ChannelKind::Whatsapp {
            let recent = self.store.list_messages(c.tenant_id, c.id, 20).await?;
            match recent
                .into_iter()
                .rev()
                .find(|m| m.direction == Direction::Inbound && m.provider_id.is_some())
                .and_then(|m| m.provider_id)
            {
                Some(id) => Some(id),
                None => return Ok(TypingOutcome::Unsupported),
            }
        } else {
            None
        };
        let adapter = match self.channels.adapter(&channel) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(channel_id = %channel.id, error = %e, "no adapter for typing");
                return Ok(TypingOutcome::Unsupported);
            }
        };
        self.desk.relay(TypingNotice {
            tenant_id: staff.tenant_id,
            conversation_id: conversation,
            typist: Typist::Agent {
                name: staff.name.clone(),
                webchat: false,
            },
        });
        let channel_id = channel.id;
        tokio::spawn(async move {
            if let Err(e) = adapter.typing(&to, last_inbound.as_deref()).await {
                tracing::debug!(%channel_id, %conversation, error = %e.message, "typing notice dropped");
            }
        });
        Ok(TypingOutcome::Sent)
    }

    /// A customer is typing in `conversation`: the desks on every node hear it (throttled;
    /// nothing is stored).
    pub fn customer_typing(&self, tenant: TenantId, conversation: ConversationId) {
        if due(&self.desk.customer_typing, conversation) {
            // No subscriber is fine: no desk is watching.
            let _ = self.desk.typing.send(TypingSignal {
                tenant_id: tenant,
                conversation_id: conversation,
            });
            self.desk.relay(TypingNotice {
                tenant_id: tenant,
                conversation_id: conversation,
                typist: Typist::Customer,
            });
        }
    }

    /// The message templates an agent may send on a channel of their tenant: WhatsApp's
    /// approved templates (cached for [`TEMPLATES_TTL`]); none for channels without
    /// templates. `NotFound` for another tenant's channel; `Invalid` when the WhatsApp
    /// channel lacks its business account id; `Unavailable` when the provider fails.
    pub async fn channel_templates(
        &self,
        staff: &User,
        channel: ChannelId,
    ) -> ServiceResult<Vec<TemplateInfo>> {
        let ch = self
            .store
            .channel(channel)
            .await?
            .filter(|c| c.tenant_id == staff.tenant_id)
            .ok_or(ServiceError::NotFound("channel"))?;
        if !ch.kind.capabilities().templates {
            return Ok(Vec::new());
        }
        if let Some(hit) = self.desk.templates.get(&channel) {
            return Ok(hit);
        }
        let adapter = self
            .channels
            .adapter(&ch)
            .map_err(|e| ServiceError::Invalid(format!("channel is misconfigured: {e}")))?;
        let list = adapter.templates().await.map_err(|e| {
            if e.code.as_deref() == Some("business_account_id_missing") {
                ServiceError::Invalid(e.message)
            } else {
                ServiceError::Unavailable(format!(
                    "the provider did not list the templates: {}",
                    e.message
                ))
            }
        })?;
        self.desk.templates.put(channel, list.clone());
        Ok(list)
    }
}
