// Switchboard web chat: the customer's side of a conversation.
//
// Protocol (docs/api.md, "Web chat"): over /chat/{channel_id}/ws the page sends
// `hello` with its stored token, gets `welcome` with the history, then sends
// `message` / `choice` frames, each with a client_msg_id. The server answers
// `accepted` once a frame is committed and pushes every message of the
// conversation. Unaccepted frames stay in a queue and are re-sent with the SAME
// client_msg_id after a reconnect; the server dedupes them.
//
// Everything the business or the customer wrote is put into the page as text
// only (see ../shared/render.js).

import { h, clear, timeEl, refreshTimes, renderContent, parseTime } from "/static/shared/render.js";

const $ = (id) => document.getElementById(id);

/** `/chat/{channel_id}` (optionally with a trailing slash or more segments). */
function channelIdFromPath(pathname) {
  const parts = pathname.split("/").filter(Boolean);
  const i = parts.indexOf("chat");
  const raw = i >= 0 ? parts[i + 1] : parts[parts.length - 1];
  try {
    return raw ? decodeURIComponent(raw) : "";
  } catch {
    return raw || "";
  }
}

const channelId = channelIdFromPath(location.pathname);
const tokenKey = `sb-chat-token-${channelId}`;

// localStorage can throw (privacy modes, storage disabled): the chat still works,
// it just won't resume after a reload.
function loadToken() {
  try {
    return localStorage.getItem(tokenKey);
  } catch {
    return null;
  }
}

function saveToken(token) {
  try {
    if (token) localStorage.setItem(tokenKey, token);
  } catch {
    // ignore
  }
}

function newClientMsgId() {
  if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // Fallback for old browsers / non-secure contexts: a v4 UUID from getRandomValues.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------- state

const state = {
  ws: null,
  ready: false, // welcome received on the current socket
  attempt: 0,
  timer: null,
  pingTimer: null,
  retryTimer: null,
  business: "",
  messages: new Map(), // server message id -> ChatMessage
  // Frames not yet accepted, oldest first: {cid, frame, el, inFlight}.
  outbox: [],
};

// ---------------------------------------------------------------- status line

function setStatus(kind, text) {
  const el = $("chat-status");
  el.dataset.state = kind;
  el.textContent = text;
}

// ---------------------------------------------------------------- rendering

function senderLabel(m) {
  if (m.direction === "inbound") return "You";
  const s = m.sender || {};
  switch (s.type) {
    case "bot":
      // Customers always learn that a bot is answering, whatever it is called.
      if (s.name && /automated/i.test(s.name)) return s.name;
      return s.name ? `${s.name} (automated)` : "Assistant (automated)";
    case "agent":
      return s.name || "Agent";
    case "system":
      return "";
    default:
      return state.business || "";
  }
}

function renderMessage(m) {
  const dir = m.direction === "inbound" ? "inbound" : "outbound";
  const senderType = (m.sender && m.sender.type) || "unknown";
  const li = h("li", {
    class: `message ${dir} sender-${senderType}`,
    dataset: { id: m.id, ts: m.created_at },
  });
  const bubble = h("div", { class: "bubble" });
  const label = senderLabel(m);
  if (label && dir === "outbound") bubble.append(h("div", { class: "sender", text: label }));
  bubble.append(renderContent(m.content, { audience: "customer", onChoice: dir === "outbound" ? pickChoice : null }));
  const file = dir === "outbound" ? attachment(m) : null;
  if (file) bubble.append(file);
  bubble.append(h("div", { class: "meta" }, timeEl(m.created_at)));
  li.append(bubble);
  return li;
}

// A file the business sent: fetched with this visitor's token (the URL answers only the
// visitor whose conversation it belongs to), shown as a picture or offered as a download.
function attachment(m) {
  const c = m.content || {};
  const media = c.type === "media" ? c.media || {} : null;
  if (!media || !media.stored_key) return null;
  const name = media.filename || "file";
  const mime = media.mime_type || "";
  const box = h("div", { class: "attachment" });
  const open = async () => {
    btn.disabled = true;
    try {
      const r = await fetch(`/chat/${encodeURIComponent(channelId)}/media/${encodeURIComponent(m.id)}`, {
        headers: { Authorization: `Bearer ${loadToken() || ""}` },
      });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const url = URL.createObjectURL(await r.blob());
      if (mime.startsWith("image/") && mime !== "image/svg+xml") {
        box.replaceChildren(h("img", { class: "attachment-image", attrs: { src: url, alt: name } }));
      } else {
        const a = h("a", { text: `Download ${name}`, attrs: { href: url, download: name } });
        box.replaceChildren(a);
        a.click();
      }
    } catch (e) {
      btn.disabled = false;
      btn.textContent = `Could not open ${name} (${e.message}); try again`;
    }
  };
  const label = mime.startsWith("image/") ? `Show picture ${name}` : `Download ${name}`;
  const btn = h("button", { class: "attachment-open", text: label, attrs: { type: "button" }, on: { click: open } });
  box.append(btn);
  return box;
}

function pendingElement(cid, content) {
  const li = h("li", { class: "message inbound pending", dataset: { clientMsgId: cid } });
  const bubble = h("div", { class: "bubble" });
  bubble.append(renderContent(content, { audience: "customer" }));
  bubble.append(h("div", { class: "meta" }, h("span", { class: "send-state", text: "sending…" })));
  li.append(bubble);
  return li;
}

function list() {
  return $("chat-messages");
}

function nearBottom() {
  const l = list();
  return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
}

function scrollToBottom() {
  const l = list();
  l.scrollTop = l.scrollHeight;
}

function findById(id) {
  return list().querySelector(`.message[data-id="${CSS.escape(id)}"]`);
}

/**
 * Shows a server message once, in time order, above the customer's pending bubbles
 * (those haven't reached the server yet, so they are the newest).
 */
function upsertMessage(m) {
  if (!m || !m.id) return;
  const stick = nearBottom();
  state.messages.set(m.id, m);
  const el = renderMessage(m);
  const existing = findById(m.id);
  if (existing) {
    existing.replaceWith(el);
  } else {
    const t = parseTime(m.created_at);
    let before = list().querySelector(".message.pending");
    for (const other of list().querySelectorAll(".message[data-id]")) {
      if (other.classList.contains("pending")) break;
      const ot = parseTime(other.dataset.ts);
      if (!Number.isNaN(t) && !Number.isNaN(ot) && t < ot) {
        before = other;
        break;
      }
    }
    list().insertBefore(el, before);
  }
  refreshMenus();
  if (stick || m.direction === "inbound") scrollToBottom();
}

/** A menu can be answered until the customer says something after it. */
function refreshMenus() {
  let customerSpokeAfter = false;
  const items = [...list().querySelectorAll(".message")];
  for (let i = items.length - 1; i >= 0; i--) {
    const el = items[i];
    if (el.classList.contains("inbound")) customerSpokeAfter = true;
    for (const b of el.querySelectorAll("button.choice")) b.disabled = customerSpokeAfter;
  }
}

// ---------------------------------------------------------------- sending

function enqueue(frame, content) {
  const cid = frame.client_msg_id;
  const el = pendingElement(cid, content);
  list().append(el);
  state.outbox.push({ cid, frame, el, inFlight: false });
  refreshMenus();
  scrollToBottom();
  flush();
}

/** Sends every queued frame that isn't on the wire yet (after welcome only). */
function flush() {
  if (!state.ready || !state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  for (const item of state.outbox) {
    if (item.inFlight) continue;
    try {
      state.ws.send(JSON.stringify(item.frame));
      item.inFlight = true;
    } catch {
      return; // socket closing: the close handler re-queues
    }
  }
}

function sendText() {
  const ta = $("chat-text");
  const text = ta.value;
  if (!text.trim()) return;
  ta.value = "";
  autosize();
  enqueue({ type: "message", client_msg_id: newClientMsgId(), text }, { type: "text", body: text });
}

function pickChoice(item, menu) {
  for (const b of menu.querySelectorAll("button")) b.disabled = true;
  enqueue(
    { type: "choice", client_msg_id: newClientMsgId(), id: item.id, title: item.title },
    { type: "choice_selected", id: item.id, title: item.title },
  );
}

function onAccepted(frame) {
  const i = state.outbox.findIndex((x) => x.cid === frame.client_msg_id);
  if (i < 0) return; // another tab's frame, or already handled
  const [item] = state.outbox.splice(i, 1);
  const el = item.el;
  if (frame.message_id && findById(frame.message_id)) {
    // The pushed copy of this message arrived first: keep that one.
    el.remove();
  } else {
    el.classList.remove("pending");
    if (frame.message_id) el.dataset.id = frame.message_id;
    el.dataset.ts = new Date().toISOString();
    const s = el.querySelector(".send-state");
    if (s) s.textContent = "sent";
  }
  refreshMenus();
}

/**
 * The server refused a frame. It answers the frames of one socket in order, one reply
 * each, so the error is about the oldest frame still on the wire.
 * - `unavailable`: not stored because of a server fault; the frame stays queued and is
 *   sent again shortly (same client_msg_id).
 * - anything else (`invalid_message`, ...): the message will never be accepted as is;
 *   it is marked "Not sent" with the server's reason.
 */
function onError(frame) {
  const text = frame.message || frame.code || "Something went wrong.";
  if (!state.ready) {
    setStatus("error", text);
    return;
  }
  const item = state.outbox.find((x) => x.inFlight);
  if (!item) {
    setStatus("error", text);
    return;
  }
  if (frame.code === "unavailable") {
    item.inFlight = false;
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(flush, 3000);
    return;
  }
  state.outbox.splice(state.outbox.indexOf(item), 1);
  item.el.classList.remove("pending");
  item.el.classList.add("failed");
  const s = item.el.querySelector(".send-state");
  if (s) s.textContent = `Not sent: ${text}`;
  refreshMenus();
}

// ---------------------------------------------------------------- connection

function onWelcome(frame, ws) {
  saveToken(frame.token);
  state.business = frame.business || "";
  const title = frame.title || frame.business || "Chat";
  $("chat-title").textContent = title;
  document.title = title;
  $("chat-privacy").textContent = `Messages are stored by ${frame.business || "the business"} to answer you.`;
  for (const m of frame.messages || []) upsertMessage(m);
  // Bubbles from an earlier socket that the history now shows were stored after all;
  // they stay queued anyway and the server's dedupe answers `accepted` for them.
  state.ready = true;
  state.attempt = 0;
  clearInterval(state.pingTimer);
  // Keep-alive, so proxies don't close an idle chat.
  state.pingTimer = setInterval(() => {
    if (state.ws === ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" }));
  }, 25000);
  setStatus("live", "Connected");
  flush();
  scrollToBottom();
}

function connect() {
  clearTimeout(state.timer);
  if (!channelId) {
    setStatus("error", "This chat link is incomplete.");
    return;
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let ws;
  try {
    ws = new WebSocket(`${proto}//${location.host}/chat/${encodeURIComponent(channelId)}/ws`);
  } catch {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  state.ready = false;
  setStatus(state.attempt ? "reconnecting" : "connecting", state.attempt ? "Reconnecting…" : "Connecting…");

  ws.addEventListener("open", () => {
    ws.send(JSON.stringify({ type: "hello", token: loadToken() }));
  });
  ws.addEventListener("message", (ev) => {
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    switch (frame.type) {
      case "welcome":
        onWelcome(frame, ws);
        break;
      case "accepted":
        onAccepted(frame);
        break;
      case "message":
        upsertMessage(frame.message);
        if (frame.message && frame.message.direction === "outbound") hideTyping();
        break;
      case "typing":
        showTyping(frame.name);
        break;
      case "error":
        onError(frame);
        break;
      case "pong":
        break;
      default:
        break;
    }
  });
  ws.addEventListener("close", () => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.ready = false;
    clearInterval(state.pingTimer);
    // Whatever was on the wire may or may not have been stored: send it again
    // with the same client_msg_id after the next welcome.
    for (const item of state.outbox) item.inFlight = false;
    setStatus("reconnecting", "Reconnecting…");
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  clearTimeout(state.timer);
  const base = Math.min(30000, 1000 * 2 ** Math.min(state.attempt, 5));
  const delay = base / 2 + Math.random() * (base / 2);
  state.attempt += 1;
  state.timer = setTimeout(connect, delay);
}

// Reconnect at once when the device comes back online or the tab is shown again.
window.addEventListener("online", () => {
  if (!state.ws) {
    state.attempt = 0;
    connect();
  }
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && !state.ws) connect();
});

// ---------------------------------------------------------------- composer

function autosize() {
  const ta = $("chat-text");
  ta.rows = Math.min(5, Math.max(1, ta.value.split("\n").length));
}

$("chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sendText();
  $("chat-text").focus();
});

$("chat-text").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    sendText();
  }
});

$("chat-text").addEventListener("input", () => {
  autosize();
  tellTyping();
});

// ---------------------------------------------------------------- typing

/**
 * Tells the agent the customer is typing: best effort, at most one frame every 4 s (the
 * server throttles too), and only on an open socket (never queued for later).
 */
let typingSentAt = 0;
function tellTyping() {
  const now = Date.now();
  if (!state.ready || !state.ws || now - typingSentAt < 4000 || !$("chat-text").value.trim()) return;
  typingSentAt = now;
  try {
    state.ws.send(JSON.stringify({ type: "typing" }));
  } catch {
    // The socket is closing: nothing to do, typing is not worth a retry.
  }
}

/** "<agent> is typing…" for 6 s, or until their message arrives. */
let typingTimer = null;
function showTyping(name) {
  const el = $("chat-typing");
  el.textContent = `${name || "The agent"} is typing…`;
  el.hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(hideTyping, 6000);
}

function hideTyping() {
  clearTimeout(typingTimer);
  $("chat-typing").hidden = true;
}

setInterval(() => refreshTimes(list()), 30000);

clear(list());
connect();
