//! Use cases the HTTP layer (and the CLI) call: log in, reply, assign, resolve, create users,
//! and the web chat visitor's side. Each checks permissions and input, then calls storage and
//! announces the committed events.

use switchboard_channels::webchat::{self, ChatMessage, ClientFrame};
use switchboard_core::ports::{IngestItem, IngestOutcome, Lane, NewOutbound, Session, StoreError};
use switchboard_core::{
    Channel, ChannelId, ChannelKind, ContactId, Content, ConversationId, ConversationState,
    ConversationSummary, Email, Message, MessageId, NewUser, Role, Sender, Tenant, User, UserId,
};

use crate::ingest::IngestError;
use crate::{App, auth, now};

/// Why a use case refused or failed. The HTTP layer maps each variant to a status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Unknown id (or another tenant's).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Bad input; the message says how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// Clashes with existing data.
    #[error("{0}")]
    Conflict(String),
    /// Wrong credentials or no session.
    #[error("{0}")]
    Unauthorized(String),
    /// Not allowed for this role.
    #[error("{0}")]
    Forbidden(String),
    /// A free-form message cannot go out on this channel now (WhatsApp's 24 h window is
    /// closed); only a template can.
    #[error("{0}")]
    TemplateRequired(String),
    /// The customer cannot be reached on this channel (e.g. they blocked the bot).
    #[error("{0}")]
    Unreachable(String),
    /// Too many failed attempts: refused until the lock ends.
    #[error("{message}")]
    Throttled {
        /// What happened and how to go on.
        message: String,
        /// Seconds until the lock ends (`Retry-After`).
        retry_after_secs: u64,
    },
    /// Temporarily unable (database down, shutting down): try again.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            StoreError::Conflict(m) => ServiceError::Conflict(m),
            StoreError::Invalid(m) => ServiceError::Invalid(m),
            StoreError::Backend(m) => {
                ServiceError::Unavailable(format!("database unavailable: {m}"))
            }
        }
    }
}

impl From<IngestError> for ServiceError {
    fn from(e: IngestError) -> Self {
        ServiceError::Unavailable(e.to_string())
    }
}

/// Result of the use cases.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// Who.
    pub user: User,
    /// Their business.
    pub tenant: Tenant,
    /// Cookie value (given to the browser once, stored only hashed).
    pub token: String,
    /// Anti-CSRF token for the page.
    pub csrf_token: String,
}

/// A contact as staff see it: identities and conversations on every channel.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContactOverview {
    /// The contact.
    pub contact: switchboard_core::Contact,
    /// Its addresses on each channel.
    pub identities: Vec<switchboard_core::Identity>,
    /// Its conversations, most recent activity first.
    pub conversations: Vec<ConversationSummary>,
}

/// An authenticated staff request's identity.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The user.
    pub user: User,
    /// Their session.
    pub session: Session,
}

/// A web chat page's identity after `hello`.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The web chat channel.
    pub channel: Channel,
    /// The business.
    pub tenant: Tenant,
    /// Stable visitor id.
    pub visitor_id: String,
    /// Token to keep in the browser.
    pub token: String,
}

/// The outcome of a customer's web chat message.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Stored message id.
    pub message_id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Whether it had been stored before.
    pub duplicate: bool,
    /// The stored message (None for duplicates).
    pub message: Option<Message>,
}

// A fixed argon2id hash checked when the e-mail is unknown, so that a login for a
// non-existent account takes as long as one with a wrong password (no user enumeration
// by timing). Its password is random and unknown.
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2y8CRSgSNuKCsqvbBbX/kz0Hz8Vb5xrEyA8u/RzRWdE";

impl App {
    /// Creates a staff user after checking e-mail, name and password policy, and records
    /// who created them in the audit log.
    pub async fn create_user_as(
        &self,
        actor: &crate::audit::Actor,
        tenant: switchboard_core::TenantId,
        email: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> ServiceResult<User> {
        let email = Email::parse(email).map_err(ServiceError::Invalid)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ServiceError::Invalid(
                "name must be 1-100 characters".into(),
            ));
        }
        auth::check_password_policy(password).map_err(ServiceError::Invalid)?;
        let pw = password.to_string();
        let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
            .await
            .map_err(|e| anyhow::anyhow!("hashing task: {e}"))??;
        let user = self
            .store
            .create_user(
                NewUser {
                    tenant_id: tenant,
                    email,
                    name: name.to_string(),
                    role,
                    password_hash,
                },
                now(),
            )
            .await?;
        self.audit(
            tenant,
            actor,
            crate::audit::action::USER_CREATE,
            format!("user:{}", user.id),
            serde_json::json!({"role": user.role.as_str()}),
        )
        .await?;
        Ok(user)
    }

    /// A conversation of the staff member's tenant.
    pub async fn conversation_for(
        &self,
        staff: &User,
        id: ConversationId,
    ) -> ServiceResult<ConversationSummary> {
        self.store
            .conversation(staff.tenant_id, id)
            .await?
            .ok_or(ServiceError::NotFound("conversation"))
    }

    /// An agent's reply: stored with its outbox row, then sent by the sender worker. A
    /// conversation that nobody owns yet is assigned to the agent who answers it.
    pub async fn reply(
        &self,
        staff: &User,
        conversation: ConversationId,
        text: &str,
    ) -> ServiceResult<Message> {
        self.reply_with(staff, conversation, Content::text(text))
            .await
    }

    /// The checks of [`App::reply_with`] without writing anything: the conversation is the
    /// staff member's and open, the content can go on its channel now (template support,
    /// WhatsApp's 24 h window), the customer is reachable and has not opted out. Routes that
    /// store something first (attachments) call it before writing.
    pub async fn check_reply(
        &self,
        staff: &User,
        conversation: ConversationId,
        content: &Content,
    ) -> ServiceResult<ConversationSummary> {
        content.validate_outbound().map_err(ServiceError::Invalid)?;
        let conv = self.conversation_for(staff, conversation).await?;
        if conv.conversation.state == ConversationState::Resolved {
            return Err(ServiceError::Invalid(
                "this conversation is resolved; it reopens when the customer writes again".into(),
            ));
        }
        if matches!(content, Content::Template { .. })
            && !conv.channel_kind.capabilities().templates
        {
            return Err(ServiceError::Invalid(format!(
                "{} channels have no templates; send text",
                conv.channel_kind
            )));
        }
        if !crate::channels::window_allows(
            conv.channel_kind,
            content,
            conv.conversation.last_inbound_at,
            now(),
        ) {
            return Err(ServiceError::TemplateRequired(
                crate::channels::WINDOW_CLOSED.to_string(),
            ));
        }
        if let Some(reason) = self.unreachable_reason(&conv).await? {
            return Err(ServiceError::Unreachable(reason));
        }
        // A template is proactive (privacy::is_proactive): refused at once to a customer who
        // opted out; the sender would refuse it anyway.
        self.ensure_proactive_allowed(conversation, Lane::Live, content)
            .await?;
        Ok(conv)
    }

    /// An agent's reply with any sendable content (text or a WhatsApp template). A
    /// free-form message outside WhatsApp's 24 h window is refused here, before anything is
    /// queued, with [`ServiceError::TemplateRequired`].
    pub async fn reply_with(
        &self,
        staff: &User,
        conversation: ConversationId,
        content: Content,
    ) -> ServiceResult<Message> {
        let conv = self.check_reply(staff, conversation, &content).await?;
        if conv.conversation.assignee.is_none() {
            // Replying takes the conversation: routing's rules (presence, capacity, skills)
            // apply as for `assign`, before anything is stored.
            self.assign_to(staff, conversation, None, false).await?;
        }
        let (message, events) = self
            .store
            .enqueue_outbound(
                staff.tenant_id,
                conversation,
                NewOutbound {
                    sender: Sender::Agent {
                        user_id: staff.id,
                        name: staff.name.clone(),
                    },
                    content,
                    lane: Lane::Live,
                },
                now(),
            )
            .await?;
        self.bus.publish(&events);
        self.wake_sender();
        // Stops the queue's first-response SLA clock (routing); only the first reply counts.
        self.store
            .record_first_response(staff.tenant_id, conversation, message.created_at)
            .await?;
        Ok(message)
    }

    /// Why the customer of a conversation cannot be reached on its channel, if they cannot.
    async fn unreachable_reason(
        &self,
        conv: &ConversationSummary,
    ) -> ServiceResult<Option<String>> {
        let c = &conv.conversation;
        Ok(self
            .store
            .contact(c.tenant_id, c.contact_id)
            .await?
            .and_then(|(_, ids)| {
                ids.into_iter()
                    .find(|i| i.channel_id == c.channel_id)
                    .and_then(|i| i.unreachable)
            }))
    }

    /// A contact with its identities (reachability, how each was linked) and its
    /// conversations on every channel; `NotFound` for another tenant's id.
    pub async fn contact_overview(
        &self,
        staff: &User,
        id: ContactId,
    ) -> ServiceResult<ContactOverview> {
        let (contact, identities) = self
            .store
            .contact(staff.tenant_id, id)
            .await?
            .ok_or(ServiceError::NotFound("contact"))?;
        let conversations = self
            .store
            .contact_conversations(staff.tenant_id, id)
            .await?;
        Ok(ContactOverview {
            contact,
            identities,
            conversations,
        })
    }

    /// Merges contact `other` into `id` (any staff role): identities, conversations and
    /// history move to `id`; the merge is recorded with the staff member for audit and
    /// logged. `NotFound` for an unknown or foreign id.
    pub async fn merge_contacts(
        &self,
        staff: &User,
        id: ContactId,
        other: ContactId,
    ) -> ServiceResult<ContactOverview> {
        let merge = self
            .store
            .merge_contacts(staff.tenant_id, id, other, Some(staff.id), now())
            .await?;
        tracing::info!(tenant_id = %staff.tenant_id, user_id = %staff.id, survivor = %merge.survivor, merged = %merge.merged, conversations = merge.conversations.len(), "contacts merged by staff");
        self.bus.publish(&merge.events);
        self.contact_overview(staff, id).await
    }

    /// Assigns a conversation ([`App::assign_to`] without forcing). Agents may take
    /// conversations for themselves; supervisors and admins may assign anyone of their tenant.
    pub async fn assign(
        &self,
        staff: &User,
        conversation: ConversationId,
        to: Option<UserId>,
    ) -> ServiceResult<ConversationSummary> {
        // Routing's checks (presence, capacity, skills) apply; see `assign_to`.
        self.assign_to(staff, conversation, to, false).await
    }

    /// Resolves a conversation.
    pub async fn resolve(
        &self,
        staff: &User,
        conversation: ConversationId,
    ) -> ServiceResult<ConversationSummary> {
        // Through routing: the queue's wrap-up rules apply and the freed slot is reused.
        self.resolve_with(staff, conversation, None).await
    }

    /// A web chat channel by id, or NotFound (also for ids of other channel kinds).
    pub async fn webchat_channel(&self, id: ChannelId) -> ServiceResult<(Channel, Tenant)> {
        if let Some(hit) = self.channel_cache.get(&id) {
            return Ok(hit);
        }
        let channel = self
            .store
            .channel(id)
            .await?
            .filter(|c| c.kind == ChannelKind::Webchat)
            .ok_or(ServiceError::NotFound("web chat channel"))?;
        let tenant = self
            .store
            .tenant(channel.tenant_id)
            .await?
            .ok_or(ServiceError::NotFound("tenant"))?;
        self.channel_cache
            .put(id, (channel.clone(), tenant.clone()));
        Ok((channel, tenant))
    }

    /// A visitor id by token hash, through the cache.
    async fn lookup_visitor(
        &self,
        channel_id: ChannelId,
        token_hash: String,
    ) -> ServiceResult<Option<String>> {
        let key = (channel_id, token_hash);
        if let Some(v) = self.visitor_cache.get(&key) {
            return Ok(Some(v));
        }
        let found = self.store.webchat_visitor(channel_id, &key.1).await?;
        Ok(found.map(|v| {
            self.visitor_cache.put(key, v.visitor_id.clone());
            v.visitor_id
        }))
    }

    /// Identifies a web chat page by its token, or registers a new visitor when the token
    /// is missing or unknown.
    pub async fn webchat_visitor(
        &self,
        channel_id: ChannelId,
        token: Option<&str>,
    ) -> ServiceResult<Visitor> {
        let (channel, tenant) = self.webchat_channel(channel_id).await?;
        if let Some(t) = token.filter(|t| !t.is_empty())
            && let Some(visitor_id) = self.lookup_visitor(channel_id, auth::token_hash(t)).await?
        {
            return Ok(Visitor {
                channel,
                tenant,
                visitor_id,
                token: t.to_string(),
            });
        }
        let token = auth::random_token();
        let v = self
            .store
            .create_webchat_visitor(channel_id, &auth::token_hash(&token), now())
            .await?;
        Ok(Visitor {
            channel,
            tenant,
            visitor_id: v.visitor_id,
            token,
        })
    }

    /// A known visitor by token, or Unauthorized.
    pub async fn webchat_known_visitor(
        &self,
        channel_id: ChannelId,
        token: &str,
    ) -> ServiceResult<Visitor> {
        let (channel, tenant) = self.webchat_channel(channel_id).await?;
        let visitor_id = self
            .lookup_visitor(channel_id, auth::token_hash(token))
            .await?
            .ok_or_else(|| {
                ServiceError::Unauthorized(
                    "unknown web chat token: create a session with POST /chat/{channel}/session"
                        .into(),
                )
            })?;
        Ok(Visitor {
            channel,
            tenant,
            visitor_id,
            token: token.to_string(),
        })
    }

    /// The visitor's conversation so far (newest 200 messages), oldest first.
    pub async fn webchat_history(
        &self,
        visitor: &Visitor,
    ) -> ServiceResult<(Option<ConversationId>, Vec<ChatMessage>)> {
        let conv = self
            .store
            .webchat_conversation(visitor.channel.id, &visitor.visitor_id)
            .await?;
        match conv {
            Some(c) => {
                let msgs = self
                    .store
                    .list_messages(visitor.tenant.id, c.id, 200)
                    .await?;
                Ok((Some(c.id), msgs.iter().map(ChatMessage::from).collect()))
            }
            None => Ok((None, Vec::new())),
        }
    }

    /// Stores a customer's web chat frame (message or choice) through the ingest pipeline.
    pub async fn webchat_receive(
        &self,
        visitor: &Visitor,
        frame: ClientFrame,
    ) -> ServiceResult<Accepted> {
        let received_at = now();
        let msg = webchat::to_inbound(&visitor.visitor_id, frame, received_at)
            .ok_or_else(|| ServiceError::Invalid("this frame carries no message".into()))?;
        let ingestor = self
            .ingestor()
            .ok_or_else(|| ServiceError::Unavailable("the server is starting".into()))?;
        let outcome = ingestor
            .ingest(IngestItem {
                tenant_id: visitor.tenant.id,
                channel_id: visitor.channel.id,
                message: msg,
                new_conversation_state: crate::flows_runtime::initial_state(&visitor.channel),
                received_at,
            })
            .await?;
        Ok(match outcome {
            IngestOutcome::Stored { message, .. } => Accepted {
                message_id: message.id,
                conversation_id: message.conversation_id,
                duplicate: false,
                message: Some(message),
            },
            IngestOutcome::Duplicate {
                message_id,
                conversation_id,
            } => Accepted {
                message_id,
                conversation_id,
                duplicate: true,
                message: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::DUMMY_HASH;

    #[test]
    fn the_dummy_hash_is_a_well_formed_argon2id_hash() {
        // If it did not parse, a login for an unknown e-mail would skip the argon2 work and
        // answer faster than a wrong password, revealing which accounts exist.
        let parsed = argon2::password_hash::phc::PasswordHash::new(DUMMY_HASH);
        assert!(parsed.is_ok(), "{parsed:?}");
        assert!(!crate::auth::verify_password("anything", DUMMY_HASH));
    }
}
