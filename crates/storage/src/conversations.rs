//! Conversations: the inbox, message history, contacts, assignment and state transitions.
//! Also the helpers other modules use to lock, save and describe a conversation inside
//! their own transaction.

use sqlx::AnyConnection;
use switchboard_core::ports::{ConversationFilter, StoreError, StoreResult};
use switchboard_core::{
    Contact, ContactId, Conversation, ConversationId, ConversationState, ConversationSummary,
    Event, EventKind, Identity, Message, TenantId, Timestamp, Transition, UserId,
};

use crate::rows::{self, CONTACT_COLS, IDENTITY_COLS, MESSAGE_COLS, SUMMARY_SELECT};
use crate::sql::{DbResult, Sql, is_unique_violation, ms};
use crate::{Backend, SqlStore, events};

/// Default and maximum page size of list calls.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

fn page(limit: u32) -> i64 {
    i64::from(if limit == 0 {
        DEFAULT_LIMIT
    } else {
        limit.min(MAX_LIMIT)
    })
}

impl Backend {
    /// Row-lock suffix for a `SELECT` that precedes an update of the same row. SQLite's
    /// write transactions already hold the database lock.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// A conversation row read for change, with its preview.
pub(crate) struct Locked {
    pub(crate) conversation: Conversation,
    pub(crate) preview: Option<String>,
}

/// Reads (and on PostgreSQL locks) a tenant's conversation; `NotFound` for another tenant's.
pub(crate) async fn lock(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    id: ConversationId,
) -> StoreResult<Locked> {
    let mut sql = Sql::new(
        "SELECT id, tenant_id, channel_id, contact_id, state, assignee, last_inbound_at, \
         last_message_at, created_at, last_message_preview FROM conversations WHERE tenant_id = ",
    );
    sql.bind(tenant.to_string())
        .push(" AND id = ")
        .bind(id.to_string())
        .push(backend.for_update());
    let row = sql
        .fetch_optional(conn)
        .await
        .db()?
        .ok_or(StoreError::NotFound("conversation"))?;
    let conversation = rows::conversation(&row)?;
    Ok(Locked {
        preview: rows::preview(&row, &conversation)?,
        conversation,
    })
}

/// [`lock`] for several conversations of a tenant with one statement, in id order (so
/// PostgreSQL nodes lock in the same order); `NotFound` when any is missing.
pub(crate) async fn lock_many(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    ids: &[ConversationId],
) -> StoreResult<std::collections::HashMap<ConversationId, Locked>> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in crate::sql::chunks(ids) {
        let mut sql = Sql::new(
            "SELECT id, tenant_id, channel_id, contact_id, state, assignee, last_inbound_at, \
             last_message_at, created_at, last_message_preview FROM conversations WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND id IN (")
            .list(chunk.iter().map(|c| c.to_string()))
            .push(") ORDER BY id")
            .push(backend.for_update());
        for row in sql.fetch_all(&mut *conn).await.db()? {
            let conversation = rows::conversation(&row)?;
            let locked = Locked {
                preview: rows::preview(&row, &conversation)?,
                conversation,
            };
            found.insert(locked.conversation.id, locked);
        }
    }
    if ids.iter().any(|id| !found.contains_key(id)) {
        return Err(StoreError::NotFound("conversation"));
    }
    Ok(found)
}

/// [`save`] for several locked conversations with one statement per 500.
pub(crate) async fn save_many(conn: &mut AnyConnection, locked: &[&Locked]) -> StoreResult<()> {
    for chunk in locked.chunks(500) {
        let mut sql = Sql::new(
            "UPDATE conversations SET state = v.column2, assignee = v.column3, \
             last_message_at = v.column4, last_inbound_at = v.column5, \
             last_message_preview = v.column6 FROM (VALUES ",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for l in chunk {
            let c = &l.conversation;
            rows.push(vec![
                crate::sql::Val::from(c.id.to_string()),
                c.state.as_str().into(),
                c.assignee.map(|u| u.to_string()).into(),
                ms(c.last_message_at).into(),
                c.last_inbound_at.map(ms).into(),
                seal_preview(c, l.preview.as_deref())?.into(),
            ]);
        }
        sql.rows(rows)
            .push(") AS v WHERE conversations.id = v.column1");
        match sql.execute(&mut *conn).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(
                    "the contact already has an open conversation on this channel".into(),
                ));
            }
            Err(e) => return Err(crate::sql::db(e)),
        }
    }
    Ok(())
}

/// [`summary`] for several conversations of a tenant with one statement.
pub(crate) async fn summaries(
    conn: &mut AnyConnection,
    tenant: TenantId,
    ids: &[ConversationId],
) -> StoreResult<std::collections::HashMap<ConversationId, ConversationSummary>> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in crate::sql::chunks(ids) {
        let mut sql = Sql::new(SUMMARY_SELECT);
        sql.push(" WHERE c.tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND c.id IN (")
            .list(chunk.iter().map(|c| c.to_string()))
            .push(")");
        for row in sql.fetch_all(&mut *conn).await.db()? {
            let summary = rows::summary(&row)?;
            found.insert(summary.conversation.id, summary);
        }
    }
    Ok(found)
}

/// The sealed form of a conversation's preview (it quotes the customer's last message).
pub(crate) fn seal_preview(c: &Conversation, preview: Option<&str>) -> StoreResult<Option<String>> {
    crate::keys::tenant(c.tenant_id)?.seal_opt(
        "conversations",
        "last_message_preview",
        &c.id.to_string(),
        preview,
    )
}

/// Writes back the mutable columns of a conversation read with [`lock`].
pub(crate) async fn save(conn: &mut AnyConnection, locked: &Locked) -> StoreResult<()> {
    let c = &locked.conversation;
    let mut sql = Sql::new("UPDATE conversations SET state = ");
    sql.bind(c.state.as_str())
        .push(", assignee = ")
        .bind(c.assignee.map(|u| u.to_string()))
        .push(", last_message_at = ")
        .bind(ms(c.last_message_at))
        .push(", last_inbound_at = ")
        .bind(c.last_inbound_at.map(ms))
        .push(", last_message_preview = ")
        .bind(seal_preview(c, locked.preview.as_deref())?)
        .push(" WHERE tenant_id = ")
        .bind(c.tenant_id.to_string())
        .push(" AND id = ")
        .bind(c.id.to_string());
    match sql.execute(conn).await {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
            "the contact already has an open conversation on this channel".into(),
        )),
        Err(e) => Err(crate::sql::db(e)),
    }
}

/// A conversation as an inbox row.
pub(crate) async fn summary(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: ConversationId,
) -> StoreResult<Option<ConversationSummary>> {
    let mut sql = Sql::new(SUMMARY_SELECT);
    sql.push(" WHERE c.tenant_id = ")
        .bind(tenant.to_string())
        .push(" AND c.id = ")
        .bind(id.to_string());
    sql.fetch_optional(conn)
        .await
        .db()?
        .as_ref()
        .map(rows::summary)
        .transpose()
}

/// The `conversation_changed` event payload for a conversation just saved.
pub(crate) async fn changed(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: ConversationId,
) -> StoreResult<EventKind> {
    let conversation = summary(conn, tenant, id)
        .await?
        .ok_or(StoreError::NotFound("conversation"))?;
    Ok(EventKind::ConversationChanged { conversation })
}

/// Moves a locked conversation through the state machine (assignee rules included).
pub(crate) fn apply_transition(
    c: &mut Conversation,
    t: Transition,
    agent: Option<UserId>,
) -> StoreResult<()> {
    let next = c
        .state
        .apply(t)
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    c.state = next;
    match next {
        ConversationState::Assigned => {
            if let Some(agent) = agent {
                c.assignee = Some(agent);
            }
        }
        ConversationState::Bot | ConversationState::Queued => c.assignee = None,
        ConversationState::Resolved => {}
    }
    Ok(())
}

impl SqlStore {
    pub(crate) async fn list_conversations_impl(
        &self,
        tenant: TenantId,
        filter: &ConversationFilter,
    ) -> StoreResult<Vec<ConversationSummary>> {
        self.ensure_keys([tenant]).await?;
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(SUMMARY_SELECT);
        sql.push(" WHERE c.tenant_id = ").bind(tenant.to_string());
        if filter.states.is_empty() {
            sql.push(" AND c.state <> 'resolved'");
        } else {
            sql.push(" AND c.state IN (")
                .list(filter.states.iter().map(|s| s.as_str()))
                .push(")");
        }
        if let Some(user) = filter.assignee {
            sql.push(" AND c.assignee = ").bind(user.to_string());
        }
        sql.push(" ORDER BY c.last_message_at DESC, c.id DESC LIMIT ")
            .bind(page(filter.limit));
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(rows::summary)
            .collect()
    }

    pub(crate) async fn conversation_impl(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<ConversationSummary>> {
        self.ensure_keys([tenant]).await?;
        let mut conn = self.conn().await?;
        summary(&mut conn, tenant, id).await
    }

    pub(crate) async fn list_messages_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        self.ensure_keys([tenant]).await?;
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND m.conversation_id = ")
            .bind(conversation.to_string())
            .push(" ORDER BY m.id DESC LIMIT ")
            .bind(page(limit));
        let mut messages: Vec<Message> = sql
            .fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(rows::message)
            .collect::<StoreResult<_>>()?;
        messages.reverse();
        Ok(messages)
    }

    pub(crate) async fn message_impl(
        &self,
        tenant: TenantId,
        id: switchboard_core::MessageId,
    ) -> StoreResult<Option<Message>> {
        self.ensure_keys([tenant]).await?;
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND m.id = ")
            .bind(id.to_string());
        sql.fetch_optional(&mut conn)
            .await
            .db()?
            .as_ref()
            .map(rows::message)
            .transpose()
    }

    pub(crate) async fn contact_impl(
        &self,
        tenant: TenantId,
        id: ContactId,
    ) -> StoreResult<Option<(Contact, Vec<Identity>)>> {
        self.ensure_keys([tenant]).await?;
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {CONTACT_COLS} FROM contacts WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(id.to_string());
        let Some(row) = sql.fetch_optional(&mut conn).await.db()? else {
            return Ok(None);
        };
        let contact = rows::contact(&row)?;
        let mut sql = Sql::new(&format!(
            "SELECT {IDENTITY_COLS} FROM identities WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND contact_id = ")
            .bind(id.to_string())
            .push(" ORDER BY created_at, channel_id");
        let identities = sql
            .fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(rows::identity)
            .collect::<StoreResult<_>>()?;
        Ok(Some((contact, identities)))
    }

    pub(crate) async fn assign_impl(
        &self,
        tenant: TenantId,
        id: ConversationId,
        agent: UserId,
        now: Timestamp,
    ) -> StoreResult<Event> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        let mut sql = Sql::new("SELECT id FROM users WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(agent.to_string());
        if sql.fetch_optional(&mut tx).await.db()?.is_none() {
            return Err(StoreError::NotFound("user"));
        }
        let event = self
            .change_state(&mut tx, tenant, id, Transition::Assign, Some(agent), now)
            .await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    pub(crate) async fn transition_impl(
        &self,
        tenant: TenantId,
        id: ConversationId,
        transition: Transition,
        now: Timestamp,
    ) -> StoreResult<Event> {
        self.ensure_keys([tenant]).await?;
        if transition == Transition::Assign {
            return Err(StoreError::Invalid(
                "assigning needs an agent: use assign".into(),
            ));
        }
        let mut tx = self.begin().await?;
        let event = self
            .change_state(&mut tx, tenant, id, transition, None, now)
            .await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn change_state(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        id: ConversationId,
        transition: Transition,
        agent: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<Event> {
        let mut locked = lock(conn, self.backend, tenant, id).await?;
        apply_transition(&mut locked.conversation, transition, agent)?;
        save(conn, &locked).await?;
        let kind = changed(conn, tenant, id).await?;
        let mut events = events::append(conn, tenant, now, vec![kind]).await?;
        events
            .pop()
            .ok_or_else(|| StoreError::Backend("event was not recorded".into()))
    }
}
