// Switchboard agent desk: login, presence, inbox views with counts and search, one
// conversation with notes, canned responses, templates, take / transfer / resolve / reopen,
// the contact panel, the supervisor view, and live updates over the event websocket.
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
  view: "mine",
  q: "", // inbox search
  notes: new Map(), // id -> Note (the selected conversation)
  agents: new Map(), // user id -> Agent (GET /api/v1/agents)
  queues: new Map(), // queue id -> Queue
  canned: [], // CannedResponse
  mode: "desk", // or "supervisor"
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
  const sup = isSupervisor();
  for (const el of document.querySelectorAll(".supervisor-only")) el.hidden = !sup;
  $("open-supervisor").hidden = !sup;
  connectEvents();
  loadInbox();
  loadChannelAlerts();
  loadRoutingData();
  loadCanned();
  if (sup && location.pathname === "/supervisor") showSupervisor();
}

function isSupervisor() {
  const role = state.me && state.me.user && state.me.user.role;
  return role === "supervisor" || role === "admin";
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
  state.notes.clear();
  state.agents.clear();
  state.queues.clear();
  state.selectedId = null;
  state.selected = null;
  state.drafts.clear();
  state.notInView.clear();
  // Another user may log in next: start the event stream afresh.
  live.lastSeq = null;
  clear($("inbox"));
  clear($("messages"));
  $("conversation").hidden = true;
  $("contact-panel").hidden = true;
  $("conversation-empty").hidden = false;
  $("supervisor-view").hidden = true;
  $("desk").hidden = false;
  $("contact-panel").hidden = true;
  state.mode = "desk";
  clearInterval(sup.tick);
  // The next user may not see every view (e.g. "all" is for supervisors).
  state.view = "mine";
  state.q = "";
  $("inbox-search").value = "";
  for (const b of document.querySelectorAll(".view-btn")) {
    b.setAttribute("aria-pressed", String(b.dataset.view === "mine"));
  }
  for (const c of document.querySelectorAll(".count")) c.textContent = "";
}

// ---------------------------------------------------------------- inbox

function isMine(conv) {
  return !!(state.me && conv.assignee && conv.assignee === state.me.user.id);
}

/**
 * Whether an inbox row belongs to the current view, as far as the page can tell from a
 * summary (the server decides for real: a debounced reload follows every change).
 */
function matchesView(conv) {
  switch (state.view) {
    case "mine":
      return conv.state === "assigned" && isMine(conv);
    case "unassigned":
      return conv.state === "bot" || conv.state === "queued";
    case "my_queues":
      return conv.state === "queued";
    case "all":
      return conv.state === "bot" || conv.state === "queued" || conv.state === "assigned";
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
    const q = state.q.trim() ? `&q=${encodeURIComponent(state.q.trim())}` : "";
    const data = await api("GET", `/api/v1/desk/conversations?view=${encodeURIComponent(state.view)}&limit=100${q}`);
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
  empty.textContent = state.q.trim() ? "Nothing matches your search." : "No conversations here.";
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
        queueTag(c),
        isMine(c) ? h("span", { class: "tag mine-tag", text: "mine" }) : null,
        c.assignee && !isMine(c) ? h("span", { class: "tag", text: agentName(c.assignee) }) : null,
        slaTag(c),
      ),
    ),
  );
  return li;
}

function queueTag(c) {
  const qid = c.routing && c.routing.queue;
  if (!qid) return null;
  const q = state.queues.get(qid);
  return h("span", { class: "tag queue", text: q ? q.name : "queue" });
}

function slaTag(c) {
  const m = (c.routing && c.routing.marks) || {};
  if (m.first_response_breach || m.resolution_breach) return h("span", { class: "tag sla-breach", text: "SLA breached" });
  if (m.first_response_warning || m.resolution_warning) return h("span", { class: "tag sla-risk", text: "SLA at risk" });
  return null;
}

function agentName(id) {
  const a = state.agents.get(id);
  return a ? a.name : "a colleague";
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
    setView(btn.dataset.view);
  });
}

function setView(view) {
  const btn = document.querySelector(`.view-btn[data-view="${CSS.escape(view)}"]`);
  if (!btn || btn.hidden) return;
  state.view = view;
  for (const b of document.querySelectorAll(".view-btn")) {
    b.setAttribute("aria-pressed", String(b === btn));
  }
  loadInbox();
}

let searchTimer = null;
$("inbox-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.q = $("inbox-search").value;
    loadInbox();
  }, 200);
});
$("inbox-search").addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") {
    ev.preventDefault();
    if ($("inbox-search").value) {
      $("inbox-search").value = "";
      state.q = "";
      loadInbox();
    } else {
      leaveComposer();
    }
  } else if (ev.key === "Enter") {
    ev.preventDefault();
    const first = document.querySelector("#inbox .conversation");
    if (first) {
      selectConversation(first.dataset.id);
      first.querySelector(".row-button").focus();
    }
  }
});

/**
 * Counts for the view buttons: one request for every view (`GET /api/v1/desk/counts`),
 * coalesced, and again whenever a live event changes a conversation.
 */
const COUNT_VIEWS = ["mine", "my_queues", "unassigned", "all"];
let countsTimer = null;
function scheduleCounts() {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(loadCounts, 300);
}

async function loadCounts() {
  try {
    const data = await api("GET", "/api/v1/desk/counts");
    const counts = (data && data.counts) || {};
    for (const view of COUNT_VIEWS) {
      if (typeof counts[view] === "number") setCount(view, counts[view]);
    }
  } catch {
    // Counts are a convenience; the list itself shows errors.
  }
}

function setCount(view, n) {
  const el = document.querySelector(`.count[data-count="${CSS.escape(view)}"]`);
  if (!el) return;
  el.textContent = String(n);
  el.dataset.n = String(n);
  el.closest(".view-btn").setAttribute("aria-label", `${el.closest(".view-btn").firstChild.textContent.trim()}, ${n}`);
}

/**
 * A conversation changed somewhere: reload the list and counts. Busy tenants send many
 * events, so reloads are spaced at least 1.5 s apart (the last change always gets one).
 */
const inboxReload = { timer: null, last: 0 };
function scheduleInbox() {
  if (inboxReload.timer) return; // one is already coming and will see this change
  const wait = Math.max(250, inboxReload.last + 1500 - Date.now());
  inboxReload.timer = setTimeout(() => {
    inboxReload.timer = null;
    inboxReload.last = Date.now();
    loadInbox();
    loadCounts();
  }, wait);
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
  state.notes.clear();
  closeCanned();
  hideCustomerTyping();
  $("template-form").hidden = true;
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
    const [detail, msgs, notes] = await Promise.all([
      api("GET", `/api/v1/conversations/${encodeURIComponent(id)}`),
      api("GET", `/api/v1/conversations/${encodeURIComponent(id)}/messages?limit=200`),
      api("GET", `/api/v1/conversations/${encodeURIComponent(id)}/notes`),
    ]);
    if (token !== state.loadToken) return;
    state.selected = detail;
    // Events that arrived while loading are already in state.messages: merge.
    for (const m of msgs.messages || []) mergeMessage(m);
    for (const n of notes.notes || []) state.notes.set(n.id, n);
    renderHeader(detail.conversation, detail.contact);
    renderMessages();
    renderContactPanel(detail, token);
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
      " ",
      queueTag(routedOf(conv)) || "",
      " ",
      h("span", {
        class: "assignee",
        text: conv.assignee ? (isMine(conv) ? "Assigned to you" : `Assigned to ${agentName(conv.assignee)}`) : "Not assigned",
      }),
    );
  }
  const open = conv && conv.state !== "resolved";
  $("take").hidden = !conv || conv.state !== "queued";
  $("assign-me").hidden = !open || isMine(conv) || conv.state === "queued";
  $("transfer-open").hidden = !open;
  $("resolve").hidden = !open;
  $("reopen").hidden = !conv || conv.state !== "resolved";
  $("composer").hidden = !open;
}

/** The summary with the routing fields we know (desk rows and the detail carry them). */
function routedOf(conv) {
  if (conv.routing) return conv;
  const row = state.convs.get(conv.id);
  const routing = (row && row.routing) || (state.selected && state.selected.routing) || null;
  return { ...conv, routing };
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

/**
 * Same rule as core's DeliveryStatus::should_advance: forward only; failed always wins,
 * except over a retry (the retry route puts a failed message back to `queued`).
 */
function shouldAdvance(next, current) {
  if (current === undefined || current === null) return true;
  if (current === next) return true;
  // Only a retry moves a failed message on: back to the queue, then onwards.
  if (current === "failed") return next === "queued";
  if (next === "failed") return true;
  return (RANK[next] ?? -1) > (RANK[current] ?? -1);
}

function nearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}

function renderMessages() {
  const list = $("messages");
  clear(list);
  const items = [
    ...[...state.messages.values()].map((m) => ({ kind: "message", at: m.created_at, id: m.id, m })),
    ...[...state.notes.values()].map((n) => ({ kind: "note", at: n.created_at, id: n.id, n })),
  ].sort((a, b) => compareMessages({ created_at: a.at, id: a.id }, { created_at: b.at, id: b.id }));
  for (const it of items) list.append(it.kind === "note" ? renderNote(it.n) : renderMessage(it.m));
  const msgs = items;
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
      return "Bot (automated)";
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
  if (senderType === "bot") foot.append(" ", h("span", { class: "tag bot-tag", text: "bot" }));
  if (dir === "outbound") {
    foot.append(" ", renderStatus(m));
  }
  bubble.append(foot);
  li.append(bubble);
  if (dir === "outbound" && m.status === "failed") li.append(renderFailure(m.failure, m));
  if (dir === "inbound" && m.failure) li.append(renderMediaRefusal(m.failure));
  return li;
}

/** An internal note: staff only, never sent to the customer. */
function renderNote(n) {
  const kindText = n.kind === "transfer" ? "Transfer note" : n.kind === "system" ? "System note" : "Internal note";
  const li = h("li", { class: `note note-${n.kind || "note"}`, dataset: { id: n.id }, attrs: { "aria-label": kindText } });
  const author = n.author ? agentName(n.author) : "";
  const bubble = h(
    "div",
    { class: "note-bubble" },
    h("div", { class: "sender" }, h("span", { class: "note-kind", text: kindText }), author ? ` · ${author}` : "", " · not visible to the customer"),
    h("p", { class: "body", text: n.body || "" }),
  );
  const d = n.data || {};
  if (n.kind === "transfer") {
    const to = d.to_agent ? agentName(d.to_agent) : d.to_queue ? queueName(d.to_queue) : "";
    if (to) bubble.append(h("p", { class: "note-data", text: `Transferred to ${to}` }));
  }
  bubble.append(h("div", { class: "meta" }, timeEl(n.created_at)));
  li.append(bubble);
  return li;
}

function queueName(id) {
  const q = state.queues.get(id);
  return q ? q.name : "a queue";
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

function renderFailure(failure, m) {
  const f = failure || {};
  const parts = [];
  if (f.class) parts.push(FAILURE_CLASS_TEXT[f.class] || f.class);
  if (f.code) parts.push(`code ${f.code}`);
  const p = h(
    "p",
    { class: "failure", attrs: { role: "note" } },
    h("strong", { text: "Not delivered: " }),
    f.reason || "the channel refused this message",
    parts.length ? ` (${parts.join(", ")})` : "",
  );
  if (m && canRetry(m, f)) {
    p.append(
      " ",
      h("button", {
        class: "secondary retry",
        attrs: { type: "button" },
        text: f.class === "needs_template" && m.content && m.content.type !== "template" ? "Send a template…" : "Send again",
        on: { click: (ev) => retrySend(ev.currentTarget, m, f) },
      }),
    );
  }
  return p;
}

/**
 * Whether "send again" is offered for a failed message: outbound ones the desk can
 * send (text, templates, media). The server re-checks every rule (window, reachability,
 * consent) and says why when it refuses.
 */
function canRetry(m, f) {
  if (m.direction !== "outbound" || m.status !== "failed") return false;
  const t = (m.content || {}).type;
  return t === "text" || t === "template" || t === "media";
}

/**
 * Sends the SAME failed message again (`POST …/messages/{id}/retry`): it goes back to
 * `queued` under its own id, so the history keeps one message. Free-form text that failed
 * because the WhatsApp window closed can only be followed by a template: the template
 * picker opens instead.
 */
async function retrySend(btn, m, f) {
  if (f.class === "needs_template" && (m.content || {}).type !== "template") {
    showTemplateForm("The 24-hour window is closed.");
    return;
  }
  const id = state.selectedId;
  btn.disabled = true;
  try {
    const data = await api(
      "POST",
      `/api/v1/conversations/${encodeURIComponent(id)}/messages/${encodeURIComponent(m.id)}/retry`,
    );
    if (data && data.message) applyMessageStatus({ conversation_id: id, message_id: m.id, status: "queued" });
    btn.textContent = "Sent again";
  } catch (e) {
    btn.disabled = false;
    if (e.status === 401) return;
    if (e.code === "template_required") showTemplateForm(e.message);
    else showConvError(`Not sent again: ${e.message}`);
  }
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

$("resolve").addEventListener("click", () => openResolve());
$("take").addEventListener("click", () => takeSelected());
$("transfer-open").addEventListener("click", () => openTransfer());
$("reopen").addEventListener("click", () => conversationAction("reopen", "Couldn't reopen"));

/** POST /api/v1/conversations/{id}/{action}; shows the answer's reason when refused. */
async function conversationAction(action, failText, body) {
  const id = state.selectedId;
  if (!id) return null;
  $("conv-error").hidden = true;
  try {
    const data = await api("POST", `/api/v1/conversations/${encodeURIComponent(id)}/${action}`, body);
    if (data && data.conversation) applyConversation(data.conversation);
    scheduleInbox();
    return data;
  } catch (e) {
    if (e.status !== 401) showConvError(`${failText}: ${e.message}`);
    return null;
  }
}

async function takeSelected() {
  const conv = currentConversation();
  if (!conv || conv.state !== "queued") return;
  const data = await conversationAction("take", "Couldn't take it");
  if (data) announce("You took the conversation.");
}

function closeDialogs() {
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
}
for (const b of document.querySelectorAll("dialog [data-close]")) {
  b.addEventListener("click", () => b.closest("dialog").close());
}

// Transfer: to an available colleague or to a queue, with an internal note.
function openTransfer() {
  const conv = currentConversation();
  if (!conv || conv.state === "resolved") return;
  const sel = $("transfer-target");
  clear(sel);
  const agents = h("optgroup", { attrs: { label: "Agents" } });
  for (const a of [...state.agents.values()].sort((x, y) => x.name.localeCompare(y.name))) {
    if (a.user_id === conv.assignee) continue;
    const load = `${a.load ?? 0}/${a.capacity ?? "?"}`;
    agents.append(h("option", { attrs: { value: `agent:${a.user_id}` }, text: `${a.name} (${a.presence}, ${load})` }));
  }
  const queues = h("optgroup", { attrs: { label: "Queues" } });
  for (const q of [...state.queues.values()].sort((x, y) => x.name.localeCompare(y.name))) {
    queues.append(h("option", { attrs: { value: `queue:${q.id}` }, text: `Queue: ${q.name}` }));
  }
  sel.append(agents, queues);
  $("transfer-note").value = "";
  $("transfer-error").hidden = true;
  $("transfer-dialog").showModal();
  sel.focus();
}

$("transfer-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const value = $("transfer-target").value;
  if (!value) return;
  const [kind, target] = value.split(":");
  const body = kind === "agent" ? { to_agent: target } : { to_queue: target };
  const note = $("transfer-note").value.trim();
  if (note) body.note = note;
  const id = state.selectedId;
  const btn = $("transfer-submit");
  btn.disabled = true;
  try {
    const data = await api("POST", `/api/v1/conversations/${encodeURIComponent(id)}/transfer`, body);
    $("transfer-dialog").close();
    if (data && data.conversation) applyConversation(data.conversation);
    announce(kind === "agent" ? `Transferred to ${agentName(target)}.` : `Transferred to queue ${queueName(target)}.`);
    scheduleInbox();
  } catch (e) {
    if (e.status !== 401) {
      $("transfer-error").textContent = e.message;
      $("transfer-error").hidden = false;
    }
  } finally {
    btn.disabled = false;
  }
});

// Resolve: the queue says which wrap-up codes exist and whether one is required.
function openResolve() {
  const conv = currentConversation();
  if (!conv || conv.state === "resolved") return;
  const routing = (state.selected && state.selected.routing) || (state.convs.get(conv.id) || {}).routing || {};
  const q = routing.queue ? state.queues.get(routing.queue) : null;
  const settings = (q && q.settings) || {};
  const codes = settings.wrap_up_codes || [];
  const required = !!settings.wrap_up_required;
  const sel = $("wrap-up");
  clear(sel);
  if (!required || !codes.length) sel.append(h("option", { attrs: { value: "" }, text: codes.length ? "(none)" : "No wrap-up codes for this queue" }));
  else sel.append(h("option", { attrs: { value: "", disabled: true, selected: true }, text: "Choose a wrap-up code" }));
  for (const c of codes) sel.append(h("option", { attrs: { value: c }, text: c.replace(/_/g, " ") }));
  sel.required = required && codes.length > 0;
  $("wrap-up-required").textContent = sel.required ? `(required for ${q.name})` : "(optional)";
  $("resolve-error").hidden = true;
  $("resolve-dialog").showModal();
  sel.focus();
}

$("resolve-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const code = $("wrap-up").value;
  if ($("wrap-up").required && !code) {
    $("resolve-error").textContent = "Choose a wrap-up code: this queue requires one.";
    $("resolve-error").hidden = false;
    return;
  }
  const id = state.selectedId;
  const btn = $("resolve-submit");
  btn.disabled = true;
  try {
    const data = await api("POST", `/api/v1/conversations/${encodeURIComponent(id)}/resolve`, code ? { wrap_up_code: code } : {});
    $("resolve-dialog").close();
    if (data && data.conversation) applyConversation(data.conversation);
    announce("Conversation resolved.");
    scheduleInbox();
  } catch (e) {
    if (e.status !== 401) {
      $("resolve-error").textContent = e.message;
      $("resolve-error").hidden = false;
    }
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
  const asNote = composerMode() === "note";
  try {
    if (asNote) {
      const data = await api("POST", `/api/v1/conversations/${encodeURIComponent(id)}/notes`, { body: text });
      if (state.selectedId === id && ta.value === text) ta.value = "";
      if (data && data.note) applyNote(data.note);
      setComposerMode("reply");
    } else {
      const data = await api("POST", `/api/v1/conversations/${encodeURIComponent(id)}/messages`, { text });
      // Only clear what was sent (the agent may have kept typing).
      if (state.selectedId === id && ta.value === text) ta.value = "";
      if (data && data.message) applyMessageCreated(data.message);
    }
    state.drafts.delete(id);
  } catch (e) {
    if (e.status === 401) return;
    if (e.code === "template_required") showTemplateForm(e.message);
    else showConvError(`${asNote ? "Note not saved" : "Not sent"}: ${e.message}`);
  } finally {
    btn.disabled = false;
  }
}

$("composer-text").addEventListener("keydown", (ev) => {
  if (cannedKey(ev)) return;
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
  if (document.querySelector("dialog[open]")) return;
  if (ev.key === "j" || ev.key === "k") {
    ev.preventDefault();
    moveSelection(ev.key === "j" ? 1 : -1);
  } else if (ev.key === "r" || ev.key === "n") {
    if (!$("conversation").hidden && !$("composer").hidden) {
      ev.preventDefault();
      setComposerMode(ev.key === "n" ? "note" : "reply");
      $("composer-text").focus();
    }
  } else if (ev.key === "e") {
    ev.preventDefault();
    openResolve();
  } else if (ev.key === "t") {
    ev.preventDefault();
    takeSelected();
  } else if (ev.key === "x") {
    ev.preventDefault();
    openTransfer();
  } else if (ev.key === "?") {
    ev.preventDefault();
    $("help-dialog").showModal();
  } else if (ev.key === "/") {
    ev.preventDefault();
    if (state.mode !== "desk") showDeskMode();
    $("inbox-search").focus();
  } else if (ev.key === "s" && isSupervisor()) {
    ev.preventDefault();
    if (state.mode === "desk") showSupervisor();
    else showDeskMode();
  } else if (/^[1-5]$/.test(ev.key)) {
    ev.preventDefault();
    setView(["mine", "my_queues", "unassigned", "all", "resolved"][Number(ev.key) - 1]);
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
  offline: false, // the browser said the network is gone (see the `offline` listener)
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
    if (live.stopped || live.offline) return;
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

// The browser lost the network: drop the socket rather than let it hang half-open, and
// come back at once when the network does. The reconnect names the last event applied, so
// whatever happened meanwhile is replayed (none missing, none doubled), without a reload.
window.addEventListener("offline", () => {
  if (live.stopped) return;
  live.offline = true;
  clearTimeout(live.timer);
  if (live.ws) {
    const ws = live.ws;
    live.ws = null;
    ws.close();
  }
  setLive("offline", "offline");
});
window.addEventListener("online", () => {
  if (!live.offline) return;
  live.offline = false;
  live.attempt = 0;
  if (!live.stopped) connectEvents();
});

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
      if (data.conversation) {
        const before = state.convs.get(data.conversation.id);
        applyConversation(data.conversation);
        if (isMine(data.conversation) && !(before && isMine(before))) {
          announce(`New conversation assigned to you: ${data.conversation.contact_name || "a visitor"}.`);
        }
      }
      scheduleInbox();
      scheduleSupervisor();
      break;
    case "note_added":
      if (data.note) applyNote(data.note);
      break;
    case "agent_changed":
      if (data.agent) applyAgent(data.agent);
      scheduleSupervisor();
      break;
    case "queue_changed":
      loadRoutingData();
      scheduleSupervisor();
      break;
    case "sla_alert":
      scheduleInbox();
      scheduleSupervisor();
      break;
    case "typing":
      if (data.conversation_id === state.selectedId) showCustomerTyping();
      break;
    default:
      break; // newer server, older page: ignore what we don't know
  }
}

function applyMessageCreated(m) {
  if (m.conversation_id === state.selectedId && m.direction === "inbound") hideCustomerTyping();
  if (m.conversation_id === state.selectedId) {
    const isNew = !state.messages.has(m.id);
    const stored = mergeMessage(m);
    showMessage(stored);
    if (isNew && m.direction === "inbound") announce(`New message: ${previewOf(m.content)}`);
  }
  const conv = state.convs.get(m.conversation_id);
  if (conv) {
    const newer = activityOf(conv) <= (parseTime(m.created_at) || 0);
    if (newer) {
      upsertRow({ ...conv, last_message_at: m.created_at, last_message_preview: previewOf(m.content) });
    }
  } else if (!state.notInView.has(m.conversation_id)) {
    scheduleInbox();
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

// ---------------------------------------------------------------- typing

/** "Customer is typing…" under the messages for 6 s, or until their message arrives. */
let customerTypingTimer = null;
function showCustomerTyping() {
  const el = $("typing-indicator");
  el.textContent = "Customer is typing…";
  el.hidden = false;
  clearTimeout(customerTypingTimer);
  customerTypingTimer = setTimeout(hideCustomerTyping, 6000);
}

function hideCustomerTyping() {
  clearTimeout(customerTypingTimer);
  $("typing-indicator").hidden = true;
}

/**
 * Tells the customer the agent is typing (`POST …/typing`) where the channel can show it:
 * at most once every 4 s per page (the server throttles to 5 s per conversation), never
 * for internal notes, and failures are ignored (typing is best effort).
 */
const agentTyping = { at: 0, conv: null, unsupported: new Set() };
function tellTyping() {
  const id = state.selectedId;
  const mode = $("composer").dataset.mode;
  if (!id || mode === "note" || !$("composer-text").value.trim()) return;
  if (agentTyping.unsupported.has(id)) return; // the channel cannot show it: stop asking
  const now = Date.now();
  if (agentTyping.conv === id && now - agentTyping.at < 4000) return;
  agentTyping.conv = id;
  agentTyping.at = now;
  api("POST", `/api/v1/conversations/${encodeURIComponent(id)}/typing`)
    .then((d) => {
      if (d && d.typing === "unsupported") agentTyping.unsupported.add(id);
    })
    .catch(() => {});
}

$("composer-text").addEventListener("input", tellTyping);

// ---------------------------------------------------------------- announcements

/** Says `text` to screen readers (aria-live region), once. */
function announce(text) {
  const el = $("announcer");
  el.textContent = "";
  // A new text node in a fresh task is announced even when the text repeats.
  setTimeout(() => {
    el.textContent = text;
  }, 50);
}

// ---------------------------------------------------------------- composer modes

function composerMode() {
  return $("composer").dataset.mode || "reply";
}

/** Reply (sent to the customer) or internal note (staff only), with wording that says so. */
function setComposerMode(mode) {
  const form = $("composer");
  form.dataset.mode = mode;
  for (const r of form.querySelectorAll('input[name="composer-mode"]')) r.checked = r.value === mode;
  const note = mode === "note";
  $("composer-label").textContent = note ? "Internal note (never sent to the customer)" : "Reply to the customer";
  $("composer-text").placeholder = note
    ? "Internal note for your team: the customer never sees it…"
    : "Write a reply… (Enter to send, Shift+Enter for a new line)";
  $("composer-send").textContent = note ? "Add note" : "Send";
}

for (const r of document.querySelectorAll('input[name="composer-mode"]')) {
  r.addEventListener("change", () => {
    if (r.checked) setComposerMode(r.value);
  });
}

// ---------------------------------------------------------------- canned responses

const canned = { open: false, items: [], index: 0, start: -1 };

async function loadCanned() {
  try {
    state.canned = (await api("GET", "/api/v1/canned-responses")).canned_responses || [];
  } catch {
    state.canned = [];
  }
}

/** The `/word` being typed at the caret (at the start or after a space), or null. */
function slashToken(ta) {
  const upto = ta.value.slice(0, ta.selectionStart);
  const m = /(^|\s)\/([a-z0-9_-]*)$/i.exec(upto);
  if (!m) return null;
  return { start: upto.length - m[2].length - 1, word: m[2].toLowerCase() };
}

$("composer-text").addEventListener("input", () => {
  const tok = slashToken($("composer-text"));
  if (!tok) {
    closeCanned();
    return;
  }
  const items = state.canned.filter(
    (c) => c.shortcut.toLowerCase().includes(tok.word) || c.title.toLowerCase().includes(tok.word),
  );
  if (!items.length) {
    closeCanned();
    return;
  }
  canned.open = true;
  canned.items = items;
  canned.start = tok.start;
  canned.index = Math.min(canned.index, items.length - 1);
  renderCanned();
});

function renderCanned() {
  const list = $("canned-list");
  clear(list);
  canned.items.forEach((c, i) => {
    const li = h(
      "li",
      {
        class: `canned${i === canned.index ? " active" : ""}`,
        attrs: { role: "option", id: `canned-${i}`, "aria-selected": String(i === canned.index) },
        on: {
          mousedown: (ev) => {
            ev.preventDefault();
            canned.index = i;
            chooseCanned();
          },
        },
      },
      h("span", { class: "canned-shortcut", text: `/${c.shortcut}` }),
      h("span", { class: "canned-title", text: c.title }),
      h("span", { class: "canned-body", text: c.body }),
    );
    list.append(li);
  });
  list.hidden = false;
  $("composer-text").setAttribute("aria-expanded", "true");
  $("composer-text").setAttribute("aria-activedescendant", `canned-${canned.index}`);
}

function closeCanned() {
  canned.open = false;
  canned.items = [];
  canned.index = 0;
  $("canned-list").hidden = true;
  $("composer-text").setAttribute("aria-expanded", "false");
  $("composer-text").removeAttribute("aria-activedescendant");
}

/** Arrow keys, Enter/Tab and Escape while the canned list is open; true when handled. */
function cannedKey(ev) {
  if (!canned.open) return false;
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    const n = canned.items.length;
    canned.index = (canned.index + (ev.key === "ArrowDown" ? 1 : n - 1)) % n;
    renderCanned();
    return true;
  }
  if ((ev.key === "Enter" && !ev.shiftKey) || ev.key === "Tab") {
    ev.preventDefault();
    chooseCanned();
    return true;
  }
  if (ev.key === "Escape") {
    ev.preventDefault();
    closeCanned();
    return true;
  }
  return false;
}

/** Fills the chosen response's variables on the server and puts the text in place of `/word`. */
async function chooseCanned() {
  const c = canned.items[canned.index];
  const start = canned.start;
  closeCanned();
  if (!c || !state.selectedId) return;
  const ta = $("composer-text");
  let text = c.body;
  try {
    const r = await api("POST", `/api/v1/canned-responses/${encodeURIComponent(c.id)}/render`, {
      conversation_id: state.selectedId,
    });
    text = r.text;
    if (r.missing && r.missing.length) announce(`Fill in by hand: ${r.missing.join(", ")} (selected).`);
  } catch (e) {
    if (e.status !== 401) showConvError(`Couldn't fill in the canned response: ${e.message}`);
  }
  const end = ta.selectionStart;
  ta.value = ta.value.slice(0, start) + text + ta.value.slice(Math.max(end, start));
  ta.focus();
  // A variable without a value stays as written: select the first one so typing replaces it.
  const hole = /\{\{[a-z_.]+\}\}/.exec(text);
  if (hole) ta.setSelectionRange(start + hole.index, start + hole.index + hole[0].length);
  else ta.setSelectionRange(start + text.length, start + text.length);
}

// ---------------------------------------------------------------- WhatsApp templates

/** The 24-hour window is closed: only a template may go out. */
function showTemplateForm(why) {
  const reason = String(why || "").trim().replace(/([^.!?])$/, "$1.");
  $("template-why").textContent = `${reason} Send an approved template instead; the customer's answer reopens the window.`;
  $("template-form").hidden = false;
  loadTemplates();
  $("template-pick").focus();
}

/**
 * Fills the picker with the channel's approved templates
 * (`GET /api/v1/channels/{id}/templates`); when they cannot be listed the agent can still
 * type a name. Picking one fills the name and language and shows its text.
 */
const templateState = { list: [], channel: null };
async function loadTemplates() {
  const conv = currentConversation();
  const pick = $("template-pick");
  const channel = conv && conv.channel_id;
  if (!channel) return;
  if (templateState.channel === channel && templateState.list.length) return;
  clear(pick);
  pick.append(h("option", { attrs: { value: "" }, text: "Loading templates…" }));
  let list = [];
  let problem = null;
  try {
    const data = await api("GET", `/api/v1/channels/${encodeURIComponent(channel)}/templates`);
    list = (data && data.templates) || [];
  } catch (e) {
    if (e.status === 401) return;
    problem = e.message;
  }
  if ((currentConversation() || {}).channel_id !== channel) return; // moved on meanwhile
  templateState.list = list;
  templateState.channel = channel;
  clear(pick);
  const first = problem
    ? `Templates could not be listed (${problem}); type a name below`
    : list.length
      ? "Choose a template…"
      : "No approved templates; type a name below";
  pick.append(h("option", { attrs: { value: "" }, text: first }));
  list.forEach((t, i) => {
    pick.append(h("option", { attrs: { value: String(i) }, text: `${t.name} (${t.language})` }));
  });
  const names = $("template-names");
  clear(names);
  for (const t of list) names.append(h("option", { attrs: { value: t.name } }));
}

$("template-pick").addEventListener("change", () => {
  const t = templateState.list[Number($("template-pick").value)];
  const body = $("template-body");
  if (!$("template-pick").value || !t) {
    body.hidden = true;
    return;
  }
  $("template-name").value = t.name;
  $("template-language").value = t.language;
  body.textContent = t.body || "(no body text)";
  body.hidden = false;
  const vars = $("template-vars");
  vars.rows = Math.max(2, t.variables);
  vars.placeholder = t.variables
    ? Array.from({ length: t.variables }, (_, i) => `value of {{${i + 1}}}`).join("\n")
    : "no variables";
});

$("template-cancel").addEventListener("click", () => {
  $("template-form").hidden = true;
  $("composer-text").focus();
});

$("template-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = state.selectedId;
  const name = $("template-name").value.trim();
  const language = $("template-language").value.trim();
  if (!id || !name || !language) return;
  const variables = $("template-vars").value.split("\n").map((v) => v.trim()).filter(Boolean);
  const btn = $("template-send");
  btn.disabled = true;
  try {
    const data = await api("POST", `/api/v1/conversations/${encodeURIComponent(id)}/messages`, {
      template: { name, language, variables },
    });
    $("template-form").hidden = true;
    if (data && data.message) applyMessageCreated(data.message);
  } catch (e) {
    if (e.status !== 401) $("template-why").textContent = `Template not sent: ${e.message}`;
  } finally {
    btn.disabled = false;
  }
});

// ---------------------------------------------------------------- presence, agents, queues

$("presence").addEventListener("change", async () => {
  const sel = $("presence");
  const presence = sel.value;
  $("presence-error").hidden = true;
  try {
    const data = await api("PUT", "/api/v1/me/presence", { presence });
    if (data && data.agent) applyAgent(data.agent);
    announce(`You are ${presence}.`);
    scheduleInbox();
  } catch (e) {
    if (e.status === 401) return;
    $("presence-error").textContent = `Couldn't change your status: ${e.message}`;
    $("presence-error").hidden = false;
    showMyPresence();
  }
});

function showMyPresence() {
  const me = state.me && state.agents.get(state.me.user.id);
  const p = (me && me.presence) || "offline";
  $("presence").value = p;
  $("presence").dataset.presence = p;
}

/** Agents (names, presence, load) and queues (names, wrap-up codes) for the desk. */
async function loadRoutingData() {
  try {
    const [agents, queues] = await Promise.all([api("GET", "/api/v1/agents"), api("GET", "/api/v1/queues")]);
    state.agents.clear();
    for (const a of agents.agents || []) state.agents.set(a.user_id, a);
    state.queues.clear();
    for (const q of queues.queues || []) state.queues.set(q.id, q);
    showMyPresence();
    renderInbox();
    scheduleCounts();
  } catch {
    // The desk still works without names; the next event retries.
  }
}

/** `agent_changed` carries AgentSettings: merge them into what we know. */
function applyAgent(settings) {
  const old = state.agents.get(settings.user_id);
  if (old) state.agents.set(settings.user_id, { ...old, ...settings });
  else loadRoutingData();
  if (state.me && settings.user_id === state.me.user.id) showMyPresence();
}

function applyNote(n) {
  if (n.conversation_id !== state.selectedId) return;
  const isNew = !state.notes.has(n.id);
  state.notes.set(n.id, n);
  renderMessages();
  if (isNew) announce("New internal note.");
}

// ---------------------------------------------------------------- contact panel

const CONSENT_TEXT = { opted_in: "agreed to messages", opted_out: "asked to stop" };

/** Identities on every channel, consent, what the bot collected, routing, history. */
function renderContactPanel(detail, token) {
  const panel = $("contact-panel");
  panel.hidden = false;
  const contact = detail.contact || {};
  $("contact-name").textContent = contact.name || (detail.conversation && detail.conversation.contact_name) || "Visitor";
  const ids = $("contact-identities");
  clear(ids);
  for (const i of detail.identities || []) {
    ids.append(
      h(
        "li",
        {},
        h("span", { class: "tag channel", text: i.kind }),
        " ",
        i.phone || i.external_id || "",
        i.unreachable ? h("span", { class: "tag sla-breach", text: `unreachable: ${i.unreachable}` }) : null,
      ),
    );
  }
  renderBot(detail);
  const dl = $("contact-routing");
  clear(dl);
  const r = detail.routing || {};
  const add = (k, v) => {
    if (v === null || v === undefined || v === "") return;
    dl.append(h("dt", { text: k }), h("dd", { text: String(v) }));
  };
  if (r.queue) add("Queue", queueName(r.queue));
  if (r.priority) add("Priority", r.priority);
  const skills = Object.entries(r.required_skills || {}).map(([k, v]) => `${k} ≥ ${v}`).join(", ");
  add("Skills", skills);
  if (r.last_agent) add("Last agent", agentName(r.last_agent));
  if (r.wrap_up_code) add("Wrap-up", r.wrap_up_code);
  loadContactExtras(contact.id, token);
}

function renderBot(detail) {
  const box = $("contact-bot");
  clear(box);
  const s = detail.bot_summary;
  if (s) {
    if (s.summary) box.append(h("p", { class: "bot-summary", text: s.summary }));
    const facts = [s.flow && `flow ${s.flow}`, s.queue && `queue ${s.queue}`, s.skill && `skill ${s.skill}`].filter(Boolean);
    if (facts.length) box.append(h("p", { class: "muted", text: facts.join(" · ") }));
  }
  for (const rec of detail.records || []) {
    const dl = h("dl", { class: "panel-dl record" });
    dl.append(h("dt", { class: "record-kind", text: rec.kind }), h("dd", { text: "" }));
    const data = rec.data && typeof rec.data === "object" ? rec.data : { value: rec.data };
    for (const [k, v] of Object.entries(data)) {
      if (v === null || v === undefined || v === "") continue;
      dl.append(h("dt", { text: k.replace(/_/g, " ") }), h("dd", { text: typeof v === "object" ? JSON.stringify(v) : String(v) }));
    }
    box.append(dl);
  }
  if (!box.firstChild) box.append(h("p", { class: "muted", text: "Nothing collected." }));
}

async function loadContactExtras(contactId, token) {
  if (!contactId) return;
  const [contact, consents] = await Promise.allSettled([
    api("GET", `/api/v1/contacts/${encodeURIComponent(contactId)}`),
    api("GET", `/api/v1/contacts/${encodeURIComponent(contactId)}/consents`),
  ]);
  if (token !== state.loadToken) return;
  const hist = $("contact-history");
  clear(hist);
  if (contact.status === "fulfilled") {
    for (const c of contact.value.conversations || []) {
      const current = c.id === state.selectedId;
      hist.append(
        h(
          "li",
          { class: current ? "current" : "" },
          h(
            "button",
            {
              class: "link-button",
              attrs: { type: "button", "aria-current": current ? "true" : false },
              on: { click: () => selectConversation(c.id) },
            },
            h("span", { class: "tag channel", text: c.channel_kind }),
            " ",
            h("span", { class: `tag state state-${c.state}`, text: c.state }),
            " ",
            c.last_message_preview || "",
            " ",
            timeEl(c.last_message_at || c.created_at),
          ),
        ),
      );
    }
  }
  const cons = $("contact-consent");
  clear(cons);
  if (consents.status === "fulfilled") {
    const latest = new Map();
    for (const c of consents.value.consents || []) latest.set(c.channel_id, c);
    for (const c of latest.values()) {
      cons.append(h("li", {}, h("span", { class: `tag consent-${c.status}`, text: CONSENT_TEXT[c.status] || c.status }), " ", c.wording ? `“${c.wording}”` : "", " ", timeEl(c.at)));
    }
    if (!latest.size) cons.append(h("li", { class: "muted", text: "No consent recorded." }));
  } else {
    cons.append(h("li", { class: "muted", text: "Consent not available." }));
  }
}

// ---------------------------------------------------------------- supervisor view

const sup = { timer: null, tick: null, token: 0 };

$("open-supervisor").addEventListener("click", () => showSupervisor());
$("open-desk").addEventListener("click", () => showDeskMode());
$("open-help").addEventListener("click", () => $("help-dialog").showModal());

function showSupervisor() {
  if (!isSupervisor()) return;
  state.mode = "supervisor";
  $("desk").hidden = true;
  $("supervisor-view").hidden = false;
  $("open-supervisor").hidden = true;
  $("open-desk").hidden = false;
  if (location.pathname !== "/supervisor") history.replaceState(null, "", "/supervisor");
  loadSupervisor();
  clearInterval(sup.tick);
  // Waits grow without events: refresh the figures every 15 seconds while shown.
  sup.tick = setInterval(loadSupervisor, 15000);
}

function showDeskMode() {
  state.mode = "desk";
  clearInterval(sup.tick);
  $("supervisor-view").hidden = true;
  $("desk").hidden = false;
  $("open-supervisor").hidden = !isSupervisor();
  $("open-desk").hidden = true;
  if (location.pathname !== "/agent") history.replaceState(null, "", "/agent");
}

function scheduleSupervisor() {
  if (state.mode !== "supervisor") return;
  clearTimeout(sup.timer);
  sup.timer = setTimeout(loadSupervisor, 300);
}

function duration(secs) {
  const s = Math.max(0, Math.round(Number(secs) || 0));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

async function loadSupervisor() {
  const token = ++sup.token;
  try {
    const [v, all] = await Promise.all([
      api("GET", "/api/v1/supervisor?hours=8"),
      api("GET", "/api/v1/desk/conversations?view=all&limit=500").catch(() => ({ conversations: [] })),
    ]);
    if (token !== sup.token) return;
    sup.rows = new Map((all.conversations || []).map((c) => [c.id, c]));
    $("sup-error").hidden = true;
    renderSupervisor(v);
  } catch (e) {
    if (token !== sup.token || e.status === 401) return;
    $("sup-error").textContent = `Couldn't load the figures: ${e.message}`;
    $("sup-error").hidden = false;
  }
}

function renderSupervisor(v) {
  $("sup-updated").textContent = `Updated ${new Date(v.at).toLocaleTimeString()}`;
  const qb = $("sup-queues").tBodies[0];
  clear(qb);
  for (const q of v.queues || []) {
    qb.append(
      h(
        "tr",
        { dataset: { queue: q.name } },
        h("th", { attrs: { scope: "row" }, text: q.name }),
        h("td", { class: `hours${q.open ? "" : " warn"}`, text: q.open ? "open" : "closed" }),
        h("td", { class: `num waiting${q.waiting ? " hot" : ""}`, text: String(q.waiting) }),
        h("td", { class: "num longest", text: q.waiting ? duration(q.longest_wait_secs) : "–" }),
        h("td", { class: "num assigned", text: String(q.assigned || 0) }),
        h("td", { class: `num risk${q.sla_at_risk ? " warn" : ""}`, text: String(q.sla_at_risk) }),
        h("td", { class: `num breached${q.sla_breached ? " bad" : ""}`, text: String(q.sla_breached) }),
        h("td", { class: "num", text: String(q.agents_available) }),
      ),
    );
  }
  const by = v.agents_by_state || {};
  $("sup-by-state").textContent = `· ${by.available || 0} available, ${by.away || 0} away, ${by.offline || 0} offline`;
  const ab = $("sup-agents").tBodies[0];
  clear(ab);
  for (const a of v.agents || []) {
    state.agents.set(a.user_id, a);
    const convCell = h("td", { class: "sup-convs" });
    for (const cid of a.conversations || []) convCell.append(reassignControl(cid, a, v.agents));
    if (!(a.conversations || []).length) convCell.append("–");
    ab.append(
      h(
        "tr",
        { dataset: { agent: a.name } },
        h("th", { attrs: { scope: "row" }, text: `${a.name} (${a.role})` }),
        h("td", {}, h("span", { class: `presence-dot presence-${a.presence}`, text: a.presence })),
        h("td", { class: "num", text: `${a.load}/${a.capacity}` }),
        convCell,
      ),
    );
  }
  renderChart(v.history || []);
}

/** A conversation of an agent, with a select to hand it to someone else (reassign). */
function reassignControl(cid, owner, agents) {
  const wrap = h("div", { class: "reassign" });
  const row = sup.rows && sup.rows.get(cid);
  const who = row ? `${row.contact_name || "Visitor"} (${row.channel_kind})` : `…${cid.slice(-6)}`;
  const label = `Reassign ${who} from ${owner.name}`;
  const open = h("button", {
    class: "link-button",
    attrs: { type: "button", title: "Open on the desk" },
    text: who,
    on: {
      click: () => {
        showDeskMode();
        selectConversation(cid);
      },
    },
  });
  const sel = h("select", { attrs: { "aria-label": label } }, h("option", { attrs: { value: "" }, text: "Reassign to…" }));
  for (const a of agents) {
    if (a.user_id === owner.user_id) continue;
    sel.append(h("option", { attrs: { value: a.user_id }, text: `${a.name} (${a.presence}, ${a.load}/${a.capacity})` }));
  }
  sel.addEventListener("change", async () => {
    if (!sel.value) return;
    try {
      await api("POST", `/api/v1/conversations/${encodeURIComponent(cid)}/transfer`, {
        to_agent: sel.value,
        note: "Reassigned by a supervisor",
      });
      announce("Conversation reassigned.");
      loadSupervisor();
    } catch (e) {
      if (e.status === 401) return;
      $("sup-error").textContent = `Couldn't reassign: ${e.message}`;
      $("sup-error").hidden = false;
      sel.value = "";
    }
  });
  wrap.append(open, " ", sel);
  return wrap;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Bars: conversations per hour; line: average wait (minutes), each on its own scale. */
function renderChart(history) {
  const box = $("sup-chart");
  clear(box);
  const W = 640;
  const H = 170;
  const pad = { l: 36, r: 76, t: 12, b: 28 };
  const n = Math.max(history.length, 1);
  const bw = (W - pad.l - pad.r) / n;
  const maxV = Math.max(1, ...history.map((x) => x.volume || 0));
  const maxW = Math.max(60, ...history.map((x) => x.average_wait_secs || 0));
  const y = (v, max) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  const total = history.reduce((s, x) => s + (x.volume || 0), 0);
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    class: "chart",
    "aria-label": `${total} conversations in the last ${history.length} hours; bars are volume per hour, the line is the average wait`,
  });
  root.append(svg("line", { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, class: "axis" }));
  root.append(svg("text", { x: 4, y: pad.t + 10, class: "axis-label" }, String(maxV)));
  root.append(svg("text", { x: W - pad.r + 4, y: pad.t + 10, class: "axis-label" }, duration(maxW)));
  const pts = [];
  history.forEach((x, i) => {
    const x0 = pad.l + i * bw;
    const top = y(x.volume || 0, maxV);
    const bar = svg("rect", { x: x0 + bw * 0.15, y: top, width: bw * 0.7, height: H - pad.b - top, class: "bar" });
    bar.append(svg("title", {}, `${new Date(x.hour).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ${x.volume} conversations, ${x.served ?? 0} served, average wait ${duration(x.average_wait_secs)}`));
    root.append(bar);
    pts.push(`${x0 + bw / 2},${y(x.average_wait_secs || 0, maxW)}`);
    root.append(svg("text", { x: x0 + bw / 2, y: H - 8, class: "axis-label", "text-anchor": "middle" }, new Date(x.hour).toLocaleTimeString([], { hour: "2-digit" })));
  });
  if (pts.length) root.append(svg("polyline", { points: pts.join(" "), class: "wait-line" }));
  box.append(root);
  box.append(h("p", { class: "chart-legend" }, h("span", { class: "legend-bar", text: "■ volume" }), "  ", h("span", { class: "legend-line", text: "— average wait" })));
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

// ---------------------------------------------------------------- attachments

// "Attach…" sends a file to the customer (POST …/attachments, multipart); the composer's
// text, if any, goes as its caption. Errors (size, type, closed WhatsApp window) show like
// a failed reply.
$("composer-attach").addEventListener("click", () => $("composer-file").click());
$("composer-file").addEventListener("change", async () => {
  const input = $("composer-file");
  const file = input.files && input.files[0];
  const id = state.selectedId;
  input.value = "";
  if (!file || !id) return;
  const btn = $("composer-attach");
  const ta = $("composer-text");
  const caption = composerMode() === "reply" ? ta.value : "";
  const form = new FormData();
  form.append("file", file, file.name);
  if (caption.trim()) form.append("caption", caption);
  btn.disabled = true;
  $("conv-error").hidden = true;
  try {
    const res = await fetch(`/api/v1/conversations/${encodeURIComponent(id)}/attachments`, {
      method: "POST",
      headers: { Accept: "application/json", "X-CSRF-Token": state.csrf || "" },
      credentials: "same-origin",
      body: form,
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const e = data.error || {};
      if (e.code === "template_required") showTemplateForm(e.message);
      else showConvError(`File not sent: ${e.message || `HTTP ${res.status}`}`);
      return;
    }
    if (state.selectedId === id && caption && ta.value === caption) ta.value = "";
    if (data.message) applyMessageCreated(data.message);
  } catch (e) {
    showConvError(`File not sent: ${e.message}`);
  } finally {
    btn.disabled = false;
  }
});
