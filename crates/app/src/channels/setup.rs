//! `channels add`: creating a provider channel from the CLI or the admin API; and
//! `channels resume`: updating a paused channel's credentials (or re-testing them) and
//! sending its queued messages again.
//!
//! Credentials are checked against the provider where its API allows (WhatsApp: `GET
//! /{phone-number-id}`; Telegram: `getMe`; Signal: signal-cli's health endpoint), secrets we
//! own (WhatsApp verify token, Telegram webhook secret) are generated when not given, and the
//! webhook URL to register is returned. Telegram can register its webhook itself
//! (`setWebhook` with the secret token). Provider error texts are passed on; the bot token,
//! which Telegram carries in the URL, never is.

use serde::Serialize;
use serde_json::{Value, json};
use switchboard_channels::{signal, telegram, whatsapp};
use switchboard_core::{Channel, ChannelKind, ChannelSettings, NewChannel, TenantId};

use crate::services::{ServiceError, ServiceResult};
use crate::{App, auth, now};

/// Update kinds a contact centre needs; some are off by default (channels.md §2.1).
const TELEGRAM_UPDATES: &[&str] = &[
    "message",
    "edited_message",
    "callback_query",
    "my_chat_member",
    "message_reaction",
];

/// A channel to create.
#[derive(Debug, Clone)]
pub struct AddChannel {
    /// WhatsApp, Telegram or Signal.
    pub kind: ChannelKind,
    /// Staff-facing name.
    pub name: String,
    /// The provider's credential fields (see [`AddChannel::credentials_help`]).
    pub credentials: Value,
    /// Provider API base override (tests, proxies; Signal: where signal-cli listens).
    pub api_base: Option<String>,
    /// Check the credentials against the provider first.
    pub validate: bool,
    /// Telegram: call `setWebhook` with the webhook URL and secret.
    pub register_webhook: bool,
    /// Allow bulk sends (Signal refuses them otherwise).
    pub allow_bulk: bool,
    /// Send rate override (messages per second).
    pub rate_per_second: Option<u32>,
}

impl AddChannel {
    /// Which credential fields each kind takes.
    pub fn credentials_help(kind: ChannelKind) -> &'static str {
        match kind {
            ChannelKind::Whatsapp => {
                "access_token, phone_number_id, app_secret, and optionally verify_token (generated when omitted)"
            }
            ChannelKind::Telegram => {
                "bot_token, and optionally webhook_secret (generated when omitted)"
            }
            ChannelKind::Signal => {
                "account (+E.164), api_base (where signal-cli listens), mode (json-rpc | rest)"
            }
            ChannelKind::Webchat => "none",
        }
    }
}

/// A created channel and what the operator must do next.
#[derive(Debug, Clone, Serialize)]
pub struct AddedChannel {
    /// The channel (credentials are never serialised).
    pub channel: Channel,
    /// Where the provider must send webhooks (`None` for Signal).
    pub webhook_url: Option<String>,
    /// WhatsApp: the verify token to enter in the App Dashboard with the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_token: Option<String>,
    /// Telegram: whether `setWebhook` was called and accepted.
    pub webhook_registered: bool,
}

fn invalid(m: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(m.into())
}

fn field(creds: &Value, name: &str) -> Option<String> {
    creds
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl App {
    /// The base URL providers reach this server on.
    pub fn public_base(&self) -> String {
        match &self.config.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.config.listen),
        }
    }

    /// Creates a provider channel (see the module documentation).
    pub async fn add_channel(
        &self,
        tenant: TenantId,
        req: AddChannel,
    ) -> ServiceResult<AddedChannel> {
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(invalid("name must be 1-100 characters"));
        }
        if !req.credentials.is_object() && !req.credentials.is_null() {
            return Err(invalid("credentials must be a JSON object"));
        }
        let mut creds = match req.credentials {
            Value::Null => json!({}),
            v => v,
        };
        let api_base = req
            .api_base
            .as_deref()
            .map(|b| b.trim().trim_end_matches('/').to_string())
            .filter(|b| !b.is_empty());
        if let Some(b) = &api_base
            && !(b.starts_with("http://") || b.starts_with("https://"))
        {
            return Err(invalid("api_base must be an http:// or https:// URL"));
        }
        let mut verify_token = None;
        match req.kind {
            ChannelKind::Whatsapp => {
                if field(&creds, "verify_token").is_none() {
                    creds["verify_token"] = json!(auth::random_token());
                }
                verify_token = field(&creds, "verify_token");
                let c: whatsapp::Credentials =
                    serde_json::from_value(creds.clone()).map_err(|e| {
                        invalid(format!(
                            "WhatsApp credentials need {}: {e}",
                            AddChannel::credentials_help(req.kind)
                        ))
                    })?;
                if req.validate {
                    self.check_whatsapp(&c, api_base.as_deref()).await?;
                }
            }
            ChannelKind::Telegram => {
                if field(&creds, "webhook_secret").is_none() {
                    creds["webhook_secret"] = json!(auth::random_token());
                }
                let c: telegram::Credentials =
                    serde_json::from_value(creds.clone()).map_err(|e| {
                        invalid(format!(
                            "Telegram credentials need {}: {e}",
                            AddChannel::credentials_help(req.kind)
                        ))
                    })?;
                let secret_ok = c.webhook_secret.len() <= 256
                    && c.webhook_secret
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
                if !secret_ok {
                    return Err(invalid(
                        "webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -",
                    ));
                }
                if req.validate {
                    self.check_telegram(&c, api_base.as_deref()).await?;
                }
            }
            ChannelKind::Signal => {
                if field(&creds, "api_base").is_none()
                    && let Some(b) = &api_base
                {
                    creds["api_base"] = json!(b);
                }
                let c: signal::Credentials =
                    serde_json::from_value(creds.clone()).map_err(|e| {
                        invalid(format!(
                            "Signal credentials need {}: {e}",
                            AddChannel::credentials_help(req.kind)
                        ))
                    })?;
                if !c.account.starts_with('+') {
                    return Err(invalid("account must be the E.164 number with a leading +"));
                }
                if req.validate {
                    self.check_signal(&c).await?;
                }
            }
            ChannelKind::Webchat => {
                return Err(invalid(
                    "web chat channels need no provider: use kind whatsapp, telegram or signal",
                ));
            }
        }
        let channel = self
            .store
            .create_channel(
                NewChannel {
                    tenant_id: tenant,
                    kind: req.kind,
                    name: name.to_string(),
                    credentials: creds,
                    settings: ChannelSettings {
                        api_base: api_base.clone(),
                        allow_bulk: req.allow_bulk,
                        rate_per_second: req.rate_per_second.filter(|r| *r > 0),
                        ..ChannelSettings::default()
                    },
                },
                now(),
            )
            .await?;
        let webhook_url = (req.kind != ChannelKind::Signal)
            .then(|| format!("{}/hooks/{}/{}", self.public_base(), req.kind, channel.id));
        let mut webhook_registered = false;
        if req.kind == ChannelKind::Telegram
            && req.register_webhook
            && let Some(url) = &webhook_url
        {
            let c: telegram::Credentials = serde_json::from_value(channel.credentials.clone())
                .map_err(|e| invalid(e.to_string()))?;
            self.telegram_set_webhook(&c, api_base.as_deref(), url)
                .await?;
            webhook_registered = true;
        }
        if req.kind == ChannelKind::Signal {
            self.wake_signal_receivers();
        }
        tracing::info!(channel_id = %channel.id, kind = %channel.kind, %tenant, "channel added");
        Ok(AddedChannel {
            channel,
            webhook_url,
            verify_token,
            webhook_registered,
        })
    }

    /// Resumes a channel paused because the provider refused its account (see
    /// `app::sender`): merges `credentials` (when given; only the fields to change) into the
    /// stored ones, checks the result with the provider, stores it and clears the pause, so
    /// the queued messages go out in order. A channel that is not paused is re-tested and
    /// updated the same way. `Invalid` (nothing changes, the pause stays) when the provider
    /// still refuses.
    pub async fn resume_channel(
        &self,
        tenant: TenantId,
        id: switchboard_core::ChannelId,
        credentials: Option<Value>,
    ) -> ServiceResult<Channel> {
        let channel = self
            .store
            .channel(id)
            .await?
            .filter(|c| c.tenant_id == tenant)
            .ok_or(ServiceError::NotFound("channel"))?;
        let mut creds = channel.credentials.clone();
        if let Some(update) = credentials {
            let Value::Object(fields) = update else {
                return Err(invalid("credentials must be a JSON object"));
            };
            let Some(stored) = creds.as_object_mut() else {
                return Err(invalid("the stored credentials are not a JSON object"));
            };
            for (k, v) in fields {
                stored.insert(k, v);
            }
        }
        let base = channel.settings.api_base.as_deref();
        let help = AddChannel::credentials_help(channel.kind);
        let bad = |e: serde_json::Error| {
            invalid(format!("{} credentials need {help}: {e}", channel.kind))
        };
        match channel.kind {
            ChannelKind::Whatsapp => {
                let c: whatsapp::Credentials =
                    serde_json::from_value(creds.clone()).map_err(bad)?;
                self.check_whatsapp(&c, base).await?;
            }
            ChannelKind::Telegram => {
                let c: telegram::Credentials =
                    serde_json::from_value(creds.clone()).map_err(bad)?;
                self.check_telegram(&c, base).await?;
            }
            ChannelKind::Signal => {
                let mut c: signal::Credentials =
                    serde_json::from_value(creds.clone()).map_err(bad)?;
                if let Some(b) = base {
                    c.api_base = b.to_string();
                }
                self.check_signal(&c).await?;
            }
            ChannelKind::Webchat => {
                return Err(invalid(
                    "web chat channels have no provider credentials and are never paused",
                ));
            }
        }
        if creds != channel.credentials {
            self.store
                .set_channel_credentials(tenant, id, &creds)
                .await?;
        }
        let channel = self
            .store
            .set_channel_pause(tenant, id, None, now())
            .await?;
        tracing::info!(channel_id = %id, kind = %channel.kind, %tenant, "channel credentials checked; sending resumed");
        self.wake_sender();
        Ok(channel)
    }

    async fn check_whatsapp(
        &self,
        c: &whatsapp::Credentials,
        base: Option<&str>,
    ) -> ServiceResult<()> {
        let base = base.unwrap_or(whatsapp::DEFAULT_API_BASE);
        let url = format!("{base}/{}", c.phone_number_id);
        let resp = self
            .channels
            .http()
            .get(&url)
            .bearer_auth(&c.access_token)
            .send()
            .await
            .map_err(|e| {
                invalid(format!(
                    "could not reach the WhatsApp API: {}",
                    e.without_url()
                ))
            })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let reason = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no error message");
        Err(invalid(format!(
            "WhatsApp refused the credentials for phone number id {} ({status}: {reason})",
            c.phone_number_id
        )))
    }

    async fn telegram_call(
        &self,
        c: &telegram::Credentials,
        base: Option<&str>,
        method: &str,
        body: Value,
    ) -> ServiceResult<Value> {
        let base = base.unwrap_or(telegram::DEFAULT_API_BASE);
        let url = format!("{base}/bot{}/{method}", c.bot_token);
        let resp = self
            .channels
            .http()
            .post(&url)
            .json(&body)
            .send()
            .await
            // The URL holds the bot token: never let it into a message.
            .map_err(|e| {
                invalid(format!(
                    "could not reach the Telegram Bot API: {}",
                    e.without_url()
                ))
            })?;
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if body.get("ok") == Some(&Value::Bool(true)) {
            return Ok(body.get("result").cloned().unwrap_or(Value::Null));
        }
        let reason = body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("no description");
        Err(invalid(format!("Telegram refused {method}: {reason}")))
    }

    async fn check_telegram(
        &self,
        c: &telegram::Credentials,
        base: Option<&str>,
    ) -> ServiceResult<()> {
        let me = self.telegram_call(c, base, "getMe", json!({})).await?;
        if me.get("is_bot") != Some(&Value::Bool(true)) {
            return Err(invalid("getMe did not describe a bot"));
        }
        Ok(())
    }

    async fn telegram_set_webhook(
        &self,
        c: &telegram::Credentials,
        base: Option<&str>,
        url: &str,
    ) -> ServiceResult<()> {
        self.telegram_call(
            c,
            base,
            "setWebhook",
            json!({"url": url, "secret_token": c.webhook_secret, "allowed_updates": TELEGRAM_UPDATES}),
        )
        .await
        .map(|_| ())
    }

    async fn check_signal(&self, c: &signal::Credentials) -> ServiceResult<()> {
        let base = c.api_base.trim_end_matches('/');
        let url = match c.mode {
            signal::Mode::JsonRpc => format!("{base}/api/v1/check"),
            signal::Mode::Rest => format!("{base}/v1/about"),
        };
        let resp = self.channels.http().get(&url).send().await.map_err(|e| {
            invalid(format!(
                "could not reach signal-cli at {base}: {}",
                e.without_url()
            ))
        })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(invalid(format!(
                "signal-cli at {base} answered {} to its health check",
                resp.status().as_u16()
            )))
        }
    }
}
