//! Privacy (issue 6): per-tenant privacy settings, consent recorded by staff or typed in the
//! chat, erasure requests, the export of everything held about one contact, and erasure
//! across every table leaving an anonymised tombstone. Retention purges are in
//! [`crate::retention`].
//!
//! Reads go through the same row decoders as the rest of the store (`rows`, the `*_impl`
//! reads), so sealed columns are opened the one way they are everywhere else; writes of
//! sealed columns (consent wording) reuse `flows::apply_effects`.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::AnyConnection;
use switchboard_core::ports::{
    Consent, ContactExport, Decision, ErasureChange, FlowEffects, NewConsent, PrivacyEffects,
    StoreError, StoreResult,
};
use switchboard_core::privacy::{
    ContactTombstone, Erasure, ErasureRequest, ErasureStatus, PrivacySettings,
};
use switchboard_core::{
    ChannelId, ContactId, Content, ConversationId, Direction, Event, EventKind, TenantId, Timestamp,
};

use crate::conversations;
use crate::rows::{self, CONTACT_COLS, MESSAGE_COLS};
use crate::sql::{DbResult, RowExt, Sql, Val, chunks, from_ms, ms, new_uuid, to_json};
use crate::{Backend, SqlStore, events, flows, jobs, outbound};

const REQUEST_COLS: &str = "id, tenant_id, contact_id, status, source, requested_at, \
     decided_at, decided_by, note, tombstone_id";

fn request(row: &sqlx::any::AnyRow) -> StoreResult<ErasureRequest> {
    Ok(ErasureRequest {
        id: row.text("id")?,
        tenant_id: row.parse("tenant_id")?,
        contact_id: row.parse("contact_id")?,
        status: row.parse("status")?,
        source: row.text("source")?,
        requested_at: row.ts("requested_at")?,
        decided_at: row.opt_ts("decided_at")?,
        decided_by: row.opt_parse("decided_by")?,
        note: row.opt_text("note")?,
        tombstone_id: row.opt_text("tombstone_id")?,
    })
}

const TOMBSTONE_COLS: &str = "id, tenant_id, erased_at, contact_created_at, conversations, \
     messages_inbound, messages_outbound, channel_kinds, first_activity_at, last_activity_at, reason";

fn tombstone(row: &sqlx::any::AnyRow) -> StoreResult<ContactTombstone> {
    Ok(ContactTombstone {
        id: row.text("id")?,
        tenant_id: row.parse("tenant_id")?,
        erased_at: row.ts("erased_at")?,
        contact_created_at: row.opt_ts("contact_created_at")?,
        conversations: row.int("conversations")?,
        messages_inbound: row.int("messages_inbound")?,
        messages_outbound: row.int("messages_outbound")?,
        channel_kinds: row.json("channel_kinds")?,
        first_activity_at: row.opt_ts("first_activity_at")?,
        last_activity_at: row.opt_ts("last_activity_at")?,
        reason: row.text("reason")?,
    })
}

/// The tenant's settings inside a connection (defaults when none were saved).
pub(crate) async fn settings_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
) -> StoreResult<PrivacySettings> {
    let mut sql = Sql::new("SELECT settings FROM privacy_settings WHERE tenant_id = ");
    sql.bind(tenant.to_string());
    match sql.fetch_optional(conn).await.db()? {
        Some(row) => row.json("settings"),
        None => Ok(PrivacySettings::default()),
    }
}

/// Contacts with an open erasure request awaiting the customer's yes/no, among `contacts`.
pub(crate) async fn confirming_contacts(
    conn: &mut AnyConnection,
    contacts: &[String],
) -> StoreResult<BTreeSet<ContactId>> {
    let mut out = BTreeSet::new();
    for chunk in chunks(contacts) {
        let mut sql = Sql::new(
            "SELECT contact_id FROM erasure_requests WHERE status = 'confirming' AND contact_id IN (",
        );
        sql.list(chunk).push(")");
        for row in sql.fetch_all(&mut *conn).await.db()? {
            out.insert(row.parse("contact_id")?);
        }
    }
    Ok(out)
}

/// Tables whose rows name a conversation or a contact but that this module does not know by
/// name (added by other features later, e.g. notes): erasure and purges sweep them too, so
/// a new table cannot silently keep an erased customer's data. Returns (table, column).
async fn other_tables(
    conn: &mut AnyConnection,
    backend: Backend,
) -> StoreResult<Vec<(String, String)>> {
    const KNOWN: &[&str] = &[
        "messages",
        "message_status",
        "outbox",
        "jobs",
        "events",
        "flow_sessions",
        "flow_records",
        "consents",
        "identities",
        "conversations",
        "contacts",
        "contact_links",
        "erasure_requests",
        "contact_tombstones",
        "audit_log",
        "webchat_visitors",
    ];
    let sql = match backend {
        Backend::Sqlite => Sql::new(
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name IN ('conversation_id', 'contact_id')",
        ),
        Backend::Postgres => Sql::new(
            // information_schema names are `sql_identifier`, which the Any driver cannot
            // decode: cast them to text.
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name IN ('conversation_id', 'contact_id')",
        ),
    };
    let mut out = Vec::new();
    for row in sql.fetch_all(conn).await.db()? {
        let t = row.text("t")?;
        if !KNOWN.contains(&t.as_str()) {
            out.push((t, row.text("c")?));
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes `table` rows whose `column` is in `ids`, in chunks; returns how many.
async fn delete_in(
    conn: &mut AnyConnection,
    table: &str,
    column: &str,
    ids: &[String],
    tenant: Option<TenantId>,
) -> StoreResult<u64> {
    let mut n = 0;
    for chunk in chunks(ids) {
        let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE {column} IN ("));
        sql.list(chunk).push(")");
        if let Some(t) = tenant {
            sql.push(" AND tenant_id = ").bind(t.to_string());
        }
        n += sql.execute(&mut *conn).await.db()?;
    }
    Ok(n)
}

/// Deletes the conversations `convs` (of `tenant`) with every row inside them: messages and
/// their timelines, outbox rows, bot sessions, records, events, jobs naming them, and rows of
/// other tables naming them. Returns rows deleted per table and the media-store keys of the
/// deleted messages' files.
pub(crate) async fn delete_conversations(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    convs: &[String],
    extra_job_needles: &[String],
    counts: &mut BTreeMap<String, u64>,
) -> StoreResult<Vec<String>> {
    let mut bump = |t: &str, n: u64| *counts.entry(t.to_string()).or_default() += n;
    let mut message_ids = Vec::new();
    let mut keys = BTreeSet::new();
    for chunk in chunks(convs) {
        let mut sql = Sql::new(&format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND m.conversation_id IN (")
            .list(chunk)
            .push(")");
        for row in sql.fetch_all(&mut *conn).await.db()? {
            let m = rows::message(&row)?;
            if let Content::Media { media, .. } = &m.content
                && let Some(k) = &media.stored_key
            {
                keys.insert(k.clone());
            }
            message_ids.push(m.id.to_string());
        }
    }
    // Jobs name conversations, messages or contacts inside their JSON payload (timers,
    // downloads, erasure); the tenant's pending jobs are few, so they are matched here.
    let mut sql = Sql::new("SELECT id, payload FROM jobs WHERE tenant_id = ");
    sql.bind(tenant.to_string());
    let mut doomed_jobs = Vec::new();
    for row in sql.fetch_all(&mut *conn).await.db()? {
        let payload = row.text("payload")?;
        if convs
            .iter()
            .chain(&message_ids)
            .chain(extra_job_needles)
            .any(|id| payload.contains(id.as_str()))
        {
            doomed_jobs.push(row.text("id")?);
        }
    }
    let n = delete_in(conn, "jobs", "id", &doomed_jobs, Some(tenant)).await?;
    bump("jobs", n);
    let n = delete_in(conn, "jobs", "conversation_id", convs, Some(tenant)).await?;
    bump("jobs", n);
    for (table, column) in other_tables(conn, backend).await? {
        if column == "conversation_id" {
            let n = delete_in(conn, &table, &column, convs, None).await?;
            bump(&table, n);
        }
    }
    let n = delete_in(conn, "message_status", "message_id", &message_ids, None).await?;
    bump("message_status", n);
    for (table, col) in [
        ("outbox", "conversation_id"),
        ("events", "conversation_id"),
        ("flow_sessions", "conversation_id"),
        ("flow_records", "conversation_id"),
        ("messages", "conversation_id"),
    ] {
        let n = delete_in(conn, table, col, convs, Some(tenant)).await?;
        bump(table, n);
    }
    // Another tenant's or a concurrent insert cannot point at these any more; the
    // conversations themselves go last (everything above refers to them).
    let n = delete_in(conn, "conversations", "id", convs, Some(tenant)).await?;
    bump("conversations", n);
    Ok(keys.into_iter().collect())
}

/// Of `keys`, those no remaining message of the tenant refers to (files shared by two
/// messages with the same bytes stay while one remains).
pub(crate) async fn unreferenced_media(
    conn: &mut AnyConnection,
    tenant: TenantId,
    keys: Vec<String>,
) -> StoreResult<Vec<String>> {
    let mut out = Vec::new();
    for key in keys {
        // Content is sealed; `media_key` names the file in the clear (migration
        // 20261125000800). The store names files per tenant, so only this tenant's
        // messages can share one.
        let mut sql = Sql::new("SELECT id FROM messages WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND media_key = ")
            .bind(key.as_str())
            .push(" LIMIT 1");
        if sql.fetch_optional(&mut *conn).await.db()?.is_none() {
            out.push(key);
        }
    }
    Ok(out)
}

impl SqlStore {
    pub(crate) async fn privacy_settings_impl(
        &self,
        tenant: TenantId,
    ) -> StoreResult<PrivacySettings> {
        let mut conn = self.conn().await?;
        settings_in(&mut conn, tenant).await
    }

    pub(crate) async fn set_privacy_settings_impl(
        &self,
        tenant: TenantId,
        settings: &PrivacySettings,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let mut sql =
            Sql::new("INSERT INTO privacy_settings (tenant_id, settings, updated_at) VALUES (");
        sql.list::<Val>(vec![
            tenant.to_string().into(),
            to_json(settings)?.into(),
            ms(now).into(),
        ])
        .push(
            ") ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, \
             updated_at = excluded.updated_at",
        );
        sql.execute(&mut tx).await.map_err(|e| {
            if crate::sql::is_fk_violation(&e) {
                StoreError::NotFound("tenant")
            } else {
                crate::sql::db(e)
            }
        })?;
        tx.commit().await.db()?;
        Ok(())
    }

    pub(crate) async fn record_consent_impl(
        &self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        consent: NewConsent,
        now: Timestamp,
    ) -> StoreResult<Consent> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        let mut sql =
            Sql::new("SELECT id FROM contacts WHERE merged_into IS NULL AND tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(contact.to_string());
        sql.fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("contact"))?;
        let mut sql = Sql::new("SELECT id FROM channels WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND id = ")
            .bind(channel.to_string());
        sql.fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("channel"))?;
        let id = new_uuid(now).to_string();
        let keys = crate::keys::tenant(tenant)?;
        let mut sql = Sql::new(
            "INSERT INTO consents (id, tenant_id, contact_id, channel_id, status, source, \
             wording, at) VALUES (",
        );
        sql.list::<Val>(vec![
            id.as_str().into(),
            tenant.to_string().into(),
            contact.to_string().into(),
            channel.to_string().into(),
            consent.status.as_str().into(),
            consent.source.as_str().into(),
            keys.seal_opt("consents", "wording", &id, consent.wording.as_deref())?
                .into(),
            ms(now).into(),
        ])
        .push(")");
        sql.execute(&mut tx).await.db()?;
        tx.commit().await.db()?;
        Ok(Consent {
            tenant_id: tenant,
            contact_id: contact,
            channel_id: channel,
            status: consent.status,
            source: consent.source,
            wording: consent.wording,
            at: crate::sql::trunc(now),
        })
    }

    pub(crate) async fn opted_out_conversations_impl(
        &self,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<ConversationId>> {
        let ids: Vec<String> = conversations.iter().map(|c| c.to_string()).collect();
        let mut conn = self.conn().await?;
        let mut out = Vec::new();
        for chunk in chunks(&ids) {
            let mut sql = Sql::new("SELECT c.id FROM conversations c WHERE c.id IN (");
            sql.list(chunk).push(
                ") AND (SELECT k.status FROM consents k WHERE k.tenant_id = c.tenant_id \
                 AND k.contact_id = c.contact_id AND k.channel_id = c.channel_id \
                 ORDER BY k.at DESC, k.id DESC LIMIT 1) = 'opted_out'",
            );
            for row in sql.fetch_all(&mut conn).await.db()? {
                out.push(row.parse("id")?);
            }
        }
        Ok(out)
    }

    pub(crate) async fn open_erasure_request_impl(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<Option<ErasureRequest>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {REQUEST_COLS} FROM erasure_requests WHERE status IN \
             ('confirming', 'pending', 'approved') AND tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND contact_id = ")
            .bind(contact.to_string())
            .push(" ORDER BY requested_at DESC LIMIT 1");
        sql.fetch_optional(&mut conn)
            .await
            .db()?
            .as_ref()
            .map(request)
            .transpose()
    }

    pub(crate) async fn erasure_requests_impl(
        &self,
        tenant: TenantId,
        status: Option<ErasureStatus>,
        limit: u32,
    ) -> StoreResult<Vec<ErasureRequest>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {REQUEST_COLS} FROM erasure_requests WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string());
        if let Some(s) = status {
            sql.push(" AND status = ").bind(s.as_str());
        }
        sql.push(" ORDER BY requested_at DESC, id DESC LIMIT ")
            .bind(i64::from(limit.clamp(1, 1000)));
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(request)
            .collect()
    }

    pub(crate) async fn erasure_request_impl(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<ErasureRequest>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {REQUEST_COLS} FROM erasure_requests WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string()).push(" AND id = ").bind(id);
        sql.fetch_optional(&mut conn)
            .await
            .db()?
            .as_ref()
            .map(request)
            .transpose()
    }

    pub(crate) async fn apply_privacy_decision_impl(
        &self,
        decision: Decision,
        effects: PrivacyEffects,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        let tenant = decision.tenant_id;
        self.ensure_keys([tenant]).await?;
        let conversation = decision.conversation_id;
        let job = decision.job_id;
        let flow_effects = FlowEffects {
            consents: effects.consents,
            ..FlowEffects::default()
        };
        let mut tx = self.begin().await?;
        let kinds = if effects.completes_job {
            jobs::apply_in(&mut tx, self.backend, decision, Some(flow_effects), now).await?
        } else {
            let mut locked =
                conversations::lock(&mut tx, self.backend, tenant, conversation).await?;
            flows::apply_effects(&mut tx, self.backend, &locked, job, flow_effects, now).await?;
            let mut kinds = Vec::new();
            for out in decision.outbound {
                let message = outbound::create(&mut tx, &mut locked, out, now).await?;
                kinds.push(EventKind::MessageCreated { message });
            }
            if !kinds.is_empty() {
                conversations::save(&mut tx, &locked).await?;
                kinds.push(conversations::changed(&mut tx, tenant, conversation).await?);
            }
            kinds
        };
        if let Some(change) = effects.erasure {
            let mut sql = Sql::new("SELECT contact_id FROM conversations WHERE tenant_id = ");
            sql.bind(tenant.to_string())
                .push(" AND id = ")
                .bind(conversation.to_string());
            let contact: ContactId = sql
                .fetch_optional(&mut tx)
                .await
                .db()?
                .ok_or(StoreError::NotFound("conversation"))?
                .parse("contact_id")?;
            apply_erasure_change(&mut tx, self.backend, tenant, contact, change, now).await?;
        }
        for (kind, at) in &effects.jobs {
            flows::insert_job(&mut tx, tenant, kind, *at, now).await?;
        }
        let events = events::append(&mut tx, tenant, now, kinds).await?;
        tx.commit().await.db()?;
        Ok(events)
    }

    pub(crate) async fn export_contact_impl(
        &self,
        tenant: TenantId,
        contact: ContactId,
        now: Timestamp,
    ) -> StoreResult<ContactExport> {
        self.ensure_keys([tenant]).await?;
        let (found, identities) = self
            .contact_impl(tenant, contact)
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {CONTACT_COLS} FROM contacts WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND merged_into = ")
            .bind(contact.to_string())
            .push(" ORDER BY id");
        let merged_contacts = sql
            .fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(rows::contact)
            .collect::<StoreResult<Vec<_>>>()?;
        let settings = settings_in(&mut conn, tenant).await?;
        drop(conn);
        let conversations = self.contact_conversations_impl(tenant, contact).await?;
        let mut messages = Vec::new();
        let mut records = Vec::new();
        let mut flow_sessions = Vec::new();
        for c in &conversations {
            let id = c.conversation.id;
            messages.extend(self.list_messages_impl(tenant, id, u32::MAX).await?);
            records.extend(self.records_impl(tenant, id).await?);
            if let Some(s) = self.flow_session_impl(tenant, id).await? {
                flow_sessions.push(serde_json::json!({
                    "conversation_id": id,
                    "session": s.session,
                }));
            }
        }
        let mut sql_conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {REQUEST_COLS} FROM erasure_requests WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND contact_id = ")
            .bind(contact.to_string())
            .push(" ORDER BY requested_at");
        let erasure_requests = sql
            .fetch_all(&mut sql_conn)
            .await
            .db()?
            .iter()
            .map(request)
            .collect::<StoreResult<Vec<_>>>()?;
        drop(sql_conn);
        Ok(ContactExport {
            format: "switchboard.contact-export.v1".into(),
            exported_at: crate::sql::trunc(now),
            contact: found,
            identities,
            merged_contacts,
            conversations,
            messages,
            consents: self.consents_impl(tenant, contact).await?,
            records,
            flow_sessions,
            erasure_requests,
            retention: settings.retention,
        })
    }

    pub(crate) async fn erase_contact_impl(
        &self,
        tenant: TenantId,
        contact: ContactId,
        reason: &str,
        request_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Erasure> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        // The contact and every contact merged into it: they are one person.
        let mut sql =
            Sql::new("SELECT id, created_at, merged_into FROM contacts WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND (id = ")
            .bind(contact.to_string())
            .push(" OR merged_into = ")
            .bind(contact.to_string())
            .push(")")
            .push(self.backend.for_update());
        let found = sql.fetch_all(&mut tx).await.db()?;
        let mut created_at = None;
        let mut people = Vec::new();
        for row in &found {
            let id: ContactId = row.parse("id")?;
            if id == contact {
                if row.opt_text("merged_into")?.is_some() {
                    return Err(StoreError::Invalid(format!(
                        "contact {contact} was merged into another contact; erase that one"
                    )));
                }
                created_at = Some(row.ts("created_at")?);
            }
            people.push(id.to_string());
        }
        if created_at.is_none() {
            return Err(StoreError::NotFound("contact"));
        }
        // Conversations, with the numbers the tombstone keeps.
        let mut convs = Vec::new();
        let mut kinds = BTreeSet::new();
        let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
        for chunk in chunks(&people) {
            let mut sql = Sql::new(
                "SELECT c.id, c.created_at, c.last_message_at, ch.kind FROM conversations c \
                 JOIN channels ch ON ch.id = c.channel_id WHERE c.tenant_id = ",
            );
            sql.bind(tenant.to_string())
                .push(" AND c.contact_id IN (")
                .list(chunk)
                .push(")");
            for row in sql.fetch_all(&mut tx).await.db()? {
                convs.push(row.text("id")?);
                kinds.insert(row.text("kind")?);
                let (c, l) = (row.int("created_at")?, row.int("last_message_at")?);
                first = Some(first.map_or(c, |f| f.min(c)));
                last = Some(last.map_or(l, |x| x.max(l)));
            }
        }
        let mut sql = Sql::new("SELECT kind FROM identities WHERE tenant_id = ");
        sql.bind(tenant.to_string())
            .push(" AND contact_id IN (")
            .list(people.clone())
            .push(")");
        for row in sql.fetch_all(&mut tx).await.db()? {
            kinds.insert(row.text("kind")?);
        }
        let (mut inbound, mut outbound_n) = (0i64, 0i64);
        for chunk in chunks(&convs) {
            let mut sql = Sql::new(
                "SELECT direction, COUNT(*) AS n FROM messages WHERE conversation_id IN (",
            );
            sql.list(chunk).push(") GROUP BY direction");
            for row in sql.fetch_all(&mut tx).await.db()? {
                match row.parse::<Direction>("direction")? {
                    Direction::Inbound => inbound += row.int("n")?,
                    Direction::Outbound => outbound_n += row.int("n")?,
                }
            }
        }
        let keys =
            delete_conversations(&mut tx, self.backend, tenant, &convs, &people, &mut counts)
                .await?;
        for (table, column) in other_tables(&mut tx, self.backend).await? {
            if column == "contact_id" {
                let n = delete_in(&mut tx, &table, &column, &people, None).await?;
                *counts.entry(table).or_default() += n;
            }
        }
        // Web chat visitors: the browser token rows of the contact's web chat addresses.
        // `identities.external_id` is a keyed hash of the visitor id, so the visitor ids are
        // read from the sealed `identities.address` (opened with the tenant's key).
        let mut sql = Sql::new(&format!(
            "SELECT {} FROM identities WHERE kind = 'webchat' AND tenant_id = ",
            rows::IDENTITY_COLS
        ));
        sql.bind(tenant.to_string())
            .push(" AND contact_id IN (")
            .list(people.clone())
            .push(")");
        let mut visitors = 0;
        for row in sql.fetch_all(&mut tx).await.db()? {
            let identity = rows::identity(&row)?;
            let mut sql = Sql::new("DELETE FROM webchat_visitors WHERE channel_id = ");
            sql.bind(identity.channel_id.to_string())
                .push(" AND visitor_id = ")
                .bind(identity.external_id);
            visitors += sql.execute(&mut tx).await.db()?;
        }
        *counts.entry("webchat_visitors".into()).or_default() += visitors;
        for (table, column) in [
            ("flow_records", "contact_id"),
            ("consents", "contact_id"),
            ("identities", "contact_id"),
            ("contact_links", "survivor_id"),
            ("contact_links", "merged_id"),
        ] {
            let n = delete_in(&mut tx, table, column, &people, Some(tenant)).await?;
            *counts.entry(table.to_string()).or_default() += n;
        }
        // Merged contacts first (they name the survivor), then the contact itself.
        let (merged, me): (Vec<String>, Vec<String>) = people
            .iter()
            .cloned()
            .partition(|p| *p != contact.to_string());
        let n = delete_in(&mut tx, "contacts", "id", &merged, Some(tenant)).await?
            + delete_in(&mut tx, "contacts", "id", &me, Some(tenant)).await?;
        *counts.entry("contacts".into()).or_default() += n;

        let tomb = ContactTombstone {
            id: new_uuid(now).to_string(),
            tenant_id: tenant,
            erased_at: crate::sql::trunc(now),
            contact_created_at: created_at,
            conversations: convs.len() as i64,
            messages_inbound: inbound,
            messages_outbound: outbound_n,
            channel_kinds: kinds.into_iter().collect(),
            first_activity_at: first.map(from_ms).transpose()?,
            last_activity_at: last.map(from_ms).transpose()?,
            reason: reason.to_string(),
        };
        let mut sql = Sql::new(&format!(
            "INSERT INTO contact_tombstones ({TOMBSTONE_COLS}) VALUES ("
        ));
        sql.list::<Val>(vec![
            tomb.id.as_str().into(),
            tenant.to_string().into(),
            ms(now).into(),
            created_at.map(ms).into(),
            tomb.conversations.into(),
            inbound.into(),
            outbound_n.into(),
            to_json(&tomb.channel_kinds)?.into(),
            first.into(),
            last.into(),
            reason.into(),
        ])
        .push(")");
        sql.execute(&mut tx).await.db()?;
        // Open requests of this person are completed by this erasure.
        let mut sql = Sql::new(
            "UPDATE erasure_requests SET status = 'completed', decided_at = COALESCE(decided_at, ",
        );
        sql.bind(ms(now))
            .push("), tombstone_id = ")
            .bind(tomb.id.as_str())
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND status IN ('confirming', 'pending', 'approved') AND contact_id IN (")
            .list(people.clone())
            .push(")");
        if let Some(r) = request_id {
            sql.push(" OR (tenant_id = ")
                .bind(tenant.to_string())
                .push(" AND id = ")
                .bind(r)
                .push(")");
        }
        sql.execute(&mut tx).await.db()?;
        let media_keys = unreferenced_media(&mut tx, tenant, keys).await?;
        tx.commit().await.db()?;
        counts.retain(|_, n| *n > 0);
        Ok(Erasure {
            tombstone: tomb,
            media_keys,
            rows_deleted: counts,
        })
    }

    pub(crate) async fn pending_outbox_for_contact_impl(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<i64> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "SELECT COUNT(*) AS n FROM outbox o JOIN conversations c ON c.id = o.conversation_id \
             WHERE o.state = 'pending' AND c.tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND c.contact_id = ")
            .bind(contact.to_string());
        let row = sql
            .fetch_optional(&mut conn)
            .await
            .db()?
            .ok_or_else(|| StoreError::Backend("COUNT returned no row".into()))?;
        row.int("n")
    }

    pub(crate) async fn tombstones_impl(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> StoreResult<Vec<ContactTombstone>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {TOMBSTONE_COLS} FROM contact_tombstones WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" ORDER BY erased_at DESC, id DESC LIMIT ")
            .bind(i64::from(limit.clamp(1, 1000)));
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(tombstone)
            .collect()
    }
}

/// Opens or moves an erasure request of `contact` inside the caller's transaction.
async fn apply_erasure_change(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    contact: ContactId,
    change: ErasureChange,
    now: Timestamp,
) -> StoreResult<()> {
    match change {
        ErasureChange::Open { status, source } => {
            let mut sql = Sql::new(
                "SELECT id FROM erasure_requests WHERE status IN ('confirming', 'pending', 'approved') \
                 AND tenant_id = ",
            );
            sql.bind(tenant.to_string())
                .push(" AND contact_id = ")
                .bind(contact.to_string())
                .push(backend.for_update());
            if sql.fetch_optional(&mut *conn).await.db()?.is_some() {
                return Err(StoreError::Conflict(
                    "this contact already has an open erasure request".into(),
                ));
            }
            let mut sql = Sql::new(
                "INSERT INTO erasure_requests (id, tenant_id, contact_id, status, source, \
                 requested_at) VALUES (",
            );
            sql.list::<Val>(vec![
                new_uuid(now).to_string().into(),
                tenant.to_string().into(),
                contact.to_string().into(),
                status.as_str().into(),
                source.into(),
                ms(now).into(),
            ])
            .push(")");
            sql.execute(&mut *conn).await.db()?;
        }
        ErasureChange::Set {
            id,
            from,
            to,
            by,
            note,
        } => {
            let mut sql = Sql::new("UPDATE erasure_requests SET status = ");
            sql.bind(to.as_str());
            if by.is_some() || matches!(to, ErasureStatus::Approved | ErasureStatus::Denied) {
                sql.push(", decided_at = ")
                    .bind(ms(now))
                    .push(", decided_by = ")
                    .bind(by.map(|u| u.to_string()))
                    .push(", note = ")
                    .bind(note);
            }
            sql.push(" WHERE tenant_id = ")
                .bind(tenant.to_string())
                .push(" AND id = ")
                .bind(id.as_str())
                .push(" AND status = ")
                .bind(from.as_str());
            if sql.execute(&mut *conn).await.db()? != 1 {
                return Err(StoreError::Conflict(format!(
                    "erasure request {id} is no longer {}",
                    from.as_str()
                )));
            }
        }
    }
    Ok(())
}
