//! Outbound messages: the outbox (create, claim, record the result) and delivery status.
//!
//! Claim rule: a row is claimable when it is pending, due, not under a live lease, and the
//! oldest pending row of its conversation, so at most one message per conversation is in
//! flight and replies arrive in the order they were written. Live rows go before bulk ones.
//! A crashed node's lease simply expires and the row is claimed again.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sqlx::AnyConnection;
use switchboard_core::ports::{Lane, NewOutbound, OutboxItem, StoreError, StoreResult};
use switchboard_core::{
    ChannelId, DeliveryStatus, Direction, Event, EventKind, Message, MessageId, OutboxId,
    SendFailure, StatusReport, TenantId, Timestamp,
};

use crate::conversations::{self, Locked};
use crate::rows::{self, MESSAGE_COLS};
use crate::sql::{DbResult, RowExt, Sql, Val, chunks, insert_rows, ms, new_uuid, to_json, trunc};
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
    let mut rows = OutboundRows::default();
    let message = prepare(locked, out, now, &mut rows)?;
    rows.insert(conn).await?;
    Ok(message)
}

/// Rows of outbound messages gathered for one multi-row insert per table (a batch of job
/// decisions writes all its replies with three statements).
#[derive(Default)]
pub(crate) struct OutboundRows {
    messages: Vec<Vec<Val>>,
    statuses: Vec<Vec<Val>>,
    outbox: Vec<Vec<Val>>,
}

impl OutboundRows {
    /// Inserts the gathered rows (messages first: the other two refer to them).
    pub(crate) async fn insert(self, conn: &mut AnyConnection) -> StoreResult<()> {
        insert_rows(
            &mut *conn,
            "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, sender, \
             content, provider_id, status, failure, provider_ts, created_at) VALUES ",
            self.messages,
        )
        .await
        .db()?;
        insert_rows(
            &mut *conn,
            "INSERT INTO message_status (message_id, status, at, failure) VALUES ",
            self.statuses,
        )
        .await
        .db()?;
        insert_rows(
            conn,
            "INSERT INTO outbox (id, tenant_id, conversation_id, message_id, channel_id, priority, \
             state, attempts, next_attempt_at, idempotency_key, created_at) VALUES ",
            self.outbox,
        )
        .await
        .db()?;
        Ok(())
    }
}

/// Builds an outbound message and its rows into `rows`, and moves the conversation's
/// activity forward (in memory; the caller saves it and inserts the rows).
pub(crate) fn prepare(
    locked: &mut Locked,
    out: NewOutbound,
    now: Timestamp,
    rows: &mut OutboundRows,
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
    rows.messages.push(vec![
        Val::from(message.id.to_string()),
        message.tenant_id.to_string().into(),
        message.conversation_id.to_string().into(),
        message.channel_id.to_string().into(),
        "outbound".into(),
        to_json(&message.sender)?.into(),
        crate::keys::tenant(message.tenant_id)?
            .seal_json(
                "messages",
                "content",
                &message.id.to_string(),
                &message.content,
            )?
            .into(),
        Option::<String>::None.into(),
        "queued".into(),
        Option::<String>::None.into(),
        Option::<i64>::None.into(),
        ms(now).into(),
    ]);
    rows.statuses.push(vec![
        Val::from(message.id.to_string()),
        "queued".into(),
        ms(now).into(),
        Option::<String>::None.into(),
    ]);
    rows.outbox.push(vec![
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
    ]);
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

/// Marks a pending outbox row sent and advances its message to `sent`; returns the
/// tenant and the `message_status` event to append (the caller numbers it).
async fn mark_sent(
    conn: &mut AnyConnection,
    backend: Backend,
    id: OutboxId,
    provider_id: Option<&str>,
    now: Timestamp,
) -> StoreResult<(TenantId, EventKind)> {
    let row = pending_row(&mut *conn, backend, id).await?;
    let mut sql = Sql::new(
        "UPDATE outbox SET state = 'sent', lease_until = NULL, leased_by = NULL, done_at = ",
    );
    sql.bind(ms(now)).push(" WHERE id = ").bind(id.to_string());
    sql.execute(&mut *conn).await.db()?;
    if let Some(p) = provider_id {
        lock_status_key(&mut *conn, backend, row.message, p).await?;
    }
    let mut status = if row.status.should_advance(DeliveryStatus::Sent) {
        set_status(
            conn,
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
    // Reports the provider sent before we recorded its id apply now, in this transaction;
    // the one event carries the resulting status.
    let mut failure = None;
    if let Some(p) = provider_id {
        (status, failure) = apply_pending_statuses(&mut *conn, row.message, p, status).await?;
    }
    let kind = EventKind::MessageStatus {
        message_id: row.message,
        conversation_id: row.conversation,
        status,
        failure,
        provider_id: provider_id.map(str::to_string),
    };
    Ok((row.tenant, kind))
}

impl SqlStore {
    pub(crate) async fn enqueue_outbound_impl(
        &self,
        tenant: TenantId,
        conversation: switchboard_core::ConversationId,
        out: NewOutbound,
        now: Timestamp,
    ) -> StoreResult<(Message, Vec<Event>)> {
        self.ensure_keys([tenant]).await?;
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
        let mut conn = self.write_conn().await?;
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
                // A paused channel's rows stay queued until it is resumed.
                ") AND NOT EXISTS (SELECT 1 FROM channels pc WHERE pc.id = o.channel_id \
                 AND pc.paused_reason IS NOT NULL) \
                 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.conversation_id = o.conversation_id \
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
             o.parts_sent, o.first_part_id, \
             c.last_inbound_at AS conv_last_inbound_at, {MESSAGE_COLS}, \
             ch.kind AS ch_kind, ch.name AS ch_name, ch.credentials AS ch_credentials, \
             ch.settings AS ch_settings, ch.created_at AS ch_created_at, \
             ch.paused_reason AS ch_paused_reason, ch.paused_at AS ch_paused_at, \
             i.external_id AS recipient_index, i.address AS recipient, \
             i.unreachable_reason AS recipient_unreachable \
             FROM outbox o \
             JOIN messages m ON m.id = o.message_id \
             JOIN channels ch ON ch.id = o.channel_id \
             JOIN conversations c ON c.id = o.conversation_id \
             JOIN identities i ON i.contact_id = c.contact_id AND i.channel_id = c.channel_id \
             WHERE o.id IN ("
        ));
        sql.list(ids)
            .push(") ORDER BY o.priority, o.next_attempt_at, o.id");
        let found = sql.fetch_all(&mut conn).await.db()?;
        drop(conn);
        self.ensure_row_keys(&found).await?;
        found
            .iter()
            .map(|row| {
                let message = rows::message(row)?;
                let keys = crate::keys::tenant(message.tenant_id)?;
                let channel_id = message.channel_id.to_string();
                let recipient = keys.open_text(
                    "identities",
                    "address",
                    &crate::keys::identity_row(&channel_id, &row.text("recipient_index")?),
                    &row.text("recipient")?,
                )?;
                let channel = switchboard_core::Channel {
                    id: message.channel_id,
                    tenant_id: message.tenant_id,
                    kind: row.parse("ch_kind")?,
                    name: row.text("ch_name")?,
                    credentials: keys.open_json(
                        "channels",
                        "credentials",
                        &channel_id,
                        &row.text("ch_credentials")?,
                    )?,
                    settings: row.json("ch_settings")?,
                    created_at: row.ts("ch_created_at")?,
                    paused: rows::pause(row, "ch_paused_reason", "ch_paused_at")?,
                };
                Ok(OutboxItem {
                    id: row.parse("outbox_id")?,
                    attempts: i32::try_from(row.int("attempts")?).unwrap_or(i32::MAX),
                    idempotency_key: row.text("idempotency_key")?,
                    recipient,
                    lane: if row.int("priority")? == priority(Lane::Live) {
                        Lane::Live
                    } else {
                        Lane::Bulk
                    },
                    last_inbound_at: row.opt_ts("conv_last_inbound_at")?,
                    recipient_unreachable: row.opt_text("recipient_unreachable")?,
                    parts_sent: u32::try_from(row.int("parts_sent")?).unwrap_or(0),
                    first_part_id: row.opt_text("first_part_id")?,
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
        let (tenant, kind) = mark_sent(&mut tx, self.backend, id, provider_id, now).await?;
        let event = single(events::append(&mut tx, tenant, now, vec![kind]).await?)?;
        tx.commit().await.db()?;
        Ok(event)
    }

    /// Records several providers' acceptances in ONE transaction (group commit for the
    /// sender), with a handful of statements for the whole batch. All or nothing: a row that
    /// is no longer pending fails the whole batch, and the caller records the rows one by
    /// one instead. Rows are locked in id order (no deadlock between PostgreSQL nodes) and
    /// each tenant's event counter is bumped once.
    pub(crate) async fn outbox_sent_many_impl(
        &self,
        sent: &[(OutboxId, Option<String>)],
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        if sent.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<String> = sent.iter().map(|(id, _)| id.to_string()).collect();
        ids.sort();
        ids.dedup();
        if ids.len() != sent.len() {
            return Err(StoreError::Invalid("an outbox row is listed twice".into()));
        }
        let mut tx = self.begin().await?;
        let mut rows: HashMap<OutboxId, PendingRow> = HashMap::with_capacity(sent.len());
        for chunk in chunks(&ids) {
            let mut sql = Sql::new(
                "SELECT o.id, o.tenant_id, o.message_id, o.conversation_id, o.state, m.status \
                 FROM outbox o JOIN messages m ON m.id = o.message_id WHERE o.id IN (",
            );
            sql.list(chunk).push(") ORDER BY o.id");
            if self.backend == Backend::Postgres {
                sql.push(" FOR UPDATE OF o");
            }
            for row in sql.fetch_all(&mut tx).await.db()? {
                let id: OutboxId = row.parse("id")?;
                let state = row.text("state")?;
                if state != "pending" {
                    return Err(StoreError::Invalid(format!(
                        "outbox row {id} is already {state}"
                    )));
                }
                rows.insert(
                    id,
                    PendingRow {
                        tenant: row.parse("tenant_id")?,
                        message: row.parse("message_id")?,
                        conversation: row.parse("conversation_id")?,
                        status: row.parse("status")?,
                    },
                );
            }
        }
        if rows.len() != sent.len() {
            return Err(StoreError::NotFound("outbox row"));
        }
        for chunk in chunks(&ids) {
            let mut sql = Sql::new(
                "UPDATE outbox SET state = 'sent', lease_until = NULL, leased_by = NULL, done_at = ",
            );
            sql.bind(ms(now))
                .push(" WHERE id IN (")
                .list(chunk)
                .push(")");
            sql.execute(&mut tx).await.db()?;
        }
        // Messages whose status moves to `sent`, with the provider's id when it gave one.
        let mut advance = Vec::new();
        let mut timeline = Vec::new();
        let mut per_tenant: BTreeMap<TenantId, Vec<EventKind>> = BTreeMap::new();
        for (id, provider_id) in sent {
            let row = rows.get(id).ok_or(StoreError::NotFound("outbox row"))?;
            let status = if row.status.should_advance(DeliveryStatus::Sent) {
                advance.push(vec![
                    Val::from(row.message.to_string()),
                    provider_id.clone().into(),
                ]);
                timeline.push(vec![
                    Val::from(row.message.to_string()),
                    DeliveryStatus::Sent.as_str().into(),
                    ms(now).into(),
                    Option::<String>::None.into(),
                ]);
                DeliveryStatus::Sent
            } else {
                row.status
            };
            per_tenant
                .entry(row.tenant)
                .or_default()
                .push(EventKind::MessageStatus {
                    message_id: row.message,
                    conversation_id: row.conversation,
                    status,
                    failure: None,
                    provider_id: provider_id.clone(),
                });
        }
        for chunk in advance.chunks(500) {
            // A missing provider id keeps the stored one (as `set_status` does).
            let mut sql = Sql::new(
                "UPDATE messages SET status = 'sent', failure = NULL, \
                 provider_id = COALESCE(v.column2, messages.provider_id) FROM (VALUES ",
            );
            sql.rows(chunk.to_vec())
                .push(") AS v WHERE messages.id = v.column1");
            sql.execute(&mut tx).await.unique("provider message id")?;
        }
        for chunk in timeline.chunks(500) {
            let mut sql =
                Sql::new("INSERT INTO message_status (message_id, status, at, failure) VALUES ");
            sql.rows(chunk.to_vec()).push(" ON CONFLICT DO NOTHING");
            sql.execute(&mut tx).await.db()?;
        }
        let mut events = Vec::with_capacity(sent.len());
        for (tenant, kinds) in per_tenant {
            events.extend(events::append(&mut tx, tenant, now, kinds).await?);
        }
        tx.commit().await.db()?;
        Ok(events)
    }

    pub(crate) async fn outbox_retry_impl(
        &self,
        id: OutboxId,
        next_attempt_at: Timestamp,
        failure: &SendFailure,
    ) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
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

    pub(crate) async fn outbox_defer_impl(
        &self,
        id: OutboxId,
        next_attempt_at: Timestamp,
    ) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        let mut sql =
            Sql::new("UPDATE outbox SET lease_until = NULL, leased_by = NULL, next_attempt_at = ");
        sql.bind(ms(next_attempt_at))
            .push(" WHERE state = 'pending' AND id = ")
            .bind(id.to_string());
        match sql.execute(&mut conn).await.db()? {
            0 => Err(StoreError::NotFound("pending outbox row")),
            _ => Ok(()),
        }
    }

    pub(crate) async fn outbox_parts_sent_impl(
        &self,
        id: OutboxId,
        part_ids: &[String],
    ) -> StoreResult<()> {
        let Some(first) = part_ids.first() else {
            return Ok(());
        };
        let count = i64::try_from(part_ids.len()).unwrap_or(i64::MAX);
        let mut conn = self.write_conn().await?;
        let mut sql = Sql::new("UPDATE outbox SET parts_sent = parts_sent + ");
        sql.bind(count)
            .push(", first_part_id = COALESCE(first_part_id, ")
            .bind(first.as_str())
            .push(") WHERE state = 'pending' AND id = ")
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

    pub(crate) async fn outbox_requeue_impl(
        &self,
        tenant: TenantId,
        message: MessageId,
        now: Timestamp,
    ) -> StoreResult<Event> {
        let mut tx = self.begin().await?;
        let mut sql = Sql::new(
            "SELECT o.id, o.state, m.status, m.direction, m.conversation_id \
             FROM messages m LEFT JOIN outbox o ON o.message_id = m.id WHERE m.tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND m.id = ")
            .bind(message.to_string());
        if self.backend == Backend::Postgres {
            sql.push(" FOR UPDATE OF m");
        }
        let row = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("message"))?;
        let status: DeliveryStatus = row.parse("status")?;
        let conversation: switchboard_core::ConversationId = row.parse("conversation_id")?;
        if row.text("direction")? != "outbound" {
            return Err(StoreError::Conflict(
                "only messages sent to the customer can be sent again".into(),
            ));
        }
        if status != DeliveryStatus::Failed {
            return Err(StoreError::Conflict(format!(
                "only a failed message can be sent again; this one is {}",
                status.as_str()
            )));
        }
        let outbox: Option<String> = row.opt_text("id")?;
        let state: Option<String> = row.opt_text("state")?;
        let (Some(outbox), Some(state)) = (outbox, state) else {
            return Err(StoreError::Conflict(
                "this message has no outbox row to send again".into(),
            ));
        };
        if state == "pending" {
            return Err(StoreError::Conflict(
                "this message is already waiting to be sent again".into(),
            ));
        }
        // Accepted by the provider, then reported failed: every part goes again. Given up
        // by the sender: the parts the provider accepted before the failure stay sent.
        let parts = if state == "sent" {
            ", parts_sent = 0, first_part_id = NULL"
        } else {
            ""
        };
        let mut sql = Sql::new(&format!(
            "UPDATE outbox SET state = 'pending', attempts = 0, last_error = NULL, \
             lease_until = NULL, leased_by = NULL, done_at = NULL{parts}, next_attempt_at = "
        ));
        sql.bind(ms(now)).push(" WHERE id = ").bind(outbox);
        sql.execute(&mut tx).await.db()?;
        // The old provider id goes: a late report about the failed attempt must not move
        // the new one. The timeline starts again from `queued` (its rows are unique per
        // status, so a second failure must find no `failed` row to collide with).
        let mut sql = Sql::new(
            "UPDATE messages SET status = 'queued', failure = NULL, provider_id = NULL WHERE id = ",
        );
        sql.bind(message.to_string());
        sql.execute(&mut tx).await.db()?;
        let mut sql =
            Sql::new("DELETE FROM message_status WHERE status <> 'queued' AND message_id = ");
        sql.bind(message.to_string());
        sql.execute(&mut tx).await.db()?;
        let mut sql = Sql::new("UPDATE message_status SET at = ");
        sql.bind(ms(now))
            .push(" WHERE status = 'queued' AND message_id = ")
            .bind(message.to_string());
        sql.execute(&mut tx).await.db()?;
        let kind = EventKind::MessageStatus {
            message_id: message,
            conversation_id: conversation,
            status: DeliveryStatus::Queued,
            failure: None,
            provider_id: None,
        };
        let event = single(events::append(&mut tx, tenant, now, vec![kind]).await?)?;
        tx.commit().await.db()?;
        Ok(event)
    }

    pub(crate) async fn apply_status_impl(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        report: &StatusReport,
    ) -> StoreResult<Option<Event>> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        lock_status_key(
            &mut tx,
            self.backend,
            channel,
            report.provider_message_id.as_str(),
        )
        .await?;
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
            keep_pending_status(&mut tx, tenant, channel, report, now()).await?;
            tx.commit().await.db()?;
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

/// How long an unmatched status report is kept for a late `outbox_sent` (Meta retries
/// webhooks for up to 7 days).
const PENDING_STATUS_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// The wall clock, for purging kept reports (the store takes no clock otherwise; a report's
/// own time is the provider's and may be far off).
fn now() -> Timestamp {
    time::OffsetDateTime::now_utc()
}

/// Serialises `apply_status` and `outbox_sent` on one (channel, provider id) on PostgreSQL,
/// so a report that finds no message is either seen by the sender's transaction or sees the
/// sender's id: without it both could commit unaware of each other and the report would be
/// lost. `owner` is the channel id or the outbound message (whose channel is read). SQLite
/// write transactions already hold the single write lock.
async fn lock_status_key(
    conn: &mut AnyConnection,
    backend: Backend,
    owner: impl std::fmt::Display,
    provider_id: &str,
) -> StoreResult<()> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    let channel = channel_of(&mut *conn, owner.to_string()).await?;
    // Wrapped so the result has a plain column (the function returns `void`).
    let mut sql =
        Sql::new("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtextextended(");
    sql.bind(format!("status:{channel}:{provider_id}"))
        .push(", 0))) AS l");
    sql.execute(conn).await.db()?;
    Ok(())
}

/// The channel of `owner`: an outbound message's channel, or `owner` itself (a channel id).
async fn channel_of(conn: &mut AnyConnection, owner: String) -> StoreResult<String> {
    let mut sql = Sql::new("SELECT channel_id FROM messages WHERE id = ");
    sql.bind(owner.clone());
    match sql.fetch_optional(conn).await.db()? {
        Some(row) => row.text("channel_id"),
        None => Ok(owner),
    }
}

/// Keeps a status report whose provider id no message carries yet (table
/// `pending_statuses`), and purges reports nobody claimed within the TTL.
async fn keep_pending_status(
    conn: &mut AnyConnection,
    tenant: TenantId,
    channel: ChannelId,
    report: &StatusReport,
    now: Timestamp,
) -> StoreResult<()> {
    let received = ms(now);
    let mut sql = Sql::new("DELETE FROM pending_statuses WHERE received_at < ");
    sql.bind(received.saturating_sub(PENDING_STATUS_TTL_MS));
    sql.execute(&mut *conn).await.db()?;
    let failure = report.failure.as_ref().map(to_json).transpose()?;
    let mut sql = Sql::new(
        "INSERT INTO pending_statuses \
         (channel_id, provider_id, tenant_id, status, at, failure, received_at) VALUES (",
    );
    sql.list::<Val>(vec![
        channel.to_string().into(),
        report.provider_message_id.clone().into(),
        tenant.to_string().into(),
        report.status.as_str().into(),
        ms(report.at).into(),
        failure.into(),
        received.into(),
    ])
    .push(") ON CONFLICT DO NOTHING");
    sql.execute(conn).await.db()?;
    Ok(())
}

/// Applies (and deletes) the kept reports of a message that just got its provider id, in
/// the caller's transaction, in provider time order and only forward. Returns the message's
/// resulting status and, when that is `failed`, the failure.
async fn apply_pending_statuses(
    conn: &mut AnyConnection,
    message: MessageId,
    provider_id: &str,
    mut status: DeliveryStatus,
) -> StoreResult<(DeliveryStatus, Option<SendFailure>)> {
    let channel = channel_of(&mut *conn, message.to_string()).await?;
    let mut sql = Sql::new("SELECT status, at, failure FROM pending_statuses WHERE channel_id = ");
    sql.bind(channel.clone())
        .push(" AND provider_id = ")
        .bind(provider_id)
        .push(" ORDER BY at");
    let rows = sql.fetch_all(&mut *conn).await.db()?;
    let mut failure = None;
    for row in &rows {
        let reported: DeliveryStatus = row.parse("status")?;
        if !status.should_advance(reported) {
            continue;
        }
        let reported_failure: Option<SendFailure> = match row.opt_text("failure")? {
            Some(raw) if reported == DeliveryStatus::Failed => Some(
                serde_json::from_str(&raw)
                    .map_err(|e| StoreError::Backend(format!("stored status failure: {e}")))?,
            ),
            _ => None,
        };
        set_status(
            &mut *conn,
            message,
            reported,
            row.ts("at")?,
            reported_failure.as_ref(),
            None,
        )
        .await?;
        status = reported;
        failure = reported_failure;
    }
    if !rows.is_empty() {
        let mut sql = Sql::new("DELETE FROM pending_statuses WHERE channel_id = ");
        sql.bind(channel)
            .push(" AND provider_id = ")
            .bind(provider_id);
        sql.execute(conn).await.db()?;
    }
    Ok((status, failure))
}

/// The one event of a single-event append.
fn single(mut events: Vec<Event>) -> StoreResult<Event> {
    events
        .pop()
        .ok_or_else(|| StoreError::Backend("event was not recorded".into()))
}
