// Switchboard agent desk: login, inbox, one conversation, live updates.
//
// Protocol: docs/api.md (REST under /api/v1, live events over /api/v1/events).
// Every piece of customer content goes into the page through textContent /
// createElement (see ../shared/render.js); never as HTML.

import {
  h,
  clear,
  timeEl,
  refreshTimes,
  renderContent,
  previewOf,
  parseTime,
  compareMessages,
} from "/static/shared/render.js";

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- state

const state = {
  me: null, // {user, tenant}
  csrf: null,
  view: "open",
  convs: new Map(), // id -> ConversationSummary (rows of the current view)
  selectedId: null,
  selected: null, // {conversation, contact, identities}
  messages: new Map(), // id -> Message (the selected conversation)
  loadToken: 0, // bumps when the selection changes, so stale answers are dropped
  inboxToken: 0,
  drafts: new Map(), // conversation id -> unsent text
  fetchingConv: new Set(),
  notInView: new Set(), // conversations fetched for a live message that didn't fit the view
};

// ---------------------------------------------------------------- REST

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls the API. Sends the CSRF token on state-changing requests, turns the
 * `{"error":{"code","message"}}` shape into an ApiError, and shows the login
 * form on 401. A `403 csrf_failed` refreshes the token from /me and retries once.
 */
async function api(method, path, body, retried = false) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "Can't reach the server. Check your connection and try again.");
  }
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  const err = data && data.error ? data.error : {};
  const e = new ApiError(res.status, err.code || "http_" + res.status, err.message || `Request failed (${res.status}).`);
  if (res.status === 403 && e.code === "csrf_failed" && !retried && method !== "GET") {
    const me = await fetchMe();
    if (me) return api(method, path, body, true);
  }
  if (res.status === 401 && path !== "/api/v1/auth/login") showLogin();
  throw e;
}

/** GET /api/v1/me; null when not logged in. */
async function fetchMe() {
  try {
    const res = await fetch("/api/v1/me", { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (res.status === 401) return null;
    if (!res.ok) throw new Error(`GET /api/v1/me answered ${res.status}`);
    const data = await res.json();
    state.csrf = data.csrf_token;
    state.me = { user: data.user, tenant: data.tenant };
    return data;
  } catch (e) {
    // Network trouble: keep whatever we had.
    if (e instanceof TypeError) return state.me;
    throw e;
  }
}

// ---------------------------------------------------------------- views

function showOnly(id) {
  for (const v of ["boot", "login-view", "desk-view"]) $(v).hidden = v !== id;
}

function showLogin(message) {
  disconnectEvents();
  resetDesk();
  state.me = null;
  state.csrf = null;
  showOnly("login-view");
  const err = $("login-error");
  if (message) {
    err.textContent = message;
    err.hidden = false;
  } else {
    err.hidden = true;
  }
  $("login-email").focus();
}

function showDesk() {
  const { user, tenant } = state.me;
  $("business-name").textContent = tenant.name || tenant.slug || "";
  $("user-name").textContent = user.name || user.email || "";
  $("user-role").textContent = user.role || "";
  document.title = `${tenant.name || "Switchboard"} · Agent desk`;
  showOnly("desk-view");
  connectEvents();
  loadInbox();
  loadChannelAlerts();
}

/**
 * Shows the channels whose sending is paused because the provider refused
 * their credentials (revoked token): replies on them stay queued until an
 * admin resumes the channel. Provider text goes in through textContent only.
 */
async function loadChannelAlerts() {
  const list = $("channel-alerts");
  let channels;
  try {
    channels = (await api("GET", "/api/v1/channels")).channels || [];
  } catch {
    return; // the inbox shows connection problems already
  }
  list.replaceChildren();
  for (const ch of channels) {
    if (!ch.paused) continue;
    const li = document.createElement("li");
    li.textContent = `${ch.name} (${ch.kind}) is paused: ${ch.paused.reason}. ` +
      "Replies on it wait in the queue until an admin resumes the channel.";
    list.append(li);
  }
  list.hidden = list.children.length === 0;
}

// ---------------------------------------------------------------- login/logout

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const email = $("login-email").value.trim();
  const password = $("login-password").value;
  const err = $("login-error");
  err.hidden = true;
  if (!email || !password) {
    err.textContent = "Enter your email and password.";
    err.hidden = false;
    return;
  }
  const btn = $("login-submit");
  btn.disabled = true;
  btn.textContent = "Logging in…";
  try {
    const data = await api("POST", "/api/v1/auth/login", { email, password });
    state.csrf = data.csrf_token;
    state.me = { user: data.user, tenant: data.tenant };
    $("login-password").value = "";
    showDesk();
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
    $("login-password").focus();
  } finally {
    btn.disabled = false;
    btn.textContent = "Log in";
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await api("POST", "/api/v1/auth/logout");
  } catch {
    // The session may already be gone; show the login form either way.
  }
  showLogin();
});

function resetDesk() {
  state.convs.clear();
  state.messages.clear();
  state.selectedId = null;
  state.selected = null;
  state.drafts.clear();
  state.notInView.clear();
  // Another user may log in next: start the event stream afresh.
  live.lastSeq = null;
  clear($("inbox"));
  clear($("messages"));
  $("conversation").hidden = true;
  $("conversation-empty").hidden = false;
}

// ---------------------------------------------------------------- inbox

function isMine(conv) {
  return !!(state.me && conv.assignee && conv.assignee === state.me.user.id);
}

/**
 * Whether an inbox row belongs to the current view (for live updates). Mirrors the
 * server's filters: open = bot|queued|assigned, mine = assigned to me,
 * unassigned = bot|queued, resolved = resolved.
 */
function matchesView(conv) {
  switch (state.view) {
    case "open":
      return conv.state === "bot" || conv.state === "queued" || conv.state === "assigned";
    case "mine":
      return conv.state === "assigned" && isMine(conv);
    case "unassigned":
      return conv.state === "bot" || conv.state === "queued";
    case "resolved":
      return conv.state === "resolved";
    default:
      return true;
  }
}

function activityOf(conv) {
  const t = parseTime(conv.last_message_at || conv.created_at);
  return Number.isNaN(t) ? 0 : t;
}

async function loadInbox() {
  const token = ++state.inboxToken;
  const inbox = $("inbox");
  inbox.setAttribute("aria-busy", "true");
  try {
    const data = await api("GET", `/api/v1/conversations?view=${encodeURIComponent(state.view)}&limit=50`);
    if (token !== state.inboxToken) return;
    state.convs.clear();
    state.notInView.clear();
    for (const c of data.conversations || []) state.convs.set(c.id, c);
    renderInbox();
  } catch (e) {
    if (token !== state.inboxToken || e.status === 401) return;
    clear(inbox);
    $("inbox-empty").hidden = false;
    $("inbox-empty").textContent = `Couldn't load conversations: ${e.message}`;
  } finally {
    if (token === state.inboxToken) inbox.removeAttribute("aria-busy");
  }
}

function sortedConvs() {
  return [...state.convs.values()].sort((a, b) => activityOf(b) - activityOf(a));
}

function renderInbox() {
  const inbox = $("inbox");
  const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest(".conversation")?.dataset.id;
  clear(inbox);
  const rows = sortedConvs();
  for (const c of rows) inbox.append(renderRow(c));
  const empty = $("inbox-empty");
  empty.textContent = "No conversations here.";
  empty.hidden = rows.length > 0;
  if (focusedId) {
    const btn = inbox.querySelector(`.conversation[data-id="${CSS.escape(focusedId)}"] .row-button`);
    if (btn) btn.focus();
  }
}

function renderRow(c) {
  const selected = c.id === state.selectedId;
  const name = c.contact_name || "Visitor";
  const li = h("li", {
    class: `conversation${selected ? " selected" : ""}${isMine(c) ? " mine" : ""}`,
    dataset: { id: c.id, state: c.state },
  });
  li.append(
    h(
      "button",
      {
        class: "row-button",
        attrs: { type: "button", "aria-current": selected ? "true" : false },
      },
      h(
        "span",
        { class: "row-top" },
        h("span", { class: "row-name", text: name }),
        timeEl(c.last_message_at || c.created_at, "row-time time"),
      ),
      h("span", { class: "row-preview", text: c.last_message_preview || "" }),
      h(
        "span",
        { class: "row-tags" },
        h("span", { class: "tag channel", text: c.channel_kind || "channel" }),
        h("span", { class: `tag state state-${c.state}`, text: c.state || "" }),
        isMine(c) ? h("span", { class: "tag mine-tag", text: "mine" }) : null,
      ),
    ),
  );
  return li;
}

/** Inserts or replaces a row, keeping newest activity first. */
function upsertRow(conv) {
  if (!matchesView(conv)) {
    if (state.convs.delete(conv.id)) renderInbox();
    return;
  }
  state.convs.set(conv.id, conv);
  renderInbox();
}

$("inbox").addEventListener("click", (ev) => {
  const row = ev.target.closest(".conversation");
  if (row) selectConversation(row.dataset.id);
});

for (const btn of document.querySelectorAll(".view-btn")) {
  btn.addEventListener("click", () => {
    state.view = btn.dataset.view;
    for (const b of document.querySelectorAll(".view-btn")) {
      b.setAttribute("aria-pressed", String(b === btn));
    }
    loadInbox();
  });
}

// ---------------------------------------------------------------- one conversation

async function selectConversation(id) {
  if (!id) return;
  loadChannelAlerts(); // a channel may have been paused since the page loaded
  if (state.selectedId && state.selectedId !== id) {
    state.drafts.set(state.selectedId, $("composer-text").value);
  }
  const token = ++state.loadToken;
  state.selectedId = id;
  state.selected = null;
  state.messages.clear();
  for (const row of document.querySelectorAll("#inbox .conversation")) {
    const on = row.dataset.id === id;
    row.classList.toggle("selected", on);
    const b = row.querySelector(".row-button");
    if (on) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
  $("conversation-empty").hidden = true;
  $("conversation").hidden = false;
  $("conv-error").hidden = true;
  clear($("messages"));
  $("messages").setAttribute("aria-busy", "true");
  const summary = state.convs.get(id);
  renderHeader(summary || null, null);
  $("composer-text").value = state.drafts.get(id) || "";

  try {
    const [detail, msgs] = await Promise.all([
      api("GET", `/api/v1/conversations/${encodeURIComponent(id)}`),
      api("GET", `/api/v1/conversations/${encodeURIComponent(id)}/messages?limit=200`),
    ]);
    if (token !== state.loadToken) return;
    state.selected = detail;
    // Events that arrived while loading are already in state.messages: merge.
    for (const m of msgs.messages || []) mergeMessage(m);
    renderHeader(detail.conversation, detail.contact);
    renderMessages();
  } catch (e) {
    if (token !== state.loadToken || e.status === 401) return;
    showConvError(`Couldn't load this conversation: ${e.message}`);
  } finally {
    if (token === state.loadToken) $("messages").removeAttribute("aria-busy");
  }
}

function showConvError(text) {
  const el = $("conv-error");
  el.textContent = text;
  el.hidden = false;
}

function currentConversation() {
  return (state.selected && state.selected.conversation) || state.convs.get(state.selectedId) || null;
}

function renderHeader(conv, contact) {
  const name = (contact && contact.name) || (conv && conv.contact_name) || "Visitor";
  $("conv-title").textContent = name;
  const meta = $("conv-meta");
  clear(meta);
  if (conv) {
    meta.append(
      h("span", { class: "tag channel", text: conv.channel_kind || "channel" }),
      " ",
      h("span", { class: `tag state state-${conv.state}`, text: conv.state }),
      " ",
      h("span", {
        class: "assignee",
        text: conv.assignee ? (isMine(conv) ? "Assigned to you" : "Assigned to a colleague") : "Not assigned",
      }),
    );
  }
  $("assign-me").hidden = !conv || isMine(conv);
  $("resolve").hidden = !conv || conv.state === "resolved";
}

/** Adds or updates a message in the model; returns the stored one. */
function mergeMessage(m) {
  const old = state.messages.get(m.id);
  if (old) {
    // Keep the furthest status (a replayed event may be older than what we know).
    if (!shouldAdvance(m.status, old.status)) {
      m = { ...m, status: old.status, failure: old.failure };
    }
  }
  state.messages.set(m.id, m);
  return m;
}

const RANK = { queued: 0, sent: 1, delivered: 2, read: 3, failed: 4 };

/** Same rule as core's DeliveryStatus::should_advance: forward only; failed always wins. */
function shouldAdvance(next, current) {
  if (current === undefined || current === null) return true;
  if (current === next) return true;
  if (current === "failed") return false;
  if (next === "failed") return true;
  return (RANK[next] ?? -1) > (RANK[current] ?? -1);
}

function nearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}

function renderMessages() {
  const list = $("messages");
  clear(list);
  const msgs = [...state.messages.values()].sort(compareMessages);
  for (const m of msgs) list.append(renderMessage(m));
  if (!msgs.length) list.append(h("li", { class: "messages-empty", text: "No messages yet." }));
  list.scrollTop = list.scrollHeight;
}

function senderLabel(m) {
  const s = m.sender || {};
  switch (s.type) {
    case "customer": {
      const c = (state.selected && state.selected.contact) || null;
      return (c && c.name) || currentConversation()?.contact_name || "Visitor";
    }
    case "agent":
      return s.name || "Agent";
    case "bot":
      return "Bot";
    case "system":
      return "System";
    default:
      return m.direction === "inbound" ? "Customer" : "Business";
  }
}

function renderMessage(m) {
  const dir = m.direction === "inbound" ? "inbound" : "outbound";
  const senderType = (m.sender && m.sender.type) || "unknown";
  const li = h("li", {
    class: `message ${dir} sender-${senderType}`,
    dataset: { id: m.id },
  });
  const bubble = h("div", { class: "bubble" });
  bubble.append(h("div", { class: "sender", text: senderLabel(m) }));
  bubble.append(renderContent(m.content, { audience: "agent" }));
  const media = renderStoredMedia(m);
  if (media) bubble.append(media);
  const foot = h("div", { class: "meta" }, timeEl(m.created_at));
  if (dir === "outbound") {
    foot.append(" ", renderStatus(m));
  }
  bubble.append(foot);
  li.append(bubble);
  if (dir === "outbound" && m.status === "failed") li.append(renderFailure(m.failure));
  if (dir === "inbound" && m.failure) li.append(renderMediaRefusal(m.failure));
  return li;
}

/**
 * A customer's file, once the server stored it: images inline, anything else as a download
 * link. Both use our own `/api/v1/media/{id}` (same origin, staff session); provider URLs
 * are never loaded in the browser.
 */
function renderStoredMedia(m) {
  const c = m.content || {};
  if (c.type !== "media" || !c.media || !c.media.stored_key) return null;
  const url = `/api/v1/media/${encodeURIComponent(m.id)}`;
  const mime = String(c.media.mime_type || "");
  if (mime.startsWith("image/") && mime !== "image/svg+xml") {
    const img = h("img", {
      class: "media-image",
      attrs: { src: url, alt: c.caption || "Image from the customer", loading: "lazy" },
    });
    return h("a", { class: "media-link", attrs: { href: url, target: "_blank", rel: "noopener" } }, img);
  }
  const label = c.media.filename || `${c.kind || "file"} (${mime || "unknown type"})`;
  return h(
    "p",
    { class: "media-download" },
    h("a", { attrs: { href: url, download: "" }, text: `Download ${label}` }),
  );
}

/** Why a customer's file was not kept (too large, a refused type, the provider failed). */
function renderMediaRefusal(failure) {
  return h(
    "p",
    { class: "failure", attrs: { role: "note" } },
    h("strong", { text: "File not kept: " }),
    (failure && failure.reason) || "the file could not be downloaded",
  );
}

const STATUS_TEXT = { queued: "queued", sent: "sent", delivered: "delivered", read: "read", failed: "failed" };

function renderStatus(m) {
  return h("span", {
    class: `status status-${m.status}`,
    dataset: { status: m.status },
    attrs: { title: `Delivery status: ${m.status}` },
    text: STATUS_TEXT[m.status] || String(m.status || ""),
  });
}

const FAILURE_CLASS_TEXT = {
  retry_later: "temporary problem",
  back_off: "rate limited",
  needs_template: "needs a template (outside the 24-hour window)",
  unreachable: "customer unreachable on this channel",
  permanent: "permanent error",
};

function renderFailure(failure) {
  const f = failure || {};
  const parts = [];
  if (f.class) parts.push(FAILURE_CLASS_TEXT[f.class] || f.class);
  if (f.code) parts.push(`code ${f.code}`);
  return h(
    "p",
    { class: "failure", attrs: { role: "note" } },
    h("strong", { text: "Not delivered: " }),
    f.reason || "the channel refused this message",
    parts.length ? ` (${parts.join(", ")})` : "",
  );
}

/** Replaces one message's element in place, or inserts it in order. */
function showMessage(m) {
  const list = $("messages");
  const stick = nearBottom(list);
  const empty = list.querySelector(".messages-empty");
  if (empty) empty.remove();
  const el = renderMessage(m);
  const existing = list.querySelector(`.message[data-id="${CSS.escape(m.id)}"]`);
  if (existing) {
    existing.replaceWith(el);
    return;
  }
  // Insert before the first later message (usually: append).
  let before = null;
  for (const other of list.querySelectorAll(".message")) {
    const om = state.messages.get(other.dataset.id);
    if (om && compareMessages(m, om) < 0) {
      before = other;
      break;
    }
  }
  list.insertBefore(el, before);
  if (stick || m.direction === "outbound") list.scrollTop = list.scrollHeight;
}

// ---------------------------------------------------------------- actions

$("assign-me").addEventListener("click", async () => {
  const id = state.selectedId;
  if (!id) return;
  const btn = $("assign-me");
  btn.disabled = true;
  try {
    const data = await api("POST", `/api/v1/conversations/${encodeURIComponent(id)}/assign`, {});
    applyConversation(data.conversation);
  } catch (e) {
    if (e.status !== 401) showConvError(`Couldn't assign: ${e.message}`);
  } finally {
    btn.disabled = false;
  }
});

$("resolve").addEventListener("click", async () => {
  const id = state.selectedId;
  if (!id) return;
  const btn = $("resolve");
  btn.disabled = true;
  try {
    const data = await api("POST", `/api/v1/conversations/${encodeURIComponent(id)}/resolve`);
    applyConversation(data.conversation);
  } catch (e) {
    if (e.status !== 401) showConvError(`Couldn't resolve: ${e.message}`);
  } finally {
    btn.disabled = false;
  }
});

$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sendReply();
});

async function sendReply() {
  const id = state.selectedId;
  const ta = $("composer-text");
  const text = ta.value;
  if (!id || !text.trim()) return;
  const btn = $("composer-send");
  if (btn.disabled) return;
  btn.disabled = true;
  $("conv-error").hidden = true;
  try {
    const data = await api("POST", `/api/v1/conversations/${encodeURIComponent(id)}/messages`, { text });
    // Only clear what was sent (the agent may have kept typing).
    if (state.selectedId === id && ta.value === text) ta.value = "";
    state.drafts.delete(id);
    if (data && data.message) applyMessageCreated(data.message);
  } catch (e) {
    if (e.status !== 401) showConvError(`Not sent: ${e.message}`);
  } finally {
    btn.disabled = false;
  }
}

$("composer-text").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
    ev.preventDefault();
    sendReply();
  } else if (ev.key === "Escape") {
    ev.preventDefault();
    leaveComposer();
  }
});

function leaveComposer() {
  const row = state.selectedId && document.querySelector(`#inbox .conversation[data-id="${CSS.escape(state.selectedId)}"] .row-button`);
  if (row) row.focus();
  else $("messages").focus();
}

// ---------------------------------------------------------------- keyboard

function isTyping(target) {
  if (!target || !target.tagName) return false;
  const tag = target.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
}

document.addEventListener("keydown", (ev) => {
  if ($("desk-view").hidden || ev.altKey || ev.ctrlKey || ev.metaKey || isTyping(ev.target)) return;
  if (ev.key === "j" || ev.key === "k") {
    ev.preventDefault();
    moveSelection(ev.key === "j" ? 1 : -1);
  } else if (ev.key === "r") {
    if (!$("conversation").hidden) {
      ev.preventDefault();
      $("composer-text").focus();
    }
  }
});

function moveSelection(delta) {
  const rows = [...document.querySelectorAll("#inbox .conversation")];
  if (!rows.length) return;
  let i = rows.findIndex((r) => r.dataset.id === state.selectedId);
  i = i < 0 ? (delta > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, i + delta));
  const row = rows[i];
  selectConversation(row.dataset.id);
  row.querySelector(".row-button").focus();
}

// ---------------------------------------------------------------- live events

const live = {
  ws: null,
  lastSeq: null,
  attempt: 0,
  timer: null,
  stopped: true,
};

function setLive(kind, text) {
  const el = $("live-status");
  el.dataset.state = kind;
  el.textContent = text;
}

function connectEvents() {
  live.stopped = false;
  clearTimeout(live.timer);
  if (live.ws) return;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const after = live.lastSeq !== null ? `?after=${encodeURIComponent(live.lastSeq)}` : "";
  const hadSeq = live.lastSeq !== null;
  let ws;
  try {
    ws = new WebSocket(`${proto}//${location.host}/api/v1/events${after}`);
  } catch {
    scheduleReconnect();
    return;
  }
  live.ws = ws;
  if (live.attempt > 0) setLive("reconnecting", "reconnecting…");
  else setLive("connecting", "connecting…");

  ws.addEventListener("open", () => {
    live.attempt = 0;
    setLive("live", "live");
    // Without a sequence number the server sends only new events, so what happened
    // before this socket opened (including while the first REST load was in flight)
    // is fetched over REST once the stream is live.
    if (!hadSeq) refreshAll();
  });
  ws.addEventListener("message", (ev) => {
    let event;
    try {
      event = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (typeof event.seq === "number") {
      if (live.lastSeq !== null && event.seq <= live.lastSeq) return; // already applied
      live.lastSeq = event.seq;
    }
    try {
      applyEvent(event);
    } catch (e) {
      console.error("could not apply event", event, e);
    }
  });
  ws.addEventListener("close", () => {
    if (live.ws === ws) live.ws = null;
    if (live.stopped) return;
    setLive("reconnecting", "reconnecting…");
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  clearTimeout(live.timer);
  const base = Math.min(30000, 1000 * 2 ** Math.min(live.attempt, 5));
  const delay = base / 2 + Math.random() * (base / 2);
  live.attempt += 1;
  live.timer = setTimeout(async () => {
    if (live.stopped) return;
    // A closed socket may mean the session ended: check before retrying.
    if (live.attempt >= 2) {
      try {
        const me = await fetchMe();
        if (!me) {
          showLogin("Your session ended. Please log in again.");
          return;
        }
      } catch {
        // Server trouble: keep retrying.
      }
    }
    connectEvents();
  }, delay);
}

function disconnectEvents() {
  live.stopped = true;
  clearTimeout(live.timer);
  if (live.ws) {
    const ws = live.ws;
    live.ws = null;
    ws.close();
  }
  live.attempt = 0;
  setLive("connecting", "connecting…");
}

function refreshAll() {
  loadInbox();
  loadChannelAlerts();
  if (state.selectedId) selectConversation(state.selectedId);
}

function applyEvent(event) {
  const data = event.data || {};
  switch (event.type) {
    case "message_created":
      if (data.message) applyMessageCreated(data.message);
      break;
    case "message_status":
      applyMessageStatus(data);
      break;
    case "conversation_changed":
      if (data.conversation) applyConversation(data.conversation);
      break;
    default:
      break; // newer server, older page: ignore what we don't know
  }
}

function applyMessageCreated(m) {
  if (m.conversation_id === state.selectedId) {
    const stored = mergeMessage(m);
    showMessage(stored);
  }
  const conv = state.convs.get(m.conversation_id);
  if (conv) {
    const newer = activityOf(conv) <= (parseTime(m.created_at) || 0);
    if (newer) {
      upsertRow({ ...conv, last_message_at: m.created_at, last_message_preview: previewOf(m.content) });
    }
  } else if (!state.notInView.has(m.conversation_id)) {
    fetchConversationRow(m.conversation_id);
  }
}

/** A message for a conversation we don't list: fetch its summary and insert it if it fits the view. */
async function fetchConversationRow(id) {
  if (state.fetchingConv.has(id)) return;
  state.fetchingConv.add(id);
  try {
    const data = await api("GET", `/api/v1/conversations/${encodeURIComponent(id)}`);
    if (data && data.conversation && !state.convs.has(id)) {
      if (matchesView(data.conversation)) upsertRow(data.conversation);
      else state.notInView.add(id);
    }
  } catch {
    // Not visible to us (or gone): nothing to show.
  } finally {
    state.fetchingConv.delete(id);
  }
}

function applyMessageStatus(d) {
  if (d.conversation_id !== state.selectedId) return;
  const m = state.messages.get(d.message_id);
  if (!m) return;
  if (!shouldAdvance(d.status, m.status)) return;
  const updated = {
    ...m,
    status: d.status,
    failure: d.failure ?? (d.status === "failed" ? m.failure : null),
    provider_id: d.provider_id ?? m.provider_id,
  };
  state.messages.set(m.id, updated);
  showMessage(updated);
}

function applyConversation(conv) {
  state.notInView.delete(conv.id);
  if (state.convs.has(conv.id) || matchesView(conv)) {
    const old = state.convs.get(conv.id);
    // Keep a newer preview we built from a message event.
    if (old && activityOf(old) > activityOf(conv)) {
      conv = { ...conv, last_message_at: old.last_message_at, last_message_preview: old.last_message_preview };
    }
    upsertRow(conv);
  }
  if (conv.id === state.selectedId) {
    if (state.selected) state.selected = { ...state.selected, conversation: conv };
    renderHeader(conv, state.selected && state.selected.contact);
  }
}

// ---------------------------------------------------------------- boot

setInterval(() => refreshTimes(), 30000);

async function boot() {
  try {
    const me = await fetchMe();
    if (me) showDesk();
    else showLogin();
  } catch (e) {
    showLogin(`Couldn't reach Switchboard (${e.message}). Try again in a moment.`);
  }
}

boot();
