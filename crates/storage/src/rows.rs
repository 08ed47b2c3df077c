//! Column lists and row decoders for each domain type, so every query that returns, say, a
//! message selects the same columns and decodes them the same way. Sealed columns (see
//! [`crate::keys`]) are opened here with the row's tenant keys, so callers get plaintext.

use sqlx::any::AnyRow;
use switchboard_core::ports::StoreResult;
use switchboard_core::{
    Channel, ChannelKind, Contact, Conversation, ConversationSummary, Email, Identity, Message,
    Tenant, User,
};

use crate::keys;
use crate::sql::{RowExt, corrupt};

pub(crate) const TENANT_COLS: &str = "id, slug, name, created_at";

pub(crate) fn tenant(row: &AnyRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: row.parse("id")?,
        slug: row.text("slug")?,
        name: row.text("name")?,
        created_at: row.ts("created_at")?,
    })
}

/// User columns, qualified with `u.` (queries alias `users` as `u`).
pub(crate) const USER_COLS: &str = "u.id AS user_id, u.tenant_id AS user_tenant_id, u.email, u.name AS user_name, u.role, u.created_at AS user_created_at";

pub(crate) fn user(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: row.parse("user_id")?,
        tenant_id: row.parse("user_tenant_id")?,
        email: Email::parse(&row.text("email")?).map_err(|e| corrupt("email", e))?,
        name: row.text("user_name")?,
        role: row.parse("role")?,
        created_at: row.ts("user_created_at")?,
    })
}

/// Columns written when a channel is created.
pub(crate) const CHANNEL_INSERT_COLS: &str =
    "id, tenant_id, kind, name, credentials, settings, created_at";

/// Columns [`channel`] reads.
pub(crate) const CHANNEL_COLS: &str =
    "id, tenant_id, kind, name, credentials, settings, created_at, paused_reason, paused_at";

pub(crate) fn channel(row: &AnyRow) -> StoreResult<Channel> {
    let id: switchboard_core::ChannelId = row.parse("id")?;
    let tenant_id = row.parse("tenant_id")?;
    let keys = keys::tenant(tenant_id)?;
    Ok(Channel {
        id,
        tenant_id,
        kind: row.parse("kind")?,
        name: row.text("name")?,
        credentials: keys.open_json(
            "channels",
            "credentials",
            &id.to_string(),
            &row.text("credentials")?,
        )?,
        settings: row.json("settings")?,
        created_at: row.ts("created_at")?,
        paused: pause(row, "paused_reason", "paused_at")?,
    })
}

/// A channel's pause from its two columns (both set, or neither).
pub(crate) fn pause(
    row: &AnyRow,
    reason: &str,
    since: &str,
) -> StoreResult<Option<switchboard_core::ChannelPause>> {
    Ok(match (row.opt_text(reason)?, row.opt_ts(since)?) {
        (Some(reason), Some(since)) => Some(switchboard_core::ChannelPause { reason, since }),
        _ => None,
    })
}

pub(crate) const CONTACT_COLS: &str = "id, tenant_id, display_name, attributes, created_at";

pub(crate) fn contact(row: &AnyRow) -> StoreResult<Contact> {
    let id: switchboard_core::ContactId = row.parse("id")?;
    let tenant_id = row.parse("tenant_id")?;
    let keys = keys::tenant(tenant_id)?;
    let row_id = id.to_string();
    Ok(Contact {
        id,
        tenant_id,
        display_name: keys.open_opt(
            "contacts",
            "display_name",
            &row_id,
            row.opt_text("display_name")?.as_deref(),
        )?,
        attributes: keys.open_json("contacts", "attributes", &row_id, &row.text("attributes")?)?,
        created_at: row.ts("created_at")?,
    })
}

pub(crate) const IDENTITY_COLS: &str = "tenant_id, contact_id, channel_id, kind, external_id, \
     address, phone, unreachable_reason, linked_by";

/// An identity; `external_id` is the opened `address` (the column `external_id` holds its
/// blind index).
pub(crate) fn identity(row: &AnyRow) -> StoreResult<Identity> {
    let keys = keys::tenant(row.parse("tenant_id")?)?;
    let channel = row.text("channel_id")?;
    let place = keys::identity_row(&channel, &row.text("external_id")?);
    let address = row
        .opt_text("address")?
        .ok_or_else(|| corrupt("identities.address", "missing"))?;
    Ok(Identity {
        contact_id: row.parse("contact_id")?,
        channel_id: row.parse("channel_id")?,
        kind: row.parse("kind")?,
        external_id: keys.open_text("identities", "address", &place, &address)?,
        phone: keys.open_opt(
            "identities",
            "phone",
            &place,
            row.opt_text("phone")?.as_deref(),
        )?,
        unreachable: row.opt_text("unreachable_reason")?,
        linked_by: row.opt_text("linked_by")?,
    })
}

/// Conversation columns of table alias `c`.
pub(crate) const CONVERSATION_COLS: &str = "c.id, c.tenant_id, c.channel_id, c.contact_id, c.state, \
     c.assignee, c.last_inbound_at, c.last_message_at, c.created_at, c.last_message_preview";

pub(crate) fn conversation(row: &AnyRow) -> StoreResult<Conversation> {
    Ok(Conversation {
        id: row.parse("id")?,
        tenant_id: row.parse("tenant_id")?,
        channel_id: row.parse("channel_id")?,
        contact_id: row.parse("contact_id")?,
        state: row.parse("state")?,
        assignee: row.opt_parse("assignee")?,
        last_inbound_at: row.opt_ts("last_inbound_at")?,
        last_message_at: row.ts("last_message_at")?,
        created_at: row.ts("created_at")?,
    })
}

/// An inbox row: conversations `c` joined with channels `ch` and contacts `ct`.
pub(crate) const SUMMARY_SELECT: &str = "SELECT c.id, c.tenant_id, c.channel_id, c.contact_id, \
     c.state, c.assignee, c.last_inbound_at, c.last_message_at, c.created_at, \
     c.last_message_preview, ch.kind AS channel_kind, ct.display_name AS contact_name \
     FROM conversations c \
     JOIN channels ch ON ch.id = c.channel_id \
     JOIN contacts ct ON ct.id = c.contact_id";

pub(crate) fn summary(row: &AnyRow) -> StoreResult<ConversationSummary> {
    let conversation = conversation(row)?;
    let keys = keys::tenant(conversation.tenant_id)?;
    Ok(ConversationSummary {
        channel_kind: row.parse::<ChannelKind>("channel_kind")?,
        contact_name: keys.open_opt(
            "contacts",
            "display_name",
            &conversation.contact_id.to_string(),
            row.opt_text("contact_name")?.as_deref(),
        )?,
        last_message_preview: preview(row, &conversation)?,
        conversation,
    })
}

/// The opened `last_message_preview` of a conversation row.
pub(crate) fn preview(row: &AnyRow, c: &Conversation) -> StoreResult<Option<String>> {
    keys::tenant(c.tenant_id)?.open_opt(
        "conversations",
        "last_message_preview",
        &c.id.to_string(),
        row.opt_text("last_message_preview")?.as_deref(),
    )
}

/// Message columns of table alias `m`.
pub(crate) const MESSAGE_COLS: &str = "m.id, m.tenant_id, m.conversation_id, m.channel_id, \
     m.direction, m.sender, m.content, m.provider_id, m.status, m.failure, m.provider_ts, m.created_at";

pub(crate) fn message(row: &AnyRow) -> StoreResult<Message> {
    let id: switchboard_core::MessageId = row.parse("id")?;
    let tenant_id = row.parse("tenant_id")?;
    let keys = keys::tenant(tenant_id)?;
    Ok(Message {
        id,
        tenant_id,
        conversation_id: row.parse("conversation_id")?,
        channel_id: row.parse("channel_id")?,
        direction: row.parse("direction")?,
        sender: row.json("sender")?,
        content: keys.open_json(
            "messages",
            "content",
            &id.to_string(),
            &row.text("content")?,
        )?,
        provider_id: row.opt_text("provider_id")?,
        status: row.parse("status")?,
        failure: row.opt_json("failure")?,
        provider_ts: row.opt_ts("provider_ts")?,
        created_at: row.ts("created_at")?,
    })
}
