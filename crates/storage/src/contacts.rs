//! Contacts across channels: reachability of an identity, linking identities by a keyed hash
//! of a verified phone number, merging two contacts, and a contact's conversations.
//!
//! A merge moves identities, conversations, flow records and consents of the merged contact to
//! the survivor in ONE transaction, marks the merged row (`merged_into`) and writes a
//! `contact_links` row (who, why, when) for audit. Identities are found by blind indexes (see
//! [`crate::keys`]): the address index for `(channel, external id)` and the phone index,
//! keyed per tenant, for equal numbers across channels.

use sqlx::AnyConnection;
use switchboard_core::ports::{ContactMerge, StoreError, StoreResult};
use switchboard_core::{
    ChannelId, ChannelKind, ContactId, ConversationId, ConversationSummary, TenantId, Timestamp,
    UserId,
};

use crate::conversations;
use crate::rows::{self, SUMMARY_SELECT};
use crate::sql::{DbResult, RowExt, Sql, Val, ms, new_uuid};
use crate::{SqlStore, events};

/// Proof recorded for an automatic link on equal verified E.164 numbers.
pub(crate) const PROOF_PHONE: &str = "phone_e164";
/// Proof recorded for a merge made by staff.
pub(crate) const PROOF_MERGE: &str = "merge";

impl SqlStore {
    pub(crate) async fn set_reachability_impl(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        external_id: &str,
        unreachable: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.ensure_keys([tenant]).await?;
        let external_id = crate::keys::tenant(tenant)?.address_index(channel, external_id);
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("UPDATE identities SET unreachable_reason = ");
        sql.bind(unreachable.map(str::to_string))
            .push(", unreachable_since = ")
            .bind(unreachable.map(|_| ms(now)))
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND channel_id = ")
            .bind(channel.to_string())
            .push(" AND external_id = ")
            .bind(external_id.as_str());
        Ok(sql.execute(&mut conn).await.db()? > 0)
    }

    pub(crate) async fn link_by_phone_impl(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        external_id: &str,
        phone: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ContactMerge>> {
        self.ensure_keys([tenant]).await?;
        let keys = crate::keys::tenant(tenant)?;
        let Some(phone_hash) = keys.phone_index(phone) else {
            return Err(StoreError::Invalid(
                "not an international phone number (+<country code><number>)".into(),
            ));
        };
        let phone_hash = phone_hash.as_str();
        let external_id = keys.address_index(channel, external_id);
        let external_id = external_id.as_str();
        let mut tx = self.begin().await?;
        let mut sql = Sql::new("UPDATE identities SET phone_hash = ");
        sql.bind(phone_hash)
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND channel_id = ")
            .bind(channel.to_string())
            .push(" AND external_id = ")
            .bind(external_id)
            .push(" RETURNING contact_id, kind");
        let row = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("identity"))?;
        let mine: ContactId = row.parse("contact_id")?;
        let kind: ChannelKind = row.parse("kind")?;
        // Only WhatsApp and Signal numbers are verified by the provider (channels.md §7).
        let other_kind = match kind {
            ChannelKind::Whatsapp => ChannelKind::Signal,
            ChannelKind::Signal => ChannelKind::Whatsapp,
            _ => {
                tx.commit().await.db()?;
                return Ok(None);
            }
        };
        let mut sql = Sql::new(
            "SELECT i.contact_id FROM identities i JOIN contacts c ON c.id = i.contact_id \
             WHERE i.tenant_id = ",
        );
        sql.bind(tenant.to_string())
            .push(" AND i.phone_hash = ")
            .bind(phone_hash)
            .push(" AND i.kind = ")
            .bind(other_kind.as_str())
            .push(" AND i.contact_id <> ")
            .bind(mine.to_string())
            .push(" AND c.merged_into IS NULL ORDER BY i.created_at LIMIT 1");
        let Some(found) = sql.fetch_optional(&mut tx).await.db()? else {
            tx.commit().await.db()?;
            return Ok(None);
        };
        let survivor: ContactId = found.parse("contact_id")?;
        match merge(
            &mut tx,
            self.backend,
            tenant,
            survivor,
            mine,
            None,
            PROOF_PHONE,
            now,
        )
        .await
        {
            Ok(merged) => {
                tx.commit().await.db()?;
                Ok(Some(merged))
            }
            // Both have an open conversation on one channel: leave them apart (staff can
            // merge once one is resolved); the hash is still recorded.
            Err(StoreError::Conflict(_)) => {
                tx.rollback().await.db()?;
                let mut tx = self.begin().await?;
                let mut sql = Sql::new("UPDATE identities SET phone_hash = ");
                sql.bind(phone_hash)
                    .push(" WHERE tenant_id = ")
                    .bind(tenant.to_string())
                    .push(" AND channel_id = ")
                    .bind(channel.to_string())
                    .push(" AND external_id = ")
                    .bind(external_id);
                sql.execute(&mut tx).await.db()?;
                tx.commit().await.db()?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn merge_contacts_impl(
        &self,
        tenant: TenantId,
        survivor: ContactId,
        other: ContactId,
        actor: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<ContactMerge> {
        if survivor == other {
            return Err(StoreError::Invalid(
                "a contact cannot be merged with itself".into(),
            ));
        }
        let mut tx = self.begin().await?;
        let merged = merge(
            &mut tx,
            self.backend,
            tenant,
            survivor,
            other,
            actor,
            PROOF_MERGE,
            now,
        )
        .await?;
        tx.commit().await.db()?;
        Ok(merged)
    }

    pub(crate) async fn contact_conversations_impl(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<Vec<ConversationSummary>> {
        self.ensure_keys([tenant]).await?;
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(SUMMARY_SELECT);
        sql.push(" WHERE c.tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND c.contact_id = ")
            .bind(contact.to_string())
            .push(" ORDER BY c.last_message_at DESC, c.id DESC");
        sql.fetch_all(&mut conn)
            .await
            .db()?
            .iter()
            .map(rows::summary)
            .collect()
    }
}

/// Merges `merged` into `survivor` inside the caller's transaction. Both must be live
/// contacts of `tenant` (`NotFound` otherwise); two open conversations on one channel are a
/// `Conflict` (only one may be open per contact and channel).
#[allow(clippy::too_many_arguments)]
async fn merge(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    tenant: TenantId,
    survivor: ContactId,
    merged: ContactId,
    actor: Option<UserId>,
    proof: &str,
    now: Timestamp,
) -> StoreResult<ContactMerge> {
    let mut sql = Sql::new("SELECT id, display_name FROM contacts WHERE tenant_id = ");
    sql.bind(tenant.to_string())
        .push(" AND merged_into IS NULL AND id IN (")
        .list([survivor.to_string(), merged.to_string()])
        .push(")")
        .push(backend.for_update());
    let found = sql.fetch_all(&mut *conn).await.db()?;
    if found.len() != 2 {
        return Err(StoreError::NotFound("contact"));
    }
    let mut sql =
        Sql::new("SELECT channel_id FROM conversations WHERE state <> 'resolved' AND tenant_id = ");
    sql.bind(tenant.to_string())
        .push(" AND contact_id IN (")
        .list([survivor.to_string(), merged.to_string()])
        .push(") GROUP BY channel_id HAVING COUNT(*) > 1");
    if let Some(row) = sql.fetch_optional(&mut *conn).await.db()? {
        return Err(StoreError::Conflict(format!(
            "both contacts have an open conversation on channel {}; resolve one first",
            row.text("channel_id")?
        )));
    }
    let mut sql = Sql::new("SELECT id FROM conversations WHERE tenant_id = ");
    sql.bind(tenant.to_string())
        .push(" AND contact_id = ")
        .bind(merged.to_string());
    let moved: Vec<ConversationId> = sql
        .fetch_all(&mut *conn)
        .await
        .db()?
        .iter()
        .map(|r| r.parse("id"))
        .collect::<StoreResult<_>>()?;
    let mut sql = Sql::new("UPDATE identities SET contact_id = ");
    sql.bind(survivor.to_string())
        .push(", linked_by = ")
        .bind(proof)
        .push(", linked_at = ")
        .bind(ms(now))
        .push(" WHERE tenant_id = ")
        .bind(tenant.to_string())
        .push(" AND contact_id = ")
        .bind(merged.to_string());
    sql.execute(&mut *conn).await.db()?;
    for table in ["conversations", "flow_records", "consents"] {
        let mut sql = Sql::new(&format!("UPDATE {table} SET contact_id = "));
        sql.bind(survivor.to_string())
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND contact_id = ")
            .bind(merged.to_string());
        sql.execute(&mut *conn).await.db()?;
    }
    // The survivor keeps its name; it takes the merged one's only when it has none. Names
    // are sealed for their row, so the name is opened and sealed again for the survivor.
    let name_of = |id: ContactId| -> StoreResult<Option<String>> {
        let row = found
            .iter()
            .find(|r| r.text("id").ok().as_deref() == Some(id.to_string().as_str()))
            .ok_or(StoreError::NotFound("contact"))?;
        crate::keys::tenant(tenant)?.open_opt(
            "contacts",
            "display_name",
            &id.to_string(),
            row.opt_text("display_name")?.as_deref(),
        )
    };
    if name_of(survivor)?.is_none()
        && let Some(name) = name_of(merged)?
    {
        let sealed = crate::keys::tenant(tenant)?.seal_text(
            "contacts",
            "display_name",
            &survivor.to_string(),
            &name,
        )?;
        let mut sql = Sql::new("UPDATE contacts SET display_name = ");
        sql.bind(sealed)
            .push(" WHERE id = ")
            .bind(survivor.to_string());
        sql.execute(&mut *conn).await.db()?;
    }
    let mut sql = Sql::new("UPDATE contacts SET merged_into = ");
    sql.bind(survivor.to_string())
        .push(" WHERE id = ")
        .bind(merged.to_string());
    sql.execute(&mut *conn).await.db()?;
    let mut sql = Sql::new(
        "INSERT INTO contact_links (id, tenant_id, survivor_id, merged_id, proof, actor, at) \
         VALUES (",
    );
    sql.list::<Val>(vec![
        new_uuid(now).to_string().into(),
        tenant.to_string().into(),
        survivor.to_string().into(),
        merged.to_string().into(),
        proof.into(),
        actor.map(|a| a.to_string()).into(),
        ms(now).into(),
    ])
    .push(")");
    sql.execute(&mut *conn).await.db()?;
    let mut kinds = Vec::with_capacity(moved.len());
    for id in &moved {
        kinds.push(conversations::changed(&mut *conn, tenant, *id).await?);
    }
    let events = events::append(conn, tenant, now, kinds).await?;
    Ok(ContactMerge {
        survivor,
        merged,
        conversations: moved,
        events,
    })
}
