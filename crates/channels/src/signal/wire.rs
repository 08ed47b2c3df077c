//! signal-cli wire types: JSON-RPC notifications (`man/signal-cli-jsonrpc.5.adoc`), the
//! signal-cli-rest-api WebSocket / poll frames (swagger `receive.*`, generated from the same
//! signal-cli JSON classes `Json*.java`), and send results. Provider vocabulary stays here.

use serde::Deserialize;

/// `{envelope, account}`: a REST frame, the `params` of an auto-mode `receive` notification,
/// or the `params.result` of a manual-mode one.
#[derive(Debug, Deserialize)]
pub struct Received {
    /// The envelope.
    pub envelope: Envelope,
    /// Our account number (multi-account daemons and the REST wrapper send it).
    #[serde(default)]
    pub account: Option<String>,
}

/// swagger `receive.MessageEnvelope` / signal-cli `JsonMessageEnvelope`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Deprecated sender field (number or uuid).
    #[serde(default)]
    pub source: Option<String>,
    /// Sender number; null under phone-number privacy.
    #[serde(default)]
    pub source_number: Option<String>,
    /// Sender ACI: the stable customer key.
    #[serde(default)]
    pub source_uuid: Option<String>,
    /// Profile name.
    #[serde(default)]
    pub source_name: Option<String>,
    /// Sender's send time, ms: with the ACI, the message identity.
    pub timestamp: i64,
    /// A message.
    #[serde(default)]
    pub data_message: Option<serde_json::Value>,
    /// An edit of an earlier message.
    #[serde(default)]
    pub edit_message: Option<EditMessage>,
    /// Something our own account did on another device.
    #[serde(default)]
    pub sync_message: Option<serde_json::Value>,
    /// Delivery / read receipt for our messages.
    #[serde(default)]
    pub receipt_message: Option<ReceiptMessage>,
    /// Typing indicator.
    #[serde(default)]
    pub typing_message: Option<serde_json::Value>,
}

/// `editMessage`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditMessage {
    /// Timestamp of the message edited.
    #[serde(default)]
    pub target_sent_timestamp: Option<i64>,
    /// The new content.
    pub data_message: serde_json::Value,
}

/// swagger `receive.DataMessage` (only the fields we map).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataMessage {
    /// Text; null for attachment-only, reactions and group updates.
    #[serde(default)]
    pub message: Option<String>,
    /// Attachments (downloaded by signal-cli into its data dir).
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Reaction to a message.
    #[serde(default)]
    pub reaction: Option<Reaction>,
    /// Shared contacts.
    #[serde(default)]
    pub contacts: Vec<SharedContact>,
    /// Set for group messages.
    #[serde(default)]
    pub group_info: Option<GroupInfo>,
    /// Sticker.
    #[serde(default)]
    pub sticker: Option<serde_json::Value>,
    /// Remote delete of an earlier message.
    #[serde(default)]
    pub remote_delete: Option<serde_json::Value>,
}

/// swagger `receive.Attachment`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Original name.
    #[serde(default)]
    pub filename: Option<String>,
    /// signal-cli's id (`GET /v1/attachments/{id}` on the REST wrapper).
    #[serde(default)]
    pub id: Option<String>,
    /// Bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Caption.
    #[serde(default)]
    pub caption: Option<String>,
}

/// swagger `receive.Reaction`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    /// Emoji.
    #[serde(default)]
    pub emoji: Option<String>,
    /// Author of the target (number when known, else uuid).
    #[serde(default)]
    pub target_author: Option<String>,
    /// Author number.
    #[serde(default)]
    pub target_author_number: Option<String>,
    /// Author ACI.
    #[serde(default)]
    pub target_author_uuid: Option<String>,
    /// Target's send time.
    #[serde(default)]
    pub target_sent_timestamp: Option<i64>,
    /// Reaction removed.
    #[serde(default)]
    pub is_remove: bool,
}

/// signal-cli `JsonSharedContact`.
#[derive(Debug, Deserialize)]
pub struct SharedContact {
    /// Name parts.
    #[serde(default)]
    pub name: Option<ContactName>,
    /// Phones.
    #[serde(default)]
    pub phone: Vec<ContactValue>,
    /// E-mails.
    #[serde(default)]
    pub email: Vec<ContactValue>,
    /// Organisation.
    #[serde(default)]
    pub organization: Option<String>,
}

/// Name of a shared contact.
#[derive(Debug, Deserialize)]
pub struct ContactName {
    /// Display name.
    #[serde(default)]
    pub display: Option<String>,
    /// Given name.
    #[serde(default)]
    pub given: Option<String>,
    /// Family name.
    #[serde(default)]
    pub family: Option<String>,
}

/// `{value, type}`.
#[derive(Debug, Deserialize)]
pub struct ContactValue {
    /// The number or address.
    #[serde(default)]
    pub value: Option<String>,
}

/// `groupInfo`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    /// Base64 group id.
    #[serde(default)]
    pub group_id: Option<String>,
    /// `DELIVER` (a message) | `UPDATE` (membership / settings).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// swagger `receive.ReceiptMessage`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptMessage {
    /// When, ms.
    pub when: i64,
    /// Delivered to the device.
    #[serde(default)]
    pub is_delivery: bool,
    /// Read.
    #[serde(default)]
    pub is_read: bool,
    /// Viewed (view-once media, voice notes).
    #[serde(default)]
    pub is_viewed: bool,
    /// Send timestamps of our messages it covers.
    #[serde(default)]
    pub timestamps: Vec<i64>,
}

/// JSON-RPC 2.0 error object (`SignalJsonRpcCommandHandler.java` codes: -1 user, -3 IO,
/// -4 untrusted key, -5 rate limit, -6 captcha rejected, -326xx protocol).
#[derive(Debug, Deserialize)]
pub struct RpcError {
    /// Code.
    pub code: i64,
    /// Text.
    #[serde(default)]
    pub message: Option<String>,
    /// Extra data (send results for -5).
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// JSON-RPC response.
#[derive(Debug, Deserialize)]
pub struct RpcResponse {
    /// Result on success.
    #[serde(default)]
    pub result: Option<SendResult>,
    /// Error.
    #[serde(default)]
    pub error: Option<RpcError>,
}

/// `send` result: `timestamp` is the message id for receipts, quotes and reactions.
#[derive(Debug, Deserialize)]
pub struct SendResult {
    /// Our message's timestamp.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Per-recipient outcome (`JsonSendMessageResult`).
    #[serde(default)]
    pub results: Vec<RecipientResult>,
}

/// One recipient's outcome.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientResult {
    /// `SUCCESS` | `NETWORK_FAILURE` | `UNREGISTERED_FAILURE` | `IDENTITY_FAILURE` |
    /// `RATE_LIMIT_FAILURE` | …
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Seconds to wait (rate limit).
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    /// Captcha challenge token (rate limit needing proof).
    #[serde(default)]
    pub token: Option<String>,
}

/// REST `POST /v2/send` 201 answer (`{"timestamp": "<string>"}` per the swagger).
#[derive(Debug, Deserialize)]
pub struct RestSendResponse {
    /// Our message's timestamp (string or number).
    pub timestamp: serde_json::Value,
}

/// REST error body `{error}` (429 adds `challenge_tokens`).
#[derive(Debug, Deserialize)]
pub struct RestError {
    /// Text.
    #[serde(default)]
    pub error: Option<String>,
}
