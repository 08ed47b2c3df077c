//! Media: the `DownloadMedia` job (inbound) and the content-addressed media store, which
//! also keeps the files staff attach to replies ([`MediaStore::write_bytes`]).
//!
//! A provider webhook only names a file (WhatsApp media id, Telegram `file_id`, Signal
//! attachment id: fetched from signal-cli-rest-api's `/v1/attachments/{id}` and then deleted
//! there, or with the JSON-RPC daemon's `getAttachment`). Ingest commits a
//! [`JobKind::DownloadMedia`] with the message; this module
//! runs it: it asks the provider where the file is, streams it into a temporary file under
//! `<data_dir>/media/tmp/` while hashing it and enforcing `channels.media_max_bytes` and the
//! MIME allow-list (`channels.media_allowed_types`), then renames it to
//! `<data_dir>/media/ab/cd/<name>` and records `stored_key`, `size`, `sha256` and
//! `mime_type` on the message (`Store::record_media`).
//!
//! Files are encrypted at rest as they arrive (`switchboard_crypto::encrypt_file`, chunked
//! AES-256-GCM under a per-file key derived from the tenant's data key): no plaintext byte
//! is ever written to disk, not even in `tmp/`. A file's name is a keyed hash of its SHA-256
//! (`TenantKeys::media_name`), so equal files of a tenant are stored once while the name says
//! nothing about the content. The associated data binds a file to its tenant; which file
//! belongs to which message is checked on every read against the SHA-256 kept in the
//! message's sealed content, so a file swapped on disk is refused. A refused file stays a message with a
//! permanent `failure` saying why; a retryable provider error returns `Err`, and the worker
//! retries the job with backoff.
//!
//! Downloads only go to the channel's configured API base, or, for WhatsApp, to the media
//! URL its API returned, which passes the SSRF guard (loopback only when the channel's own
//! API base is loopback, as in tests). Browsers never see provider URLs: staff fetch the
//! stored copy through `GET /api/v1/media/{message_id}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use switchboard_channels::{SendError, signal, telegram, whatsapp};
use switchboard_core::ports::{Job, JobKind, Store};
use switchboard_core::{Channel, ChannelKind, Content, ErrorClass, MediaRef, Message, SendFailure};

use crate::bus::EventBus;
use crate::channels::ChannelRuntime;
use crate::flows_runtime::ssrf;
use crate::now;

/// Claims of one download job before a retryable error becomes a permanent failure.
const MAX_ATTEMPTS: i32 = 6;

/// The media store: encrypted files named by a keyed hash under one root directory.
#[derive(Clone)]
pub struct MediaStore {
    root: PathBuf,
    keys: Option<Arc<switchboard_storage::SqlStore>>,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// Where in a tenant's data a media file lives, for the associated data of its chunks.
fn file_aad(tenant: &str) -> switchboard_crypto::Aad<'_> {
    switchboard_crypto::Aad::new(tenant, "media", "content", "file")
}

/// A blocking reader over chunks sent from async code (feeds `encrypt_file`).
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A file written to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Key (`ab/cd/<sha256>`), relative to the store's root.
    pub key: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl MediaStore {
    /// A store rooted at `root` (created on first write) without keys: it can name files
    /// but neither write nor read them.
    pub fn new(root: PathBuf) -> Self {
        Self { root, keys: None }
    }

    /// A store rooted at `root` encrypting with the tenants' data keys from `store`.
    pub fn with_keys(root: PathBuf, store: Arc<switchboard_storage::SqlStore>) -> Self {
        Self {
            root,
            keys: Some(store),
        }
    }

    async fn tenant_keys(
        &self,
        tenant: switchboard_core::TenantId,
    ) -> std::io::Result<Arc<switchboard_storage::TenantKeys>> {
        let store = self.keys.as_ref().ok_or_else(|| {
            std::io::Error::other("the media store was opened without encryption keys")
        })?;
        store
            .data_keys(tenant)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// The path of a stored key, or `None` for a key that is not one this store writes
    /// (so a tampered key can never name a file outside the store).
    pub fn path_of(&self, key: &str) -> Option<PathBuf> {
        let parts: Vec<&str> = key.split('/').collect();
        let [a, b, hash] = parts.as_slice() else {
            return None;
        };
        let hex_ok = hash.len() == 64 && hash.bytes().all(|c| c.is_ascii_hexdigit());
        if !hex_ok || *a != &hash[0..2] || *b != &hash[2..4] {
            return None;
        }
        Some(self.root.join(a).join(b).join(hash))
    }

    /// Reads and decrypts a tenant's stored file. With `sha256` (hex, from the message), the
    /// plaintext must have that digest: a file swapped on disk is refused.
    pub async fn read(
        &self,
        tenant: switchboard_core::TenantId,
        key: &str,
        sha256: Option<&str>,
    ) -> std::io::Result<Vec<u8>> {
        let path = self
            .path_of(key)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not a media key"))?;
        let keys = self.tenant_keys(tenant).await?;
        let sealed = tokio::fs::read(path).await?;
        let expected = sha256.map(str::to_ascii_lowercase);
        tokio::task::spawn_blocking(move || {
            let bad = |e: switchboard_crypto::FileError| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
            };
            let version = switchboard_crypto::media::key_version(&sealed).map_err(bad)?;
            let data_key = keys.version(version).ok_or_else(|| {
                std::io::Error::other(format!("data key version {version} is not loaded"))
            })?;
            let mut plain = Vec::with_capacity(sealed.len());
            switchboard_crypto::decrypt_file(
                &sealed[..],
                &mut plain,
                data_key,
                &file_aad(keys.tenant()),
            )
            .map_err(bad)?;
            if let Some(expected) = expected
                && expected.len() == 64
                && hex::encode(Sha256::digest(&plain)) != expected
            {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the stored file is not the one this message refers to",
                ));
            }
            Ok(plain)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Encrypts and stores `bytes` for `tenant` (outbound uploads): written to a temporary
    /// file, then renamed to its keyed name, so a failure leaves no file behind. Equal files
    /// of a tenant are stored once.
    pub async fn write_bytes(
        &self,
        tenant: switchboard_core::TenantId,
        bytes: bytes::Bytes,
    ) -> std::io::Result<StoredFile> {
        let keys = self.tenant_keys(tenant).await?;
        let (temp, mut file) = self.temp().await?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        let writer_keys = keys.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            switchboard_crypto::encrypt_file(
                &bytes[..],
                std::io::BufWriter::new(&mut file),
                writer_keys.current(),
                &file_aad(writer_keys.tenant()),
            )
            .map_err(|e| std::io::Error::other(e.to_string()))?;
            file.sync_all()
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        let committed = match written {
            Ok(()) => self.commit(&temp, &keys.media_name(&sha256)).await,
            Err(e) => Err(e),
        };
        match committed {
            Ok(key) => Ok(StoredFile { key, sha256, size }),
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(e)
            }
        }
    }

    /// A fresh temporary file in the store (same file system, so the final rename is atomic).
    async fn temp(&self) -> std::io::Result<(PathBuf, std::fs::File)> {
        let dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(format!("{}.part", crate::auth::random_token()));
        let file = tokio::fs::File::create(&path).await?.into_std().await;
        Ok((path, file))
    }

    /// Moves a finished (encrypted) temporary file to its keyed name; when the tenant already
    /// stores an equal file, the copy is dropped.
    async fn commit(&self, temp: &Path, name: &str) -> std::io::Result<String> {
        let key = format!("{}/{}/{}", &name[0..2], &name[2..4], name);
        let dir = self.root.join(&name[0..2]).join(&name[2..4]);
        tokio::fs::create_dir_all(&dir).await?;
        let target = dir.join(name);
        if tokio::fs::try_exists(&target).await.unwrap_or(false) {
            tokio::fs::remove_file(temp).await?;
        } else {
            tokio::fs::rename(temp, target).await?;
        }
        Ok(key)
    }
}

/// Why a download did not produce a stored file.
#[derive(Debug)]
enum Fetch {
    /// Refused for good: the message keeps this sentence as its failure.
    Refused(String),
    /// Worth another try later (network, 5xx, 429).
    Retry(String),
}

impl From<SendError> for Fetch {
    fn from(e: SendError) -> Self {
        match e.class {
            ErrorClass::RetryLater | ErrorClass::BackOff => Fetch::Retry(e.message),
            _ => Fetch::Refused(format!("the provider refused the download: {}", e.message)),
        }
    }
}

/// Runs `DownloadMedia` jobs.
pub struct MediaFetcher {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    channels: Arc<ChannelRuntime>,
    media: MediaStore,
}

/// Where to fetch a file from and with which bearer token.
struct Source {
    url: reqwest::Url,
    bearer: Option<String>,
    /// Whether the URL came from a provider answer (checked by the SSRF guard).
    from_answer: bool,
    /// MIME type the provider declared, when the message did not.
    mime: Option<String>,
    /// SHA-256 the provider declared (hex or base64), checked before the file is kept.
    sha256: Option<String>,
    /// signal-cli's JSON-RPC daemon has no file URL: the file comes base64-encoded in the
    /// answer to `getAttachment {id}`, POSTed to `url` (`/api/v1/rpc`).
    rpc_attachment: Option<String>,
}

/// The body of a download: a streamed HTTP answer, or a file that came whole (decoded from
/// a JSON-RPC answer).
enum Body {
    Stream(reqwest::Response),
    Whole(Option<bytes::Bytes>),
}

impl Body {
    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, Fetch> {
        match self {
            Body::Stream(resp) => resp
                .chunk()
                .await
                .map_err(|e| Fetch::Retry(e.without_url().to_string())),
            Body::Whole(rest) => Ok(rest.take()),
        }
    }
}

/// Asks signal-cli's JSON-RPC daemon for a received attachment (`getAttachment`), which it
/// answers with the file base64-encoded in `result.data`.
async fn rpc_attachment(
    http: &reqwest::Client,
    url: &reqwest::Url,
    id: &str,
    max: u64,
) -> Result<bytes::Bytes, Fetch> {
    use base64::Engine as _;
    let call = serde_json::json!({"jsonrpc": "2.0", "method": "getAttachment",
        "params": {"id": id}, "id": format!("attachment:{id}")});
    let resp = http
        .post(url.clone())
        .json(&call)
        .send()
        .await
        .map_err(|e| Fetch::Retry(e.without_url().to_string()))?;
    let status = resp.status();
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(Fetch::Retry(format!(
            "signal-cli answered HTTP {} to getAttachment",
            status.as_u16()
        )));
    }
    let answer: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| Fetch::Retry(format!("signal-cli's answer is not JSON: {e}")))?;
    if let Some(err) = answer.get("error") {
        let reason = err
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("no message");
        return Err(Fetch::Refused(format!(
            "signal-cli refused getAttachment: {reason}"
        )));
    }
    let data = answer
        .pointer("/result/data")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Fetch::Refused("signal-cli's getAttachment answer has no data".into()))?;
    // Base64 holds 3 bytes in 4 characters: refuse an oversized file before decoding it.
    if (data.len() as u64) / 4 * 3 > max.saturating_add(3) {
        return Err(too_large(max));
    }
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map(bytes::Bytes::from)
        .map_err(|e| Fetch::Refused(format!("signal-cli's attachment is not base64: {e}")))
}

impl MediaFetcher {
    /// A fetcher writing into `media`.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        channels: Arc<ChannelRuntime>,
        media: MediaStore,
    ) -> Self {
        Self {
            store,
            bus,
            channels,
            media,
        }
    }

    /// Runs one job. `Ok` when the outcome (stored or refused) is committed; `Err` asks the
    /// worker to retry later.
    pub async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let JobKind::DownloadMedia { message_id } = &job.kind else {
            anyhow::bail!("not a media download job");
        };
        let tenant = job.tenant_id;
        let Some(message) = self.store.message(tenant, *message_id).await? else {
            // The message is gone (erased): nothing to download, and the job goes too.
            self.store.cancel_job(tenant, job.id).await?;
            return Ok(());
        };
        let Content::Media { media, .. } = &message.content else {
            anyhow::bail!("message {message_id} holds no media");
        };
        let mut media = media.clone();
        let outcome = if media.stored_key.is_some() {
            Ok(None)
        } else {
            self.fetch(&message, &media).await.map(Some)
        };
        let fetched = matches!(outcome, Ok(Some(_)));
        let failure = match outcome {
            Ok(Some((file, mime))) => {
                media.stored_key = Some(file.key);
                media.sha256 = Some(file.sha256);
                media.size = Some(file.size);
                media.mime_type = Some(mime);
                None
            }
            Ok(None) => None,
            Err(Fetch::Retry(why)) if job.attempts + 1 < MAX_ATTEMPTS => {
                anyhow::bail!("media download of message {message_id} failed: {why}")
            }
            Err(Fetch::Retry(why)) => Some(refusal(format!(
                "the file could not be downloaded after {MAX_ATTEMPTS} attempts: {why}"
            ))),
            Err(Fetch::Refused(why)) => Some(refusal(why)),
        };
        if let Some(f) = &failure {
            tracing::warn!(message_id = %message_id, reason = %f.reason, "inbound media refused");
        }
        let events = self
            .store
            .record_media(
                tenant,
                *message_id,
                media.clone(),
                failure,
                Some(job.id),
                now(),
            )
            .await?;
        self.bus.publish(&events);
        if fetched && let Some(provider_id) = &media.provider_id {
            self.delete_provider_copy(&message, provider_id).await;
        }
        Ok(())
    }

    /// Deletes the provider's own copy of a file we stored, where the provider keeps one on
    /// our behalf: signal-cli-rest-api keeps every received attachment in signal-cli's data
    /// directory until `DELETE /v1/attachments/{id}` (channels.md §3.3). Runs after our copy
    /// is committed; a failure only leaves the provider's copy behind, so it is logged.
    async fn delete_provider_copy(&self, message: &Message, provider_id: &str) {
        let Ok(Some(channel)) = self.store.channel(message.channel_id).await else {
            return;
        };
        if channel.kind != ChannelKind::Signal {
            return;
        }
        let creds = serde_json::from_value::<signal::Credentials>(channel.credentials.clone());
        let Ok(creds) = creds else {
            return;
        };
        if creds.mode != signal::Mode::Rest {
            // signal-cli's JSON-RPC daemon has no call that deletes a received attachment.
            return;
        }
        let base = channel
            .settings
            .api_base
            .as_deref()
            .unwrap_or(&creds.api_base);
        let base = base.trim_end_matches('/');
        let Ok(mut url) = reqwest::Url::parse(&format!("{base}/v1/attachments/")) else {
            return;
        };
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push(provider_id);
        }
        match self.channels.http().delete(url).send().await {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 404 => {
                tracing::debug!(message_id = %message.id, "deleted signal-cli's copy of the attachment");
            }
            Ok(r) => {
                tracing::warn!(message_id = %message.id, status = r.status().as_u16(), "signal-cli kept its copy of the attachment")
            }
            Err(e) => {
                tracing::warn!(message_id = %message.id, error = %e.without_url(), "could not delete signal-cli's copy of the attachment")
            }
        }
    }

    /// Finds the file at the provider and stores it; returns it with its MIME type.
    async fn fetch(
        &self,
        message: &Message,
        media: &MediaRef,
    ) -> Result<(StoredFile, String), Fetch> {
        let channel = self
            .store
            .channel(message.channel_id)
            .await
            .map_err(|e| Fetch::Retry(e.to_string()))?
            .ok_or_else(|| Fetch::Refused("the channel of this message was deleted".into()))?;
        let provider_id = media
            .provider_id
            .as_deref()
            .ok_or_else(|| Fetch::Refused("the message names no provider file".into()))?;
        let source = self.locate(&channel, provider_id).await?;
        let declared = media.mime_type.clone().or(source.mime.clone());
        let config = self.channels.config();
        let mime = declared
            .as_deref()
            .map(normalise_mime)
            .unwrap_or_else(|| "application/octet-stream".to_string());
        if !mime_allowed(&mime, &config.media_allowed_types) {
            return Err(Fetch::Refused(format!(
                "files of type {mime} are not accepted (channels.media_allowed_types)"
            )));
        }
        if let Some(size) = media.size
            && size > config.media_max_bytes
        {
            return Err(too_large(config.media_max_bytes));
        }
        let http = self.client_for(&channel, &source).await?;
        let file = self
            .download(&http, &source, config.media_max_bytes, message.tenant_id)
            .await?;
        Ok((file, mime))
    }

    /// Asks the provider where the file is.
    async fn locate(&self, channel: &Channel, provider_id: &str) -> Result<Source, Fetch> {
        let http = self.channels.http().clone();
        let base = channel.settings.api_base.as_deref();
        let bad_creds = |e: serde_json::Error| Fetch::Refused(format!("channel credentials: {e}"));
        let parse = |u: &str| {
            reqwest::Url::parse(u).map_err(|e| Fetch::Refused(format!("bad download URL: {e}")))
        };
        match channel.kind {
            ChannelKind::Whatsapp => {
                let creds: whatsapp::Credentials =
                    serde_json::from_value(channel.credentials.clone()).map_err(bad_creds)?;
                let token = creds.access_token.clone();
                let wa = whatsapp::WhatsApp::new(http, creds, base);
                let info = wa.media_info(provider_id).await?;
                Ok(Source {
                    url: parse(&info.url)?,
                    bearer: Some(token),
                    from_answer: true,
                    mime: info.mime_type,
                    sha256: info.sha256,
                    rpc_attachment: None,
                })
            }
            ChannelKind::Telegram => {
                let creds: telegram::Credentials =
                    serde_json::from_value(channel.credentials.clone()).map_err(bad_creds)?;
                let token = creds.bot_token.clone();
                let tg = telegram::Telegram::new(http, creds, base);
                let info = tg.get_file(provider_id).await?;
                let path = info.file_path.ok_or_else(|| {
                    Fetch::Refused("Telegram gave no file path (file over 20 MB?)".into())
                })?;
                if path.split('/').any(|s| s == ".." || s.is_empty()) {
                    return Err(Fetch::Refused("Telegram gave an unusable file path".into()));
                }
                let root = base
                    .unwrap_or(telegram::DEFAULT_API_BASE)
                    .trim_end_matches('/');
                // Photos carry no MIME type; Telegram stores them as `photos/file_N.jpg`.
                let mime = mime_from_path(&path).map(str::to_string);
                Ok(Source {
                    url: parse(&format!("{root}/file/bot{token}/{path}"))?,
                    bearer: None,
                    from_answer: false,
                    mime,
                    sha256: None,
                    rpc_attachment: None,
                })
            }
            ChannelKind::Signal => {
                let creds: signal::Credentials =
                    serde_json::from_value(channel.credentials.clone()).map_err(bad_creds)?;
                let root = base.unwrap_or(&creds.api_base).trim_end_matches('/');
                if creds.mode == signal::Mode::JsonRpc {
                    return Ok(Source {
                        url: parse(&format!("{root}/api/v1/rpc"))?,
                        bearer: None,
                        from_answer: false,
                        mime: None,
                        sha256: None,
                        rpc_attachment: Some(provider_id.to_string()),
                    });
                }
                let mut url = parse(&format!("{root}/v1/attachments/"))?;
                url.path_segments_mut()
                    .map_err(|()| Fetch::Refused("bad signal-cli API base".into()))?
                    .pop_if_empty()
                    .push(provider_id);
                Ok(Source {
                    url,
                    bearer: None,
                    from_answer: false,
                    mime: None,
                    sha256: None,
                    rpc_attachment: None,
                })
            }
            ChannelKind::Webchat => Err(Fetch::Refused(
                "web chat files are not downloaded from a provider".into(),
            )),
        }
    }

    /// The client for a download: the shared one for the configured API base; for a URL from
    /// a provider answer, one pinned to the addresses the SSRF guard checked.
    async fn client_for(
        &self,
        channel: &Channel,
        source: &Source,
    ) -> Result<reqwest::Client, Fetch> {
        if !source.from_answer {
            return Ok(self.channels.http().clone());
        }
        let mut allowed = ssrf::Allowed::default();
        let api_loopback = channel
            .settings
            .api_base
            .as_deref()
            .and_then(|b| reqwest::Url::parse(b).ok())
            .is_some_and(|u| is_loopback_host(&u));
        // Loopback media hosts only for a channel whose own API base is loopback (tests, a
        // local Bot API server); everything else must resolve to public addresses.
        if api_loopback
            && is_loopback_host(&source.url)
            && let (Some(h), Some(p)) = (source.url.host_str(), source.url.port_or_known_default())
        {
            allowed
                .hosts
                .push(format!("{}:{p}", h.to_ascii_lowercase()));
        }
        let verdict = ssrf::check(&source.url, &allowed)
            .await
            .map_err(|e| Fetch::Refused(format!("the media URL was refused: {e}")))?;
        let builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        let builder = match verdict {
            ssrf::Verdict::Allowed => builder,
            ssrf::Verdict::Pinned { host, addrs } => builder.resolve_to_addrs(&host, &addrs),
        };
        builder
            .build()
            .map_err(|e| Fetch::Retry(format!("cannot build an HTTP client: {e}")))
    }

    /// Streams the file, encrypted as it arrives, into a temporary file, hashing the
    /// plaintext and stopping past `max` bytes.
    async fn download(
        &self,
        http: &reqwest::Client,
        source: &Source,
        max: u64,
        tenant: switchboard_core::TenantId,
    ) -> Result<StoredFile, Fetch> {
        let mut body = match &source.rpc_attachment {
            Some(id) => Body::Whole(Some(rpc_attachment(http, &source.url, id, max).await?)),
            None => {
                let mut req = http.get(source.url.clone());
                if let Some(t) = &source.bearer {
                    req = req.bearer_auth(t);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| Fetch::Retry(e.without_url().to_string()))?;
                let status = resp.status();
                if !status.is_success() {
                    let msg = format!(
                        "the provider answered HTTP {} to the download",
                        status.as_u16()
                    );
                    return Err(if status.is_server_error() || status.as_u16() == 429 {
                        Fetch::Retry(msg)
                    } else {
                        Fetch::Refused(msg)
                    });
                }
                if resp.content_length().is_some_and(|n| n > max) {
                    return Err(too_large(max));
                }
                Body::Stream(resp)
            }
        };
        let io = |e: std::io::Error| Fetch::Retry(format!("writing the media store: {e}"));
        let keys = self.media.tenant_keys(tenant).await.map_err(io)?;
        let (temp, mut file) = self.media.temp().await.map_err(io)?;
        // The encryption runs on a blocking thread fed chunk by chunk: memory stays flat.
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
        let writer_keys = keys.clone();
        let encrypt = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let reader = ChunkReader {
                rx,
                current: bytes::Bytes::new(),
            };
            switchboard_crypto::encrypt_file(
                reader,
                std::io::BufWriter::new(&mut file),
                writer_keys.current(),
                &file_aad(writer_keys.tenant()),
            )
            .map_err(|e| std::io::Error::other(e.to_string()))?;
            file.sync_all()
        });
        let result = async {
            let mut hasher = Sha256::new();
            let mut size: u64 = 0;
            let mut tx = Some(tx);
            while let Some(chunk) = body.chunk().await? {
                size += chunk.len() as u64;
                if size > max {
                    return Err(too_large(max));
                }
                hasher.update(&chunk);
                if let Some(sender) = &tx
                    && sender.send(chunk).await.is_err()
                {
                    tx = None;
                }
            }
            drop(tx);
            Ok((hasher.finalize(), size))
        }
        .await;
        let encrypted = encrypt
            .await
            .map_err(|e| io(std::io::Error::other(e)))
            .and_then(|r| r.map_err(io));
        let result = async {
            let (digest, size) = result?;
            encrypted?;
            let sha256 = hex::encode(digest);
            if let Some(declared) = &source.sha256
                && !digest_matches(declared, &digest)
            {
                return Err(Fetch::Retry(format!(
                    "the downloaded file's SHA-256 {sha256} differs from the provider's {declared}"
                )));
            }
            let key = self
                .media
                .commit(&temp, &keys.media_name(&sha256))
                .await
                .map_err(io)?;
            Ok(StoredFile { key, sha256, size })
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }
}

/// Whether a provider's declared SHA-256 (hex, or WhatsApp's base64) names `digest`. A value
/// in neither form is not checked.
fn digest_matches(declared: &str, digest: &[u8]) -> bool {
    use base64::Engine as _;
    let declared = declared.trim();
    if let Ok(bytes) = hex::decode(declared)
        && bytes.len() == 32
    {
        return bytes == digest;
    }
    match base64::engine::general_purpose::STANDARD.decode(declared) {
        Ok(bytes) if bytes.len() == 32 => bytes == digest,
        _ => true,
    }
}

fn too_large(max: u64) -> Fetch {
    Fetch::Refused(format!(
        "the file is larger than the {max} bytes this server accepts (channels.media_max_bytes)"
    ))
}

fn refusal(reason: String) -> SendFailure {
    SendFailure {
        class: ErrorClass::Permanent,
        code: Some("media_refused".into()),
        reason,
    }
}

fn is_loopback_host(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The MIME type of a provider file path's extension, for files whose message declares none.
fn mime_from_path(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "oga" | "ogg" | "opus" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => return None,
    })
}

/// `image/JPEG; charset=x` → `image/jpeg`.
pub fn normalise_mime(mime: &str) -> String {
    mime.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether `mime` matches the allow-list (`type/subtype` or `type/*`).
pub fn mime_allowed(mime: &str, allowed: &[String]) -> bool {
    let mime = normalise_mime(mime);
    allowed.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        match a.strip_suffix("/*") {
            Some(major) => mime.split('/').next() == Some(major),
            None => a == mime,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_matches_types_and_wildcards() {
        let list = vec!["image/*".to_string(), "application/pdf".to_string()];
        assert!(mime_allowed("image/jpeg", &list));
        assert!(mime_allowed("IMAGE/PNG; q=1", &list));
        assert!(mime_allowed("application/pdf", &list));
        assert!(!mime_allowed("application/x-msdownload", &list));
        assert!(!mime_allowed("imagex/png", &list));
    }

    #[test]
    fn declared_digests_are_checked_in_hex_and_base64() {
        use base64::Engine as _;
        let d = Sha256::digest(b"JPEG");
        let b64 = base64::engine::general_purpose::STANDARD.encode(d);
        assert!(digest_matches(&hex::encode(d), &d));
        assert!(digest_matches(&b64, &d));
        assert!(!digest_matches(&hex::encode(Sha256::digest(b"other")), &d));
        assert!(
            digest_matches("<HASH>", &d),
            "an unreadable value is not checked"
        );
    }

    #[test]
    fn only_content_addressed_keys_name_files() {
        let s = MediaStore::new(PathBuf::from("/m"));
        let h = "ab".repeat(32);
        let key = format!("ab/ab/{h}");
        assert_eq!(
            s.path_of(&key),
            Some(PathBuf::from(format!("/m/ab/ab/{h}")))
        );
        assert_eq!(s.path_of("../../etc/passwd"), None);
        assert_eq!(s.path_of(&format!("cd/ab/{h}")), None);
    }
}
