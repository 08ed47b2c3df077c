//! Privacy rules a customer and a data-protection officer can see: consent words typed in
//! the chat, self-service data rights ("my data", "forget me"), which messages count as
//! proactive (refused to an opted-out contact), and per-tenant retention periods.
//!
//! Everything here is pure: the app matches a customer's message with
//! [`PrivacySettings::command`], storage stores the settings as JSON, and both decide with
//! [`is_proactive`]. The consent rule, in one sentence: an opt-out stops marketing and other
//! proactive messages (bulk sends, templates, flows started by staff or campaigns) on that
//! channel; a reply to a customer who is writing to us is service and still goes out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ports::Lane;
use crate::{ContactId, Content, TenantId, Timestamp, UserId};

/// The words customers type for each privacy command, for one language. Matching ignores
/// case, surrounding spaces and punctuation at the ends ("Stop!" is `stop`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyWords {
    /// Opt out of messages on this channel (`STOP`, `UNSUBSCRIBE`, ...).
    pub opt_out: Vec<String>,
    /// Opt in again (`START`, ...).
    pub opt_in: Vec<String>,
    /// Ask for a summary of the data held (`my data`).
    pub my_data: Vec<String>,
    /// Ask for erasure (`forget me`); a yes/no confirmation follows.
    pub forget_me: Vec<String>,
    /// Confirms a pending "forget me".
    pub yes: Vec<String>,
    /// Cancels a pending "forget me".
    pub no: Vec<String>,
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| (*w).to_string()).collect()
}

impl PrivacyWords {
    /// The built-in English words.
    pub fn english() -> Self {
        Self {
            opt_out: words(&[
                "stop",
                "unsubscribe",
                "stop all",
                "opt out",
                "cancel messages",
            ]),
            opt_in: words(&["start", "subscribe", "unstop", "opt in"]),
            my_data: words(&["my data", "what data do you have", "my information"]),
            forget_me: words(&["forget me", "delete my data", "erase my data"]),
            yes: words(&["yes", "y", "yes please", "confirm"]),
            no: words(&["no", "n", "no thanks", "keep"]),
        }
    }

    /// Built-in Afrikaans words (the demo business is South African).
    pub fn afrikaans() -> Self {
        Self {
            opt_out: words(&["stop", "kanselleer"]),
            opt_in: words(&["begin"]),
            my_data: words(&["my data", "my inligting"]),
            forget_me: words(&["vergeet my", "vee my data uit"]),
            yes: words(&["ja"]),
            no: words(&["nee"]),
        }
    }
}

/// What the business answers to each privacy command, for one language. A field left out
/// of a configured language takes the English text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyReplies {
    /// Confirms an opt-out.
    pub opted_out: String,
    /// Confirms an opt-in.
    pub opted_in: String,
    /// Asked after "forget me" (must say how to answer yes or no).
    pub confirm_erasure: String,
    /// The erasure runs at once (self-service); the last message the customer gets.
    pub erasing_now: String,
    /// Staff must approve the erasure first.
    pub erasure_filed: String,
    /// The customer answered no.
    pub erasure_cancelled: String,
    /// Staff approved the request; the last message the customer gets.
    pub erasure_approved: String,
    /// Staff denied the request; the reason staff gave follows this text.
    pub erasure_denied: String,
    /// "forget me" again while a request is open.
    pub erasure_already_requested: String,
}

impl Default for PrivacyReplies {
    fn default() -> Self {
        Self::english()
    }
}

impl PrivacyReplies {
    /// The built-in English texts.
    pub fn english() -> Self {
        Self {
            opted_out: "You have opted out: we will send you no more marketing or other messages you did not ask for on this channel. Replies to your own messages still come. Type START to opt in again.".into(),
            opted_in: "You have opted in again: we may send you updates on this channel. Type STOP at any time to opt out.".into(),
            confirm_erasure: "Do you want us to erase everything we hold about you (your messages, contact details and records)? This cannot be undone. Reply YES to confirm or NO to keep your data.".into(),
            erasing_now: "Confirmed. We are erasing your data now; this is the last message you will receive from us in this chat.".into(),
            erasure_filed: "Confirmed. Your erasure request was passed to our team; we will tell you here when it has been decided.".into(),
            erasure_cancelled: "Nothing was erased; your request is cancelled.".into(),
            erasure_approved: "Your erasure request was approved. We are erasing your data now; this is the last message you will receive from us in this chat.".into(),
            erasure_denied: "Your erasure request was declined:".into(),
            erasure_already_requested: "You already asked us to erase your data; we will tell you here when it is done (if we asked you to confirm, reply YES or NO).".into(),
        }
    }

    /// The built-in Afrikaans texts.
    pub fn afrikaans() -> Self {
        Self {
            opted_out: "Jy het uitgeteken: ons stuur jou geen bemarking of ander boodskappe waarvoor jy nie gevra het nie op hierdie kanaal nie. Antwoorde op jou eie boodskappe kom steeds. Tik BEGIN om weer in te teken.".into(),
            opted_in: "Jy het weer ingeteken: ons mag jou nuus op hierdie kanaal stuur. Tik STOP enige tyd om uit te teken.".into(),
            confirm_erasure: "Wil jy hê ons moet alles uitvee wat ons oor jou hou (jou boodskappe, kontakbesonderhede en rekords)? Dit kan nie ongedaan gemaak word nie. Antwoord JA om te bevestig of NEE om jou data te hou.".into(),
            erasing_now: "Bevestig. Ons vee nou jou data uit; dit is die laaste boodskap wat jy van ons in hierdie klets sal kry.".into(),
            erasure_filed: "Bevestig. Jou versoek is na ons span gestuur; ons laat jou hier weet wanneer daaroor besluit is.".into(),
            erasure_cancelled: "Niks is uitgevee nie; jou versoek is gekanselleer.".into(),
            erasure_approved: "Jou versoek is goedgekeur. Ons vee nou jou data uit; dit is die laaste boodskap wat jy van ons in hierdie klets sal kry.".into(),
            erasure_denied: "Jou versoek om uitvee is afgewys:".into(),
            erasure_already_requested: "Jy het reeds gevra dat ons jou data uitvee; ons laat jou hier weet wanneer dit klaar is (as ons gevra het om te bevestig, antwoord JA of NEE).".into(),
        }
    }

    fn fields(&self) -> [(&'static str, &String); 9] {
        [
            ("opted_out", &self.opted_out),
            ("opted_in", &self.opted_in),
            ("confirm_erasure", &self.confirm_erasure),
            ("erasing_now", &self.erasing_now),
            ("erasure_filed", &self.erasure_filed),
            ("erasure_cancelled", &self.erasure_cancelled),
            ("erasure_approved", &self.erasure_approved),
            ("erasure_denied", &self.erasure_denied),
            ("erasure_already_requested", &self.erasure_already_requested),
        ]
    }
}

/// Longest configured reply, in characters (every channel carries this much in one message).
pub const MAX_REPLY_CHARS: usize = 1000;

/// How long data is kept. `None` keeps it (no automatic deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionPolicy {
    /// Messages (text and their stored files) older than this many days are deleted.
    pub messages_days: Option<u32>,
    /// Stored media files older than this many days are deleted (the message stays, marked
    /// as expired), even when messages are kept longer.
    pub media_days: Option<u32>,
    /// Resolved conversations whose last activity is older than this many days are deleted
    /// with everything in them.
    pub closed_conversations_days: Option<u32>,
}

impl RetentionPolicy {
    /// Whether anything is ever purged.
    pub fn is_active(&self) -> bool {
        self.messages_days.is_some()
            || self.media_days.is_some()
            || self.closed_conversations_days.is_some()
    }

    /// Checks the periods (at least one day, at most 100 years).
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("messages_days", self.messages_days),
            ("media_days", self.media_days),
            ("closed_conversations_days", self.closed_conversations_days),
        ] {
            if let Some(d) = v
                && !(1..=36_500).contains(&d)
            {
                return Err(format!(
                    "retention.{name} must be between 1 and 36500 days (or null to keep data), got {d}"
                ));
            }
        }
        Ok(())
    }
}

/// A tenant's privacy configuration (`GET/PUT /api/v1/privacy/settings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySettings {
    /// Command words per language code; the built-in `en` and `af` words apply unless a
    /// language is configured here (which replaces that language's words).
    pub commands: BTreeMap<String, PrivacyWords>,
    /// Whether "forget me" (after the customer confirms) erases at once. When false, the
    /// confirmed request waits for staff to approve or deny it.
    pub self_service_erasure: bool,
    /// What the business answers, per language code; built-in `en` and `af` texts apply
    /// unless a language is configured here.
    pub replies: BTreeMap<String, PrivacyReplies>,
    /// The language of messages no customer word chose (staff approving or denying an
    /// erasure request).
    pub language: String,
    /// Retention periods.
    pub retention: RetentionPolicy,
    /// Minutes between two retention purges (at least 1).
    pub purge_interval_minutes: u32,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            commands: BTreeMap::new(),
            replies: BTreeMap::new(),
            language: "en".into(),
            self_service_erasure: false,
            retention: RetentionPolicy::default(),
            purge_interval_minutes: 60,
        }
    }
}

/// Picks one command's word list out of a language's words.
type Pick = fn(&PrivacyWords) -> &Vec<String>;

/// A privacy command a customer typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyCommand {
    /// Stop proactive messages on this channel.
    OptOut,
    /// Receive them again.
    OptIn,
    /// Send me what you hold about me.
    MyData,
    /// Erase me (asks for confirmation).
    ForgetMe,
    /// Confirms a pending "forget me".
    Yes,
    /// Cancels a pending "forget me".
    No,
}

/// Longest text (in characters, after trimming) that can be a command: longer messages are
/// ordinary messages, so ingest only looks twice at short ones.
pub const MAX_COMMAND_CHARS: usize = 40;

/// Lower-cases and trims spaces and punctuation at both ends, squeezing inner spaces.
pub fn normalise(text: &str) -> String {
    let t = text.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation());
    t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl PrivacySettings {
    /// The words of every language: configured ones, and the built-in ones of languages not
    /// configured.
    pub fn all_words(&self) -> Vec<(String, PrivacyWords)> {
        let mut out: Vec<(String, PrivacyWords)> = self
            .commands
            .iter()
            .map(|(l, w)| (l.clone(), w.clone()))
            .collect();
        for (lang, builtin) in [
            ("en", PrivacyWords::english()),
            ("af", PrivacyWords::afrikaans()),
        ] {
            if !self.commands.contains_key(lang) {
                out.push((lang.to_string(), builtin));
            }
        }
        out
    }

    /// The replies in `lang`: configured, else built-in, else English.
    pub fn replies(&self, lang: &str) -> PrivacyReplies {
        match (self.replies.get(lang), lang) {
            (Some(r), _) => r.clone(),
            (None, "af") => PrivacyReplies::afrikaans(),
            (None, _) => PrivacyReplies::english(),
        }
    }

    /// The command `text` is, with the language whose word matched. `awaiting_confirmation`:
    /// yes/no words count only while a "forget me" waits for an answer (otherwise "yes" is an
    /// ordinary reply to a person or a bot).
    pub fn command(
        &self,
        text: &str,
        awaiting_confirmation: bool,
    ) -> Option<(PrivacyCommand, String)> {
        if text.trim().chars().count() > MAX_COMMAND_CHARS {
            return None;
        }
        let t = normalise(text);
        if t.is_empty() {
            return None;
        }
        let all = self.all_words();
        let find = |pick: Pick| {
            all.iter()
                .find(|(_, w)| pick(w).iter().any(|x| normalise(x) == t))
                .map(|(l, _)| l.clone())
        };
        let mut order: Vec<(PrivacyCommand, Pick)> = Vec::new();
        if awaiting_confirmation {
            order.push((PrivacyCommand::Yes, |w| &w.yes));
            order.push((PrivacyCommand::No, |w| &w.no));
        }
        order.extend([
            (PrivacyCommand::OptOut, (|w| &w.opt_out) as Pick),
            (PrivacyCommand::OptIn, |w| &w.opt_in),
            (PrivacyCommand::MyData, |w| &w.my_data),
            (PrivacyCommand::ForgetMe, |w| &w.forget_me),
        ]);
        order
            .into_iter()
            .find_map(|(cmd, pick)| find(pick).map(|lang| (cmd, lang)))
    }

    /// Checks the settings: retention periods in range, no empty words, and no word claimed
    /// by two commands of one language.
    pub fn validate(&self) -> Result<(), String> {
        self.retention.validate()?;
        if self.purge_interval_minutes == 0 {
            return Err("purge_interval_minutes must be at least 1".into());
        }
        for (lang, r) in &self.replies {
            for (name, text) in r.fields() {
                let n = text.trim().chars().count();
                if n == 0 || n > MAX_REPLY_CHARS {
                    return Err(format!(
                        "replies.{lang}.{name} must hold 1 to {MAX_REPLY_CHARS} characters, got {n}"
                    ));
                }
            }
        }
        if self.language.trim().is_empty() {
            return Err("language must name a language code, e.g. \"en\"".into());
        }
        for (lang, w) in &self.commands {
            let mut seen: BTreeMap<String, &str> = BTreeMap::new();
            for (name, list) in [
                ("opt_out", &w.opt_out),
                ("opt_in", &w.opt_in),
                ("my_data", &w.my_data),
                ("forget_me", &w.forget_me),
                ("yes", &w.yes),
                ("no", &w.no),
            ] {
                for word in list {
                    let n = normalise(word);
                    if n.is_empty() {
                        return Err(format!("commands.{lang}.{name} holds an empty word"));
                    }
                    if n.chars().count() > MAX_COMMAND_CHARS {
                        return Err(format!(
                            "commands.{lang}.{name}: `{word}` is longer than {MAX_COMMAND_CHARS} characters"
                        ));
                    }
                    if let Some(other) = seen.insert(n, name)
                        && other != name
                    {
                        return Err(format!(
                            "commands.{lang}: `{word}` is both an {other} and a {name} word; keep it in one"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a message is proactive (marketing, campaign, template, bulk): such messages never
/// go to a contact whose latest consent on the channel is `opted_out`. Replies in the live
/// lane are service: the customer is talking to us.
pub fn is_proactive(lane: Lane, content: &Content) -> bool {
    lane == Lane::Bulk || matches!(content, Content::Template { .. })
}

/// Where an erasure request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureStatus {
    /// The customer typed "forget me"; we asked them to confirm (yes/no).
    Confirming,
    /// Confirmed; waiting for staff to approve or deny.
    Pending,
    /// Approved (by staff or self-service); the erasure job runs once the customer has been
    /// told.
    Approved,
    /// Staff refused it (the reason was sent to the customer).
    Denied,
    /// The customer answered "no".
    Cancelled,
    /// The contact was erased.
    Completed,
}

impl ErasureStatus {
    /// Stable snake_case name (the `status` column).
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureStatus::Confirming => "confirming",
            ErasureStatus::Pending => "pending",
            ErasureStatus::Approved => "approved",
            ErasureStatus::Denied => "denied",
            ErasureStatus::Cancelled => "cancelled",
            ErasureStatus::Completed => "completed",
        }
    }

    /// Whether the request is still open (not denied, cancelled or completed).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ErasureStatus::Confirming | ErasureStatus::Pending | ErasureStatus::Approved
        )
    }
}

impl std::str::FromStr for ErasureStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "confirming" => ErasureStatus::Confirming,
            "pending" => ErasureStatus::Pending,
            "approved" => ErasureStatus::Approved,
            "denied" => ErasureStatus::Denied,
            "cancelled" => ErasureStatus::Cancelled,
            "completed" => ErasureStatus::Completed,
            other => return Err(format!("unknown erasure status `{other}`")),
        })
    }
}

/// A customer's request to be erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRequest {
    /// Its id (a UUID).
    pub id: String,
    /// Owner.
    pub tenant_id: TenantId,
    /// The customer (gone once `completed`; the id alone is no personal data).
    pub contact_id: ContactId,
    /// Where it stands.
    pub status: ErasureStatus,
    /// How it was made (`chat:<channel kind>`).
    pub source: String,
    /// When the customer asked.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: Timestamp,
    /// When staff (or self-service) decided.
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<Timestamp>,
    /// Who decided (`None`: self-service or the customer).
    pub decided_by: Option<UserId>,
    /// The reason given when denied.
    pub note: Option<String>,
    /// The tombstone left by the erasure, once `completed`.
    pub tombstone_id: Option<String>,
}

/// What remains of an erased contact: numbers for statistics, nothing personal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactTombstone {
    /// Its id (a UUID, not the contact's).
    pub id: String,
    /// Owner.
    pub tenant_id: TenantId,
    /// When the contact was erased.
    #[serde(with = "time::serde::rfc3339")]
    pub erased_at: Timestamp,
    /// When the contact was first seen.
    #[serde(with = "time::serde::rfc3339::option")]
    pub contact_created_at: Option<Timestamp>,
    /// Conversations erased.
    pub conversations: i64,
    /// Customer messages erased.
    pub messages_inbound: i64,
    /// Business messages erased.
    pub messages_outbound: i64,
    /// Channel kinds the contact used (`whatsapp`, `webchat`, ...).
    pub channel_kinds: Vec<String>,
    /// First conversation's start.
    #[serde(with = "time::serde::rfc3339::option")]
    pub first_activity_at: Option<Timestamp>,
    /// Last activity.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_activity_at: Option<Timestamp>,
    /// Why: `admin`, `customer_request`, `self_service`, `cli`.
    pub reason: String,
}

/// The result of erasing a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    /// What remains.
    pub tombstone: ContactTombstone,
    /// Media-store keys of the erased messages' files no remaining message uses: the caller
    /// deletes these files after the commit.
    #[serde(skip)]
    pub media_keys: Vec<String>,
    /// Rows deleted per table, for the report.
    pub rows_deleted: BTreeMap<String, u64>,
}

/// What one retention purge run deleted (`GET /api/v1/privacy/retention/runs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRun {
    /// Its id.
    pub id: String,
    /// Owner.
    pub tenant_id: TenantId,
    /// Start.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: Timestamp,
    /// End.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: Timestamp,
    /// The policy applied.
    pub policy: RetentionPolicy,
    /// Messages deleted.
    pub messages_deleted: u64,
    /// Media files deleted from the media store.
    pub media_deleted: u64,
    /// Resolved conversations deleted.
    pub conversations_deleted: u64,
    /// Transactions used (each deletes one bounded batch).
    pub batches: u64,
}

/// One bounded step of a purge, as storage reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeStep {
    /// Messages deleted in this step.
    pub messages_deleted: u64,
    /// Conversations deleted in this step.
    pub conversations_deleted: u64,
    /// Media messages whose file expired in this step (the content keeps the file's
    /// metadata, `stored_key` removed).
    pub media_expired: u64,
    /// Media-store keys no remaining message uses: delete these files.
    pub media_keys: Vec<String>,
    /// Whether more rows are due (call again).
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_match_any_case_and_trailing_punctuation() {
        let s = PrivacySettings::default();
        assert_eq!(
            s.command("STOP!", false).map(|c| c.0),
            Some(PrivacyCommand::OptOut)
        );
        assert_eq!(
            s.command("  Forget   me ", false).map(|c| c.0),
            Some(PrivacyCommand::ForgetMe)
        );
        assert_eq!(
            s.command("my data", false).map(|c| c.0),
            Some(PrivacyCommand::MyData)
        );
        assert_eq!(
            s.command("Start", false).map(|c| c.0),
            Some(PrivacyCommand::OptIn)
        );
        assert_eq!(
            s.command("stop sending me the bill please now", false),
            None
        );
        assert_eq!(s.command("yes", false), None, "yes only while confirming");
        assert_eq!(
            s.command("Yes", true).map(|c| c.0),
            Some(PrivacyCommand::Yes)
        );
        assert_eq!(
            s.command("vergeet my", false),
            Some((PrivacyCommand::ForgetMe, "af".into()))
        );
    }

    #[test]
    fn configured_words_replace_the_builtin_ones_of_that_language() {
        let mut s = PrivacySettings::default();
        s.commands.insert(
            "en".into(),
            PrivacyWords {
                opt_out: vec!["halt".into()],
                ..PrivacyWords::default()
            },
        );
        assert_eq!(
            s.command("HALT", false).map(|c| c.0),
            Some(PrivacyCommand::OptOut)
        );
        assert_eq!(s.command("unsubscribe", false), None);
        assert!(s.validate().is_ok());
        s.commands.get_mut("en").expect("en").opt_in = vec!["halt".into()];
        assert!(s.validate().unwrap_err().contains("halt"));
    }

    #[test]
    fn replies_follow_the_language_of_the_word_typed() {
        let mut s = PrivacySettings::default();
        assert!(s.replies("af").opted_out.contains("uitgeteken"));
        assert!(s.replies("en").opted_out.contains("opted out"));
        assert!(
            s.replies("xx").opted_out.contains("opted out"),
            "unknown: English"
        );
        s.replies.insert(
            "en".into(),
            PrivacyReplies {
                opted_out: "Bye for now.".into(),
                ..PrivacyReplies::english()
            },
        );
        assert_eq!(s.replies("en").opted_out, "Bye for now.");
        assert!(s.validate().is_ok());
        s.replies.get_mut("en").expect("en").opted_in = "  ".into();
        assert!(s.validate().unwrap_err().contains("replies.en.opted_in"));
    }

    #[test]
    fn proactive_means_bulk_or_template() {
        let text = Content::text("hi");
        assert!(!is_proactive(Lane::Live, &text));
        assert!(is_proactive(Lane::Bulk, &text));
        let template = Content::Template {
            name: "t".into(),
            language: "en".into(),
            variables: vec![],
        };
        assert!(is_proactive(Lane::Live, &template));
    }

    #[test]
    fn retention_periods_are_checked() {
        let mut r = RetentionPolicy::default();
        assert!(r.validate().is_ok() && !r.is_active());
        r.messages_days = Some(0);
        assert!(r.validate().is_err());
        r.messages_days = Some(30);
        assert!(r.validate().is_ok() && r.is_active());
    }
}
