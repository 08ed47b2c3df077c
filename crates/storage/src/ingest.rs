//! The inbound hot path: a batch of customer messages stored in ONE transaction.
//!
//! Round trips do not grow with the batch: each step is one statement for the whole batch
//! (per channel for lookups), and the per-item logic (dedupe within the batch, which
//! conversation a message joins, event payloads) runs in memory between them:
//!
//! 1. channels of the batch, checked against each item's tenant (with the tenants' privacy
//!    settings, for step 4b);
//! 2. existing messages with the same (channel, provider id): `Duplicate`;
//! 3. identities, then new contacts + identities for unknown senders;
//! 4. open conversations of those contacts, then new ones where there is none;
//! 5. messages, conversation activity, events (one counter bump per tenant), jobs (none for
//!    a message to an ongoing conversation people own: there is nothing to decide).
//!
//! On PostgreSQL two nodes may race on the same new sender, conversation or provider id.
//! The unique constraints catch it; the batch then rolls back and runs again, and the
//! lookups see the winner's rows. SQLite takes the write lock first and never races.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use sqlx::AnyConnection;
use switchboard_core::ports::{IngestItem, IngestOutcome, JobKind, StoreError, StoreResult};
use switchboard_core::{
    ChannelId, ChannelKind, ContactId, Content, Conversation, ConversationId, ConversationState,
    ConversationSummary, DeliveryStatus, Direction, EventKind, JobId, Message, MessageId, Sender,
    TenantId, Timestamp,
};

use crate::SqlStore;
use crate::events;
use crate::keys::TenantKeys;
use crate::sql::{
    DbResult, RowExt, Sql, Val, chunks, db, insert_rows, is_unique_violation, ms, new_uuid,
    to_json, trunc,
};

/// How many times a batch is retried after losing a race on PostgreSQL.
const ATTEMPTS: usize = 4;

/// Why one attempt did not finish.
enum Failed {
    /// Lost a race with a concurrent writer: run the batch again.
    Retry,
    /// A real error.
    Store(StoreError),
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::Store(e)
    }
}

/// Database errors inside an attempt. Unique violations mean another writer stored the same
/// sender, conversation or provider id first; deadlocks and serialization failures
/// (PostgreSQL 40P01 / 40001) mean two batches touched the same conversations in a
/// different order. Both succeed when run again.
impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Self {
        let transient = is_unique_violation(&e)
            || matches!(&e, sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("40P01" | "40001")));
        if transient {
            Failed::Retry
        } else {
            Failed::Store(db(e))
        }
    }
}

/// What the batch knows about a contact.
struct ContactInfo {
    id: ContactId,
    name: Option<String>,
    phone: Option<String>,
}

/// An open conversation as the batch changes it.
struct ConvSlot {
    conversation: Conversation,
    preview: Option<String>,
    /// Created by this batch (inserted with its final values).
    is_new: bool,
    /// Existing and touched by this batch (updated at the end).
    touched: bool,
}

impl SqlStore {
    pub(crate) async fn ingest_impl(
        &self,
        items: &[IngestItem],
    ) -> StoreResult<Vec<IngestOutcome>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Keys first, outside the write transaction (normally all cached already).
        self.ensure_keys(items.iter().map(|i| i.tenant_id)).await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.begin().await?;
            match ingest_once(&mut tx, items).await {
                Ok(outcomes) => {
                    tx.commit().await.db()?;
                    return Ok(outcomes);
                }
                Err(Failed::Retry) if attempt < ATTEMPTS => {
                    tx.rollback().await.db()?;
                }
                Err(Failed::Retry) => {
                    return Err(StoreError::Conflict(
                        "inbound batch kept colliding with concurrent writers".into(),
                    ));
                }
                Err(Failed::Store(e)) => return Err(e),
            }
        }
    }
}

async fn ingest_once(
    conn: &mut AnyConnection,
    items: &[IngestItem],
) -> Result<Vec<IngestOutcome>, Failed> {
    let n = items.len();
    let mut keys: HashMap<TenantId, Arc<TenantKeys>> = HashMap::new();
    for item in items {
        if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(item.tenant_id) {
            slot.insert(crate::keys::tenant(item.tenant_id)?);
        }
    }
    let keys_of = |tenant: &TenantId| {
        keys.get(tenant)
            .cloned()
            .ok_or_else(|| StoreError::Backend(format!("no keys for tenant {tenant}")))
    };

    // 1. Channels: each must exist and belong to the item's tenant. The same statement
    //    brings the tenants' privacy settings (raw JSON, parsed only if step 4b needs them).
    let channel_ids: Vec<ChannelId> = distinct(items.iter().map(|i| i.channel_id));
    let mut channels: HashMap<ChannelId, (TenantId, ChannelKind)> = HashMap::new();
    let mut privacy_json: HashMap<TenantId, Option<String>> = HashMap::new();
    for chunk in chunks(&channel_ids) {
        let mut sql = Sql::new(
            "SELECT c.id, c.tenant_id, c.kind, p.settings AS privacy FROM channels c \
             LEFT JOIN privacy_settings p ON p.tenant_id = c.tenant_id WHERE c.id IN (",
        );
        sql.list(padded(chunk).iter().map(|c| c.to_string()))
            .push(")");
        for row in sql.fetch_all(&mut *conn).await? {
            let tenant: TenantId = row.parse("tenant_id")?;
            privacy_json.insert(tenant, row.opt_text("privacy")?);
            channels.insert(row.parse("id")?, (tenant, row.parse("kind")?));
        }
    }
    for item in items {
        match channels.get(&item.channel_id) {
            Some((tenant, _)) if *tenant == item.tenant_id => {}
            _ => return Err(StoreError::NotFound("channel").into()),
        }
    }

    // 2. Dedupe: within the batch (the first copy wins) and against stored messages.
    let mut outcomes: Vec<Option<IngestOutcome>> = vec![None; n];
    let mut first_copy: HashMap<(ChannelId, &str), usize> = HashMap::new();
    let mut copy_of: Vec<Option<usize>> = vec![None; n];
    for (i, item) in items.iter().enumerate() {
        let key = (item.channel_id, item.message.provider_message_id.as_str());
        match first_copy.get(&key) {
            Some(&j) => copy_of[i] = Some(j),
            None => {
                first_copy.insert(key, i);
            }
        }
    }
    for channel in &channel_ids {
        let ids: Vec<String> = first_copy
            .keys()
            .filter(|(c, _)| c == channel)
            .map(|(_, p)| (*p).to_string())
            .collect();
        for chunk in chunks(&ids) {
            let mut sql = Sql::new(
                "SELECT id, conversation_id, provider_id FROM messages WHERE channel_id = ",
            );
            sql.bind(channel.to_string())
                .push(" AND provider_id IN (")
                .list(padded(chunk))
                .push(")");
            for row in sql.fetch_all(&mut *conn).await? {
                let provider_id = row.text("provider_id")?;
                if let Some(&i) = first_copy.get(&(*channel, provider_id.as_str())) {
                    outcomes[i] = Some(IngestOutcome::Duplicate {
                        message_id: row.parse("id")?,
                        conversation_id: row.parse("conversation_id")?,
                    });
                }
            }
        }
    }
    let fresh: Vec<usize> = (0..n)
        .filter(|&i| copy_of[i].is_none() && outcomes[i].is_none())
        .collect();

    // 3. Contacts: look up identities (by the blind index of the address), create the
    // missing ones.
    let mut contacts: HashMap<(ChannelId, String), ContactInfo> = HashMap::new();
    let mut address_index: HashMap<(ChannelId, String), String> = HashMap::new();
    for channel in &channel_ids {
        let Some((tenant, _)) = channels.get(channel) else {
            continue;
        };
        let k = keys_of(tenant)?;
        let externals: Vec<String> = distinct(
            fresh
                .iter()
                .filter(|&&i| items[i].channel_id == *channel)
                .map(|&i| items[i].message.external_contact_id.clone()),
        );
        let mut by_index: HashMap<String, String> = HashMap::with_capacity(externals.len());
        for external in &externals {
            let index = k.address_index(*channel, external);
            by_index.insert(index.clone(), external.clone());
            address_index.insert((*channel, external.clone()), index);
        }
        let indexes: Vec<String> = by_index.keys().cloned().collect();
        for chunk in chunks(&indexes) {
            let mut sql = Sql::new(
                "SELECT i.external_id, i.contact_id, i.phone, c.display_name \
                 FROM identities i JOIN contacts c ON c.id = i.contact_id \
                 WHERE i.channel_id = ",
            );
            sql.bind(channel.to_string())
                .push(" AND i.external_id IN (")
                .list(padded(chunk))
                .push(")");
            for row in sql.fetch_all(&mut *conn).await? {
                let index = row.text("external_id")?;
                let Some(external) = by_index.get(&index) else {
                    continue;
                };
                let id: ContactId = row.parse("contact_id")?;
                let place = crate::keys::identity_row(&channel.to_string(), &index);
                contacts.insert(
                    (*channel, external.clone()),
                    ContactInfo {
                        id,
                        name: k.open_opt(
                            "contacts",
                            "display_name",
                            &id.to_string(),
                            row.opt_text("display_name")?.as_deref(),
                        )?,
                        phone: k.open_opt(
                            "identities",
                            "phone",
                            &place,
                            row.opt_text("phone")?.as_deref(),
                        )?,
                    },
                );
            }
        }
    }
    let mut new_contacts = Vec::new();
    let mut new_identities = Vec::new();
    let mut renamed: BTreeMap<ContactId, String> = BTreeMap::new();
    let mut rephoned: BTreeMap<(ChannelId, String), String> = BTreeMap::new();
    for &i in &fresh {
        let item = &items[i];
        let m = &item.message;
        let k = keys_of(&item.tenant_id)?;
        let key = (item.channel_id, m.external_contact_id.clone());
        let index = address_index
            .get(&key)
            .cloned()
            .unwrap_or_else(|| k.address_index(item.channel_id, &m.external_contact_id));
        let place = crate::keys::identity_row(&item.channel_id.to_string(), &index);
        match contacts.get_mut(&key) {
            Some(info) => {
                if let Some(name) = &m.contact_name
                    && info.name.as_ref() != Some(name)
                {
                    info.name = Some(name.clone());
                    let sealed =
                        k.seal_text("contacts", "display_name", &info.id.to_string(), name)?;
                    renamed.insert(info.id, sealed);
                }
                if let Some(phone) = &m.phone
                    && info.phone.as_ref() != Some(phone)
                {
                    info.phone = Some(phone.clone());
                    let sealed = k.seal_text("identities", "phone", &place, phone)?;
                    rephoned.insert((item.channel_id, index.clone()), sealed);
                }
            }
            None => {
                let id = ContactId::from_uuid(new_uuid(item.received_at));
                let contact_row = id.to_string();
                let kind = channels
                    .get(&item.channel_id)
                    .map_or("webchat", |c| c.1.as_str());
                new_contacts.push(vec![
                    Val::from(id.to_string()),
                    item.tenant_id.to_string().into(),
                    k.seal_opt(
                        "contacts",
                        "display_name",
                        &contact_row,
                        m.contact_name.as_deref(),
                    )?
                    .into(),
                    k.seal_text("contacts", "attributes", &contact_row, "{}")?
                        .into(),
                    ms(item.received_at).into(),
                ]);
                new_identities.push(vec![
                    Val::from(item.channel_id.to_string()),
                    index.clone().into(),
                    k.seal_text("identities", "address", &place, &m.external_contact_id)?
                        .into(),
                    id.to_string().into(),
                    item.tenant_id.to_string().into(),
                    kind.into(),
                    k.seal_opt("identities", "phone", &place, m.phone.as_deref())?
                        .into(),
                    ms(item.received_at).into(),
                ]);
                contacts.insert(
                    key,
                    ContactInfo {
                        id,
                        name: m.contact_name.clone(),
                        phone: m.phone.clone(),
                    },
                );
            }
        }
    }
    insert_rows(
        conn,
        "INSERT INTO contacts (id, tenant_id, display_name, attributes, created_at) VALUES ",
        new_contacts,
    )
    .await?;
    insert_rows(
        conn,
        "INSERT INTO identities \
         (channel_id, external_id, address, contact_id, tenant_id, kind, phone, created_at) \
         VALUES ",
        new_identities,
    )
    .await?;
    for (contact, name) in renamed {
        let mut sql = Sql::new("UPDATE contacts SET display_name = ");
        sql.bind(name)
            .push(" WHERE id = ")
            .bind(contact.to_string());
        sql.execute(&mut *conn).await?;
    }
    for ((channel, external), phone) in rephoned {
        // `external` is the address index; `phone` is sealed for that identity.
        let mut sql = Sql::new("UPDATE identities SET phone = ");
        sql.bind(phone)
            .push(" WHERE channel_id = ")
            .bind(channel.to_string())
            .push(" AND external_id = ")
            .bind(external);
        sql.execute(&mut *conn).await?;
    }

    // 4. Conversations: the contact's open one on that channel, or a new one.
    let mut convs: HashMap<(ChannelId, ContactId), ConvSlot> = HashMap::new();
    for channel in &channel_ids {
        let ids: Vec<String> = distinct(
            fresh
                .iter()
                .filter(|&&i| items[i].channel_id == *channel)
                .filter_map(|&i| {
                    let key = (*channel, items[i].message.external_contact_id.clone());
                    contacts.get(&key).map(|c| c.id.to_string())
                }),
        );
        for chunk in chunks(&ids) {
            let mut sql = Sql::new(
                "SELECT id, tenant_id, channel_id, contact_id, state, assignee, last_inbound_at, \
                 last_message_at, created_at, last_message_preview FROM conversations \
                 WHERE state <> 'resolved' AND channel_id = ",
            );
            sql.bind(channel.to_string())
                .push(" AND contact_id IN (")
                .list(padded(chunk))
                .push(")");
            for row in sql.fetch_all(&mut *conn).await? {
                let conversation = crate::rows::conversation(&row)?;
                convs.insert(
                    (*channel, conversation.contact_id),
                    ConvSlot {
                        preview: crate::rows::preview(&row, &conversation)?,
                        conversation,
                        is_new: false,
                        touched: false,
                    },
                );
            }
        }
    }

    // 4a. Resolve, then a customer message: where no conversation is open, a conversation
    //     resolved within its queue's reopen window is reopened (`routing`) instead of a
    //     new one started. Only contacts without an open conversation are looked up.
    for channel in &channel_ids {
        let without_open = |i: usize| {
            let c = contacts.get(&(*channel, items[i].message.external_contact_id.clone()))?;
            (items[i].channel_id == *channel && !convs.contains_key(&(*channel, c.id)))
                .then(|| c.id.to_string())
        };
        let ids: Vec<String> = distinct(fresh.iter().filter_map(|&i| without_open(i)));
        let at = latest(items);
        for chunk in chunks(&ids) {
            let crate::routing::Reopened::Done(list) =
                crate::routing::reopen_for_customers(&mut *conn, *channel, &chunk, at).await?
            else {
                return Err(Failed::Retry);
            };
            for (conversation, preview) in list {
                convs.insert(
                    (*channel, conversation.contact_id),
                    ConvSlot {
                        conversation,
                        preview,
                        is_new: false,
                        touched: false,
                    },
                );
            }
        }
    }

    // 4b. Privacy commands (STOP, START, "my data", "forget me", and the yes/no answering a
    //     "forget me") work in every state, also while people own the conversation: such
    //     short texts get a job too (the worker answers them; `app::privacy`). Only short
    //     texts to queued/assigned conversations are looked at, so the hot path pays nothing
    //     for ordinary messages.
    let mut privacy_jobs: std::collections::HashSet<usize> = std::collections::HashSet::new();
    {
        let text_of = |i: usize| match &items[i].message.content {
            switchboard_core::Content::Text { body }
                if body.trim().chars().count() <= switchboard_core::privacy::MAX_COMMAND_CHARS =>
            {
                Some(body.as_str())
            }
            _ => None,
        };
        let contact_of = |i: usize| {
            contacts
                .get(&(
                    items[i].channel_id,
                    items[i].message.external_contact_id.clone(),
                ))
                .map(|c| c.id)
        };
        let candidates: Vec<(usize, ContactId, &str)> = fresh
            .iter()
            .filter_map(|&i| {
                let text = text_of(i)?;
                let contact = contact_of(i)?;
                let slot = convs.get(&(items[i].channel_id, contact))?;
                matches!(
                    slot.conversation.state,
                    ConversationState::Queued | ConversationState::Assigned
                )
                .then_some((i, contact, text))
            })
            .collect();
        // A text that is a command whatever the contact's state needs no further reads; only
        // a yes/no word also needs to know whether a "forget me" awaits the contact's answer.
        let mut settings: HashMap<TenantId, switchboard_core::privacy::PrivacySettings> =
            HashMap::new();
        let mut yes_or_no: Vec<(usize, ContactId, bool)> = Vec::new();
        for (i, contact, text) in candidates {
            let tenant = items[i].tenant_id;
            let s = match settings.entry(tenant) {
                std::collections::hash_map::Entry::Occupied(slot) => slot.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(match privacy_json.get(&tenant).and_then(Option::as_deref) {
                        Some(json) => serde_json::from_str(json)
                            .map_err(|e| crate::sql::corrupt("privacy settings", e))?,
                        None => switchboard_core::privacy::PrivacySettings::default(),
                    })
                }
            };
            // Asked as if an answer were awaited: yes/no words come first then, so one call
            // settles ordinary texts (the common case) and other commands.
            use switchboard_core::privacy::PrivacyCommand::{No, Yes};
            match s.command(text, true) {
                None => {}
                Some((Yes | No, _)) => {
                    let otherwise = s.command(text, false).is_some();
                    yes_or_no.push((i, contact, otherwise));
                }
                Some(_) => {
                    privacy_jobs.insert(i);
                }
            }
        }
        if !yes_or_no.is_empty() {
            let ids = distinct(yes_or_no.iter().map(|(_, c, _)| c.to_string()));
            let confirming = crate::privacy::confirming_contacts(&mut *conn, &ids).await?;
            for (i, contact, otherwise) in yes_or_no {
                if otherwise || confirming.contains(&contact) {
                    privacy_jobs.insert(i);
                }
            }
        }
    }

    // 5. Messages, events and jobs, item by item in memory.
    let mut messages = Vec::with_capacity(fresh.len());
    let mut jobs = Vec::with_capacity(fresh.len());
    let mut tenant_events: BTreeMap<TenantId, Vec<(usize, EventKind)>> = BTreeMap::new();
    let mut stored: HashMap<usize, (Message, bool)> = HashMap::new();
    for &i in &fresh {
        let item = &items[i];
        let m = &item.message;
        let received = trunc(item.received_at);
        let at = m.provider_ts.map(trunc).unwrap_or(received);
        let contact = contacts
            .get(&(item.channel_id, m.external_contact_id.clone()))
            .ok_or_else(|| StoreError::Backend("contact vanished during ingest".into()))?;
        let key = (item.channel_id, contact.id);
        let mut new_conversation = false;
        let slot = convs.entry(key).or_insert_with(|| {
            new_conversation = true;
            ConvSlot {
                conversation: Conversation {
                    id: ConversationId::from_uuid(new_uuid(item.received_at)),
                    tenant_id: item.tenant_id,
                    channel_id: item.channel_id,
                    contact_id: contact.id,
                    state: item.new_conversation_state,
                    assignee: None,
                    last_inbound_at: None,
                    last_message_at: at,
                    created_at: received,
                },
                preview: None,
                is_new: true,
                touched: false,
            }
        });
        if !slot.is_new {
            slot.touched = true;
        }
        let c = &mut slot.conversation;
        if at >= c.last_message_at || new_conversation {
            c.last_message_at = at;
            slot.preview = Some(m.content.preview());
        }
        if c.last_inbound_at.is_none_or(|t| at > t) {
            c.last_inbound_at = Some(at);
        }
        let message = Message {
            id: MessageId::from_uuid(new_uuid(item.received_at)),
            tenant_id: item.tenant_id,
            conversation_id: c.id,
            channel_id: item.channel_id,
            direction: Direction::Inbound,
            sender: Sender::Customer,
            content: m.content.clone(),
            provider_id: Some(m.provider_message_id.clone()),
            status: DeliveryStatus::Queued,
            failure: None,
            provider_ts: m.provider_ts.map(trunc),
            created_at: received,
        };
        messages.push(vec![
            Val::from(message.id.to_string()),
            message.tenant_id.to_string().into(),
            message.conversation_id.to_string().into(),
            message.channel_id.to_string().into(),
            "inbound".into(),
            to_json(&message.sender)?.into(),
            keys_of(&message.tenant_id)?
                .seal_json(
                    "messages",
                    "content",
                    &message.id.to_string(),
                    &message.content,
                )?
                .into(),
            message.provider_id.clone().into(),
            message.status.as_str().into(),
            Option::<String>::None.into(),
            message.provider_ts.map(ms).into(),
            ms(message.created_at).into(),
        ]);
        // A message to an ongoing conversation that people own (queued or assigned) decides
        // nothing: the agent learns of it from the events below, published at commit. Only
        // the bot (state `bot`) and a new conversation (welcome message) need the job.
        let needs_job = new_conversation
            || privacy_jobs.contains(&i)
            || !matches!(
                c.state,
                ConversationState::Queued | ConversationState::Assigned
            );
        let job = JobKind::ProcessInbound {
            conversation_id: c.id,
            message_id: message.id,
            new_conversation,
        };
        if needs_job {
            jobs.push(vec![
                Val::from(JobId::from_uuid(new_uuid(item.received_at)).to_string()),
                item.tenant_id.to_string().into(),
                "process_inbound".into(),
                to_json(&job)?.into(),
                c.id.to_string().into(),
                ms(received).into(),
                0i64.into(),
                ms(received).into(),
            ]);
        }
        // Inbound media is fetched from the provider by its own job, committed with the
        // message (never during the webhook request); it needs no conversation ordering.
        if let Content::Media { media, .. } = &message.content
            && media.provider_id.is_some()
            && media.stored_key.is_none()
        {
            let download = JobKind::DownloadMedia {
                message_id: message.id,
            };
            jobs.push(vec![
                Val::from(JobId::from_uuid(new_uuid(item.received_at)).to_string()),
                item.tenant_id.to_string().into(),
                download.tag().into(),
                to_json(&download)?.into(),
                Option::<String>::None.into(),
                ms(received).into(),
                0i64.into(),
                ms(received).into(),
            ]);
        }
        let summary = ConversationSummary {
            conversation: c.clone(),
            channel_kind: channels
                .get(&item.channel_id)
                .map_or(ChannelKind::Webchat, |x| x.1),
            contact_name: contact.name.clone(),
            last_message_preview: slot.preview.clone(),
        };
        let list = tenant_events.entry(item.tenant_id).or_default();
        list.push((
            i,
            EventKind::MessageCreated {
                message: message.clone(),
            },
        ));
        list.push((
            i,
            EventKind::ConversationChanged {
                conversation: summary,
            },
        ));
        stored.insert(i, (message, new_conversation));
    }

    let mut new_convs = Vec::new();
    let mut touched = Vec::new();
    for slot in convs.values() {
        let c = &slot.conversation;
        if slot.is_new {
            new_convs.push(vec![
                Val::from(c.id.to_string()),
                c.tenant_id.to_string().into(),
                c.channel_id.to_string().into(),
                c.contact_id.to_string().into(),
                c.state.as_str().into(),
                c.last_inbound_at.map(ms).into(),
                ms(c.last_message_at).into(),
                crate::conversations::seal_preview(c, slot.preview.as_deref())?.into(),
                ms(c.created_at).into(),
            ]);
        } else if slot.touched {
            touched.push(vec![
                Val::from(c.id.to_string()),
                ms(c.last_message_at).into(),
                c.last_inbound_at.map(ms).into(),
                crate::conversations::seal_preview(c, slot.preview.as_deref())?.into(),
            ]);
        }
    }
    insert_rows(
        conn,
        "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, state, \
         last_inbound_at, last_message_at, last_message_preview, created_at) VALUES ",
        new_convs,
    )
    .await?;
    insert_rows(
        conn,
        "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, sender, \
         content, provider_id, status, failure, provider_ts, created_at) VALUES ",
        messages,
    )
    .await?;
    // Activity only moves forward: a concurrent writer may have recorded a later message.
    for chunk in touched.chunks(500) {
        let mut sql = Sql::new(
            "UPDATE conversations SET \
             last_message_at = CASE WHEN v.column2 >= conversations.last_message_at \
                 THEN v.column2 ELSE conversations.last_message_at END, \
             last_message_preview = CASE WHEN v.column2 >= conversations.last_message_at \
                 THEN v.column4 ELSE conversations.last_message_preview END, \
             last_inbound_at = CASE WHEN conversations.last_inbound_at IS NULL \
                 OR v.column3 > conversations.last_inbound_at \
                 THEN v.column3 ELSE conversations.last_inbound_at END \
             FROM (VALUES ",
        );
        sql.rows(chunk.to_vec())
            .push(") AS v WHERE conversations.id = v.column1");
        sql.execute(&mut *conn).await?;
    }

    // Events: one counter bump per tenant (in id order, so PostgreSQL never deadlocks).
    let mut item_events: HashMap<usize, Vec<switchboard_core::Event>> = HashMap::new();
    for (tenant, list) in tenant_events {
        let (owners, kinds): (Vec<usize>, Vec<EventKind>) = list.into_iter().unzip();
        let numbered = events::append(conn, tenant, latest(items), kinds).await?;
        for (i, event) in owners.into_iter().zip(numbered) {
            item_events.entry(i).or_default().push(event);
        }
    }
    insert_rows(
        conn,
        "INSERT INTO jobs (id, tenant_id, kind, payload, conversation_id, run_at, attempts, \
         created_at) VALUES ",
        jobs,
    )
    .await?;

    // Outcomes in input order; later copies within the batch point at the first copy.
    for (i, (message, new_conversation)) in stored {
        outcomes[i] = Some(IngestOutcome::Stored {
            message,
            new_conversation,
            events: item_events.remove(&i).unwrap_or_default(),
        });
    }
    let mut result = Vec::with_capacity(n);
    for i in 0..n {
        let outcome = match (&outcomes[i], copy_of[i]) {
            (Some(o), _) => o.clone(),
            (None, Some(j)) => match &outcomes[j] {
                Some(IngestOutcome::Stored { message, .. }) => IngestOutcome::Duplicate {
                    message_id: message.id,
                    conversation_id: message.conversation_id,
                },
                Some(dup @ IngestOutcome::Duplicate { .. }) => dup.clone(),
                None => return Err(StoreError::Backend("ingest lost an item".into()).into()),
            },
            (None, None) => return Err(StoreError::Backend("ingest lost an item".into()).into()),
        };
        result.push(outcome);
    }
    Ok(result)
}

/// The batch's latest receive time: the time stamped on its events.
fn latest(items: &[IngestItem]) -> Timestamp {
    items
        .iter()
        .map(|i| i.received_at)
        .max()
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The list, its last value repeated up to the next power of two. `IN (a, b, b)` matches
/// what `IN (a, b)` does, and batches of varying size then share a few statement texts:
/// both drivers cache prepared statements by text, and a miss re-parses the statement and
/// evicts another cached one.
fn padded<T: Clone>(mut list: Vec<T>) -> Vec<T> {
    if let Some(last) = list.last().cloned() {
        list.resize(list.len().next_power_of_two(), last);
    }
    list
}

/// Distinct values in first-seen order.
fn distinct<T: Clone + Eq + std::hash::Hash>(it: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    it.into_iter().filter(|x| seen.insert(x.clone())).collect()
}
