//! WhatsApp Cloud API wire types (Graph API v23). Provider vocabulary stays in this file.
//!
//! Every field a payload may omit is optional and unknown fields are ignored, because Meta adds
//! fields without notice (the July 2025 pricing change, BSUIDs in 2026).

use serde::Deserialize;

/// Webhook body.
/// <https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components>
/// (spec: `paths./whatsapp/webhooks.post`, schema `WebhookPayload`).
#[derive(Debug, Deserialize)]
pub struct Webhook {
    /// Always `whatsapp_business_account`.
    pub object: String,
    /// Batched entries (one per WABA).
    #[serde(default)]
    pub entry: Vec<Entry>,
}

/// One WABA's changes.
#[derive(Debug, Deserialize)]
pub struct Entry {
    /// WABA id.
    #[serde(default)]
    pub id: Option<String>,
    /// The changes.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One subscribed field's change; we read `field = "messages"`.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// Subscribed field name.
    pub field: String,
    /// Its value, kept raw so one malformed item cannot spoil the batch.
    #[serde(default)]
    pub value: serde_json::Value,
}

/// The `value` of a `messages` change.
#[derive(Debug, Deserialize, Default)]
pub struct Value {
    /// Profiles of the senders in `messages`.
    #[serde(default)]
    pub contacts: Vec<WaContact>,
    /// Customer messages, raw (each is decoded on its own).
    #[serde(default)]
    pub messages: Vec<serde_json::Value>,
    /// Status updates, raw.
    #[serde(default)]
    pub statuses: Vec<serde_json::Value>,
    /// Out-of-band errors.
    #[serde(default)]
    pub errors: Vec<WaError>,
}

/// `value.contacts[]`: sender profile.
#[derive(Debug, Deserialize)]
pub struct WaContact {
    /// Phone number, E.164 digits without `+` (absent for username-only users).
    #[serde(default)]
    pub wa_id: Option<String>,
    /// Business-scoped user id (BSUID).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Profile.
    #[serde(default)]
    pub profile: Option<Profile>,
}

/// `profile`.
#[derive(Debug, Deserialize)]
pub struct Profile {
    /// User-chosen display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// `messages[]` (spec schema `Message`; type table in channels.md §1.1).
#[derive(Debug, Deserialize)]
pub struct Message {
    /// Sender phone (digits). Absent for username-only users.
    #[serde(default)]
    pub from: Option<String>,
    /// Sender BSUID.
    #[serde(default)]
    pub from_user_id: Option<String>,
    /// wamid.
    pub id: String,
    /// Unix seconds, as a string.
    pub timestamp: String,
    /// Message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// `text`.
    #[serde(default)]
    pub text: Option<Text>,
    /// `image`.
    #[serde(default)]
    pub image: Option<Media>,
    /// `video`.
    #[serde(default)]
    pub video: Option<Media>,
    /// `audio`.
    #[serde(default)]
    pub audio: Option<Media>,
    /// `document`.
    #[serde(default)]
    pub document: Option<Media>,
    /// `sticker`.
    #[serde(default)]
    pub sticker: Option<Media>,
    /// `location`.
    #[serde(default)]
    pub location: Option<Location>,
    /// `contacts`.
    #[serde(default)]
    pub contacts: Option<Vec<SharedContact>>,
    /// `interactive` (reply to our buttons/list, or a Flow completion).
    #[serde(default)]
    pub interactive: Option<Interactive>,
    /// `button` (template quick reply).
    #[serde(default)]
    pub button: Option<Button>,
    /// `reaction`.
    #[serde(default)]
    pub reaction: Option<Reaction>,
    /// `system`.
    #[serde(default)]
    pub system: Option<System>,
    /// `errors` (type `unsupported`).
    #[serde(default)]
    pub errors: Vec<WaError>,
}

/// `text`.
#[derive(Debug, Deserialize)]
pub struct Text {
    /// The text.
    pub body: String,
}

/// Inbound media object. <https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media>
#[derive(Debug, Deserialize)]
pub struct Media {
    /// Media id for `GET /{media-id}`.
    pub id: String,
    /// MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Base64 SHA-256 of the file.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Caption (image, video, document).
    #[serde(default)]
    pub caption: Option<String>,
    /// File name (document).
    #[serde(default)]
    pub filename: Option<String>,
    /// Short-lived URL some payloads carry.
    #[serde(default)]
    pub url: Option<String>,
    /// `audio.voice`: a voice note.
    #[serde(default)]
    pub voice: Option<bool>,
}

/// `location`.
#[derive(Debug, Deserialize)]
pub struct Location {
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
    /// Place name.
    #[serde(default)]
    pub name: Option<String>,
    /// Address.
    #[serde(default)]
    pub address: Option<String>,
}

/// One shared contact card.
#[derive(Debug, Deserialize)]
pub struct SharedContact {
    /// Name parts.
    #[serde(default)]
    pub name: Option<ContactName>,
    /// Phones.
    #[serde(default)]
    pub phones: Vec<ContactPhone>,
    /// E-mails.
    #[serde(default)]
    pub emails: Vec<ContactEmail>,
    /// Organisation.
    #[serde(default)]
    pub org: Option<ContactOrg>,
}

/// Contact name.
#[derive(Debug, Deserialize)]
pub struct ContactName {
    /// Full name.
    #[serde(default)]
    pub formatted_name: Option<String>,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
}

/// Contact phone.
#[derive(Debug, Deserialize)]
pub struct ContactPhone {
    /// As typed.
    #[serde(default)]
    pub phone: Option<String>,
}

/// Contact e-mail.
#[derive(Debug, Deserialize)]
pub struct ContactEmail {
    /// Address.
    #[serde(default)]
    pub email: Option<String>,
}

/// Contact organisation.
#[derive(Debug, Deserialize)]
pub struct ContactOrg {
    /// Company.
    #[serde(default)]
    pub company: Option<String>,
}

/// `interactive` reply.
#[derive(Debug, Deserialize)]
pub struct Interactive {
    /// `button_reply` | `list_reply` | `nfm_reply`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Reply button tapped.
    #[serde(default)]
    pub button_reply: Option<ReplyId>,
    /// List row picked.
    #[serde(default)]
    pub list_reply: Option<ReplyId>,
}

/// `{id, title}` of a tapped button or row.
#[derive(Debug, Deserialize)]
pub struct ReplyId {
    /// Our choice id.
    pub id: String,
    /// Its title.
    pub title: String,
}

/// Template quick-reply `button`.
#[derive(Debug, Deserialize)]
pub struct Button {
    /// The payload we set on the template button.
    pub payload: String,
    /// Button text.
    pub text: String,
}

/// `reaction`.
#[derive(Debug, Deserialize)]
pub struct Reaction {
    /// wamid reacted to.
    pub message_id: String,
    /// Emoji; empty or absent when removed.
    #[serde(default)]
    pub emoji: Option<String>,
}

/// `system`.
#[derive(Debug, Deserialize)]
pub struct System {
    /// Human-readable text.
    #[serde(default)]
    pub body: Option<String>,
    /// `user_changed_number` | `customer_identity_changed`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The new `wa_id` after a number change.
    #[serde(default)]
    pub wa_id: Option<String>,
}

/// `statuses[]` (spec schema `Statuses`).
#[derive(Debug, Deserialize)]
pub struct Status {
    /// Our wamid.
    pub id: String,
    /// `sent | delivered | read | failed` (plus `played`, `deleted` seen in the wild).
    pub status: String,
    /// Unix seconds, as a string.
    pub timestamp: String,
    /// Errors of a `failed` status.
    #[serde(default)]
    pub errors: Vec<WaError>,
}

/// An error object, in webhooks (spec `StatusError`) and Graph error responses.
/// <https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes>
#[derive(Debug, Deserialize, Clone)]
pub struct WaError {
    /// Numeric code: the only field to act on.
    pub code: i64,
    /// Short title.
    #[serde(default)]
    pub title: Option<String>,
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
    /// `{details}`.
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

/// `error_data`.
#[derive(Debug, Deserialize, Clone)]
pub struct ErrorData {
    /// Longer explanation.
    #[serde(default)]
    pub details: Option<String>,
}

/// Graph API error response: `{error: {...}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: WaError,
}

/// `POST /{phone-number-id}/messages` 200 response.
#[derive(Debug, Deserialize)]
pub struct SendResponse {
    /// `[{id: wamid}]`.
    #[serde(default)]
    pub messages: Vec<SentId>,
}

/// One accepted message.
#[derive(Debug, Deserialize)]
pub struct SentId {
    /// wamid.
    pub id: String,
}

/// `GET /{media-id}` response (spec `paths./{Version}/{Media-ID}.get`). The URL lives 5 minutes.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// Download URL (needs the same bearer token).
    pub url: String,
    /// MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// SHA-256 of the file.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size in bytes; Graph sends it as a string.
    #[serde(default)]
    pub file_size: Option<serde_json::Value>,
}

/// One page of `GET /{WABA-ID}/message_templates`
/// (<https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account/message_templates/>).
#[derive(Debug, Clone, Deserialize)]
pub struct TemplatePage {
    /// The templates of this page.
    #[serde(default)]
    pub data: Vec<ListedTemplate>,
    /// Cursor paging; `next` is present while more pages follow.
    #[serde(default)]
    pub paging: Option<Paging>,
}

/// One template as listed.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedTemplate {
    /// Name (with the language, the send address).
    pub name: String,
    /// Language code.
    pub language: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`…
    #[serde(default)]
    pub status: String,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION`.
    #[serde(default)]
    pub category: String,
    /// Header, body, footer, buttons.
    #[serde(default)]
    pub components: Vec<ListedComponent>,
}

/// One component of a listed template.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedComponent {
    /// `HEADER`, `BODY`, `FOOTER`, `BUTTONS`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its text, for text components.
    #[serde(default)]
    pub text: Option<String>,
}

/// Graph cursor paging.
#[derive(Debug, Clone, Deserialize)]
pub struct Paging {
    /// Cursors around this page.
    #[serde(default)]
    pub cursors: Option<Cursors>,
    /// URL of the next page, absent on the last one.
    #[serde(default)]
    pub next: Option<String>,
}

/// Graph paging cursors.
#[derive(Debug, Clone, Deserialize)]
pub struct Cursors {
    /// Cursor to pass as `after` for the next page.
    #[serde(default)]
    pub after: Option<String>,
}
