// Shared rendering helpers for the agent desk and the customer chat.
//
// Customer content is untrusted: it is only ever put into the page as text
// (`textContent`, `createTextNode`) inside elements made with `createElement`.
// Nothing here parses HTML, and `src/lib.rs` has a test that fails if any asset
// starts doing so.

/**
 * Builds an element. `props` keys: `class`, `text`, `dataset` (object), `attrs`
 * (object, for fixed attribute names such as aria-*), `on` (event handlers).
 * Children may be nodes, strings (added as text) or null/undefined (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  if (props.text !== undefined && props.text !== null) el.textContent = String(props.text);
  if (props.dataset) {
    for (const [k, v] of Object.entries(props.dataset)) {
      if (v !== undefined && v !== null) el.dataset[k] = String(v);
    }
  }
  if (props.attrs) {
    for (const [k, v] of Object.entries(props.attrs)) {
      if (v === true) el.setAttribute(k, "");
      else if (v !== false && v !== undefined && v !== null) el.setAttribute(k, String(v));
    }
  }
  if (props.on) {
    for (const [k, fn] of Object.entries(props.on)) el.addEventListener(k, fn);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

/** Removes every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

// ---------------------------------------------------------------- time

const rtf =
  typeof Intl !== "undefined" && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })
    : null;

/** Milliseconds since the epoch for an RFC 3339 string, or NaN. */
export function parseTime(iso) {
  return iso ? Date.parse(iso) : NaN;
}

/** "just now", "5 min ago", "3 hours ago", "yesterday", then a short date. */
export function relativeTime(iso, now = Date.now()) {
  const t = parseTime(iso);
  if (Number.isNaN(t)) return "";
  const s = Math.round((t - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return "just now";
  if (!rtf) return new Date(t).toLocaleString();
  if (abs < 3600) return rtf.format(Math.round(s / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(s / 3600), "hour");
  if (abs < 7 * 86400) return rtf.format(Math.round(s / 86400), "day");
  return new Date(t).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
}

/** A `<time>` element that `refreshTimes` keeps up to date. */
export function timeEl(iso, className = "time") {
  const t = parseTime(iso);
  const el = h("time", {
    class: className,
    dataset: { ts: iso || "" },
    attrs: Number.isNaN(t) ? {} : { datetime: iso, title: new Date(t).toLocaleString() },
    text: relativeTime(iso),
  });
  return el;
}

/** Re-computes every relative time under `root`. */
export function refreshTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("time[data-ts]")) {
    el.textContent = relativeTime(el.dataset.ts, now);
  }
}

// ---------------------------------------------------------------- content

const MEDIA_LABEL = {
  image: "image",
  video: "video",
  audio: "audio",
  voice: "voice message",
  document: "file",
  sticker: "sticker",
};

/** Plain-text preview of a Content, as core's `Content::preview` makes it. */
export function previewOf(content) {
  if (!content || typeof content !== "object") return "";
  let s;
  switch (content.type) {
    case "text":
    case "system":
      s = content.body || "";
      break;
    case "media": {
      // Same words as core's preview ("[Image] caption"), so live rows match loaded ones.
      const k = String(content.kind || "media");
      s = `[${k.charAt(0).toUpperCase()}${k.slice(1)}]${content.caption ? " " + content.caption : ""}`;
      break;
    }
    case "location":
      s = `[Location] ${content.name || ""}`;
      break;
    case "contacts":
      s = `[Contact] ${(content.contacts || []).length}`;
      break;
    case "choices":
      s = content.prompt || "";
      break;
    case "choice_selected":
      s = content.title || "";
      break;
    case "template":
      s = `[Template] ${content.name || ""}`;
      break;
    case "reaction":
      s = `[Reaction] ${content.emoji || "removed"}`;
      break;
    case "unsupported":
      s = `[Unsupported: ${content.reason || "unknown"}]`;
      break;
    default:
      s = `[${content.type || "unknown"}]`;
  }
  s = String(s).trim();
  return s.length > 120 ? s.slice(0, 119) + "…" : s;
}

function finiteNumber(x) {
  const n = typeof x === "number" ? x : Number(x);
  return Number.isFinite(n) ? n : null;
}

/**
 * Renders a Content into a new element (class `content content-<type>`).
 *
 * Options:
 * - `onChoice(item, menuEl)`: when given, `choices` items become buttons (the customer
 *   chat); otherwise they are a plain list (the agent desk).
 * - `audience`: "agent" (default) or "customer", for the wording of unsupported content.
 */
export function renderContent(content, opts = {}) {
  const c = content && typeof content === "object" ? content : { type: "unknown" };
  const box = h("div", { class: `content content-${String(c.type || "unknown").replace(/[^a-z_]/g, "")}` });
  switch (c.type) {
    case "text":
      box.append(h("p", { class: "body", text: c.body || "" }));
      break;

    case "media": {
      const kind = MEDIA_LABEL[c.kind] || c.kind || "media";
      const fileName = c.media && c.media.filename;
      box.append(
        h(
          "p",
          { class: "body" },
          h("span", { class: "media-kind", text: `[${kind}]` }),
          c.caption ? " " + c.caption : fileName ? " " + fileName : "",
        ),
      );
      break;
    }

    case "location": {
      const lat = finiteNumber(c.latitude);
      const lon = finiteNumber(c.longitude);
      const label = [c.name, c.address].filter(Boolean).join(", ");
      const p = h("p", { class: "body" }, h("span", { class: "media-kind", text: "[location]" }), " ", label);
      if (lat !== null && lon !== null) {
        // Built from two numbers only, never from customer text.
        const href = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
        p.append(
          " ",
          h("a", {
            attrs: { href, target: "_blank", rel: "noopener noreferrer" },
            text: `(${lat.toFixed(5)}, ${lon.toFixed(5)})`,
          }),
        );
      }
      box.append(p);
      break;
    }

    case "contacts": {
      box.append(h("p", { class: "body", text: "[contact card]" }));
      const ul = h("ul", { class: "cards" });
      for (const card of c.contacts || []) {
        const parts = [card.name || "(no name)"];
        if (card.org) parts.push(card.org);
        for (const p of card.phones || []) parts.push(p);
        for (const e of card.emails || []) parts.push(e);
        ul.append(h("li", { text: parts.join(" · ") }));
      }
      box.append(ul);
      break;
    }

    case "choices": {
      box.append(h("p", { class: "body", text: c.prompt || "" }));
      const items = Array.isArray(c.items) ? c.items : [];
      if (opts.onChoice) {
        const menu = h("div", { class: "menu", attrs: { role: "group", "aria-label": c.prompt || "Options" } });
        for (const item of items) {
          menu.append(
            h(
              "button",
              {
                class: "choice",
                attrs: { type: "button" },
                dataset: { choiceId: item.id },
                on: { click: () => opts.onChoice(item, menu) },
              },
              h("span", { class: "choice-title", text: item.title || item.id || "" }),
              item.description ? h("span", { class: "choice-desc", text: item.description }) : null,
            ),
          );
        }
        box.append(menu);
      } else {
        const ol = h("ol", { class: "choices" });
        for (const item of items) {
          ol.append(
            h(
              "li",
              { dataset: { choiceId: item.id } },
              h("span", { class: "choice-title", text: item.title || item.id || "" }),
              item.description ? h("span", { class: "choice-desc", text: " — " + item.description }) : null,
            ),
          );
        }
        box.append(ol);
      }
      break;
    }

    case "choice_selected":
      box.append(
        h("p", { class: "body" }, h("span", { class: "media-kind", text: "Selected:" }), " ", c.title || c.id || ""),
      );
      break;

    case "template": {
      box.append(
        h(
          "p",
          { class: "body" },
          h("span", { class: "media-kind", text: "[template]" }),
          ` ${c.name || ""}${c.language ? " (" + c.language + ")" : ""}`,
        ),
      );
      const vars = Array.isArray(c.variables) ? c.variables : [];
      if (vars.length) {
        const ol = h("ol", { class: "template-vars" });
        for (const v of vars) ol.append(h("li", { text: v }));
        box.append(ol);
      }
      break;
    }

    case "reaction":
      box.append(
        h("p", {
          class: "body",
          text: c.emoji ? `Reacted ${c.emoji} to a message` : "Removed a reaction",
        }),
      );
      break;

    case "system":
      box.append(h("p", { class: "body" }, h("em", { text: c.body || "" })));
      break;

    case "unsupported":
      box.append(
        h("p", {
          class: "body notice",
          text:
            opts.audience === "customer"
              ? `This message can't be shown here (${c.reason || "unknown"}).`
              : `Customer sent something that can't be shown (${c.reason || "unknown"})`,
        }),
      );
      break;

    default:
      box.append(h("p", { class: "body notice", text: `This message can't be shown (${c.type || "unknown type"}).` }));
  }
  return box;
}

/** Sorts by creation time, then id (ids are time-ordered UUIDv7). */
export function compareMessages(a, b) {
  const ta = parseTime(a.created_at);
  const tb = parseTime(b.created_at);
  if (ta !== tb && !Number.isNaN(ta) && !Number.isNaN(tb)) return ta - tb;
  return String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0;
}
