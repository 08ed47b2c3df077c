//! Channel instances and web chat visitors.

use switchboard_core::ports::{StoreError, StoreResult, WebchatVisitor};
use switchboard_core::{Channel, ChannelId, Conversation, NewChannel, TenantId, Timestamp};

use crate::SqlStore;
use crate::rows::{self, CHANNEL_COLS, CHANNEL_INSERT_COLS, CONVERSATION_COLS};
use crate::sql::{DbResult, RowExt, Sql, Val, is_fk_violation, ms, new_uuid, to_json, trunc};

impl SqlStore {
    pub(crate) async fn create_channel_impl(
        &self,
        new: NewChannel,
        now: Timestamp,
    ) -> StoreResult<Channel> {
        self.ensure_keys([new.tenant_id]).await?;
        let keys =
            crate::keys::tenant(new.tenant_id).map_err(|_| StoreError::NotFound("tenant"))?;
        let channel = Channel {
            id: ChannelId::from_uuid(new_uuid(now)),
            tenant_id: new.tenant_id,
            kind: new.kind,
            name: new.name,
            credentials: new.credentials,
            settings: new.settings,
            created_at: trunc(now),
            paused: None,
        };
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "INSERT INTO channels ({CHANNEL_INSERT_COLS}) VALUES ("
        ));
        sql.list::<Val>(vec![
            channel.id.to_string().into(),
            channel.tenant_id.to_string().into(),
            channel.kind.as_str().into(),
            channel.name.as_str().into(),
            keys.seal_json(
                "channels",
                "credentials",
                &channel.id.to_string(),
                &channel.credentials,
            )?
            .into(),
            to_json(&channel.settings)?.into(),
            ms(now).into(),
        ])
        .push(")");
        match sql.execute(&mut conn).await {
            Ok(_) => Ok(channel),
            Err(e) if is_fk_violation(&e) => Err(StoreError::NotFound("tenant")),
            Err(e) => Err(crate::sql::db(e)),
        }
    }

    pub(crate) async fn channel_impl(&self, id: ChannelId) -> StoreResult<Option<Channel>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!("SELECT {CHANNEL_COLS} FROM channels WHERE id = "));
        sql.bind(id.to_string());
        let row = sql.fetch_optional(&mut conn).await.db()?;
        self.ensure_row_keys(row.as_slice()).await?;
        row.as_ref().map(rows::channel).transpose()
    }

    pub(crate) async fn list_channels_impl(&self, tenant: TenantId) -> StoreResult<Vec<Channel>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {CHANNEL_COLS} FROM channels WHERE tenant_id = "
        ));
        sql.bind(tenant.to_string())
            .push(" ORDER BY created_at, id");
        let found = sql.fetch_all(&mut conn).await.db()?;
        self.ensure_row_keys(&found).await?;
        found.iter().map(rows::channel).collect()
    }

    pub(crate) async fn channels_of_kind_impl(
        &self,
        kind: switchboard_core::ChannelKind,
    ) -> StoreResult<Vec<Channel>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {CHANNEL_COLS} FROM channels WHERE kind = "
        ));
        sql.bind(kind.as_str()).push(" ORDER BY created_at, id");
        let found = sql.fetch_all(&mut conn).await.db()?;
        self.ensure_row_keys(&found).await?;
        found.iter().map(rows::channel).collect()
    }

    /// Sets (`Some`) or clears a channel's pause and returns the channel as stored.
    pub(crate) async fn set_channel_pause_impl(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        reason: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Channel> {
        self.ensure_keys([tenant]).await?;
        let mut sql = Sql::new("UPDATE channels SET paused_reason = ");
        sql.bind(reason.map(str::to_string));
        match reason {
            // Several in-flight sends may report the refusal: the pause keeps its first time.
            Some(_) => sql
                .push(", paused_at = COALESCE(paused_at, ")
                .bind(ms(now))
                .push(")"),
            None => sql.push(", paused_at = NULL"),
        };
        self.update_channel(tenant, channel, sql).await
    }

    /// Replaces a channel's credentials and returns the channel as stored.
    pub(crate) async fn set_channel_credentials_impl(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        credentials: &serde_json::Value,
    ) -> StoreResult<Channel> {
        self.ensure_keys([tenant]).await?;
        let sealed = crate::keys::tenant(tenant)?.seal_json(
            "channels",
            "credentials",
            &channel.to_string(),
            credentials,
        )?;
        let mut sql = Sql::new("UPDATE channels SET credentials = ");
        sql.bind(sealed);
        self.update_channel(tenant, channel, sql).await
    }

    /// Runs `UPDATE channels SET …` (given without its WHERE) for one channel of `tenant`
    /// and reads the row back, in one transaction.
    async fn update_channel(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        mut sql: Sql,
    ) -> StoreResult<Channel> {
        let mut tx = self.begin().await?;
        sql.push(" WHERE tenant_id = ")
            .bind(tenant.to_string())
            .push(" AND id = ")
            .bind(channel.to_string());
        if sql.execute(&mut tx).await.db()? == 0 {
            return Err(StoreError::NotFound("channel"));
        }
        let mut sql = Sql::new(&format!("SELECT {CHANNEL_COLS} FROM channels WHERE id = "));
        sql.bind(channel.to_string());
        let row = sql
            .fetch_optional(&mut tx)
            .await
            .db()?
            .ok_or(StoreError::NotFound("channel"))?;
        let channel = rows::channel(&row)?;
        tx.commit().await.db()?;
        Ok(channel)
    }

    pub(crate) async fn create_webchat_visitor_impl(
        &self,
        channel: ChannelId,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<WebchatVisitor> {
        let visitor_id = new_uuid(now).to_string();
        let mut conn = self.conn().await?;
        let mut sql = Sql::new(
            "INSERT INTO webchat_visitors (channel_id, token_hash, visitor_id, created_at) \
             SELECT id, ",
        );
        sql.bind(token_hash)
            .push(", ")
            .bind(visitor_id.as_str())
            .push(", ")
            .bind(ms(now))
            .push(" FROM channels WHERE id = ")
            .bind(channel.to_string())
            .push(" AND kind = 'webchat'");
        match sql.execute(&mut conn).await.unique("visitor token")? {
            0 => Err(StoreError::NotFound("web chat channel")),
            _ => Ok(WebchatVisitor {
                visitor_id,
                channel_id: channel,
            }),
        }
    }

    pub(crate) async fn webchat_visitor_impl(
        &self,
        channel: ChannelId,
        token_hash: &str,
    ) -> StoreResult<Option<WebchatVisitor>> {
        let mut conn = self.conn().await?;
        let mut sql = Sql::new("SELECT visitor_id FROM webchat_visitors WHERE channel_id = ");
        sql.bind(channel.to_string())
            .push(" AND token_hash = ")
            .bind(token_hash);
        match sql.fetch_optional(&mut conn).await.db()? {
            Some(row) => Ok(Some(WebchatVisitor {
                visitor_id: row.text("visitor_id")?,
                channel_id: channel,
            })),
            None => Ok(None),
        }
    }

    pub(crate) async fn webchat_conversation_impl(
        &self,
        channel: ChannelId,
        visitor_id: &str,
    ) -> StoreResult<Option<Conversation>> {
        let mut conn = self.conn().await?;
        // Identities are keyed by a blind index of the address, made with the tenant's key.
        let mut sql = Sql::new("SELECT tenant_id FROM channels WHERE id = ");
        sql.bind(channel.to_string());
        let Some(owner) = sql.fetch_optional(&mut conn).await.db()? else {
            return Ok(None);
        };
        let tenant: TenantId = owner.parse("tenant_id")?;
        self.ensure_keys([tenant]).await?;
        let visitor_id = crate::keys::tenant(tenant)?.address_index(channel, visitor_id);
        let mut sql = Sql::new(&format!(
            "SELECT {CONVERSATION_COLS} FROM conversations c \
             JOIN identities i ON i.contact_id = c.contact_id AND i.channel_id = c.channel_id \
             WHERE i.channel_id = "
        ));
        sql.bind(channel.to_string())
            .push(" AND i.external_id = ")
            .bind(visitor_id.as_str())
            .push(" ORDER BY c.created_at DESC, c.id DESC LIMIT 1");
        sql.fetch_optional(&mut conn)
            .await
            .db()?
            .as_ref()
            .map(rows::conversation)
            .transpose()
    }
}
