//! Outbound messages: the outbox (create, claim, record the result) and delivery status.
//!
//! Claim rule: a row is claimable when it is pending, due, not under a live lease, and the
//! oldest pending row of its conversation, so at most one message per conversation is in
//! flight and replies arrive in the order they were written. Live rows go before bulk ones.
//! A crashed node's lease simply expires and the row is claimed again.

use std::time::Duration;

use sqlx::AnyConnection;
use switchboard_core::ports::{Lane, NewOutbound, OutboxItem, StoreError, StoreResult};
use switchboard_core::{
    ChannelId, DeliveryStatus, Direction, Event, EventKind, Message, MessageId, OutboxId,
    SendFailure, StatusReport, TenantId, Timestamp,
};

use crate::conversations::{self, Locked};
use crate::rows::{self, MESSAGE_COLS};
use crate::sql::{DbResult, RowExt, Sql, Val, insert_rows, ms, new_uuid, to_json, trunc};
use crate::{Backend, SqlStore, events};

fn priority(lane: Lane) -> i64 {
    match lane {
        Lane::Live => 0,
        Lane::Bulk => 1,
    }
}

/// Creates an outbound message, its first timeline entry and its outbox row, and moves the
/// conversation's activity forward (in memory; the caller saves it).
pub(crate) async fn create(
    conn: &mut AnyConnection,
    locked: &mut Locked,
    out: NewOutbound,
    now: Timestamp,
) -> StoreResult<Message> {
    out.content
        .validate_outbound()
        .map_err(StoreError::Invalid)?;
    let now = trunc(now);
    let c = &mut locked.conversation;
    let message = Message {
        id: MessageId::from_uuid(new_uuid(now)),
        tenant_id: c.tenant_id,
        conversation_id: c.id,
        channel_id: c.channel_id,
        direction: Direction::Outbound,
        sender: out.sender,
        content: out.content,
        provider_id: None,
        status: DeliveryStatus::Queued,
        failure: None,
        provider_ts: None,
        created_at: now,
    };
    insert_rows(
        conn,
        "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, sender, \
         content, provider_id, status, failure, provider_ts, created_at) VALUES ",
        vec![vec![
            Val::from(message.id.to_string()),
            message.tenant_id.to_string().into(),
            message.conversation_id.to_string().into(),
            message.channel_id.to_string().into(),
            "outbound".into(),
            to_json(&message.sender)?.into(),
            to_json(&message.content)?.into(),
            Option::<String>::None.into(),
            "queued".into(),
            Option::<String>::None.into(),
            Option::<i64>::None.into(),
            ms(now).into(),
        ]],
    )
    .await
    .db()?;
    insert_rows(
        conn,
        "INSERT INTO message_status (message_id, status, at, failure) VALUES ",
        vec![vec![
            Val::from(message.id.to_string()),
            "queued".into(),
            ms(now).into(),
            Option::<String>::None.into(),
        ]],
    )
    .await
    .db()?;
    insert_rows(
        conn,
        "INSERT INTO outbox (id, tenant_id, conversation_id, message_id, channel_id, priority, \
         state, attempts, next_attempt_at, idempotency_key, created_at) VALUES ",
        vec![vec![
            Val::from(OutboxId::from_uuid(new_uuid(now)).to_string()),
            message.tenant_id.to_string().into(),
            message.conversation_id.to_string().into(),
            message.id.to_string().into(),
            message.channel_id.to_string().into(),
            priority(out.lane).into(),
            "pending".into(),
            0i64.into(),
            ms(now).into(),
            // The message id is stable across every retry of this row.
            message.id.to_string().into(),
            ms(now).into(),
        ]],
    )
    .await
    .db()?;
    if now >= c.last_message_at {
        c.last_message_at = now;
        locked.preview = Some(message.content.preview());
    }
    Ok(message)
}

/// Records a new current status (and its timeline entry) on a message.
async fn set_status(
    conn: &mut AnyConnection,
    message: MessageId,
    status: DeliveryStatus,
    at: Timestamp,
    failure: Option<&SendFailure>,
    provider_id: Option<&str>,
) -> StoreResult<()> {
    let failure = failure.map(to_json).transpose()?;
    let mut sql = Sql::new("UPDATE messages SET status = ");
    sql.bind(status.as_str())
        .push(", failure = ")
        .bind(failure.clone());
    if let Some(p) = provider_id {
        sql.push(", provider_id = ").bind(p);
    }
    sql.push(" WHERE id = ").bind(message.to_string());
    sql.execute(conn).await.unique("provider message id")?;
    let mut sql = Sql::new("INSERT INTO message_status (message_id, status, at, failure) VALUES (");
    sql.list::<Val>(vec![
        message.to_string().into(),
        status.as_str().into(),
        ms(at).into(),
        failure.into(),
    ])
    .push(") ON CONFLICT DO NOTHING");
    sql.execute(conn).await.db()?;
    Ok(())
}

/// A pending outbox row read for completion.
struct PendingRow {
    tenant: TenantId,
    message: MessageId,
    conversation: switchboard_core::ConversationId,
    status: DeliveryStatus,
}

async fn pending_row(
    conn: &mut AnyConnection,
    backend: Backend,
    id: OutboxId,
) -> StoreResult<PendingRow> {
    let mut sql = Sql::new(
        "SELECT o.tenant_id, o.message_id, o.conversation_id, o.state, m.status \
         FROM outbox o JOIN messages m ON m.id = o.message_id WHERE o.id = ",
    );
    sql.bind(id.to_string());
    if backend == Backend::Postgres {
        sql.push(" FOR UPDATE OF o");
    }
    let row = sql
        .fetch_optional(conn)
        .await
        .db()?
        .ok_or(StoreError::NotFound("outbox row"))?;
    let state = row.text("state")?;
    if state != "pending" {
        return Err(StoreError::Invalid(format!(
            "outbox row {id} is already {state}"
        )));
    }
    Ok(PendingRow {
        tenant: row.parse("tenant_id")?,
        message: row.parse("message_id")?,
        conversation: row.parse("conversation_id")?,
        status: row.parse("status")?,
    })
}

impl SqlStore {
    pub(crate) async fn enqueue_outbound_impl(
        &self,
        tenant: TenantId,
        conversation: switchboard_core::ConversationId,
        out: NewOutbound,
        now: Timestamp,
    ) -> StoreResult<(Message, Vec<Event>)> {
        let mut tx = self.begin().await?;
        let mut locked = conversations::lock(&mut tx, self.backend, tenant, conversation).await?;
        let message = create(&mut tx, &mut locked, out, now).await?;
        conversations::save(&mut tx, &locked).await?;
        let changed = conversations::changed(&mut tx, tenant, conversation).await?;
        let kinds = vec![
            EventKind::MessageCreated {
                message: message.clone(),
            },
            changed,
        ];
        let events = events::append(&mut tx, tenant, now, kinds).await?;
        tx.commit().await.db()?;
        Ok((message, events))
    }

    pub(crate) async fn claim_outbox_impl(
        &self,
        node: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        let now_ms = ms(now);
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("UPDATE outbox SET lease_until = ");
        sql.bind(until)
            .push(", leased_by = ")
            .bind(node)
            .push(
                " WHERE id IN (SELECT o.id FROM outbox o \
                 WHERE o.state = 'pending' AND o.next_attempt_at <= ",
            )
            .bind(now_ms)
            .push(" AND (o.lease_until IS NULL OR o.lease_until <= ")
            .bind(now_ms)
            .push(
                ") AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.conversation_id = o.conversation_id \
                 AND p.state = 'pending' AND p.id < o.id) \
                 ORDER BY o.priority, o.next_attempt_at, o.id LIMIT ",
            )
            .bind(i64::from(limit.max(1)));
        if self.backend == Backend::Postgres {
            sql.push(" FOR UPDATE SKIP LOCKED");
        }
        sql.push(") RETURNING id");
        let ids: Vec<String> = sql
            .fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(|r| r.text("id"))
            .collect::<StoreResult<_>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(&format!(
            "SELECT o.id AS outbox_id, o.attempts, o.idempotency_key, o.priority, \
             c.last_inbound_at AS conv_last_inbound_at, {MESSAGE_COLS}, \
             ch.kind AS ch_kind, ch.name AS ch_name, ch.credentials AS ch_credentials, \
             ch.settings AS ch_settings, ch.created_at AS ch_created_at, \
             i.external_id AS recipient \
             FROM outbox o \
             JOIN messages m ON m.id = o.message_id \
             JOIN channels ch ON ch.id = o.channel_id \
             JOIN conversations c ON c.id = o.conversation_id \
             JOIN identities i ON i.contact_id = c.contact_id AND i.channel_id = c.channel_id \
             WHERE o.id IN ("
        ));
        sql.list(ids)
            .push(") ORDER BY o.priority, o.next_attempt_at, o.id");
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(|row| {
                let message = rows::message(row)?;
                let channel = switchboard_core::Channel {
                    id: message.channel_id,
                    tenant_id: message.tenant_id,
                    kind: row.parse("ch_kind")?,
                    name: row.text("ch_name")?,
                    credentials: row.json("ch_credentials")?,
                    settings: row.json("ch_settings")?,
                    created_at: row.ts("ch_created_at")?,
                };
                Ok(OutboxItem {
                    id: row.parse("outbox_id")?,
                    attempts: i32::try_from(row.int("attempts")?).unwrap_or(i32::MAX),
                    idempotency_key: row.text("idempotency_key")?,
                    recipient: row.text("recipient")?,
                    lane: if row.int("priority")? == priority(Lane::Live) {
                        Lane::Live
                    } else {
                        Lane::Bulk
                    },
                    last_inbound_at: row.opt_ts("conv_last_inbound_at")?,
                    message,
                    channel,
                })
            })
            .collect()
    }

    pub(crate) async fn outbox_sent_impl(
        &self,
        id: OutboxId,
        provider_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Event> {
        let mut tx = self.begin().await?;
        let row = pending_row(&mut tx, self.backend, id).await?;
        let mut sql = Sql::new(
            "UPDATE outbox SET state = 'sent', lease_until = NULL, leased_by = NULL, done_at = ",
        );
        sql.bind(ms(now)).push(" WHERE id = ").bind(id.to_string());
        sql.execute(&mut tx).await.db()?;
        let status = if row.status.should_advance(DeliveryStatus::Sent) {
            set_status(
                &mut tx,
                row.message,
                DeliveryStatus::Sent,
                now,
                None,
                provider_id,
            )
            .await?;
            DeliveryStatus::Sent
        } else {
            row.status
        };
        let kind = EventKind::MessageStatus {
            message_id: row.message,
            conversation_id: row.conversation,
            status,
            failure: None,
            provider_id: provider_id.map(str::to_string),
        };
        let event = single(events::append(&mut tx, row.tenant, now, vec![kind]).await?)?;
        tx.commit().await.db()?;
        Ok(event)
    }

    pub(crate) async fn outbox_retry_impl(
        &self,
        id: OutboxId,
        next_attempt_at: Timestamp,
        failure: &SendFailure,
    ) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "UPDATE outbox SET attempts = attempts + 1, lease_until = NULL, leased_by = NULL, next_attempt_at = ",
        );
        sql.bind(ms(next_attempt_at))
            .push(", last_error = ")
            .bind(to_json(failure)?)
            .push(" WHERE state = 'pending' AND id = ")
            .bind(id.to_string());
        match sql.execute(&mut conn).await.db()? {
            0 => Err(StoreError::NotFound("pending outbox row")),
            _ => Ok(()),
        }
    }

    pub(crate) async fn outbox_failed_impl(
        &self,
        id: OutboxId,
        failure: &SendFailure,
        now: Timestamp,
    ) -> StoreResult<Event> {
        let mut tx = self.begin().await?;
        let row = pending_row(&mut tx, self.backend, id).await?;
        let mut sql = Sql::new(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, lease_until = NULL, \
             leased_by = NULL, last_error = ",
        );
        sql.bind(to_json(failure)?)
            .push(", done_at = ")
            .bind(ms(now))
            .push(" WHERE id = ")
            .bind(id.to_string());
        sql.execute(&mut tx).await.db()?;
        set_status(
            &mut tx,
            row.message,
            DeliveryStatus::Failed,
            now,
            Some(failure),
            None,
        )
        .await?;
        let kind = EventKind::MessageStatus {
            message_id: row.message,
            conversation_id: row.conversation,
            status: DeliveryStatus::Failed,
            failure: Some(failure.clone()),
            provider_id: None,
        };
        let event = single(events::append(&mut tx, row.tenant, now, vec![kind]).await?)?;
        tx.commit().await.db()?;
        Ok(event)
    }

    pub(crate) async fn apply_status_impl(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        report: &StatusReport,
    ) -> StoreResult<Option<Event>> {
        let mut tx = self.begin().await?;
        let mut sql = Sql::new(
            "SELECT id, conversation_id, status, provider_id FROM messages \
             WHERE direction = 'outbound' AND tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND channel_id = ")
            .bind(channel.to_string())
            .push(" AND provider_id = ")
            .bind(report.provider_message_id.as_str())
            .push(self.backend.for_update());
        let Some(row) = sql.fetch_optional(&mut tx).await.db()? else {
            return Ok(None);
        };
        let current: DeliveryStatus = row.parse("status")?;
        if !current.should_advance(report.status) {
            return Ok(None);
        }
        let message: MessageId = row.parse("id")?;
        let failure = if report.status == DeliveryStatus::Failed {
            report.failure.as_ref()
        } else {
            None
        };
        set_status(&mut tx, message, report.status, report.at, failure, None).await?;
        let kind = EventKind::MessageStatus {
            message_id: message,
            conversation_id: row.parse("conversation_id")?,
            status: report.status,
            failure: failure.cloned(),
            provider_id: row.opt_text("provider_id")?,
        };
        let event = single(events::append(&mut tx, tenant, report.at, vec![kind]).await?)?;
        tx.commit().await.db()?;
        Ok(Some(event))
    }
}

/// The one event of a single-event append.
fn single(mut events: Vec<Event>) -> StoreResult<Event> {
    events
        .pop()
        .ok_or_else(|| StoreError::Backend("event was not recorded".into()))
}
