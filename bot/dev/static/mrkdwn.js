// Slack mrkdwn to DOM nodes. Text only ever goes in through createTextNode / textContent: nothing
// a user or an agent wrote can become markup, and Slack's escaped "&lt;" shows as a literal "<".

const ENTITIES = { "&lt;": "<", "&gt;": ">", "&amp;": "&" };
const ENTITY = /&(?:lt|gt|amp);/g;

export function decodeEntities(s) {
  return s.replace(ENTITY, (m) => ENTITIES[m]);
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// Slack's rules, roughly: a marker opens after the start, a space or punctuation and before a
// non-space; it closes after a non-space and before the end, a space or punctuation.
const W = "\\p{L}\\p{N}";
const span = (m, name) =>
  `(?<![${W}${m}])${m}(?![\\s${m}])(?<${name}>[^${m}\\n]*?[^\\s${m}])${m}(?![${W}${m}])`;
const INLINE = new RegExp(
  [
    "<(?<token>[^<>\\n]+)>",
    "`(?<code>[^`\\n]+)`",
    span("\\*", "bold"),
    span("_", "italic"),
    span("~", "strike"),
  ].join("|"),
  "gu",
);
const SAFE_URL = /^(?:https?:|mailto:|slack:)/i;
const BROADCASTS = { channel: "@channel", here: "@here", everyone: "@everyone" };

function textNode(s) {
  return document.createTextNode(decodeEntities(s));
}

// `<...>`: a user or channel mention, a special mention, or a link.
function token(body, ctx) {
  const bar = body.indexOf("|");
  const target = bar < 0 ? body : body.slice(0, bar);
  const label = bar < 0 ? "" : body.slice(bar + 1);
  if (target.startsWith("@")) {
    const id = target.slice(1);
    const user = (ctx.users || {})[id];
    const node = el("span", "mention" + (id === ctx.me ? " mention-me" : ""),
      "@" + (user ? user.name : decodeEntities(label || id)));
    node.dataset.user = id;
    return node;
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    const name = (ctx.channels || {})[id] || decodeEntities(label || id);
    return el("span", "mention channel-mention", "#" + name);
  }
  if (target.startsWith("!")) {
    const word = target.slice(1).split("^")[0];
    if (BROADCASTS[word]) return el("span", "mention mention-broadcast", BROADCASTS[word]);
    return el("span", "mention", decodeEntities(label || word));
  }
  const url = decodeEntities(target);
  if (!SAFE_URL.test(url)) return textNode(label || target);
  const a = el("a", "link", decodeEntities(label || target));
  a.dataset.url = url;
  if (/^https?:/i.test(url)) {
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
  } else {
    a.href = "#";
  }
  return a;
}

export function renderInline(s, ctx, parent) {
  let last = 0;
  INLINE.lastIndex = 0;
  for (const m of s.matchAll(INLINE)) {
    if (m.index > last) parent.appendChild(textNode(s.slice(last, m.index)));
    const g = m.groups;
    if (g.token !== undefined) parent.appendChild(token(g.token, ctx));
    else if (g.code !== undefined) parent.appendChild(el("code", "code", decodeEntities(g.code)));
    else {
      const tag = g.bold !== undefined ? "b" : g.italic !== undefined ? "i" : "s";
      const inner = el(tag);
      renderInline(g.bold ?? g.italic ?? g.strike, ctx, inner);
      parent.appendChild(inner);
    }
    last = m.index + m[0].length;
  }
  if (last < s.length) parent.appendChild(textNode(s.slice(last)));
  return parent;
}

// Lines: runs of lines starting with a raw ">" are a quote (an escaped "&gt;" is only text).
function renderLines(s, ctx, parent) {
  const lines = s.split("\n");
  let quote = null;
  lines.forEach((line, i) => {
    if (line.startsWith(">")) {
      if (!quote) quote = parent.appendChild(el("blockquote", "quote"));
      else quote.appendChild(document.createTextNode("\n"));
      renderInline(line.replace(/^> ?/, ""), ctx, quote);
      return;
    }
    if (quote) {
      quote = null;
    } else if (i > 0) {
      parent.appendChild(document.createTextNode("\n"));
    }
    renderInline(line, ctx, parent);
  });
}

export function renderMrkdwn(text, ctx, className = "mrkdwn") {
  const root = el("div", className);
  const parts = String(text || "").split(/```([\s\S]*?)```/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      root.appendChild(el("pre", "pre", decodeEntities(part.replace(/^\n/, "").replace(/\n$/, ""))));
    } else {
      const trimmed = i > 0 ? part.replace(/^\n/, "") : part;
      const rest = i < parts.length - 1 ? trimmed.replace(/\n$/, "") : trimmed;
      if (rest) renderLines(rest, ctx, root);
    }
  });
  return root;
}

// A text object: mrkdwn, or plain_text (shown exactly as it is).
export function renderText(obj, ctx, className) {
  if (!obj) return el("div", className);
  if (obj.type === "mrkdwn") return renderMrkdwn(obj.text, ctx, className ? `mrkdwn ${className}` : "mrkdwn");
  return el("div", className ? `plain ${className}` : "plain", obj.text || "");
}
