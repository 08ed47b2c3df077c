//! `app::privacy`: the customer's privacy rights from the chat itself, erasure and export for
//! staff, and the retention purge timer.
//!
//! - Chat commands ([`Privacy::handle_command`]): the job worker asks here first for every
//!   customer message job, in EVERY conversation state (ingest commits a job for a short
//!   text to a queued/assigned conversation too when it is one of these words). STOP opts
//!   out (an `opted_out` consent with the customer's words, confirmed; a bot conversation
//!   ends), START opts in again, "my data" answers with a summary of what is held, "forget
//!   me" asks yes/no and then erases (self-service) or files a request staff decide on.
//! - Consent rule: an opt-out stops proactive messages (`privacy::is_proactive`: bulk lane,
//!   templates) on that channel; the sender refuses them ([`crate::sender`]), whoever queued
//!   them. A reply to a customer who wrote is service and still goes out.
//! - Erasure ([`Privacy::erase`]): one store transaction deletes the contact everywhere and
//!   leaves a tombstone; then the media files go. An approved customer request becomes an
//!   `erase_contact` job that waits until the customer's last notice has left the outbox.
//! - Retention ([`Privacy::run_purge`]): the `retention_purge` job (one per tenant, re-armed
//!   after each run) deletes in bounded batches and stores a report.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchboard_core::ports::{
    Clock, ConsentStatus, Decision, ErasureChange, Job, JobKind, Lane, NewConsent, NewOutbound,
    PrivacyEffects, Store,
};
use switchboard_core::privacy::{
    Erasure, ErasureStatus, PrivacyCommand, PrivacySettings, RetentionRun,
};
use switchboard_core::{
    ContactId, Content, ConversationState, Event, JobId, Message, Sender, TenantId, Timestamp,
};

use crate::audit::Actor;
use crate::cache::TtlCache;
use crate::media::MediaStore;
use crate::now;

/// Audit action names of this module (next to the ones in [`crate::audit::action`]).
pub mod action {
    /// Privacy settings (words, replies, retention, self-service erasure) changed.
    pub const SETTINGS_CHANGE: &str = "config.privacy_settings";
    /// Staff recorded consent given or withdrawn outside the chat.
    pub const CONSENT_RECORD: &str = "contact.consent_record";
    /// Staff approved a customer's erasure request.
    pub const ERASURE_APPROVE: &str = "contact.erasure_approve";
    /// Staff denied a customer's erasure request.
    pub const ERASURE_DENY: &str = "contact.erasure_deny";
    /// A retention purge deleted data.
    pub const RETENTION_PURGE: &str = "retention.purge";
}

/// What [`Privacy::erase`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErasureOutcome {
    /// The tombstone and rows deleted per table.
    #[serde(flatten)]
    pub erasure: Erasure,
    /// Media files deleted from the media store.
    pub media_files_deleted: u64,
}

/// Rows per table deleted in one purge transaction.
const PURGE_BATCH: u32 = 500;
/// Most purge transactions in one run (the next run continues).
const PURGE_MAX_BATCHES: u64 = 200;
/// How long an erasure job waits for the customer's last notice to leave the outbox.
const ERASE_WAIT_ATTEMPTS: i32 = 30;

/// Privacy use cases over the store, shared by the job worker and the HTTP layer.
pub struct Privacy {
    store: Arc<dyn Store>,
    settings: TtlCache<TenantId, PrivacySettings>,
    media: MediaStore,
    clock: Arc<dyn Clock>,
}

impl Privacy {
    /// Builds it over a store and the media store whose files erasure and purges delete.
    /// Retention purges judge ages by `clock` (tests move it forward).
    pub fn new(store: Arc<dyn Store>, media: MediaStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            settings: TtlCache::new(Some(Duration::from_secs(5)), 10_000),
            media,
            clock,
        }
    }

    /// The tenant's privacy settings (cached for a few seconds per node).
    pub async fn settings(&self, tenant: TenantId) -> anyhow::Result<PrivacySettings> {
        if let Some(s) = self.settings.get(&tenant) {
            return Ok(s);
        }
        let s = self.store.privacy_settings(tenant).await?;
        self.settings.put(tenant, s.clone());
        Ok(s)
    }

    /// Validates and saves the tenant's settings.
    pub async fn save_settings(
        &self,
        tenant: TenantId,
        settings: &PrivacySettings,
    ) -> Result<(), crate::services::ServiceError> {
        settings
            .validate()
            .map_err(crate::services::ServiceError::Invalid)?;
        self.store
            .set_privacy_settings(tenant, settings, now())
            .await?;
        self.settings.put(tenant, settings.clone());
        Ok(())
    }

    /// Answers a customer message job when its text is a privacy command: commits the
    /// answer, consent and request changes with the job's completion, and returns the events.
    /// `None`: not a command (the job goes on to the bot or the welcome message).
    /// `message` is the job's message as the worker read it with its batch (`None`: gone).
    pub async fn handle_command(
        &self,
        job: &Job,
        message: Option<&Message>,
    ) -> anyhow::Result<Option<Vec<Event>>> {
        let JobKind::ProcessInbound {
            conversation_id, ..
        } = &job.kind
        else {
            return Ok(None);
        };
        let tenant = job.tenant_id;
        let Some(message) = message else {
            return Ok(None);
        };
        let Content::Text { body } = &message.content else {
            return Ok(None);
        };
        if body.trim().chars().count() > switchboard_core::privacy::MAX_COMMAND_CHARS {
            return Ok(None);
        }
        let settings = self.settings(tenant).await?;
        // Cheap check first: most messages are no command at all.
        if settings.command(body, true).is_none() {
            return Ok(None);
        }
        let conv = self
            .store
            .conversation(tenant, *conversation_id)
            .await?
            .with_context(|| format!("conversation {conversation_id} is gone"))?;
        let contact = conv.conversation.contact_id;
        let open = self.store.open_erasure_request(tenant, contact).await?;
        let awaiting = open
            .as_ref()
            .is_some_and(|r| r.status == ErasureStatus::Confirming);
        let Some((command, lang)) = settings.command(body, awaiting) else {
            return Ok(None);
        };
        let texts = settings.replies(&lang);
        let state = conv.conversation.state;
        let source = format!("chat:{}", conv.channel_kind.as_str());
        let mut effects = PrivacyEffects {
            completes_job: true,
            ..PrivacyEffects::default()
        };
        let mut new_state = None;
        let reply = match command {
            PrivacyCommand::OptOut => {
                effects.consents.push(NewConsent {
                    status: ConsentStatus::OptedOut,
                    source,
                    wording: Some(body.clone()),
                });
                // The bot stops too (as a flow's own "stop" did); people keep the
                // conversation they are in.
                if state == ConversationState::Bot {
                    new_state = Some(ConversationState::Resolved);
                }
                texts.opted_out
            }
            PrivacyCommand::OptIn => {
                effects.consents.push(NewConsent {
                    status: ConsentStatus::OptedIn,
                    source,
                    wording: Some(body.clone()),
                });
                texts.opted_in
            }
            PrivacyCommand::MyData => self.summary(tenant, contact).await?,
            PrivacyCommand::ForgetMe => match &open {
                Some(_) => texts.erasure_already_requested,
                None => {
                    effects.erasure = Some(ErasureChange::Open {
                        status: ErasureStatus::Confirming,
                        source,
                    });
                    texts.confirm_erasure
                }
            },
            PrivacyCommand::Yes | PrivacyCommand::No => {
                let Some(r) = open else { return Ok(None) };
                let yes = command == PrivacyCommand::Yes;
                let to = match (yes, settings.self_service_erasure) {
                    (false, _) => ErasureStatus::Cancelled,
                    (true, true) => ErasureStatus::Approved,
                    (true, false) => ErasureStatus::Pending,
                };
                if to == ErasureStatus::Approved {
                    effects.jobs.push((
                        JobKind::EraseContact {
                            contact_id: contact,
                            request_id: r.id.clone(),
                        },
                        now(),
                    ));
                }
                effects.erasure = Some(ErasureChange::Set {
                    id: r.id,
                    from: ErasureStatus::Confirming,
                    to,
                    by: None,
                    note: None,
                });
                match to {
                    ErasureStatus::Cancelled => texts.erasure_cancelled,
                    ErasureStatus::Approved => texts.erasing_now,
                    _ => texts.erasure_filed,
                }
            }
        };
        let decision = Decision {
            job_id: job.id,
            tenant_id: tenant,
            conversation_id: *conversation_id,
            new_state,
            outbound: vec![NewOutbound {
                sender: Sender::System,
                content: Content::text(reply),
                lane: Lane::Live,
            }],
        };
        let events = self
            .store
            .apply_privacy_decision(decision, effects, now())
            .await?;
        Ok(Some(events))
    }

    /// The "my data" answer: what the business holds about the contact, in a few lines.
    pub async fn summary(&self, tenant: TenantId, contact: ContactId) -> anyhow::Result<String> {
        let export = self.store.export_contact(tenant, contact, now()).await?;
        let business = self
            .store
            .tenant(tenant)
            .await?
            .map_or_else(|| "We".to_string(), |t| t.name);
        let mut lines = vec![format!("Here is what {business} holds about you:")];
        lines.push(format!(
            "- Name: {}",
            export.contact.display_name.as_deref().unwrap_or("(none)")
        ));
        let addresses: Vec<String> = export
            .identities
            .iter()
            .map(|i| match &i.phone {
                Some(p) => format!("{} ({})", i.kind.as_str(), mask_phone(p)),
                None => i.kind.as_str().to_string(),
            })
            .collect();
        lines.push(format!("- Channels: {}", addresses.join(", ")));
        let inbound = export
            .messages
            .iter()
            .filter(|m| m.direction == switchboard_core::Direction::Inbound)
            .count();
        lines.push(format!(
            "- Conversations: {}; messages: {} (you sent {}, we sent {})",
            export.conversations.len(),
            export.messages.len(),
            inbound,
            export.messages.len() - inbound
        ));
        let mut latest: std::collections::BTreeMap<String, (String, Timestamp)> =
            Default::default();
        for c in &export.consents {
            latest.insert(
                c.channel_id.to_string(),
                (c.status.as_str().replace('_', " "), c.at),
            );
        }
        if latest.is_empty() {
            lines.push("- Consent: none recorded".into());
        } else {
            let list: Vec<String> = latest
                .values()
                .map(|(s, at)| format!("{s} since {}", at.date()))
                .collect();
            lines.push(format!("- Consent: {}", list.join("; ")));
        }
        let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
        for r in &export.records {
            *kinds.entry(r.kind.as_str()).or_default() += 1;
        }
        if kinds.is_empty() {
            lines.push("- Records: none".into());
        } else {
            let list: Vec<String> = kinds
                .iter()
                .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
                .collect();
            lines.push(format!("- Records: {}", list.join(", ")));
        }
        let r = export.retention;
        lines.push(match r.messages_days {
            Some(d) => format!("- We keep messages for {d} days."),
            None => "- We keep messages until you ask us to erase them.".into(),
        });
        lines.push(
            "Type \"forget me\" to ask us to erase it; staff can also send you a full copy (JSON)."
                .into(),
        );
        Ok(lines.join("\n"))
    }

    /// Erases a contact everywhere, then deletes its media files, and records the erasure
    /// in the audit log (ids and counts only). `reason` is kept on the tombstone (`admin`,
    /// `customer_request`, `self_service`, `cli`). The audit entry is written after the
    /// erasure committed: a failure to write it is logged, the erasure stands.
    pub async fn erase(
        &self,
        tenant: TenantId,
        contact: ContactId,
        reason: &str,
        request: Option<&str>,
        actor: &Actor,
    ) -> Result<ErasureOutcome, switchboard_core::ports::StoreError> {
        let erasure = self
            .store
            .erase_contact(tenant, contact, reason, request, now())
            .await?;
        let files_deleted = self.delete_files(&erasure.media_keys).await;
        let details = serde_json::json!({
            "tombstone": erasure.tombstone.id,
            "reason": reason,
            "request": request,
            "rows_deleted": erasure.rows_deleted,
            "media_files_deleted": files_deleted,
        });
        if let Err(e) = self
            .record(
                tenant,
                actor,
                crate::audit::action::CONTACT_ERASE,
                format!("contact:{contact}"),
                details,
            )
            .await
        {
            tracing::error!(%tenant, error = %e, "the erasure is done but its audit entry could not be written");
        }
        Ok(ErasureOutcome {
            erasure,
            media_files_deleted: files_deleted,
        })
    }

    /// Everything held about a contact, after recording the export in the audit log (an
    /// export that cannot be recorded is not handed out).
    pub async fn export(
        &self,
        tenant: TenantId,
        contact: ContactId,
        actor: &Actor,
    ) -> Result<switchboard_core::ports::ContactExport, switchboard_core::ports::StoreError> {
        let export = self.store.export_contact(tenant, contact, now()).await?;
        self.record(
            tenant,
            actor,
            crate::audit::action::CONTACT_EXPORT,
            format!("contact:{contact}"),
            serde_json::json!({
                "conversations": export.conversations.len(),
                "messages": export.messages.len(),
                "consents": export.consents.len(),
                "records": export.records.len(),
            }),
        )
        .await?;
        Ok(export)
    }

    /// Appends an audit entry (the same chain [`crate::App::audit`] writes).
    async fn record(
        &self,
        tenant: TenantId,
        actor: &Actor,
        action: &str,
        subject: String,
        details: serde_json::Value,
    ) -> Result<(), switchboard_core::ports::StoreError> {
        self.store
            .append_audit(
                tenant,
                switchboard_core::security::NewAudit {
                    at: now(),
                    actor: actor.label(),
                    action: action.to_string(),
                    subject,
                    details,
                },
            )
            .await
            .map(|_| ())
    }

    async fn delete_files(&self, keys: &[String]) -> u64 {
        let mut n = 0;
        for key in keys {
            let Some(path) = self.media.path_of(key) else {
                tracing::warn!("skipping a media key that is not a store path");
                continue;
            };
            match tokio::fs::remove_file(&path).await {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!(error = %e, "could not delete an erased media file"),
            }
        }
        n
    }

    /// Runs an `erase_contact` job: waits (by rescheduling itself) until the customer's last
    /// notice has left the outbox, then erases. The erasure deletes the job itself.
    pub async fn run_erase_job(&self, job: &Job) -> anyhow::Result<()> {
        let JobKind::EraseContact {
            contact_id,
            request_id,
        } = &job.kind
        else {
            anyhow::bail!("not an erasure job");
        };
        let tenant = job.tenant_id;
        let pending = self
            .store
            .pending_outbox_for_contact(tenant, *contact_id)
            .await?;
        if pending > 0 && job.attempts < ERASE_WAIT_ATTEMPTS {
            self.store
                .retry_job(
                    job.id,
                    now() + Duration::from_secs(1),
                    "waiting for the customer's last notice to be sent",
                )
                .await?;
            return Ok(());
        }
        let request = self.store.erasure_request(tenant, request_id).await?;
        let reason = match request.and_then(|r| r.decided_by) {
            Some(_) => "customer_request",
            None => "self_service",
        };
        match self
            .erase(
                tenant,
                *contact_id,
                reason,
                Some(request_id),
                &Actor::System,
            )
            .await
        {
            Ok(_) => Ok(()),
            // Erased meanwhile (e.g. by an admin): nothing left to do but drop the job.
            Err(switchboard_core::ports::StoreError::NotFound(_)) => {
                self.store.cancel_job(tenant, job.id).await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs the tenant's `retention_purge` job: purges and re-arms it.
    pub async fn run_purge_job(&self, job: &Job) -> anyhow::Result<RetentionRun> {
        self.run_purge(job.tenant_id, Some(job.id), &Actor::System)
            .await
    }

    /// Deletes what the tenant's retention periods no longer allow, in bounded batches,
    /// deletes the files, stores the report and re-arms the timer. A run that deleted
    /// something, or that staff started, is recorded in the audit log.
    pub async fn run_purge(
        &self,
        tenant: TenantId,
        job: Option<JobId>,
        actor: &Actor,
    ) -> anyhow::Result<RetentionRun> {
        let settings = self.store.privacy_settings(tenant).await?;
        let policy = settings.retention;
        let started = self.clock.now();
        let mut run = RetentionRun {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant,
            started_at: started,
            finished_at: started,
            policy,
            messages_deleted: 0,
            media_deleted: 0,
            conversations_deleted: 0,
            batches: 0,
        };
        if policy.is_active() {
            loop {
                let step = self
                    .store
                    .purge_step(tenant, &policy, started, PURGE_BATCH)
                    .await?;
                run.batches += 1;
                run.messages_deleted += step.messages_deleted;
                run.conversations_deleted += step.conversations_deleted;
                run.media_deleted += self.delete_files(&step.media_keys).await;
                if !step.more || run.batches >= PURGE_MAX_BATCHES {
                    break;
                }
                // Let other writers take SQLite's write lock between batches.
                tokio::task::yield_now().await;
            }
        }
        run.finished_at = self.clock.now();
        let next = run.finished_at
            + Duration::from_secs(u64::from(settings.purge_interval_minutes.max(1)) * 60);
        self.store.finish_retention_run(&run, job, next).await?;
        let deleted = run.messages_deleted + run.conversations_deleted + run.media_deleted;
        if deleted > 0 || *actor != Actor::System {
            self.record(
                tenant,
                actor,
                action::RETENTION_PURGE,
                format!("retention_run:{}", run.id),
                serde_json::json!({
                    "messages_deleted": run.messages_deleted,
                    "conversations_deleted": run.conversations_deleted,
                    "media_deleted": run.media_deleted,
                    "batches": run.batches,
                }),
            )
            .await?;
        }
        tracing::info!(
            tenant = %tenant,
            messages = run.messages_deleted,
            conversations = run.conversations_deleted,
            media = run.media_deleted,
            "retention purge finished"
        );
        Ok(run)
    }
}

/// How often [`arm_timers_until_stopped`] looks for tenants without a purge timer.
const ARM_EVERY: Duration = Duration::from_secs(60);

/// Gives every tenant its retention purge timer: at once, then every minute, so a tenant
/// created while the server runs (API, or `switchboard tenants add` in another process)
/// gets one without a restart. Idempotent on several nodes (a unique index).
pub async fn arm_timers_until_stopped(
    store: Arc<dyn Store>,
    wake_jobs: Arc<tokio::sync::Notify>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        match store.arm_retention_timers(now()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(tenants = n, "armed retention purge timers");
                wake_jobs.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "could not arm the retention purge timers"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(ARM_EVERY) => {}
        }
    }
}

/// `+27 •••• 4567`: enough for the customer to recognise, little for a shoulder-surfer.
fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return "••••".into();
    }
    let head: String = digits[..2].iter().collect();
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("+{head} •••• {tail}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn phones_are_masked_in_the_chat_summary() {
        assert_eq!(super::mask_phone("+27 82 555 1234"), "+27 •••• 1234");
        assert_eq!(super::mask_phone("123"), "••••");
    }
}

/// What [`crate::App`] offers staff (HTTP and CLI) for privacy. Roles are checked by the
/// caller (the HTTP routes; the CLI is trusted with the database): reading settings and
/// consents any staff; recording consent, erasure requests, tombstones and reports
/// supervisors; settings changes, decisions, erasure, export and purges admins. Every
/// change, export and erasure is recorded in the audit log under the caller's [`Actor`].
pub mod staff {
    use switchboard_core::ports::{
        ConsentStatus, ContactExport, Decision, ErasureChange, JobKind, Lane, NewConsent,
        NewOutbound, PrivacyEffects,
    };
    use switchboard_core::privacy::{
        ContactTombstone, ErasureRequest, ErasureStatus, PrivacySettings, RetentionRun,
    };
    use switchboard_core::{
        ChannelId, ContactId, Content, ConversationId, JobId, Sender, TenantId,
    };

    use super::{ErasureOutcome, action};
    use crate::audit::{Actor, action as audit_action};
    use crate::services::{ServiceError, ServiceResult};
    use crate::{App, now};

    impl App {
        /// Refuses a proactive message (bulk lane or template, `privacy::is_proactive`) to a
        /// conversation whose contact opted out on its channel, with a clear `Conflict`.
        /// Campaign and flow starts call this before queuing; the sender checks again.
        pub async fn ensure_proactive_allowed(
            &self,
            conversation: ConversationId,
            lane: Lane,
            content: &Content,
        ) -> ServiceResult<()> {
            if !super::privacy_is_proactive(lane, content) {
                return Ok(());
            }
            if self
                .store
                .opted_out_conversations(&[conversation])
                .await?
                .is_empty()
            {
                Ok(())
            } else {
                Err(ServiceError::Conflict(
                    "this customer opted out of proactive messages on this channel (they typed STOP); templates, campaigns and flow starts are refused until they type START".into(),
                ))
            }
        }

        /// The tenant's privacy settings.
        pub async fn privacy_settings(&self, tenant: TenantId) -> ServiceResult<PrivacySettings> {
            Ok(self.store.privacy_settings(tenant).await?)
        }

        /// Validates and replaces the tenant's privacy settings; audited with the names of
        /// the parts that changed.
        pub async fn set_privacy_settings(
            &self,
            tenant: TenantId,
            actor: &Actor,
            settings: PrivacySettings,
        ) -> ServiceResult<PrivacySettings> {
            let before = self.store.privacy_settings(tenant).await?;
            self.privacy.save_settings(tenant, &settings).await?;
            let mut changed = Vec::new();
            if before.commands != settings.commands {
                changed.push("commands");
            }
            if before.replies != settings.replies {
                changed.push("replies");
            }
            if before.language != settings.language {
                changed.push("language");
            }
            if before.self_service_erasure != settings.self_service_erasure {
                changed.push("self_service_erasure");
            }
            if before.retention != settings.retention {
                changed.push("retention");
            }
            if before.purge_interval_minutes != settings.purge_interval_minutes {
                changed.push("purge_interval_minutes");
            }
            self.audit_after(
                tenant,
                actor,
                action::SETTINGS_CHANGE,
                format!("tenant:{tenant}"),
                serde_json::json!({
                    "changed": changed,
                    "self_service_erasure": settings.self_service_erasure,
                    "retention": settings.retention,
                }),
            )
            .await;
            Ok(settings)
        }

        /// Records consent given or withdrawn outside the chat (a signed form, a call).
        /// `404` for an unknown contact or channel of the tenant.
        pub async fn record_consent(
            &self,
            tenant: TenantId,
            actor: &Actor,
            contact: ContactId,
            channel: ChannelId,
            status: ConsentStatus,
            wording: Option<String>,
        ) -> ServiceResult<switchboard_core::ports::Consent> {
            if let Some(w) = &wording
                && (w.trim().is_empty() || w.chars().count() > 2000)
            {
                return Err(ServiceError::Invalid(
                    "`wording` must hold 1 to 2000 characters: the words the customer agreed to, or leave it out".into(),
                ));
            }
            let consent = self
                .store
                .record_consent(
                    tenant,
                    contact,
                    channel,
                    NewConsent {
                        status,
                        source: format!("staff:{}", actor.label()),
                        wording,
                    },
                    now(),
                )
                .await?;
            self.audit_after(
                tenant,
                actor,
                action::CONSENT_RECORD,
                format!("contact:{contact}"),
                serde_json::json!({"channel": channel.to_string(), "status": status.as_str()}),
            )
            .await;
            Ok(consent)
        }

        /// A contact's consent history, oldest first; recorded as a view of contact data.
        pub async fn consent_history(
            &self,
            tenant: TenantId,
            actor: &Actor,
            contact: ContactId,
        ) -> ServiceResult<Vec<switchboard_core::ports::Consent>> {
            if self.store.contact(tenant, contact).await?.is_none() {
                return Err(ServiceError::NotFound("contact"));
            }
            let consents = self.store.consents(tenant, contact).await?;
            self.audit(
                tenant,
                actor,
                audit_action::CONTACT_VIEW,
                format!("contact:{contact}"),
                serde_json::json!({"part": "consents"}),
            )
            .await?;
            Ok(consents)
        }

        /// Everything held about one contact (audited before it is handed out).
        pub async fn export_contact(
            &self,
            tenant: TenantId,
            actor: &Actor,
            contact: ContactId,
        ) -> ServiceResult<ContactExport> {
            Ok(self.privacy.export(tenant, contact, actor).await?)
        }

        /// Erases a contact at once, leaving a tombstone (audited). `reason`: `admin` from
        /// the API, `cli` from the command line.
        pub async fn erase_contact(
            &self,
            tenant: TenantId,
            actor: &Actor,
            contact: ContactId,
            reason: &str,
        ) -> ServiceResult<ErasureOutcome> {
            Ok(self
                .privacy
                .erase(tenant, contact, reason, None, actor)
                .await?)
        }

        /// Erasure requests of the tenant, newest first.
        pub async fn erasure_requests(
            &self,
            tenant: TenantId,
            status: Option<ErasureStatus>,
        ) -> ServiceResult<Vec<ErasureRequest>> {
            Ok(self.store.erasure_requests(tenant, status, 200).await?)
        }

        /// Approves (the customer is told, then erased by a job) or denies (the customer is
        /// told why) a pending request; audited.
        pub async fn decide_erasure(
            &self,
            tenant: TenantId,
            actor: &Actor,
            id: &str,
            approve: bool,
            note: Option<String>,
        ) -> ServiceResult<ErasureRequest> {
            let request = self
                .store
                .erasure_request(tenant, id)
                .await?
                .ok_or(ServiceError::NotFound("erasure request"))?;
            if request.status != ErasureStatus::Pending {
                return Err(ServiceError::Conflict(format!(
                    "this request is {}, not pending; only pending requests can be decided",
                    request.status.as_str()
                )));
            }
            let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
            if !approve && note.is_none() {
                return Err(ServiceError::Invalid(
                    "a denial needs a `note`: the reason the customer is told (e.g. a legal duty to keep loan records)".into(),
                ));
            }
            if note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
                return Err(ServiceError::Invalid(
                    "`note` is longer than 1000 characters; the customer reads it in the chat"
                        .into(),
                ));
            }
            let conversation = self
                .store
                .contact_conversations(tenant, request.contact_id)
                .await?
                .into_iter()
                .next()
                .ok_or(ServiceError::NotFound("contact"))?;
            let settings = self.privacy.settings(tenant).await?;
            let texts = settings.replies(&settings.language);
            let (to, text, jobs) = if approve {
                (
                    ErasureStatus::Approved,
                    texts.erasure_approved,
                    vec![(
                        JobKind::EraseContact {
                            contact_id: request.contact_id,
                            request_id: request.id.clone(),
                        },
                        now(),
                    )],
                )
            } else {
                (
                    ErasureStatus::Denied,
                    format!(
                        "{} {}",
                        texts.erasure_denied,
                        note.as_deref().unwrap_or_default()
                    ),
                    Vec::new(),
                )
            };
            let decision = Decision {
                job_id: JobId::new_at(0),
                tenant_id: tenant,
                conversation_id: conversation.conversation.id,
                new_state: None,
                outbound: vec![NewOutbound {
                    sender: Sender::System,
                    content: Content::text(text),
                    lane: Lane::Live,
                }],
            };
            let effects = PrivacyEffects {
                erasure: Some(ErasureChange::Set {
                    id: request.id.clone(),
                    from: ErasureStatus::Pending,
                    to,
                    by: actor.user(),
                    note,
                }),
                jobs,
                ..PrivacyEffects::default()
            };
            let events = self
                .store
                .apply_privacy_decision(decision, effects, now())
                .await?;
            self.bus.publish(&events);
            self.wake_sender();
            self.wake_jobs();
            self.audit_after(
                tenant,
                actor,
                if approve {
                    action::ERASURE_APPROVE
                } else {
                    action::ERASURE_DENY
                },
                format!("contact:{}", request.contact_id),
                serde_json::json!({"request": request.id}),
            )
            .await;
            self.store
                .erasure_request(tenant, id)
                .await?
                .ok_or(ServiceError::NotFound("erasure request"))
        }

        /// Anonymised tombstones of erased contacts, newest first.
        pub async fn tombstones(&self, tenant: TenantId) -> ServiceResult<Vec<ContactTombstone>> {
            Ok(self.store.tombstones(tenant, 200).await?)
        }

        /// Retention purge reports, newest first.
        pub async fn retention_runs(&self, tenant: TenantId) -> ServiceResult<Vec<RetentionRun>> {
            Ok(self.store.retention_runs(tenant, 100).await?)
        }

        /// Runs a retention purge for a tenant now (the timer keeps its own schedule);
        /// audited under `actor`.
        pub async fn purge_now(
            &self,
            tenant: TenantId,
            actor: &Actor,
        ) -> ServiceResult<RetentionRun> {
            Ok(self.privacy.run_purge(tenant, None, actor).await?)
        }
    }
}

fn privacy_is_proactive(lane: Lane, content: &Content) -> bool {
    switchboard_core::privacy::is_proactive(lane, content)
}
