//! Telegram Bot API wire types (Bot API 10.1). Provider vocabulary stays in this file.
//! Unknown fields and update kinds are ignored, never rejected: every API version adds some
//! (<https://core.telegram.org/bots/api#getting-updates>).

use serde::Deserialize;

/// <https://core.telegram.org/bots/api#update>: exactly one optional field is set.
#[derive(Debug, Deserialize)]
pub struct Update {
    /// Sequential id; Telegram's own dedupe and ordering key.
    pub update_id: i64,
    /// New message.
    #[serde(default)]
    pub message: Option<serde_json::Value>,
    /// Edited message.
    #[serde(default)]
    pub edited_message: Option<serde_json::Value>,
    /// Inline keyboard tap.
    #[serde(default)]
    pub callback_query: Option<serde_json::Value>,
    /// Reaction change (only when requested in `allowed_updates`).
    #[serde(default)]
    pub message_reaction: Option<serde_json::Value>,
    /// The bot's own membership changed (private chat: user blocked / unblocked the bot).
    #[serde(default)]
    pub my_chat_member: Option<serde_json::Value>,
}

/// <https://core.telegram.org/bots/api#message> (only the fields we map).
#[derive(Debug, Deserialize)]
pub struct Message {
    /// Unique within the chat.
    pub message_id: i64,
    /// Sender (absent for channel posts).
    #[serde(default)]
    pub from: Option<User>,
    /// The chat.
    pub chat: Chat,
    /// Unix seconds.
    pub date: i64,
    /// Unix seconds of the last edit.
    #[serde(default)]
    pub edit_date: Option<i64>,
    /// Text.
    #[serde(default)]
    pub text: Option<String>,
    /// Caption of media.
    #[serde(default)]
    pub caption: Option<String>,
    /// Sizes of one photo, ascending in practice.
    #[serde(default)]
    pub photo: Option<Vec<File>>,
    /// Video.
    #[serde(default)]
    pub video: Option<File>,
    /// Round video note.
    #[serde(default)]
    pub video_note: Option<File>,
    /// GIF / silent video.
    #[serde(default)]
    pub animation: Option<File>,
    /// Voice note (OGG/Opus).
    #[serde(default)]
    pub voice: Option<File>,
    /// Music file.
    #[serde(default)]
    pub audio: Option<File>,
    /// Any file.
    #[serde(default)]
    pub document: Option<File>,
    /// Sticker.
    #[serde(default)]
    pub sticker: Option<Sticker>,
    /// Location (also set for venues).
    #[serde(default)]
    pub location: Option<Location>,
    /// Venue.
    #[serde(default)]
    pub venue: Option<Venue>,
    /// Shared contact.
    #[serde(default)]
    pub contact: Option<Contact>,
    /// Inline keyboard attached (on our messages; used to recover a tapped button's label).
    #[serde(default)]
    pub reply_markup: Option<InlineKeyboardMarkup>,
}

/// <https://core.telegram.org/bots/api#user>
#[derive(Debug, Deserialize)]
pub struct User {
    /// 52-bit id.
    pub id: i64,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Username.
    #[serde(default)]
    pub username: Option<String>,
}

impl User {
    /// "First Last", or the username.
    pub fn display_name(&self) -> Option<String> {
        let parts: Vec<&str> = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if parts.is_empty() {
            self.username.clone()
        } else {
            Some(parts.join(" "))
        }
    }
}

/// <https://core.telegram.org/bots/api#chat>
#[derive(Debug, Deserialize)]
pub struct Chat {
    /// Negative for groups (`-100…` supergroups).
    pub id: i64,
    /// `private` | `group` | `supergroup` | `channel`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Any downloadable file (`PhotoSize`, `Video`, `Voice`, `Audio`, `Document`, …).
/// <https://core.telegram.org/bots/api#document>
#[derive(Debug, Deserialize)]
pub struct File {
    /// Reusable by this bot; input to `getFile`.
    pub file_id: String,
    /// Bytes.
    #[serde(default)]
    pub file_size: Option<u64>,
    /// MIME type as the sender declared it.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Original name (documents, audio, video).
    #[serde(default)]
    pub file_name: Option<String>,
    /// Width (photos).
    #[serde(default)]
    pub width: Option<u64>,
    /// Height (photos).
    #[serde(default)]
    pub height: Option<u64>,
}

/// <https://core.telegram.org/bots/api#sticker>
#[derive(Debug, Deserialize)]
pub struct Sticker {
    /// File id.
    pub file_id: String,
    /// TGS animation.
    #[serde(default)]
    pub is_animated: bool,
    /// WEBM video.
    #[serde(default)]
    pub is_video: bool,
    /// Bytes.
    #[serde(default)]
    pub file_size: Option<u64>,
    /// Emoji it stands for.
    #[serde(default)]
    pub emoji: Option<String>,
}

/// <https://core.telegram.org/bots/api#location>
#[derive(Debug, Deserialize)]
pub struct Location {
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
}

/// <https://core.telegram.org/bots/api#venue>
#[derive(Debug, Deserialize)]
pub struct Venue {
    /// Where.
    pub location: Location,
    /// Name.
    pub title: String,
    /// Address.
    pub address: String,
}

/// <https://core.telegram.org/bots/api#contact>
#[derive(Debug, Deserialize)]
pub struct Contact {
    /// As shared.
    pub phone_number: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Telegram user the number belongs to, when known.
    #[serde(default)]
    pub user_id: Option<i64>,
}

/// <https://core.telegram.org/bots/api#inlinekeyboardmarkup>
#[derive(Debug, Deserialize)]
pub struct InlineKeyboardMarkup {
    /// Rows of buttons.
    #[serde(default)]
    pub inline_keyboard: Vec<Vec<InlineKeyboardButton>>,
}

/// <https://core.telegram.org/bots/api#inlinekeyboardbutton>
#[derive(Debug, Deserialize)]
pub struct InlineKeyboardButton {
    /// Label.
    pub text: String,
    /// Our choice id.
    #[serde(default)]
    pub callback_data: Option<String>,
}

/// <https://core.telegram.org/bots/api#callbackquery>
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    /// Answer with `answerCallbackQuery`.
    pub id: String,
    /// Who tapped.
    pub from: User,
    /// The message with the keyboard (absent for inline-mode messages).
    #[serde(default)]
    pub message: Option<serde_json::Value>,
    /// Client-supplied data: validate, it may match no button we sent.
    #[serde(default)]
    pub data: Option<String>,
}

/// <https://core.telegram.org/bots/api#messagereactionupdated>
#[derive(Debug, Deserialize)]
pub struct MessageReactionUpdated {
    /// The chat.
    pub chat: Chat,
    /// The message reacted to.
    pub message_id: i64,
    /// Who (absent when anonymous).
    #[serde(default)]
    pub user: Option<User>,
    /// Unix seconds.
    pub date: i64,
    /// Reactions after the change.
    #[serde(default)]
    pub new_reaction: Vec<ReactionType>,
}

/// <https://core.telegram.org/bots/api#reactiontype>
#[derive(Debug, Deserialize)]
pub struct ReactionType {
    /// `emoji` | `custom_emoji` | `paid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The emoji, for `emoji`.
    #[serde(default)]
    pub emoji: Option<String>,
}

/// <https://core.telegram.org/bots/api#chatmemberupdated>
#[derive(Debug, Deserialize)]
pub struct ChatMemberUpdated {
    /// The chat.
    pub chat: Chat,
    /// Who changed it.
    pub from: User,
    /// Unix seconds.
    pub date: i64,
    /// The bot's membership before.
    pub old_chat_member: ChatMember,
    /// The bot's membership after.
    pub new_chat_member: ChatMember,
}

/// <https://core.telegram.org/bots/api#chatmember> (status only).
#[derive(Debug, Deserialize)]
pub struct ChatMember {
    /// `member` | `kicked` | `left` | `administrator` | …
    pub status: String,
}

/// Every Bot API answer: `{ok, result}` or `{ok:false, error_code, description, parameters}`.
/// <https://core.telegram.org/bots/api#making-requests>
#[derive(Debug, Deserialize)]
pub struct Response {
    /// Success flag.
    pub ok: bool,
    /// The result on success.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    /// HTTP-like code on failure.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// Human-readable reason.
    #[serde(default)]
    pub description: Option<String>,
    /// `retry_after` / `migrate_to_chat_id`.
    #[serde(default)]
    pub parameters: Option<ResponseParameters>,
}

/// <https://core.telegram.org/bots/api#responseparameters>
#[derive(Debug, Deserialize)]
pub struct ResponseParameters {
    /// Seconds to wait after a flood-control 429.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// The supergroup a group was migrated to.
    #[serde(default)]
    pub migrate_to_chat_id: Option<i64>,
}

/// <https://core.telegram.org/bots/api#file>: `getFile` result.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// File id.
    pub file_id: String,
    /// Stable across bots; cannot download.
    #[serde(default)]
    pub file_unique_id: Option<String>,
    /// Bytes.
    #[serde(default)]
    pub file_size: Option<u64>,
    /// Path for `https://api.telegram.org/file/bot<token>/<file_path>` (valid ≥ 1 h).
    #[serde(default)]
    pub file_path: Option<String>,
}
