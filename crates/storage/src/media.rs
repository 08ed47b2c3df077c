//! Inbound media downloads: recording where a message's file was stored (or why it was
//! refused) on the message itself, tenant-scoped, with an event for live pages.

use switchboard_core::ports::{StoreError, StoreResult};
use switchboard_core::{
    Content, Event, EventKind, JobId, MediaRef, MessageId, SendFailure, TenantId, Timestamp,
};

use crate::rows::{self, MESSAGE_COLS};
use crate::sql::{DbResult, Sql, to_json};
use crate::{Backend, SqlStore, events};

impl SqlStore {
    pub(crate) async fn record_media_impl(
        &self,
        tenant: TenantId,
        id: MessageId,
        media: MediaRef,
        failure: Option<SendFailure>,
        job: Option<JobId>,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        self.ensure_keys([tenant]).await?;
        let mut tx = self.begin().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" AND m.id = ")
            .bind(id.to_string());
        if self.backend == Backend::Postgres {
            sql.push(" FOR UPDATE");
        }
        let row = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("message"))?;
        let mut message = rows::message(&row)?;
        match &mut message.content {
            Content::Media { media: slot, .. } => *slot = media,
            _ => {
                return Err(StoreError::Invalid(format!("message {id} holds no media")));
            }
        }
        message.failure = failure;
        let failure_json = match &message.failure {
            Some(f) => Some(to_json(f)?),
            None => None,
        };
        let content = crate::keys::tenant(tenant)?.seal_json(
            "messages",
            "content",
            &id.to_string(),
            &message.content,
        )?;
        // `media_key` in the clear: erasure and retention find a file's users with SQL
        // (privacy.rs, retention.rs); the content itself is sealed.
        let media_key = match &message.content {
            Content::Media { media, .. } => media.stored_key.clone(),
            _ => None,
        };
        let mut up = Sql::new("UPDATE messages SET content = ");
        up.bind(content)
            .push(", media_key = ")
            .bind(media_key)
            .push(", failure = ")
            .bind(failure_json)
            .push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND id = ")
            .bind(id.to_string());
        up.execute(&mut tx).await.db()?;
        if let Some(job) = job {
            let mut del = Sql::new("DELETE FROM jobs WHERE tenant_id = ");
            del.bind(tenant.to_string())
                .push(" AND id = ")
                .bind(job.to_string());
            del.execute(&mut tx).await.db()?;
        }
        let events = events::append(
            &mut tx,
            tenant,
            now,
            vec![EventKind::MessageCreated { message }],
        )
        .await?;
        tx.commit().await.db()?;
        Ok(events)
    }
}
