//! Mock provider APIs (wiremock) for the channel tests. Each mock checks authentication and
//! request bodies the way the provider does, answers with the real success and error shapes
//! from `shared/fixtures/*/api/`, and enforces a send rate: past it, 429 with the provider's
//! own error body. Every request is recorded for assertions.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A shared fixture file as JSON.
pub fn fixture(rel: &str) -> Value {
    let path = format!(
        "{}/../../../shared/fixtures/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A token bucket: `capacity` requests at once, refilled at `per_second`.
pub struct Bucket {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(per_second: f64, capacity: f64) -> Self {
        Bucket {
            per_second,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a mock saw and how it behaves.
#[derive(Default)]
pub struct MockState {
    /// `(path, JSON body)` of every request.
    pub requests: Mutex<Vec<(String, Value)>>,
    /// Rate limit for send calls (None: unlimited).
    pub bucket: Mutex<Option<Bucket>>,
    /// Send calls answered 429 so far.
    pub rejected: Mutex<u32>,
    /// Answer the next N send calls with 429 regardless of the rate.
    pub fail_next: Mutex<u32>,
    /// The next well-formed send whose JSON body contains this text is answered with the
    /// provider's transient server error ("something went wrong") instead of being accepted
    /// (once; then the marker is cleared).
    pub fail_once_containing: Mutex<Option<String>>,
    /// The credentials were revoked: every call is refused as unauthorized, as the provider
    /// does for an expired or revoked token.
    pub revoked: Mutex<bool>,
    /// Bodies of the send calls the provider accepted, in order.
    pub accepted: Mutex<Vec<Value>>,
    /// Files uploaded with multipart requests, by request path, in order.
    pub uploads: Mutex<Vec<(String, Vec<Part>)>>,
    /// WhatsApp media ids handed out by the upload endpoint (sends must name one of them).
    pub media_ids: Mutex<Vec<String>>,
    /// Answer the next N WhatsApp sends with error 131026 (message undeliverable).
    pub undeliverable_next: Mutex<u32>,
    counter: Mutex<u64>,
}

/// One part of a multipart request.
#[derive(Debug, Clone)]
pub struct Part {
    /// Field name.
    pub name: String,
    /// File name, for file parts.
    pub filename: Option<String>,
    /// The part's `Content-Type`.
    pub content_type: Option<String>,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl Part {
    /// The part's bytes as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Parses a `multipart/form-data` request as the providers do; `None` when it is not one.
pub fn multipart(req: &Request) -> Option<Vec<Part>> {
    let ct = req.headers.get("content-type")?.to_str().ok()?;
    if !ct.starts_with("multipart/form-data") {
        return None;
    }
    let boundary = ct.split("boundary=").nth(1)?.trim_matches('"');
    let delim = format!("--{boundary}").into_bytes();
    let body = &req.body;
    let mut starts = Vec::new();
    let mut i = 0;
    while i + delim.len() <= body.len() {
        if body[i..].starts_with(&delim) {
            starts.push(i);
            i += delim.len();
        } else {
            i += 1;
        }
    }
    let mut parts = Vec::new();
    for w in starts.windows(2) {
        let chunk = &body[w[0] + delim.len()..w[1]];
        let chunk = chunk.strip_prefix(b"\r\n")?;
        let chunk = chunk.strip_suffix(b"\r\n")?;
        let split = chunk.windows(4).position(|x| x == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&chunk[..split]).into_owned();
        let data = chunk[split + 4..].to_vec();
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            data,
        };
        for line in head.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-type:") {
                part.content_type = Some(line[13..].trim().to_string());
            } else if lower.starts_with("content-disposition:") {
                for attr in line.split(';').map(str::trim) {
                    if let Some(v) = attr.strip_prefix("name=") {
                        part.name = v.trim_matches('"').to_string();
                    } else if let Some(v) = attr.strip_prefix("filename=") {
                        part.filename = Some(v.trim_matches('"').to_string());
                    }
                }
            }
        }
        parts.push(part);
    }
    Some(parts)
}

impl MockState {
    /// The parts of multipart uploads to paths ending with `suffix`.
    pub fn uploaded(&self, suffix: &str) -> Vec<Vec<Part>> {
        self.uploads
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(suffix))
            .map(|(_, parts)| parts.clone())
            .collect()
    }

    fn record(&self, req: &Request) -> Value {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        self.requests
            .lock()
            .unwrap()
            .push((req.url.path().to_string(), body.clone()));
        body
    }

    /// Whether this send call is over the limit.
    fn limited(&self) -> bool {
        {
            let mut f = self.fail_next.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                *self.rejected.lock().unwrap() += 1;
                return true;
            }
        }
        let over = self
            .bucket
            .lock()
            .unwrap()
            .as_mut()
            .is_some_and(|b| !b.take());
        if over {
            *self.rejected.lock().unwrap() += 1;
        }
        over
    }

    /// Whether this well-formed send is scripted to fail.
    fn scripted_failure(&self, body: &Value) -> bool {
        let mut marker = self.fail_once_containing.lock().unwrap();
        let hit = marker
            .as_deref()
            .is_some_and(|m| body.to_string().contains(m));
        if hit {
            *marker = None;
        }
        hit
    }

    fn is_revoked(&self) -> bool {
        *self.revoked.lock().unwrap()
    }

    fn accept(&self, body: &Value) {
        self.accepted.lock().unwrap().push(body.clone());
    }

    fn next_id(&self) -> u64 {
        let mut c = self.counter.lock().unwrap();
        *c += 1;
        *c
    }

    /// Bodies of requests whose path ends with `suffix`.
    pub fn bodies(&self, suffix: &str) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(suffix))
            .map(|(_, b)| b.clone())
            .collect()
    }
}

// ------------------------------------------------------------------ WhatsApp

/// The WhatsApp Cloud API credentials the mock accepts.
pub const WA_TOKEN: &str = "EAAG-test-token";
/// Phone number id of the mocked business number.
pub const WA_PHONE_ID: &str = "106540352242922";
/// App secret (webhook signatures).
pub const WA_APP_SECRET: &str = "test-app-secret";

struct WhatsAppResponder(Arc<MockState>);

fn graph_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {
        "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "mock"}}))
}

impl Respond for WhatsAppResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body = self.0.record(req);
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {WA_TOKEN}")) {
            return graph_error(401, 190, "Invalid OAuth access token.");
        }
        if self.0.is_revoked() {
            // What Graph answers once a system-user token expired or was revoked.
            return ResponseTemplate::new(401).set_body_json(json!({"error": {
                "message": "Error validating access token: Session has expired on Tuesday, 24-Nov-26 10:00:00 PST.",
                "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "mock"}}));
        }
        if req.url.path().ends_with("/media") {
            return self.upload(req);
        }
        if req.method.as_str() == "GET" {
            return ResponseTemplate::new(200).set_body_json(json!({
                "id": WA_PHONE_ID, "display_phone_number": "15550783881",
                "verified_name": "Demo Bank", "quality_rating": "GREEN"}));
        }
        // Mark-as-read calls carry a status instead of a message.
        if body["status"] == "read" {
            return ResponseTemplate::new(200).set_body_json(json!({"success": true}));
        }
        let ok = body["messaging_product"] == "whatsapp"
            && body["to"].as_str().is_some_and(|t| !t.is_empty())
            && body["type"].as_str().is_some_and(|t| body.get(t).is_some());
        if !ok {
            return graph_error(400, 100, "(#100) Invalid parameter");
        }
        if self.0.limited() {
            let err = fixture("whatsapp/api/error_response_130429_rate_limit.json");
            return ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(err);
        }
        // Media by id must name a file uploaded to this number (Graph: 131053 otherwise).
        let kind = body["type"].as_str().unwrap_or_default();
        if let Some(id) = body[kind]["id"].as_str()
            && !self.0.media_ids.lock().unwrap().iter().any(|m| m == id)
        {
            return graph_error(400, 131053, "(#131053) Media upload error");
        }
        {
            let mut n = self.0.undeliverable_next.lock().unwrap();
            if *n > 0 {
                *n -= 1;
                return ResponseTemplate::new(400).set_body_json(json!({"error": {
                    "message": "(#131026) Message Undeliverable.", "type": "OAuthException",
                    "code": 131026, "error_data": {"messaging_product": "whatsapp",
                    "details": "Message Undeliverable."}, "fbtrace_id": "mock"}}));
            }
        }
        if self.0.scripted_failure(&body) {
            return ResponseTemplate::new(500).set_body_json(json!({"error": {
                "message": "Something went wrong", "type": "OAuthException", "code": 131000,
                "error_data": {"messaging_product": "whatsapp", "details": "Something went wrong"},
                "fbtrace_id": "mock"}}));
        }
        self.0.accept(&body);
        let mut ok = fixture("whatsapp/api/send_message_response_200.json");
        ok["messages"][0]["id"] = json!(format!("wamid.mock.{}", self.0.next_id()));
        ok["contacts"][0]["input"] = body["to"].clone();
        ok["contacts"][0]["wa_id"] = body["to"].clone();
        ResponseTemplate::new(200).set_body_json(ok)
    }
}

impl WhatsAppResponder {
    /// `POST /{phone-number-id}/media`: multipart `messaging_product=whatsapp`, `type` (the
    /// file's MIME type) and `file`; the type and size limits of channels.md §1.3.
    fn upload(&self, req: &Request) -> ResponseTemplate {
        let Some(parts) = multipart(req) else {
            return graph_error(400, 100, "(#100) The parameter file is required.");
        };
        let field = |n: &str| parts.iter().find(|p| p.name == n);
        if field("messaging_product").map(Part::text).as_deref() != Some("whatsapp") {
            return graph_error(
                400,
                100,
                "(#100) The parameter messaging_product is required.",
            );
        }
        let Some(file) = field("file").filter(|f| f.filename.is_some()) else {
            return graph_error(400, 100, "(#100) The parameter file is required.");
        };
        let Some(mime) = field("type").map(Part::text) else {
            return graph_error(400, 100, "(#100) The parameter type is required.");
        };
        if file.content_type.as_deref() != Some(mime.as_str()) {
            return graph_error(400, 100, "(#100) Param type must match the file's type.");
        }
        const MB: usize = 1024 * 1024;
        let max = match mime.as_str() {
            "image/jpeg" | "image/png" => 5 * MB,
            "video/mp4" | "video/3gpp" | "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4"
            | "audio/ogg" => 16 * MB,
            "image/webp" => 500 * 1024,
            "text/plain"
            | "application/pdf"
            | "application/msword"
            | "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => 100 * MB,
            _ => {
                return graph_error(
                    400,
                    100,
                    &format!(
                        "(#100) Param file must be a file with one of the following types: ... Received file of type '{mime}'."
                    ),
                );
            }
        };
        if file.data.len() > max {
            return graph_error(400, 131053, "(#131053) Media upload error: file too large");
        }
        let id = format!("mock-media-{}", self.0.next_id());
        self.0.media_ids.lock().unwrap().push(id.clone());
        self.0
            .uploads
            .lock()
            .unwrap()
            .push((req.url.path().to_string(), parts));
        ResponseTemplate::new(200).set_body_json(json!({"id": id}))
    }
}

/// A mocked Graph API: `GET /{phone-number-id}`, `POST /{phone-number-id}/messages` and
/// `POST /{phone-number-id}/media` (uploads).
pub async fn whatsapp_mock() -> (MockServer, Arc<MockState>) {
    let server = MockServer::start().await;
    let state = Arc::new(MockState::default());
    Mock::given(path_regex(format!("^/{WA_PHONE_ID}(/messages|/media)?$")))
        .respond_with(WhatsAppResponder(state.clone()))
        .mount(&server)
        .await;
    (server, state)
}

/// The WhatsApp Business Account (WABA) id of the mocked number.
pub const WA_WABA_ID: &str = "102290129340398";

/// `GET /{WABA-ID}/message_templates` of the mocked account, two pages (cursor `page2`):
/// `order_update` (approved, one variable) and `welcome_back` (pending review) on the first,
/// `appointment_reminder` (approved, two variables) on the second. The shapes are Graph's
/// (`data`, `paging.cursors`, `paging.next`); every call is recorded under
/// `/message_templates`.
pub async fn mount_whatsapp_templates(server: &MockServer, state: &Arc<MockState>) {
    struct Templates(Arc<MockState>);
    impl Respond for Templates {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            let query: std::collections::HashMap<String, String> =
                req.url.query_pairs().into_owned().collect();
            self.0
                .requests
                .lock()
                .unwrap()
                .push((req.url.path().to_string(), json!(query)));
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            if auth != Some(&format!("Bearer {WA_TOKEN}")) {
                return graph_error(401, 190, "Invalid OAuth access token.");
            }
            let base = format!("https://graph.facebook.com/v23.0/{WA_WABA_ID}/message_templates");
            let body = if query.get("after").map(String::as_str) == Some("page2") {
                json!({"data": [
                    {"name": "appointment_reminder", "language": "en_US", "status": "APPROVED",
                     "category": "UTILITY", "id": "1402",
                     "components": [{"type": "BODY",
                        "text": "Hi {{1}}, this is a reminder of your appointment on {{2}}."}]}],
                    "paging": {"cursors": {"before": "page2", "after": "end"}}})
            } else {
                json!({"data": [
                    {"name": "order_update", "language": "en_US", "status": "APPROVED",
                     "category": "UTILITY", "id": "1400",
                     "components": [
                        {"type": "HEADER", "format": "TEXT", "text": "Your order"},
                        {"type": "BODY", "text": "Order {{1}} is on its way."},
                        {"type": "FOOTER", "text": "Demo Bank"}]},
                    {"name": "welcome_back", "language": "en_US", "status": "PENDING",
                     "category": "MARKETING", "id": "1401",
                     "components": [{"type": "BODY", "text": "Welcome back!"}]}],
                    "paging": {"cursors": {"before": "page1", "after": "page2"},
                               "next": format!("{base}?after=page2")}})
            };
            ResponseTemplate::new(200).set_body_json(body)
        }
    }
    Mock::given(method("GET"))
        .and(wiremock::matchers::path(format!(
            "/{WA_WABA_ID}/message_templates"
        )))
        .respond_with(Templates(state.clone()))
        .mount(server)
        .await;
}

/// Signs a webhook body as Meta does.
pub fn wa_sign(body: &[u8]) -> String {
    switchboard_channels::whatsapp::inbound::sign(body, WA_APP_SECRET)
}

// ------------------------------------------------------------------ Telegram

/// The bot token the mock accepts.
pub const TG_TOKEN: &str = "123456:ABC-test-token";
/// The webhook secret used in tests.
pub const TG_SECRET: &str = "tg-secret_123";

struct TelegramResponder(Arc<MockState>);

fn tg_error(status: u16, description: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"ok": false, "error_code": status, "description": description}))
}

impl Respond for TelegramResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body = self.0.record(req);
        let p = req.url.path().to_string();
        let Some(rest) = p.strip_prefix(&format!("/bot{TG_TOKEN}/")) else {
            return tg_error(404, "Not Found");
        };
        if self.0.is_revoked() {
            // The token was revoked with @BotFather.
            return tg_error(401, "Unauthorized");
        }
        let ok = |result: Value| {
            ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": result}))
        };
        match rest {
            "getMe" => ok(
                json!({"id": 123456, "is_bot": true, "first_name": "Demo", "username": "demo_bot"}),
            ),
            "setWebhook" => {
                if body["url"].as_str().is_none() {
                    return tg_error(400, "Bad Request: bad webhook: URL is missing");
                }
                ok(json!(true))
            }
            "answerCallbackQuery" => ok(json!(true)),
            // https://core.telegram.org/bots/api#sendchataction
            "sendChatAction" => {
                let actions = [
                    "typing",
                    "upload_photo",
                    "record_video",
                    "upload_video",
                    "record_voice",
                    "upload_voice",
                    "upload_document",
                    "choose_sticker",
                    "find_location",
                    "record_video_note",
                    "upload_video_note",
                ];
                if body["chat_id"].is_null() {
                    return tg_error(400, "Bad Request: chat not found");
                }
                if !body["action"]
                    .as_str()
                    .is_some_and(|a| actions.contains(&a))
                {
                    return tg_error(400, "Bad Request: wrong parameter action in request");
                }
                ok(json!(true))
            }
            "sendMessage" => {
                let chat = body["chat_id"].clone();
                let text_ok = body["text"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty() && t.chars().count() <= 4096);
                if chat.is_null() || !text_ok {
                    return tg_error(400, "Bad Request: message text is empty");
                }
                if self.0.limited() {
                    let mut err = fixture("telegram/api/error_429_too_many_requests.json");
                    // The fixture says 8 s; tests wait 1.
                    err["parameters"]["retry_after"] = json!(1);
                    err["description"] = json!("Too Many Requests: retry after 1");
                    return ResponseTemplate::new(429).set_body_json(err);
                }
                if self.0.scripted_failure(&body) {
                    return tg_error(500, "Internal Server Error");
                }
                self.0.accept(&body);
                let chat_id = chat
                    .as_i64()
                    .or_else(|| chat.as_str().and_then(|s| s.parse().ok()))
                    .unwrap_or(0);
                ok(json!({
                    "message_id": self.0.next_id(),
                    "from": {"id": 123456, "is_bot": true, "first_name": "Demo"},
                    "chat": {"id": chat_id, "type": "private"},
                    "date": 1_700_000_000,
                    "text": body["text"],
                }))
            }
            "sendPhoto" | "sendDocument" | "sendAudio" | "sendVideo" | "sendVoice" => {
                self.send_file(req, rest)
            }
            _ => tg_error(404, "Not Found: method not found"),
        }
    }
}

impl TelegramResponder {
    /// `sendPhoto` & co. with a multipart upload: `chat_id`, optional `caption` (≤ 1024), and
    /// the file in the field named after the method (`photo`, `document`, ...); photos up to
    /// 10 MB, other files up to 50 MB (channels.md §2.3).
    fn send_file(&self, req: &Request, method: &str) -> ResponseTemplate {
        let Some(parts) = multipart(req) else {
            return tg_error(400, "Bad Request: there is no file in the request");
        };
        let field = method
            .strip_prefix("send")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let get = |n: &str| parts.iter().find(|p| p.name == n);
        let Some(chat_id) = get("chat_id").and_then(|p| p.text().parse::<i64>().ok()) else {
            return tg_error(400, "Bad Request: chat not found");
        };
        let Some(file) = get(&field).filter(|f| f.filename.is_some()) else {
            return tg_error(
                400,
                &format!("Bad Request: there is no {field} in the request"),
            );
        };
        if get("caption").is_some_and(|c| c.text().chars().count() > 1024) {
            return tg_error(400, "Bad Request: message caption is too long");
        }
        let max = if field == "photo" { 10 } else { 50 } * 1024 * 1024;
        if file.data.len() > max {
            return tg_error(413, "Request Entity Too Large");
        }
        self.0
            .uploads
            .lock()
            .unwrap()
            .push((req.url.path().to_string(), parts.clone()));
        ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {
            "message_id": self.0.next_id(),
            "from": {"id": 123456, "is_bot": true, "first_name": "Demo"},
            "chat": {"id": chat_id, "type": "private"},
            "date": 1_700_000_000,
            field.clone(): {"file_id": format!("mock-file-{}", self.0.next_id())},
        }}))
    }
}

/// A mocked Bot API.
pub async fn telegram_mock() -> (MockServer, Arc<MockState>) {
    let server = MockServer::start().await;
    let state = Arc::new(MockState::default());
    Mock::given(method("POST"))
        .respond_with(TelegramResponder(state.clone()))
        .mount(&server)
        .await;
    (server, state)
}

// ------------------------------------------------------------------ Signal

/// Our Signal account.
pub const SIGNAL_ACCOUNT: &str = "+49987654321";

struct SignalResponder {
    state: Arc<MockState>,
    /// Frames handed out by the next receive poll (then drained, like the real queue).
    queue: Arc<Mutex<Vec<Value>>>,
    /// Attachment files signal-cli holds, by id.
    attachments: Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>>,
}

/// Attachment files the mocked signal-cli-rest-api holds, by attachment id.
pub type SignalAttachments = Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>>;

impl Respond for SignalResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let p = req.url.path().to_string();
        if p == "/v1/about" {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"versions": ["v1", "v2"], "mode": "normal"}));
        }
        if let Some(id) = p.strip_prefix("/v1/attachments/") {
            // signal-cli keeps received attachments until they are deleted.
            if req.method.as_str() == "DELETE" {
                self.state
                    .requests
                    .lock()
                    .unwrap()
                    .push((format!("DELETE {p}"), Value::Null));
                return ResponseTemplate::new(204);
            }
            return match self.attachments.lock().unwrap().get(id) {
                Some(bytes) => ResponseTemplate::new(200)
                    .insert_header("content-type", "application/octet-stream")
                    .set_body_bytes(bytes.clone()),
                None => ResponseTemplate::new(404)
                    .set_body_json(json!({"error": "attachment not found"})),
            };
        }
        if p == format!("/v1/receive/{SIGNAL_ACCOUNT}") {
            let frames: Vec<Value> = std::mem::take(&mut *self.queue.lock().unwrap());
            return ResponseTemplate::new(200).set_body_json(Value::Array(frames));
        }
        let body = self.state.record(req);
        if p == format!("/v1/typing-indicator/{SIGNAL_ACCOUNT}") {
            // PUT shows "typing" to `recipient`, DELETE stops it; 204 either way.
            let ok = matches!(req.method.as_str(), "PUT" | "DELETE")
                && body["recipient"].as_str().is_some_and(|r| !r.is_empty());
            return if ok {
                ResponseTemplate::new(204)
            } else {
                ResponseTemplate::new(400).set_body_json(json!({"error": "bad request"}))
            };
        }
        if p == "/v2/send" {
            let ok = body["number"] == SIGNAL_ACCOUNT
                && body["recipients"].as_array().is_some_and(|r| !r.is_empty())
                && body["message"].as_str().is_some();
            if !ok {
                return ResponseTemplate::new(400).set_body_json(json!({"error": "bad request"}));
            }
            // signal-cli-rest-api: each attachment is base64, optionally as a data URI
            // `data:<mime>;filename=<name>;base64,<data>`.
            for a in body["base64_attachments"].as_array().into_iter().flatten() {
                let data = a
                    .as_str()
                    .map(|s| s.rsplit_once(";base64,").map_or(s, |(_, d)| d))
                    .unwrap_or_default();
                let valid = !data.is_empty()
                    && data.len() % 4 == 0
                    && data
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='));
                if !valid {
                    return ResponseTemplate::new(400).set_body_json(json!({
                        "error": "Couldn't process request - invalid base64 attachment"}));
                }
            }
            if self.state.limited() {
                return ResponseTemplate::new(429).set_body_json(json!({
                    "error": "Failed to send message: rate limit", "challenge_tokens": [], "account": SIGNAL_ACCOUNT}));
            }
            let ts = 1_700_000_000_000u64 + self.state.next_id();
            return ResponseTemplate::new(201).set_body_json(json!({"timestamp": ts.to_string()}));
        }
        ResponseTemplate::new(404).set_body_json(json!({"error": "not found"}))
    }
}

/// A mocked signal-cli-rest-api (normal mode): poll receive, `/v2/send`.
pub async fn signal_mock() -> (MockServer, Arc<MockState>, Arc<Mutex<Vec<Value>>>) {
    let (server, state, queue, _) = signal_mock_with_attachments().await;
    (server, state, queue)
}

/// [`signal_mock`] plus `GET`/`DELETE /v1/attachments/{id}` over the returned files.
pub async fn signal_mock_with_attachments() -> (
    MockServer,
    Arc<MockState>,
    Arc<Mutex<Vec<Value>>>,
    SignalAttachments,
) {
    let server = MockServer::start().await;
    let state = Arc::new(MockState::default());
    let queue = Arc::new(Mutex::new(Vec::new()));
    let attachments = SignalAttachments::default();
    Mock::given(path_regex("^/v[12]/"))
        .respond_with(SignalResponder {
            state: state.clone(),
            queue: queue.clone(),
            attachments: attachments.clone(),
        })
        .mount(&server)
        .await;
    (server, state, queue, attachments)
}

/// Waits until `f` holds, polling every 20 ms, for at most `secs`.
pub async fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Adds a WhatsApp channel (pointing at the mock `api_base`) through the admin API, checks the
/// answer shows its webhook URL and no secrets, and returns its id.
pub async fn add_whatsapp_channel(app: &crate::helpers::TestApp, api_base: &str) -> String {
    let (s, body) = app
        .post(
            "/api/v1/channels",
            json!({
                "kind": "whatsapp",
                "name": "Support WhatsApp",
                "credentials": {
                    "access_token": WA_TOKEN,
                    "phone_number_id": WA_PHONE_ID,
                    "app_secret": WA_APP_SECRET,
                    "verify_token": "verify-me",
                },
                "api_base": api_base,
            }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let id = body["channel"]["id"].as_str().expect("id").to_string();
    assert!(
        body["webhook_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/hooks/whatsapp/{id}"))),
        "{body}"
    );
    assert!(
        body["channel"].get("credentials").is_none(),
        "secrets never leave"
    );
    id
}

// ------------------------------------------------------------------ signal-cli daemon

/// A mocked `signal-cli daemon --http` (JSON-RPC mode): `GET /api/v1/check`, the
/// server-sent event stream `GET /api/v1/events` (one `receive` event per frame the test
/// pushes, on a connection that stays open like the real one), and `POST /api/v1/rpc` for
/// `send`, answering with the send timestamp that later receipts reference.
pub struct SignalDaemon {
    /// `http://127.0.0.1:port`.
    pub uri: String,
    /// What the daemon saw (`/api/v1/rpc` bodies).
    pub state: Arc<MockState>,
    /// Received attachment files signal-cli holds, by id (served by `getAttachment`).
    pub attachments: SignalAttachments,
    events: tokio::sync::broadcast::Sender<String>,
}

/// Standard base64 with padding (what signal-cli's `getAttachment` answers with).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl SignalDaemon {
    /// Streams a received frame (a JSON-RPC `receive` notification) to every listener.
    pub fn push(&self, frame: &Value) {
        let _ = self.events.send(frame.to_string());
    }

    /// Event streams currently open (the server's receiver is connected when > 0).
    pub fn listeners(&self) -> usize {
        self.events.receiver_count()
    }
}

/// Starts the mocked daemon on a random loopback port.
pub async fn signal_daemon_mock() -> SignalDaemon {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use axum::routing::{get, post};

    let (events, _) = tokio::sync::broadcast::channel::<String>(64);
    let state = Arc::new(MockState::default());
    let attachments = SignalAttachments::default();
    let sse_events = events.clone();
    let rpc_state = state.clone();
    let rpc_files = attachments.clone();
    let router = axum::Router::new()
        .route("/api/v1/check", get(|| async { "" }))
        .route(
            "/api/v1/events",
            get(move || {
                let rx = sse_events.subscribe();
                async move {
                    let stream = futures::stream::unfold(rx, |mut rx| async move {
                        loop {
                            match rx.recv().await {
                                Ok(frame) => {
                                    let ev = Event::default().event("receive").data(frame);
                                    return Some((Ok::<_, std::convert::Infallible>(ev), rx));
                                }
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                    return None;
                                }
                            }
                        }
                    });
                    Sse::new(stream).keep_alive(KeepAlive::default())
                }
            }),
        )
        .route(
            "/api/v1/rpc",
            post(move |axum::Json(body): axum::Json<Value>| {
                let state = rpc_state.clone();
                let files = rpc_files.clone();
                async move {
                    state
                        .requests
                        .lock()
                        .unwrap()
                        .push(("/api/v1/rpc".to_string(), body.clone()));
                    let id = body["id"].clone();
                    let error = |code: i64, message: &str| {
                        axum::Json(json!({"jsonrpc": "2.0", "id": id,
                            "error": {"code": code, "message": message}}))
                    };
                    if body["jsonrpc"] != "2.0" {
                        return error(-32600, "Invalid Request");
                    }
                    match body["method"].as_str() {
                        Some("send") => {
                            let p = &body["params"];
                            let to_ok = p["recipient"].as_array().is_some_and(|r| !r.is_empty());
                            let has_body = p["message"].is_string() || p["attachments"].is_array();
                            if !to_ok || !has_body {
                                return error(-32602, "Invalid params");
                            }
                            state.accept(&body);
                            let mut ok = fixture("signal/jsonrpc_send_response.json");
                            ok["id"] = id;
                            ok["result"]["timestamp"] =
                                json!(1_700_000_000_000u64 + state.next_id());
                            axum::Json(ok)
                        }
                        Some("sendTyping") => {
                            let to_ok = body["params"]["recipient"]
                                .as_array()
                                .is_some_and(|r| !r.is_empty());
                            if !to_ok {
                                return error(-32602, "Invalid params");
                            }
                            axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": {}}))
                        }
                        Some("getAttachment") => {
                            let id = body["params"]["id"].as_str().unwrap_or_default();
                            match files.lock().unwrap().get(id) {
                                Some(bytes) => axum::Json(json!({"jsonrpc": "2.0", "id": id,
                                    "result": {"data": base64(bytes)}})),
                                None => error(-1, "Attachment file not found"),
                            }
                        }
                        _ => error(-32601, "Method not found"),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let uri = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    SignalDaemon {
        uri,
        state,
        attachments,
        events,
    }
}
