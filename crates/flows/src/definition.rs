//! The flow format: what a YAML flow file deserialises into, and [`parse_flow`].
//!
//! One file holds one flow: an `id`, optional `settings` and keyword `triggers`
//! ([`Triggers`]), and a list of `nodes`, each with a
//! unique `id` and a `type`. Linear nodes (`send`, `set`, `record`, `subflow`, `http` on
//! success) go to `next`, or to the node below them when `next` is left out. The JSON Schema
//! at `flows/flow.schema.json` describes the same format for editors.
//!
//! Parsing only checks the shape; [`crate::check`] checks the meaning (unknown targets,
//! unreachable nodes, missing variables, bad expressions, cycles without input).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use switchboard_core::{ChoiceStyle, MediaKind};

use crate::check::Problem;
use crate::expr::{self, Expr};

/// A map that keeps the order it was written in (assignments run top to bottom).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<V> Ordered<V> {
    /// Iterates the entries in written order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, V)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    if out.iter().any(|(seen, _)| *seen == k) {
                        return Err(de::Error::custom(format!("`{k}` is given twice")));
                    }
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
        }
        d.deserialize_map(V2(std::marker::PhantomData))
    }
}

/// An expression as written in YAML. Plain scalars are accepted too, so `count: 0`,
/// `done: true` and `cart: null` need no quotes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Expression(pub String);

impl std::ops::Deref for Expression {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Expression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Scalar;
        impl Visitor<'_> for Scalar {
            type Value = Expression;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an expression (text, number, true/false or null)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Expression, E> {
                Ok(Expression(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Expression, E> {
                Ok(Expression(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Expression, E> {
                Ok(Expression(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Expression, E> {
                Ok(Expression(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Expression, E> {
                Ok(Expression(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Expression, E> {
                Ok(Expression("null".into()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Expression, E> {
                Ok(Expression("null".into()))
            }
        }
        d.deserialize_any(Scalar)
    }
}

/// Words that trigger the global commands, for one language.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandWords {
    /// Hand off to a person (`agent`, `human`).
    #[serde(default)]
    pub agent: Vec<String>,
    /// Restart at the main menu (`menu`).
    #[serde(default)]
    pub menu: Vec<String>,
    /// Opt out of messages (`stop`, `unsubscribe`).
    #[serde(default)]
    pub stop: Vec<String>,
}

impl CommandWords {
    /// Built-in English words for a person (used unless the flow configures `en`).
    pub const ENGLISH_AGENT: &'static [&'static str] = &["agent", "human", "person"];
    /// Built-in English words for the main menu.
    pub const ENGLISH_MENU: &'static [&'static str] = &["menu", "main menu"];
    /// Built-in English words for opting out.
    pub const ENGLISH_STOP: &'static [&'static str] = &["stop", "unsubscribe"];

    /// The English words every flow understands unless it overrides `en`.
    pub fn english() -> CommandWords {
        let v = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
        CommandWords {
            agent: v(Self::ENGLISH_AGENT),
            menu: v(Self::ENGLISH_MENU),
            stop: v(Self::ENGLISH_STOP),
        }
    }
}

/// Where a hand-off goes when a node or the `agent` command does not say.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffDefaults {
    /// Queue name.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Required skill.
    #[serde(default)]
    pub skill: Option<String>,
    /// Priority (higher is served first).
    #[serde(default)]
    pub priority: i32,
    /// What the customer is told (transparency: a person is joining).
    #[serde(default = "default_handoff_message")]
    pub message: String,
}

impl Default for HandoffDefaults {
    fn default() -> Self {
        HandoffDefaults {
            queue: default_queue(),
            skill: None,
            priority: 0,
            message: default_handoff_message(),
        }
    }
}

fn default_queue() -> String {
    "general".into()
}
fn default_handoff_message() -> String {
    "I'm passing you to a person from our team. They will see this conversation and reply here shortly.".into()
}
fn default_expiry_message() -> String {
    "This conversation timed out. Send any message to start again.".into()
}
fn default_opt_out_message() -> String {
    "Done: you won't get any more messages from us. You can still write to us at any time.".into()
}
fn default_invalid() -> String {
    "Sorry, I didn't understand that.".into()
}
fn default_language() -> String {
    "en".into()
}
fn default_expiry_minutes() -> u32 {
    30
}
fn default_max_retries() -> u32 {
    2
}
fn default_timeout_ms() -> u64 {
    5_000
}

/// Flow-wide settings. The conversation-wide ones (expiry, opt-out message, command words,
/// the fallback hand-off) are read from the root flow of a session; `invalid_message` and
/// `max_retries` from the flow the current node belongs to.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Minutes of customer silence after which the session expires.
    #[serde(default = "default_expiry_minutes")]
    pub expiry_minutes: u32,
    /// Sent when a session expires.
    #[serde(default = "default_expiry_message")]
    pub expiry_message: String,
    /// Sent when the customer opts out.
    #[serde(default = "default_opt_out_message")]
    pub opt_out_message: String,
    /// Sent before a re-prompt when a reply is not understood.
    #[serde(default = "default_invalid")]
    pub invalid_message: String,
    /// Re-prompts before giving up on an `ask` or `menu` (then `on_fail`, or a hand-off).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Language whose command words apply when the contact's language has none.
    #[serde(default = "default_language")]
    pub default_language: String,
    /// Command words per language code (`en`, `af`, `zu`); `en` has built-in defaults.
    #[serde(default)]
    pub commands: BTreeMap<String, CommandWords>,
    /// Hand-off defaults (for the `agent` command and nodes that leave fields out).
    #[serde(default)]
    pub handoff: HandoffDefaults,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            expiry_minutes: default_expiry_minutes(),
            expiry_message: default_expiry_message(),
            opt_out_message: default_opt_out_message(),
            invalid_message: default_invalid(),
            max_retries: default_max_retries(),
            default_language: default_language(),
            commands: BTreeMap::new(),
            handoff: HandoffDefaults::default(),
        }
    }
}

/// `triggers:`: what starts this flow for a customer who is not already talking to the bot
/// or a person (besides a channel's default flow and staff).
///
/// ```yaml
/// triggers:
///   keywords: { en: [balance, my balance], af: [saldo] }
///   channels: [webchat, whatsapp]   # optional: channel kinds or channel ids
/// ```
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// Keywords per language code. A customer message that is a keyword (any language; case,
    /// surrounding spaces and trailing punctuation ignored), or starts with one followed by a
    /// space, starts the flow. See [`crate::trigger::match_keyword`].
    #[serde(default)]
    pub keywords: BTreeMap<String, Vec<String>>,
    /// Channel kinds (`webchat`, `whatsapp`, `telegram`, `signal`) or channel ids where the
    /// keywords apply; empty means every channel.
    #[serde(default)]
    pub channels: Vec<String>,
}

/// Media to send.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSpec {
    /// Image, video, audio, document, ...
    pub kind: MediaKind,
    /// Public URL (a template).
    pub url: String,
    /// Caption (a template).
    #[serde(default)]
    pub caption: Option<String>,
    /// File name shown for documents.
    #[serde(default)]
    pub filename: Option<String>,
}

/// `type: send`: a text and/or media message.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SendNode {
    /// Node id.
    pub id: String,
    /// Text (a template).
    #[serde(default)]
    pub text: Option<String>,
    /// Media.
    #[serde(default)]
    pub media: Option<MediaSpec>,
    /// A pre-approved WhatsApp template, sent before `text` and `media`. A flow a campaign
    /// starts for a customer outside WhatsApp's 24-hour window must open with one.
    #[serde(default)]
    pub template: Option<TemplateSpec>,
    /// Next node (default: the node below).
    #[serde(default)]
    pub next: Option<String>,
}

/// A pre-approved message template (WhatsApp): the only message WhatsApp accepts outside the
/// 24-hour customer service window.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// The template's name as approved by Meta.
    pub name: String,
    /// Its language code (`en_US`).
    #[serde(default = "default_template_language")]
    pub language: String,
    /// Body variables in order (each a template: `{{contact.name}}`).
    #[serde(default)]
    pub variables: Vec<String>,
}

fn default_template_language() -> String {
    "en_US".into()
}

/// One option of a menu.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MenuOption {
    /// Stable id (what buttons return).
    pub id: String,
    /// Label (a template).
    pub title: String,
    /// Longer text for list pickers.
    #[serde(default)]
    pub description: Option<String>,
    /// Where this option goes (default: the menu's `next`).
    #[serde(default)]
    pub next: Option<String>,
    /// Variables to set when picked: name → expression.
    #[serde(default)]
    pub set: Ordered<Expression>,
}

/// `type: menu`: a prompt with options, rendered per channel.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MenuNode {
    /// Node id.
    pub id: String,
    /// The question (a template).
    pub prompt: String,
    /// The options.
    pub options: Vec<MenuOption>,
    /// Rendering preference.
    #[serde(default)]
    pub style: ChoiceStyle,
    /// Variable that receives the picked option's id.
    #[serde(default)]
    pub save: Option<String>,
    /// Message before a re-prompt (default: the flow's `invalid_message`).
    #[serde(default)]
    pub invalid: Option<String>,
    /// Re-prompts before `on_fail` (default: the flow's `max_retries`).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Where to go when retries run out (default: hand off to a person).
    #[serde(default)]
    pub on_fail: Option<String>,
    /// Default target for options without their own `next`.
    #[serde(default)]
    pub next: Option<String>,
}

/// An option of a `choice` validator.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// Id stored in the variable.
    pub id: String,
    /// Label.
    pub title: String,
}

/// A compiled regular expression that deserialises from its pattern.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let src = String::deserialize(d)?;
        // Anchored so `pattern: "[0-9]{6}"` means the whole reply; size-limited against huge automata.
        regex::RegexBuilder::new(&format!("^(?:{src})$"))
            .size_limit(1 << 20)
            .build()
            .map(Pattern)
            .map_err(|e| {
                let why = e.to_string();
                let why = why
                    .lines()
                    .last()
                    .unwrap_or("invalid pattern")
                    .trim_start_matches("error: ")
                    .to_string();
                de::Error::custom(format!("bad regex `{src}`: {why}"))
            })
    }
}

/// How an `ask` node checks a reply.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Validator {
    /// Any text, optionally length-limited.
    #[default]
    Text,
    /// Text with a length range.
    TextLength {
        /// Fewest characters.
        #[serde(default)]
        min: Option<usize>,
        /// Most characters.
        #[serde(default)]
        max: Option<usize>,
    },
    /// A number in a range.
    Number {
        /// Smallest accepted.
        #[serde(default)]
        min: Option<f64>,
        /// Largest accepted.
        #[serde(default)]
        max: Option<f64>,
        /// Whole numbers only.
        #[serde(default)]
        integer: bool,
    },
    /// An amount of money (stored as cents).
    Money {
        /// Smallest accepted (in currency units).
        #[serde(default)]
        min: Option<f64>,
        /// Largest accepted.
        #[serde(default)]
        max: Option<f64>,
    },
    /// A calendar date, optionally within days of today.
    Date {
        /// Earliest accepted, in days from today (0 = today, negative = past).
        #[serde(default)]
        min_days: Option<i64>,
        /// Latest accepted, in days from today.
        #[serde(default)]
        max_days: Option<i64>,
    },
    /// Yes or no (stored as a boolean); shown as two buttons.
    YesNo,
    /// An e-mail address.
    Email,
    /// A phone number, normalised to E.164.
    Phone {
        /// Country code for numbers written with a leading 0 (`27` for South Africa).
        #[serde(default)]
        country_code: Option<String>,
    },
    /// One of fixed options (stored as the option's id); shown as a menu.
    Choice {
        /// The options.
        options: Vec<ChoiceOption>,
    },
    /// A regular expression matching the whole reply.
    Regex {
        /// The pattern.
        pattern: Pattern,
    },
    /// A South African ID number (checksum and birth date); also stores `<save>_birth_date`.
    SaId {
        /// Youngest accepted age in whole years.
        #[serde(default)]
        min_age: Option<u32>,
    },
}

/// `type: ask`: a question whose reply is validated and stored.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AskNode {
    /// Node id.
    pub id: String,
    /// The question (a template).
    pub prompt: String,
    /// Variable that receives the reply.
    pub save: String,
    /// How to check the reply.
    #[serde(default)]
    pub validate: Validator,
    /// Message before a re-prompt (default: the validator's own explanation).
    #[serde(default)]
    pub invalid: Option<String>,
    /// Re-prompts before `on_fail`.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Where to go when retries run out (default: hand off to a person).
    #[serde(default)]
    pub on_fail: Option<String>,
    /// Next node (default: the node below).
    #[serde(default)]
    pub next: Option<String>,
}

/// `type: set`: assign variables (and contact attributes) from expressions, in order.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetNode {
    /// Node id.
    pub id: String,
    /// Variable name → expression.
    #[serde(default)]
    pub set: Ordered<Expression>,
    /// Contact attribute → expression (the runtime stores them on the contact).
    #[serde(default)]
    pub contact: Ordered<Expression>,
    /// Next node (default: the node below).
    #[serde(default)]
    pub next: Option<String>,
}

/// One case of a branch.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Condition (an expression giving true or false).
    pub when: Expression,
    /// Target when true.
    pub next: String,
}

/// `type: branch`: the first case whose condition holds, else `else`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BranchNode {
    /// Node id.
    pub id: String,
    /// Cases, tried in order.
    pub cases: Vec<Case>,
    /// Target when no case holds.
    #[serde(rename = "else")]
    pub otherwise: String,
}

/// HTTP methods the `http` node can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET
    #[default]
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

/// `type: http`: the runtime calls an endpoint (behind its SSRF guard) and feeds back the result.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpNode {
    /// Node id.
    pub id: String,
    /// Method.
    #[serde(default)]
    pub method: HttpMethod,
    /// URL (a template; values are percent-encoded).
    pub url: String,
    /// Headers (templates).
    #[serde(default)]
    pub headers: Ordered<String>,
    /// JSON body; strings in it are templates, and a string that is one placeholder keeps its type.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Timeout in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Variable → dotted path into the JSON response (`account.balance`, `items.0.name`);
    /// `$status` is the HTTP status.
    #[serde(default)]
    pub save: Ordered<String>,
    /// Next node on a 2xx answer (default: the node below).
    #[serde(default)]
    pub next: Option<String>,
    /// Where to go on a non-2xx answer, timeout or network error.
    #[serde(default)]
    pub on_error: Option<String>,
}

/// `type: handoff`: pass the conversation to a queue of people.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffNode {
    /// Node id.
    pub id: String,
    /// Queue (default: `settings.handoff.queue`).
    #[serde(default)]
    pub queue: Option<String>,
    /// Required skill.
    #[serde(default)]
    pub skill: Option<String>,
    /// Priority.
    #[serde(default)]
    pub priority: Option<i32>,
    /// Summary for the agent (a template).
    #[serde(default)]
    pub summary: Option<String>,
    /// What the customer is told (a template; default: `settings.handoff.message`).
    #[serde(default)]
    pub message: Option<String>,
    /// Outcome tag for reports (default `handoff`).
    #[serde(default)]
    pub outcome: Option<String>,
}

/// `type: wait`: wait for a reply, or go on after a timeout.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WaitNode {
    /// Node id.
    pub id: String,
    /// Optional message before waiting (a template).
    #[serde(default)]
    pub text: Option<String>,
    /// Seconds to wait.
    pub timeout_seconds: u64,
    /// Variable that receives the reply.
    #[serde(default)]
    pub save: Option<String>,
    /// Where a reply goes (default: the node below).
    #[serde(default)]
    pub next: Option<String>,
    /// Where the timeout goes.
    pub on_timeout: String,
}

/// `type: subflow`: run another flow, then come back to `next`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubflowNode {
    /// Node id.
    pub id: String,
    /// The other flow's id.
    pub flow: String,
    /// Where to continue when it returns (default: the node below).
    #[serde(default)]
    pub next: Option<String>,
}

/// `type: return`: go back to the flow that called this one (or end when there is none).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnNode {
    /// Node id.
    pub id: String,
}

/// `type: end`: the conversation with the bot is over.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndNode {
    /// Node id.
    pub id: String,
    /// A last message (a template).
    #[serde(default)]
    pub text: Option<String>,
    /// Outcome tag for reports (default `completed`).
    #[serde(default)]
    pub outcome: Option<String>,
}

/// `type: record`: hand a typed record (loan application, promise to pay, order) to the runtime.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordNode {
    /// Node id.
    pub id: String,
    /// Record type (`loan_application`, `promise_to_pay`, `order`).
    pub kind: String,
    /// Field → expression.
    pub data: Ordered<Expression>,
    /// Next node (default: the node below).
    #[serde(default)]
    pub next: Option<String>,
}

/// A node of a flow.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Node {
    /// Send a message.
    Send(SendNode),
    /// Offer options.
    Menu(MenuNode),
    /// Ask and validate.
    Ask(AskNode),
    /// Assign variables.
    Set(SetNode),
    /// Choose a path.
    Branch(BranchNode),
    /// Call an HTTP endpoint.
    Http(HttpNode),
    /// Hand off to people.
    Handoff(HandoffNode),
    /// Wait for a reply or a timeout.
    Wait(WaitNode),
    /// Run another flow.
    Subflow(SubflowNode),
    /// Return to the calling flow.
    Return(ReturnNode),
    /// End.
    End(EndNode),
    /// Emit a record.
    Record(RecordNode),
}

/// The node type names, as written in YAML.
pub const NODE_TYPES: &[&str] = &[
    "send", "menu", "ask", "set", "branch", "http", "handoff", "wait", "subflow", "return", "end",
    "record",
];

impl Node {
    /// The node's id.
    pub fn id(&self) -> &str {
        match self {
            Node::Send(n) => &n.id,
            Node::Menu(n) => &n.id,
            Node::Ask(n) => &n.id,
            Node::Set(n) => &n.id,
            Node::Branch(n) => &n.id,
            Node::Http(n) => &n.id,
            Node::Handoff(n) => &n.id,
            Node::Wait(n) => &n.id,
            Node::Subflow(n) => &n.id,
            Node::Return(n) => &n.id,
            Node::End(n) => &n.id,
            Node::Record(n) => &n.id,
        }
    }

    /// The explicit `next`, for node types that fall through to the node below without one.
    pub fn linear_next(&self) -> Option<Option<&str>> {
        match self {
            Node::Send(n) => Some(n.next.as_deref()),
            Node::Set(n) => Some(n.next.as_deref()),
            Node::Record(n) => Some(n.next.as_deref()),
            Node::Subflow(n) => Some(n.next.as_deref()),
            Node::Http(n) => Some(n.next.as_deref()),
            Node::Ask(n) => Some(n.next.as_deref()),
            Node::Wait(n) => Some(n.next.as_deref()),
            Node::Menu(n) => Some(n.next.as_deref()),
            _ => None,
        }
    }

    /// Whether the node stops to wait for the customer.
    pub fn waits_for_customer(&self) -> bool {
        matches!(self, Node::Menu(_) | Node::Ask(_) | Node::Wait(_))
    }
}

/// A parsed flow. Build it with [`parse_flow`]; check it with [`crate::check`].
#[derive(Debug, Clone)]
pub struct FlowDefinition {
    /// Flow id (what `subflow` nodes and sessions refer to).
    pub id: String,
    /// Human name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// First node.
    pub start: String,
    /// Variables set outside this flow (by a caller, a subflow or the runtime), so `check`
    /// does not report them as missing.
    pub inputs: Vec<String>,
    /// Default `env.*` values; the runtime overrides them through [`FlowLibrary::env`].
    pub env: BTreeMap<String, String>,
    /// Settings.
    pub settings: Settings,
    /// Keyword triggers (empty when the flow has none).
    pub triggers: Triggers,
    /// Nodes, in file order.
    pub nodes: Vec<Node>,
    pub(crate) index: HashMap<String, usize>,
    pub(crate) lines: Vec<Option<usize>>,
    pub(crate) header_lines: HashMap<&'static str, usize>,
    pub(crate) exprs: HashMap<String, Expr>,
}

impl FlowDefinition {
    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.get(id).and_then(|&i| self.nodes.get(i))
    }

    /// Position of a node in file order.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The line of the `triggers:` block, when known.
    pub fn triggers_line(&self) -> Option<usize> {
        self.header_lines
            .get("triggers")
            .or_else(|| self.header_lines.get("id"))
            .copied()
    }

    /// The line where a node starts, when known.
    pub fn line_of(&self, id: &str) -> Option<usize> {
        self.position(id)
            .and_then(|i| self.lines.get(i).copied().flatten())
    }

    /// Where a node goes next when it falls through: its `next`, else the node below.
    pub fn next_of(&self, node: &Node, explicit: Option<&str>) -> Option<String> {
        if let Some(n) = explicit {
            return Some(n.to_string());
        }
        let pos = self.position(node.id())?;
        self.nodes.get(pos + 1).map(|n| n.id().to_string())
    }

    /// A parsed expression, from the cache filled at parse time (or parsed now).
    pub(crate) fn expr(&self, src: &str) -> Result<std::borrow::Cow<'_, Expr>, expr::ExprError> {
        match self.exprs.get(src) {
            Some(e) => Ok(std::borrow::Cow::Borrowed(e)),
            None => expr::parse(src).map(std::borrow::Cow::Owned),
        }
    }

    /// Builds a definition from parts (tests and generated flows); keeps file order.
    pub fn from_parts(
        id: impl Into<String>,
        start: impl Into<String>,
        settings: Settings,
        nodes: Vec<Node>,
    ) -> FlowDefinition {
        let lines = vec![None; nodes.len()];
        build(
            RawHeader {
                id: id.into(),
                name: None,
                description: None,
                start: Some(start.into()),
                inputs: Vec::new(),
                env: BTreeMap::new(),
                settings,
                triggers: Triggers::default(),
            },
            nodes,
            lines,
            HashMap::new(),
        )
    }
}

/// Where `step` finds flows: one definition (no subflows), or a [`FlowLibrary`].
pub trait Flows {
    /// The flow with this id.
    fn flow(&self, id: &str) -> Option<&FlowDefinition>;
    /// Deployment `env.*` values that override each flow's defaults.
    fn env(&self) -> Option<&BTreeMap<String, String>> {
        None
    }
}

impl Flows for FlowDefinition {
    fn flow(&self, id: &str) -> Option<&FlowDefinition> {
        (self.id == id).then_some(self)
    }
}

/// A set of flows by id, plus deployment settings for `env.*` (such as `base_url`).
#[derive(Debug, Clone, Default)]
pub struct FlowLibrary {
    /// Flows by id.
    pub flows: BTreeMap<String, FlowDefinition>,
    /// Overrides for `env.*`.
    pub env: BTreeMap<String, String>,
}

impl FlowDefinition {
    /// Whether the flow's first node sends a pre-approved template (what WhatsApp requires
    /// of the first message outside its 24-hour window).
    pub fn opens_with_template(&self) -> bool {
        matches!(self.node(&self.start), Some(Node::Send(n)) if n.template.is_some())
    }
}

impl FlowLibrary {
    /// Adds (or replaces) a flow.
    pub fn insert(&mut self, def: FlowDefinition) {
        self.flows.insert(def.id.clone(), def);
    }
}

impl Flows for FlowLibrary {
    fn flow(&self, id: &str) -> Option<&FlowDefinition> {
        self.flows.get(id)
    }
    fn env(&self) -> Option<&BTreeMap<String, String>> {
        Some(&self.env)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    id: serde_saphyr::Spanned<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    start: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    inputs: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    triggers: Option<serde_saphyr::Spanned<Triggers>>,
    nodes: Vec<serde_saphyr::Spanned<Node>>,
}

struct RawHeader {
    id: String,
    name: Option<String>,
    description: Option<String>,
    start: Option<String>,
    inputs: Vec<String>,
    env: BTreeMap<String, String>,
    settings: Settings,
    triggers: Triggers,
}

fn build(
    h: RawHeader,
    nodes: Vec<Node>,
    lines: Vec<Option<usize>>,
    header_lines: HashMap<&'static str, usize>,
) -> FlowDefinition {
    let mut index = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        index.entry(n.id().to_string()).or_insert(i);
    }
    let start = h
        .start
        .or_else(|| nodes.first().map(|n| n.id().to_string()))
        .unwrap_or_default();
    let mut def = FlowDefinition {
        name: h.name.unwrap_or_else(|| h.id.clone()),
        id: h.id,
        description: h.description,
        start,
        inputs: h.inputs,
        env: h.env,
        settings: h.settings,
        triggers: h.triggers,
        nodes,
        index,
        lines,
        header_lines,
        exprs: HashMap::new(),
    };
    let mut exprs = HashMap::new();
    for node in &def.nodes {
        crate::check::for_each_expression(node, &mut |src| {
            if let Ok(e) = expr::parse(src) {
                exprs.insert(src.to_string(), e);
            }
        });
    }
    def.exprs = exprs;
    def
}

/// Parses a flow file. Only the shape is checked here; run [`crate::check`] on the result
/// (or use [`crate::check_source`] for both).
pub fn parse_flow(yaml: &str) -> Result<FlowDefinition, Vec<Problem>> {
    // YAML 1.2 booleans only: `save: n` or `id: no` stay text instead of becoming `false`
    // (the "Norway problem"); a key given twice is an error rather than silently replaced.
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    };
    let raw: RawFlow = serde_saphyr::from_str_with_options(yaml, options)
        .map_err(|e| vec![parse_problem(yaml, &e)])?;
    let mut header_lines = HashMap::new();
    header_lines.insert("id", raw.id.referenced.line() as usize);
    if let Some(s) = &raw.start {
        header_lines.insert("start", s.referenced.line() as usize);
    }
    if let Some(t) = &raw.triggers {
        header_lines.insert("triggers", t.referenced.line() as usize);
    }
    let lines: Vec<Option<usize>> = raw
        .nodes
        .iter()
        .map(|n| Some(n.referenced.line() as usize).filter(|l| *l > 0))
        .collect();
    let nodes = raw.nodes.into_iter().map(|n| n.value).collect();
    let header = RawHeader {
        id: raw.id.value,
        name: raw.name,
        description: raw.description,
        start: raw.start.map(|s| s.value),
        inputs: raw.inputs,
        env: raw.env,
        settings: raw.settings,
        triggers: raw.triggers.map(|t| t.value).unwrap_or_default(),
    };
    Ok(build(header, nodes, lines, header_lines))
}

fn parse_problem(yaml: &str, e: &serde_saphyr::Error) -> Problem {
    let mut line = e.location().map(|l| l.line() as usize).filter(|l| *l > 0);
    let full = e.to_string();
    // The library's message may carry a rendered snippet; the first line is the message.
    let first = full
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid YAML")
        .trim();
    // Drop the library's own `error: line N column M: ` prefix; the CLI prints `file:line:`.
    let message = match first
        .strip_prefix("error: ")
        .and_then(|r| r.split_once(": "))
    {
        Some((place, rest)) if place.starts_with("line ") => rest.to_string(),
        _ => first.strip_prefix("error: ").unwrap_or(first).to_string(),
    };
    // Inside a node the library reports the node's first line; point at the field itself.
    let field = match message.strip_prefix("unknown field `") {
        Some(rest) => rest.split('`').next(),
        None => message.starts_with("bad regex").then_some("pattern"),
    };
    if let (Some(start), Some(field)) = (line, field) {
        let key = format!("{field}:");
        let names_key = |l: &str| {
            l.match_indices(&key)
                .any(|(i, _)| i == 0 || l[..i].ends_with([' ', '{', ',', '-']))
        };
        if let Some(offset) = yaml.lines().skip(start - 1).position(names_key) {
            line = Some(start + offset);
        }
    }
    let hint = if message.contains("unknown variant") {
        format!("a node's `type` is one of: {}", NODE_TYPES.join(", "))
    } else if message.contains("unknown field") {
        "remove the field or fix its spelling; see flows/flow.schema.json for the fields each node type takes".to_string()
    } else if message.starts_with("bad regex") {
        "fix the pattern; it must match the whole reply (it is anchored for you)".to_string()
    } else if message.contains("missing field") {
        "add the field; see flows/flow.schema.json".to_string()
    } else {
        "fix the YAML at this line".to_string()
    };
    Problem {
        line,
        node: None,
        message,
        hint,
    }
}
