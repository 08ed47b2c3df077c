//! Routing storage: queues, agents' routing settings, routing rounds (snapshot, lock, apply),
//! routing timers, internal notes, canned responses and the desk's conversation lists.
//!
//! A round is ONE transaction: take the tenant's routing lock, read the snapshot, call the
//! caller's pure plan, apply its changes, record the events. The lock:
//! - PostgreSQL: `pg_advisory_xact_lock` on a key derived from the tenant id, taken before
//!   the snapshot is read and released at commit. Two nodes running a round for one tenant
//!   therefore run one after the other, and the second reads (READ COMMITTED, each statement
//!   sees what committed before it started) every assignment the first made, so nobody is
//!   assigned twice and no capacity is exceeded. An advisory lock rather than
//!   `SELECT .. FOR UPDATE` on the tenant row: that row is also locked by every event
//!   writer (`tenants.event_seq`), and holding it from the snapshot on would stall the
//!   inbound hot path of the tenant for the length of a round; the advisory lock only
//!   serialises routing with routing (rounds, picks, transfers, resolves).
//! - SQLite: every write transaction takes the single write lock up front
//!   (`BEGIN IMMEDIATE`), which serialises rounds already.
//!
//! Applying a round's changes is batched ([`Batch`]): places, assignments, marks and timers
//! are written with one statement per table per 500 rows, so the first round over a big
//! backlog costs a few dozen statements, not several per conversation. Returning customers'
//! last agents are read with one query per 500 contacts.
//!
//! What this module leaves to others: the policy (the plan closure, `app::routing`), and
//! the sealing of columns (notes and canned responses are staff-written text kept in clear).

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use switchboard_core::ports::{JobKind, Lane, NewOutbound};
use switchboard_core::ports::{StoreError, StoreResult};
use switchboard_core::routing::{
    AgentPresence, AgentSettings, CannedResponse, DeskFilter, Note, QueueRecord, QueueVisit,
    RoutedConversation, RoutingChange, RoutingMarks, RoutingOutcome, RoutingPlan, RoutingSnapshot,
};
use switchboard_core::{
    CannedId, ChannelKind, Content, ConversationId, ConversationState, ConversationSummary, Event,
    EventKind, NoteId, QueueId, Sender, TenantId, Timestamp, Transition, UserId,
};

use crate::conversations::{self, apply_transition};
use crate::sql::{
    DbResult, RowExt, Sql, Val, chunks, is_unique_violation, ms, new_uuid, to_json, trunc,
};
use crate::{Backend, SqlStore, events, outbound};

const QUEUE_COLS: &str = "id, tenant_id, name, settings, round_robin_after, created_at, updated_at";

const ROUTED_SELECT: &str = "SELECT c.id, c.contact_id, ch.kind AS channel_kind, c.state, \
     c.assignee, c.queue_id, c.queue_priority, c.required_skills, c.enqueued_at, \
     c.in_queue_since, c.opened_at, c.last_agent, c.first_response_at, c.assigned_at, \
     c.routing_marks, c.wrap_up_code, c.created_at, t.due_at AS timer_due \
     FROM conversations c JOIN channels ch ON ch.id = c.channel_id \
     LEFT JOIN routing_timers t ON t.conversation_id = c.id";

const AGENT_SELECT: &str = "SELECT u.id AS user_id, a.presence, a.presence_since, a.capacity, \
     a.capacity_per_channel, a.skills, a.queues, a.last_assigned_at \
     FROM users u LEFT JOIN agent_settings a ON a.user_id = u.id";

fn queue_row(row: &AnyRow) -> StoreResult<QueueRecord> {
    Ok(QueueRecord {
        id: row.parse("id")?,
        tenant_id: row.parse("tenant_id")?,
        name: row.text("name")?,
        settings: row.json("settings")?,
        round_robin_after: row.opt_parse("round_robin_after")?,
        created_at: row.ts("created_at")?,
        updated_at: row.ts("updated_at")?,
    })
}

fn agent_row(row: &AnyRow, now: Timestamp) -> StoreResult<AgentSettings> {
    let user_id: UserId = row.parse("user_id")?;
    let Some(presence) = row.opt_parse::<AgentPresence>("presence")? else {
        return Ok(AgentSettings::default_for(user_id, now));
    };
    Ok(AgentSettings {
        user_id,
        presence,
        presence_since: row.ts("presence_since")?,
        capacity: u32::try_from(row.int("capacity")?).unwrap_or(0),
        capacity_per_channel: row.json("capacity_per_channel")?,
        skills: row.json("skills")?,
        queues: row.json("queues")?,
        last_assigned_at: row.opt_ts("last_assigned_at")?,
    })
}

fn routed_row(row: &AnyRow) -> StoreResult<RoutedConversation> {
    Ok(RoutedConversation {
        id: row.parse("id")?,
        contact_id: row.parse("contact_id")?,
        channel_kind: row.parse("channel_kind")?,
        state: row.parse("state")?,
        assignee: row.opt_parse("assignee")?,
        queue: row.opt_parse("queue_id")?,
        priority: i32::try_from(row.int("queue_priority")?).unwrap_or(0),
        required_skills: row
            .opt_json::<BTreeMap<String, u8>>("required_skills")?
            .unwrap_or_default(),
        enqueued_at: row.opt_ts("enqueued_at")?,
        in_queue_since: row.opt_ts("in_queue_since")?,
        opened_at: row.opt_ts("opened_at")?,
        last_agent: row.opt_parse("last_agent")?,
        first_response_at: row.opt_ts("first_response_at")?,
        assigned_at: row.opt_ts("assigned_at")?,
        marks: row
            .opt_json::<RoutingMarks>("routing_marks")?
            .unwrap_or_default(),
        timer_due: row.opt_ts("timer_due")?,
        wrap_up_code: row.opt_text("wrap_up_code")?,
        created_at: row.ts("created_at")?,
    })
}

fn routed_rows(rows: Vec<AnyRow>) -> StoreResult<Vec<RoutedConversation>> {
    rows.iter().map(routed_row).collect()
}

/// A note; `body` and `data` are sealed (agents write personal data into notes), bound to
/// the note's id.
fn note_row(keys: &crate::keys::TenantKeys, row: &AnyRow) -> StoreResult<Note> {
    let id: NoteId = row.parse("id")?;
    let place = id.to_string();
    Ok(Note {
        id,
        conversation_id: row.parse("conversation_id")?,
        author: row.opt_parse("author")?,
        kind: row.parse("kind")?,
        body: keys.open_text("conversation_notes", "body", &place, &row.text("body")?)?,
        data: keys.open_json("conversation_notes", "data", &place, &row.text("data")?)?,
        created_at: row.ts("created_at")?,
    })
}

fn canned_row(row: &AnyRow) -> StoreResult<CannedResponse> {
    Ok(CannedResponse {
        id: row.parse("id")?,
        shortcut: row.text("shortcut")?,
        title: row.text("title")?,
        body: row.text("body")?,
        updated_at: row.ts("updated_at")?,
    })
}

async fn queues_in(conn: &mut AnyConnection, tenant: TenantId) -> StoreResult<Vec<QueueRecord>> {
    let mut sql = Sql::new(&format!(
        "SELECT {QUEUE_COLS} FROM queues WHERE tenant_id = "
    ));
    sql.bind(tenant.to_string()).push(" ORDER BY name");
    sql.fetch_all(conn)
        .await
        .db()?
        .iter()
        .map(queue_row)
        .collect()
}

async fn agents_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
    now: Timestamp,
) -> StoreResult<Vec<AgentSettings>> {
    let mut sql = Sql::new(AGENT_SELECT);
    sql.push(" WHERE u.tenant_id = ")
        .bind(tenant.to_string())
        .push(" ORDER BY u.id");
    sql.fetch_all(conn)
        .await
        .db()?
        .iter()
        .map(|r| agent_row(r, now))
        .collect()
}

async fn loads_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
) -> StoreResult<HashMap<UserId, HashMap<ChannelKind, u32>>> {
    let mut sql = Sql::new(
        "SELECT c.assignee, ch.kind, COUNT(*) AS n FROM conversations c \
         JOIN channels ch ON ch.id = c.channel_id WHERE c.tenant_id = ",
    );
    sql.bind(tenant.to_string())
        .push(" AND c.state = 'assigned' AND c.assignee IS NOT NULL GROUP BY c.assignee, ch.kind");
    let mut loads: HashMap<UserId, HashMap<ChannelKind, u32>> = HashMap::new();
    for row in sql.fetch_all(conn).await.db()? {
        let agent: UserId = row.parse("assignee")?;
        let kind: ChannelKind = row.parse("kind")?;
        let n = u32::try_from(row.int("n")?).unwrap_or(u32::MAX);
        loads.entry(agent).or_default().insert(kind, n);
    }
    Ok(loads)
}

async fn routed_one(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: ConversationId,
) -> StoreResult<Option<RoutedConversation>> {
    let mut sql = Sql::new(ROUTED_SELECT);
    sql.push(" WHERE c.tenant_id = ")
        .bind(tenant.to_string())
        .push(" AND c.id = ")
        .bind(id.to_string());
    sql.fetch_optional(conn)
        .await
        .db()?
        .as_ref()
        .map(routed_row)
        .transpose()
}

/// Fills `last_agent` of not-yet-placed conversations from their contact's most recent
/// agent on any other conversation (returning customers): one query per 500 contacts.
async fn fill_returning_agents(
    conn: &mut AnyConnection,
    tenant: TenantId,
    waiting: &mut [RoutedConversation],
) -> StoreResult<()> {
    let contacts: Vec<String> = waiting
        .iter()
        .filter(|w| w.queue.is_none() && w.last_agent.is_none())
        .map(|w| w.contact_id.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // Per contact, their conversations with an agent, most recent activity first.
    let mut served: HashMap<switchboard_core::ContactId, Vec<(ConversationId, UserId)>> =
        HashMap::new();
    for chunk in chunks(&contacts) {
        let mut sql = Sql::new(
            "SELECT id, contact_id, COALESCE(assignee, last_agent) AS agent FROM conversations \
             WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND contact_id IN (")
            .list(chunk)
            .push(
                ") AND (assignee IS NOT NULL OR last_agent IS NOT NULL) \
                 ORDER BY last_message_at DESC, id DESC",
            );
        for row in sql.fetch_all(&mut *conn).await.db()? {
            served
                .entry(row.parse("contact_id")?)
                .or_default()
                .push((row.parse("id")?, row.parse("agent")?));
        }
    }
    for w in waiting
        .iter_mut()
        .filter(|w| w.queue.is_none() && w.last_agent.is_none())
    {
        w.last_agent = served
            .get(&w.contact_id)
            .and_then(|list| list.iter().find(|(id, _)| *id != w.id))
            .map(|(_, agent)| *agent);
    }
    Ok(())
}

async fn snapshot(
    conn: &mut AnyConnection,
    tenant: TenantId,
    focus: Option<ConversationId>,
    now: Timestamp,
) -> StoreResult<RoutingSnapshot> {
    let queues = queues_in(conn, tenant).await?;
    let agents = agents_in(conn, tenant, now).await?;
    let loads = loads_in(conn, tenant).await?;
    let mut sql = Sql::new(ROUTED_SELECT);
    sql.push(" WHERE c.tenant_id = ")
        .bind(tenant.to_string())
        .push(" AND c.state = 'queued' ORDER BY c.id");
    let mut waiting = routed_rows(sql.fetch_all(&mut *conn).await.db()?)?;
    let mut sql = Sql::new(ROUTED_SELECT);
    sql.push(" WHERE c.tenant_id = ")
        .bind(tenant.to_string())
        .push(" AND c.state = 'assigned' AND t.due_at <= ")
        .bind(ms(now))
        .push(" ORDER BY c.id");
    let due_assigned = routed_rows(sql.fetch_all(&mut *conn).await.db()?)?;
    fill_returning_agents(conn, tenant, &mut waiting).await?;
    let focus = match focus {
        Some(id) => Some(
            routed_one(conn, tenant, id)
                .await?
                .ok_or(StoreError::NotFound("conversation"))?,
        ),
        None => None,
    };
    Ok(RoutingSnapshot {
        queues,
        agents,
        loads,
        waiting,
        due_assigned,
        focus,
    })
}

/// Takes the tenant's routing lock for the rest of the transaction (see the module docs).
async fn lock_tenant(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
) -> StoreResult<()> {
    if backend == Backend::Postgres {
        let mut sql =
            Sql::new("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtextextended(");
        sql.bind(format!("routing:{tenant}")).push(", 0))) AS l");
        sql.fetch_optional(conn).await.db()?;
    }
    Ok(())
}

/// Moves a conversation through the state machine inside the round's transaction.
async fn change_state(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    id: ConversationId,
    transition: Option<Transition>,
    agent: Option<UserId>,
) -> StoreResult<ConversationState> {
    let mut locked = conversations::lock(conn, backend, tenant, id).await?;
    if let Some(t) = transition {
        apply_transition(&mut locked.conversation, t, agent)?;
        conversations::save(conn, &locked).await?;
    }
    Ok(locked.conversation.state)
}

async fn delete_timer(conn: &mut AnyConnection, id: ConversationId) -> StoreResult<()> {
    let mut sql = Sql::new("DELETE FROM routing_timers WHERE conversation_id = ");
    sql.bind(id.to_string());
    sql.execute(conn).await.db()?;
    Ok(())
}

/// The bulk changes of a round, gathered so each table gets one statement per 500 rows
/// (a first round over thousands of waiting conversations used to run several statements
/// per conversation). Places and assignments are gathered while consecutive (the plan
/// emits them so) and written before any other change; marks and timers are last-write-wins
/// per conversation and written at the end, with the resets other changes imply (placing or
/// reopening clears marks; assigning, resolving and starting a flow clear the timer)
/// applied to what is pending, so the result is the same as applying the changes in order.
#[derive(Default)]
struct Batch<'a> {
    places: Vec<&'a RoutingChange>,
    assigns: Vec<(ConversationId, UserId)>,
    marks: BTreeMap<ConversationId, RoutingMarks>,
    timers: BTreeMap<ConversationId, Option<Timestamp>>,
}

/// Applies a round's changes (see [`Batch`]); returns the events they add.
async fn apply_changes(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    changes: &[RoutingChange],
    now: Timestamp,
    touched: &mut Vec<ConversationId>,
) -> StoreResult<Vec<EventKind>> {
    let mut kinds = Vec::new();
    let mut b = Batch::default();
    for change in changes {
        match change {
            RoutingChange::Place { conversation, .. } => {
                if !b.assigns.is_empty() || placing(&b.places, *conversation) {
                    flush_runs(conn, backend, tenant, &mut b, now, touched).await?;
                }
                b.marks.remove(conversation);
                b.places.push(change);
            }
            RoutingChange::Assign {
                conversation,
                agent,
            } => {
                if !b.places.is_empty() || b.assigns.iter().any(|(c, _)| c == conversation) {
                    flush_runs(conn, backend, tenant, &mut b, now, touched).await?;
                }
                b.timers.insert(*conversation, None);
                b.assigns.push((*conversation, *agent));
            }
            RoutingChange::Marks {
                conversation,
                marks,
            } => {
                b.marks.insert(*conversation, *marks);
            }
            RoutingChange::Timer {
                conversation,
                due_at,
            } => {
                b.timers.insert(*conversation, *due_at);
            }
            other => {
                flush_runs(conn, backend, tenant, &mut b, now, touched).await?;
                match other {
                    RoutingChange::Reopen { conversation, .. } => {
                        b.marks.remove(conversation);
                    }
                    RoutingChange::Resolve { conversation, .. }
                    | RoutingChange::StartFlow { conversation, .. } => {
                        b.timers.insert(*conversation, None);
                    }
                    _ => {}
                }
                kinds.extend(apply_change(conn, backend, tenant, other, now, touched).await?);
            }
        }
    }
    flush_runs(conn, backend, tenant, &mut b, now, touched).await?;
    flush_marks(conn, tenant, &b.marks).await?;
    flush_timers(conn, tenant, &b.timers).await?;
    Ok(kinds)
}

fn placing(places: &[&RoutingChange], id: ConversationId) -> bool {
    places
        .iter()
        .any(|p| matches!(p, RoutingChange::Place { conversation, .. } if *conversation == id))
}

/// Writes the pending places, then the pending assignments.
async fn flush_runs(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    b: &mut Batch<'_>,
    now: Timestamp,
    touched: &mut Vec<ConversationId>,
) -> StoreResult<()> {
    let now_ms = ms(trunc(now));
    for chunk in b.places.chunks(500) {
        let mut rows = Vec::with_capacity(chunk.len());
        for p in chunk {
            if let RoutingChange::Place {
                conversation,
                queue,
                priority,
                required_skills,
                last_agent,
            } = p
            {
                rows.push(vec![
                    Val::from(conversation.to_string()),
                    queue.to_string().into(),
                    i64::from(*priority).into(),
                    to_json(required_skills)?.into(),
                    last_agent.map(|a| a.to_string()).into(),
                ]);
                touched.push(*conversation);
            }
        }
        let n = rows.len() as u64;
        let mut sql = Sql::new(
            "UPDATE conversations SET queue_id = v.column2, queue_priority = v.column3, \
             required_skills = v.column4, enqueued_at = ",
        );
        sql.bind(now_ms)
            .push(", in_queue_since = ")
            .bind(now_ms)
            .push(", opened_at = COALESCE(conversations.opened_at, ")
            .bind(now_ms)
            .push(
                "), last_agent = COALESCE(conversations.last_agent, v.column5), \
                 routing_marks = NULL, first_response_at = NULL FROM (VALUES ",
            )
            .rows(rows)
            .push(") AS v WHERE conversations.id = v.column1 AND conversations.tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND conversations.state = 'queued'");
        if sql.execute(&mut *conn).await.db()? != n {
            return Err(StoreError::Conflict(
                "a conversation is no longer waiting to be placed".into(),
            ));
        }
    }
    b.places.clear();
    if b.assigns.is_empty() {
        return Ok(());
    }
    let ids: Vec<ConversationId> = b.assigns.iter().map(|(c, _)| *c).collect();
    let mut locked = conversations::lock_many(conn, backend, tenant, &ids).await?;
    for chunk in b.assigns.chunks(500) {
        let mut rows = Vec::with_capacity(chunk.len());
        for (id, agent) in chunk {
            let l = locked
                .get_mut(id)
                .ok_or(StoreError::NotFound("conversation"))?;
            apply_transition(&mut l.conversation, Transition::Assign, Some(*agent))?;
            rows.push(vec![
                Val::from(id.to_string()),
                l.conversation.state.as_str().into(),
                agent.to_string().into(),
            ]);
            touched.push(*id);
        }
        let mut sql = Sql::new(
            "UPDATE conversations SET state = v.column2, assignee = v.column3, \
             last_agent = v.column3, assigned_at = ",
        );
        sql.bind(now_ms)
            .push(" FROM (VALUES ")
            .rows(rows)
            .push(") AS v WHERE conversations.id = v.column1");
        sql.execute(&mut *conn).await.db()?;
        let mut sql = Sql::new("UPDATE agent_settings SET last_assigned_at = ");
        sql.bind(now_ms)
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND user_id IN (")
            .list(distinct_agents(chunk))
            .push(")");
        sql.execute(&mut *conn).await.db()?;
    }
    b.assigns.clear();
    Ok(())
}

fn distinct_agents(assigns: &[(ConversationId, UserId)]) -> Vec<String> {
    let set: BTreeMap<UserId, ()> = assigns.iter().map(|(_, a)| (*a, ())).collect();
    set.into_keys().map(|a| a.to_string()).collect()
}

/// Writes the last marks of each conversation, one statement per 500.
async fn flush_marks(
    conn: &mut AnyConnection,
    tenant: TenantId,
    marks: &BTreeMap<ConversationId, RoutingMarks>,
) -> StoreResult<()> {
    let all: Vec<(&ConversationId, &RoutingMarks)> = marks.iter().collect();
    for chunk in all.chunks(500) {
        let rows = chunk
            .iter()
            .map(|(id, m)| Ok(vec![Val::from(id.to_string()), to_json(m)?.into()]))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut sql = Sql::new("UPDATE conversations SET routing_marks = v.column2 FROM (VALUES ");
        sql.rows(rows)
            .push(") AS v WHERE conversations.id = v.column1 AND conversations.tenant_id = ")
            .bind(tenant.to_string());
        sql.execute(&mut *conn).await.db()?;
    }
    Ok(())
}

/// Writes the last timer of each conversation: one DELETE for the cleared ones and one
/// upsert for the set ones, per 500.
async fn flush_timers(
    conn: &mut AnyConnection,
    tenant: TenantId,
    timers: &BTreeMap<ConversationId, Option<Timestamp>>,
) -> StoreResult<()> {
    let cleared: Vec<String> = timers
        .iter()
        .filter(|(_, due)| due.is_none())
        .map(|(id, _)| id.to_string())
        .collect();
    for chunk in chunks(&cleared) {
        let mut sql = Sql::new("DELETE FROM routing_timers WHERE conversation_id IN (");
        sql.list(chunk).push(")");
        sql.execute(&mut *conn).await.db()?;
    }
    let set: Vec<Vec<Val>> = timers
        .iter()
        .filter_map(|(id, due)| {
            due.map(|d| {
                vec![
                    Val::from(id.to_string()),
                    tenant.to_string().into(),
                    ms(d).into(),
                ]
            })
        })
        .collect();
    for chunk in set.chunks(500) {
        let mut sql =
            Sql::new("INSERT INTO routing_timers (conversation_id, tenant_id, due_at) VALUES ");
        sql.rows(chunk.to_vec())
            .push(" ON CONFLICT (conversation_id) DO UPDATE SET due_at = excluded.due_at");
        sql.execute(&mut *conn).await.db()?;
    }
    Ok(())
}

/// Applies one change; returns the events it adds (conversation changes are gathered by
/// the caller into `touched`).
async fn apply_change(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    change: &RoutingChange,
    now: Timestamp,
    touched: &mut Vec<ConversationId>,
) -> StoreResult<Vec<EventKind>> {
    let t = tenant.to_string();
    let now_ms = ms(trunc(now));
    let mut kinds = Vec::new();
    match change {
        RoutingChange::ToQueue {
            conversation,
            queue,
        } => {
            let locked = conversations::lock(conn, backend, tenant, *conversation).await?;
            let transition = match locked.conversation.state {
                ConversationState::Assigned => Some(Transition::ToQueue),
                ConversationState::Bot => Some(Transition::Handoff),
                ConversationState::Queued => None,
                ConversationState::Resolved => Some(Transition::Reopen),
            };
            change_state(conn, backend, tenant, *conversation, transition, None).await?;
            let mut sql = Sql::new("UPDATE conversations SET queue_id = ");
            sql.bind(queue.to_string())
                .push(", in_queue_since = ")
                .bind(now_ms)
                .push(", enqueued_at = COALESCE(enqueued_at, ")
                .bind(now_ms)
                .push("), opened_at = COALESCE(opened_at, ")
                .bind(now_ms)
                .push("), assigned_at = NULL WHERE tenant_id = ")
                .bind(t.clone())
                .push(" AND id = ")
                .bind(conversation.to_string());
            sql.execute(conn).await.db()?;
            touched.push(*conversation);
        }
        RoutingChange::RoundRobin { queue, after } => {
            let mut sql = Sql::new("UPDATE queues SET round_robin_after = ");
            sql.bind(after.to_string())
                .push(" WHERE tenant_id = ")
                .bind(t.clone())
                .push(" AND id = ")
                .bind(queue.to_string());
            sql.execute(conn).await.db()?;
        }
        RoutingChange::Notice { conversation, text } => {
            let mut locked = conversations::lock(conn, backend, tenant, *conversation).await?;
            let message = outbound::create(
                conn,
                &mut locked,
                NewOutbound {
                    sender: Sender::System,
                    content: Content::System { body: text.clone() },
                    lane: Lane::Live,
                },
                now,
            )
            .await?;
            conversations::save(conn, &locked).await?;
            kinds.push(EventKind::MessageCreated { message });
            touched.push(*conversation);
        }
        RoutingChange::Note {
            conversation,
            author,
            kind,
            body,
            data,
        } => {
            let note = Note {
                id: NoteId::from_uuid(new_uuid(now)),
                conversation_id: *conversation,
                author: *author,
                kind: *kind,
                body: body.clone(),
                data: data.clone(),
                created_at: trunc(now),
            };
            let keys = crate::keys::tenant(tenant)?;
            let place = note.id.to_string();
            let mut sql = Sql::new(
                "INSERT INTO conversation_notes (id, tenant_id, conversation_id, author, kind, \
                 body, data, created_at) SELECT ",
            );
            sql.bind(note.id.to_string())
                .push(", ")
                .bind(t.clone())
                .push(", c.id, ")
                .bind(author.map(|a| a.to_string()))
                .push(", ")
                .bind(kind.as_str())
                .push(", ")
                .bind(keys.seal_text("conversation_notes", "body", &place, body)?)
                .push(", ")
                .bind(keys.seal_json("conversation_notes", "data", &place, data)?)
                .push(", ")
                .bind(now_ms)
                .push(" FROM conversations c WHERE c.tenant_id = ")
                .bind(t.clone())
                .push(" AND c.id = ")
                .bind(conversation.to_string());
            if sql.execute(conn).await.db()? == 0 {
                return Err(StoreError::NotFound("conversation"));
            }
            kinds.push(EventKind::NoteAdded { note });
        }
        RoutingChange::SlaAlert {
            conversation,
            queue,
            target,
            breach,
            due_at,
        } => kinds.push(EventKind::SlaAlert {
            conversation_id: *conversation,
            queue_id: *queue,
            target: target.clone(),
            breach: *breach,
            due_at: trunc(*due_at),
        }),
        RoutingChange::Resolve {
            conversation,
            wrap_up_code,
            reopen_until,
        } => {
            change_state(
                conn,
                backend,
                tenant,
                *conversation,
                Some(Transition::Resolve),
                None,
            )
            .await?;
            let mut sql = Sql::new("UPDATE conversations SET wrap_up_code = ");
            sql.bind(wrap_up_code.clone())
                .push(", resolved_at = ")
                .bind(now_ms)
                .push(", reopen_until = ")
                .bind(reopen_until.map(|t| ms(trunc(t))))
                .push(" WHERE tenant_id = ")
                .bind(t.clone())
                .push(" AND id = ")
                .bind(conversation.to_string());
            sql.execute(&mut *conn).await.db()?;
            delete_timer(conn, *conversation).await?;
            touched.push(*conversation);
        }
        RoutingChange::Reopen {
            conversation,
            queue,
        } => {
            change_state(
                conn,
                backend,
                tenant,
                *conversation,
                Some(Transition::Reopen),
                None,
            )
            .await?;
            let mut sql = Sql::new("UPDATE conversations SET queue_id = COALESCE(");
            sql.bind(queue.map(|q| q.to_string()))
                .push(", queue_id), enqueued_at = ")
                .bind(now_ms)
                .push(", in_queue_since = ")
                .bind(now_ms)
                .push(", opened_at = ")
                .bind(now_ms)
                .push(
                    ", first_response_at = NULL, assigned_at = NULL, routing_marks = NULL, \
                     wrap_up_code = NULL, resolved_at = NULL, reopen_until = NULL \
                     WHERE tenant_id = ",
                )
                .bind(t.clone())
                .push(" AND id = ")
                .bind(conversation.to_string());
            sql.execute(conn).await.db()?;
            touched.push(*conversation);
        }
        RoutingChange::StartFlow {
            conversation,
            flow_id,
        } => {
            change_state(
                conn,
                backend,
                tenant,
                *conversation,
                Some(Transition::StartBot),
                None,
            )
            .await?;
            delete_timer(conn, *conversation).await?;
            let job = JobKind::StartFlow {
                conversation_id: *conversation,
                flow_id: flow_id.clone(),
                campaign: None,
            };
            crate::flows::insert_job(conn, tenant, &job, now, now).await?;
            touched.push(*conversation);
        }
        // Applied in batches by `apply_changes`.
        RoutingChange::Place { .. }
        | RoutingChange::Assign { .. }
        | RoutingChange::Marks { .. }
        | RoutingChange::Timer { .. } => {}
    }
    Ok(kinds)
}

/// What [`reopen_for_customers`] did.
pub(crate) enum Reopened {
    /// These resolved conversations are `queued` again (with their previews).
    Done(Vec<(switchboard_core::Conversation, Option<String>)>),
    /// A concurrent writer changed one of them first: run the batch again.
    Raced,
}

/// Resolve, then a customer message (ingest, step 4a): of `contacts` (ids of contacts with
/// no open conversation on `channel`), those whose latest conversation there was resolved
/// with a reopen window still open at `now`, from a queue that still exists, get it back:
/// state `queued` in the queue it was resolved from, no assignee, fresh first-response and
/// resolution clocks, no marks or wrap-up code. Its `last_agent` stays, so routing offers it
/// to that agent first. One SELECT for the contacts and one UPDATE for what it found.
pub(crate) async fn reopen_for_customers(
    conn: &mut AnyConnection,
    channel: switchboard_core::ChannelId,
    contacts: &[String],
    now: Timestamp,
) -> StoreResult<Reopened> {
    let mut sql = Sql::new(&format!(
        "SELECT {} FROM conversations c WHERE c.channel_id = ",
        crate::rows::CONVERSATION_COLS
    ));
    sql.bind(channel.to_string())
        .push(" AND c.state = 'resolved' AND c.reopen_until > ")
        .bind(ms(now))
        .push(" AND c.contact_id IN (")
        .list(contacts.iter().cloned())
        .push(
            ") AND EXISTS (SELECT 1 FROM queues q WHERE q.id = c.queue_id) \
             AND NOT EXISTS (SELECT 1 FROM conversations n WHERE n.channel_id = c.channel_id \
             AND n.contact_id = c.contact_id AND n.created_at > c.created_at)",
        );
    let mut found = Vec::new();
    for row in sql.fetch_all(&mut *conn).await.db()? {
        let mut c = crate::rows::conversation(&row)?;
        let preview = crate::rows::preview(&row, &c)?;
        apply_transition(&mut c, Transition::Reopen, None)?;
        found.push((c, preview));
    }
    if found.is_empty() {
        return Ok(Reopened::Done(found));
    }
    let now_ms = ms(trunc(now));
    let mut sql =
        Sql::new("UPDATE conversations SET state = 'queued', assignee = NULL, enqueued_at = ");
    sql.bind(now_ms)
        .push(", in_queue_since = ")
        .bind(now_ms)
        .push(", opened_at = ")
        .bind(now_ms)
        .push(
            ", first_response_at = NULL, assigned_at = NULL, routing_marks = NULL, \
             wrap_up_code = NULL, resolved_at = NULL, reopen_until = NULL \
             WHERE state = 'resolved' AND id IN (",
        )
        .list(found.iter().map(|(c, _)| c.id.to_string()))
        .push(")");
    match sql.execute(&mut *conn).await {
        Ok(n) if n == found.len() as u64 => Ok(Reopened::Done(found)),
        Ok(_) => Ok(Reopened::Raced),
        Err(e) if is_unique_violation(&e) => Ok(Reopened::Raced),
        Err(e) => Err(crate::sql::db(e)),
    }
}

impl SqlStore {
    pub(crate) async fn save_queue_impl(
        &self,
        tenant: TenantId,
        id: Option<QueueId>,
        name: &str,
        settings: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<(QueueRecord, Vec<Event>)> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        let now_ms = ms(trunc(now));
        let result = match id {
            None => {
                let id = QueueId::from_uuid(new_uuid(now));
                let mut sql = Sql::new(&format!("INSERT INTO queues ({QUEUE_COLS}) VALUES ("));
                sql.bind(id.to_string())
                    .push(", ")
                    .bind(tenant.to_string())
                    .push(", ")
                    .bind(name)
                    .push(", ")
                    .bind(to_json(settings)?)
                    .push(", NULL, ")
                    .bind(now_ms)
                    .push(", ")
                    .bind(now_ms)
                    .push(")");
                sql.execute(&mut tx).await.map(|_| id)
            }
            Some(id) => {
                let mut sql = Sql::new("UPDATE queues SET name = ");
                sql.bind(name)
                    .push(", settings = ")
                    .bind(to_json(settings)?)
                    .push(", updated_at = ")
                    .bind(now_ms)
                    .push(" WHERE tenant_id = ")
                    .bind(tenant.to_string())
                    .push(" AND id = ")
                    .bind(id.to_string());
                match sql.execute(&mut tx).await {
                    Ok(0) => return Err(StoreError::NotFound("queue")),
                    other => other.map(|_| id),
                }
            }
        };
        let id = match result {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "a queue named `{name}` already exists: choose another name or edit that queue"
                )));
            }
            Err(e) => return Err(crate::sql::db(e)),
        };
        let mut sql = Sql::new(&format!("SELECT {QUEUE_COLS} FROM queues WHERE id = "));
        sql.bind(id.to_string());
        let row = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("queue"))?;
        let queue = queue_row(&row)?;
        let events = events::append(
            &mut tx,
            tenant,
            now,
            vec![EventKind::QueueChanged {
                queue: queue.clone(),
                deleted: false,
            }],
        )
        .await?;
        tx.commit().await.db()?;
        Ok((queue, events))
    }

    pub(crate) async fn queues_impl(&self, tenant: TenantId) -> StoreResult<Vec<QueueRecord>> {
        let mut conn = self.conn().await?;
        queues_in(&mut conn, tenant).await
    }

    pub(crate) async fn delete_queue_impl(
        &self,
        tenant: TenantId,
        id: QueueId,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        lock_tenant(&mut tx, self.backend, tenant).await?;
        let mut sql = Sql::new(&format!(
            "SELECT {QUEUE_COLS} FROM queues WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(id.to_string());
        let row = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("queue"))?;
        let queue = queue_row(&row)?;
        let mut sql = Sql::new("SELECT COUNT(*) AS n FROM conversations WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND queue_id = ")
            .bind(id.to_string())
            .push(" AND state = 'queued'");
        let waiting = match sql.fetch_optional(&mut tx).await.db()? {
            Some(r) => r.int("n")?,
            None => 0,
        };
        if waiting > 0 {
            return Err(StoreError::Conflict(format!(
                "{waiting} conversation(s) wait in queue `{}`: transfer them to another queue first",
                queue.name
            )));
        }
        let mut sql = Sql::new("DELETE FROM queues WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(id.to_string());
        sql.execute(&mut tx).await.db()?;
        let events = events::append(
            &mut tx,
            tenant,
            now,
            vec![EventKind::QueueChanged {
                queue,
                deleted: true,
            }],
        )
        .await?;
        tx.commit().await.db()?;
        Ok(events)
    }

    pub(crate) async fn agent_settings_impl(
        &self,
        tenant: TenantId,
        now: Timestamp,
    ) -> StoreResult<Vec<AgentSettings>> {
        let mut conn = self.conn().await?;
        agents_in(&mut conn, tenant, now).await
    }

    pub(crate) async fn save_agent_settings_impl(
        &self,
        tenant: TenantId,
        s: &AgentSettings,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        // Serialised with rounds, so a round never sees half of a change.
        lock_tenant(&mut tx, self.backend, tenant).await?;
        let mut sql = Sql::new("SELECT id FROM users WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(s.user_id.to_string());
        if sql.fetch_optional(&mut tx).await.db()?.is_none() {
            return Err(StoreError::NotFound("user"));
        }
        let known: HashSet<QueueId> = queues_in(&mut tx, tenant)
            .await?
            .into_iter()
            .map(|q| q.id)
            .collect();
        if let Some(q) = s.queues.iter().find(|q| !known.contains(q)) {
            return Err(StoreError::Invalid(format!(
                "unknown queue {q}: list the queues with GET /api/v1/queues"
            )));
        }
        let mut sql = Sql::new(
            "INSERT INTO agent_settings (user_id, tenant_id, presence, presence_since, capacity, \
             capacity_per_channel, skills, queues, last_assigned_at) VALUES (",
        );
        sql.bind(s.user_id.to_string())
            .push(", ")
            .bind(tenant.to_string())
            .push(", ")
            .bind(s.presence.as_str())
            .push(", ")
            .bind(ms(s.presence_since))
            .push(", ")
            .bind(i64::from(s.capacity))
            .push(", ")
            .bind(to_json(&s.capacity_per_channel)?)
            .push(", ")
            .bind(to_json(&s.skills)?)
            .push(", ")
            .bind(to_json(&s.queues)?)
            .push(", ")
            .bind(s.last_assigned_at.map(ms))
            .push(
                ") ON CONFLICT (user_id) DO UPDATE SET presence = excluded.presence, \
                 presence_since = excluded.presence_since, capacity = excluded.capacity, \
                 capacity_per_channel = excluded.capacity_per_channel, skills = excluded.skills, \
                 queues = excluded.queues",
            );
        sql.execute(&mut tx).await.db()?;
        let mut sql = Sql::new(AGENT_SELECT);
        sql.push(" WHERE u.tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND u.id = ")
            .bind(s.user_id.to_string());
        let row = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("user"))?;
        let agent = agent_row(&row, now)?;
        let events = events::append(
            &mut tx,
            tenant,
            now,
            vec![EventKind::AgentChanged { agent }],
        )
        .await?;
        tx.commit().await.db()?;
        Ok(events)
    }

    pub(crate) async fn routing_round_impl(
        &self,
        tenant: TenantId,
        focus: Option<ConversationId>,
        now: Timestamp,
        plan: RoutingPlan<'_>,
    ) -> StoreResult<RoutingOutcome> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        lock_tenant(&mut tx, self.backend, tenant).await?;
        let snap = snapshot(&mut tx, tenant, focus, now).await?;
        let changes = plan(&snap)?;
        if changes.is_empty() {
            tx.rollback().await.db()?;
            return Ok(RoutingOutcome::default());
        }
        let mut touched = Vec::new();
        let mut kinds =
            apply_changes(&mut tx, self.backend, tenant, &changes, now, &mut touched).await?;
        let mut seen = HashSet::new();
        touched.retain(|c| seen.insert(*c));
        let summaries = conversations::summaries(&mut tx, tenant, &touched).await?;
        for id in &touched {
            if let Some(conversation) = summaries.get(id) {
                kinds.push(EventKind::ConversationChanged {
                    conversation: conversation.clone(),
                });
            }
        }
        let events = events::append(&mut tx, tenant, now, kinds).await?;
        tx.commit().await.db()?;
        Ok(RoutingOutcome { changes, events })
    }

    pub(crate) async fn routing_due_impl(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<TenantId>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("SELECT DISTINCT tenant_id FROM routing_timers WHERE due_at <= ");
        sql.bind(ms(now))
            .push(
                " UNION SELECT DISTINCT c.tenant_id FROM conversations c WHERE c.state = 'queued' \
                 AND c.queue_id IS NULL AND EXISTS (SELECT 1 FROM queues q WHERE q.tenant_id = c.tenant_id) \
                 LIMIT ",
            )
            .bind(i64::from(limit.clamp(1, 10_000)));
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(|r| r.parse("tenant_id"))
            .collect()
    }

    pub(crate) async fn routed_conversation_impl(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<RoutedConversation>> {
        let mut conn = self.conn().await?;
        routed_one(&mut conn, tenant, id).await
    }

    pub(crate) async fn desk_conversations_impl(
        &self,
        tenant: TenantId,
        f: &DeskFilter,
    ) -> StoreResult<Vec<(ConversationSummary, RoutedConversation)>> {
        self.ensure_keys([tenant]).await?;
        let mut conn = self.conn().await?;
        let limit = if f.limit == 0 { 100 } else { f.limit.min(1000) };
        // Names and previews are sealed at rest, so text search runs after decoding: scan a
        // wider window of recent conversations, then filter.
        let scan = if f.search.is_some() { 2000 } else { limit };
        let mut sql = Sql::new(ROUTED_SELECT);
        sql.push(" WHERE c.tenant_id = ").bind(tenant.to_string());
        if f.states.is_empty() {
            sql.push(" AND c.state <> 'resolved'");
        } else {
            sql.push(" AND c.state IN (")
                .list(f.states.iter().map(|s| s.as_str()))
                .push(")");
        }
        if let Some(a) = f.assignee {
            sql.push(" AND c.assignee = ").bind(a.to_string());
        }
        if f.unassigned {
            sql.push(" AND c.assignee IS NULL");
        }
        if !f.queues.is_empty() {
            sql.push(" AND c.queue_id IN (")
                .list(f.queues.iter().map(|q| q.to_string()))
                .push(")");
        }
        if f.unplaced {
            sql.push(" AND c.state = 'queued' AND c.queue_id IS NULL");
            if let Some(after) = f.after {
                sql.push(" AND c.id > ").bind(after.to_string());
            }
            sql.push(" ORDER BY c.id LIMIT ");
        } else {
            sql.push(" ORDER BY c.last_message_at DESC, c.id DESC LIMIT ");
        }
        sql.bind(i64::from(scan));
        let routed = routed_rows(sql.fetch_all(&mut conn).await.db()?)?;
        let ids: Vec<ConversationId> = routed.iter().map(|r| r.id).collect();
        let mut summaries = conversations::summaries(&mut conn, tenant, &ids).await?;
        let needle = f
            .search
            .as_deref()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty());
        let mut out = Vec::new();
        for r in routed {
            let Some(s) = summaries.remove(&r.id) else {
                continue;
            };
            if let Some(n) = &needle {
                let hit = |v: &Option<String>| {
                    v.as_deref()
                        .is_some_and(|v| v.to_lowercase().contains(n.as_str()))
                };
                if !hit(&s.contact_name) && !hit(&s.last_message_preview) {
                    continue;
                }
            }
            out.push((s, r));
            if out.len() >= limit as usize {
                break;
            }
        }
        Ok(out)
    }

    pub(crate) async fn record_first_response_impl(
        &self,
        tenant: TenantId,
        id: ConversationId,
        at: Timestamp,
    ) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        let mut sql = Sql::new("UPDATE conversations SET first_response_at = ");
        sql.bind(ms(trunc(at)))
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND id = ")
            .bind(id.to_string())
            .push(" AND first_response_at IS NULL");
        sql.execute(&mut conn).await.db()?;
        Ok(())
    }

    pub(crate) async fn queue_visits_impl(
        &self,
        tenant: TenantId,
        since: Timestamp,
    ) -> StoreResult<Vec<QueueVisit>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "SELECT queue_id, enqueued_at, assigned_at, resolved_at FROM conversations \
             WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND queue_id IS NOT NULL AND enqueued_at >= ")
            .bind(ms(since))
            .push(" ORDER BY enqueued_at LIMIT 100000");
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(|r| {
                Ok(QueueVisit {
                    queue: r.parse("queue_id")?,
                    enqueued_at: r.ts("enqueued_at")?,
                    assigned_at: r.opt_ts("assigned_at")?,
                    resolved_at: r.opt_ts("resolved_at")?,
                })
            })
            .collect()
    }

    pub(crate) async fn notes_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Vec<Note>> {
        self.ensure_keys([tenant]).await?;
        let keys = crate::keys::tenant(tenant)?;
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "SELECT id, conversation_id, author, kind, body, data, created_at \
             FROM conversation_notes WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND conversation_id = ")
            .bind(conversation.to_string())
            .push(" ORDER BY id");
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(|row| note_row(&keys, row))
            .collect()
    }

    pub(crate) async fn save_canned_impl(
        &self,
        tenant: TenantId,
        id: Option<CannedId>,
        shortcut: &str,
        title: &str,
        body: &str,
        now: Timestamp,
    ) -> StoreResult<CannedResponse> {
        let mut conn = self.write_conn().await?;
        let now_ms = ms(trunc(now));
        let (id, result) = match id {
            None => {
                let id = CannedId::from_uuid(new_uuid(now));
                let mut sql = Sql::new(
                    "INSERT INTO canned_responses (id, tenant_id, shortcut, title, body, \
                     created_at, updated_at) VALUES (",
                );
                sql.bind(id.to_string())
                    .push(", ")
                    .bind(tenant.to_string())
                    .push(", ")
                    .bind(shortcut)
                    .push(", ")
                    .bind(title)
                    .push(", ")
                    .bind(body)
                    .push(", ")
                    .bind(now_ms)
                    .push(", ")
                    .bind(now_ms)
                    .push(")");
                (id, sql.execute(&mut conn).await)
            }
            Some(id) => {
                let mut sql = Sql::new("UPDATE canned_responses SET shortcut = ");
                sql.bind(shortcut)
                    .push(", title = ")
                    .bind(title)
                    .push(", body = ")
                    .bind(body)
                    .push(", updated_at = ")
                    .bind(now_ms)
                    .push(" WHERE tenant_id = ")
                    .bind(tenant.to_string())
                    .push(" AND id = ")
                    .bind(id.to_string());
                (id, sql.execute(&mut conn).await)
            }
        };
        match result {
            Ok(0) => Err(StoreError::NotFound("canned response")),
            Ok(_) => Ok(CannedResponse {
                id,
                shortcut: shortcut.to_string(),
                title: title.to_string(),
                body: body.to_string(),
                updated_at: trunc(now),
            }),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "the shortcut `{shortcut}` is taken: choose another or edit that response"
            ))),
            Err(e) => Err(crate::sql::db(e)),
        }
    }

    pub(crate) async fn canned_responses_impl(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<CannedResponse>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "SELECT id, shortcut, title, body, updated_at FROM canned_responses WHERE tenant_id = ",
        );
        sql.bind(tenant.to_string()).push(" ORDER BY shortcut");
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(canned_row)
            .collect()
    }

    pub(crate) async fn delete_canned_impl(
        &self,
        tenant: TenantId,
        id: CannedId,
    ) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        let mut sql = Sql::new("DELETE FROM canned_responses WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(id.to_string());
        if sql.execute(&mut conn).await.db()? == 0 {
            return Err(StoreError::NotFound("canned response"));
        }
        Ok(())
    }
}
