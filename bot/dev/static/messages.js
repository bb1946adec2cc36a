// One message as the Slack client shows it: avatar, name, time, its blocks (or its text), replies,
// "Only visible to you" for ephemerals, and the hover menu (reply in thread, message shortcuts).
import { renderBlocks } from "./blocks.js";
import { el, renderMrkdwn } from "./mrkdwn.js";

const COLOURS = ["#2bac76", "#e8912d", "#1d9bd1", "#cd2553", "#7c3aed", "#0e7490"];

export function timeOf(ts) {
  const d = new Date(parseFloat(ts) * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function avatar(user, isBot) {
  const node = el("div", "avatar");
  if (isBot) {
    node.classList.add("avatar-bot");
    node.textContent = "📌";
    return node;
  }
  const name = (user && user.name) || "?";
  node.textContent = name.slice(0, 1).toUpperCase();
  node.style.background = COLOURS[[...name].reduce((a, c) => a + c.charCodeAt(0), 0) % COLOURS.length];
  return node;
}

function body(msg, ctx) {
  if (msg.blocks && msg.blocks.length) return renderBlocks(msg.blocks, ctx);
  return renderMrkdwn(msg.text || "", ctx);
}

function hoverMenu(msg, app, opts) {
  const bar = el("div", "msg-tools");
  if (!opts.inThread && !msg.ephemeral) {
    const reply = bar.appendChild(el("button", "tool", "💬"));
    reply.title = "Reply in thread";
    reply.dataset.tool = "reply";
    reply.addEventListener("click", () => app.openThread(msg.ts));
  }
  if (!msg.ephemeral && app.snap.shortcuts.length) {
    const more = bar.appendChild(el("button", "tool", "⋯"));
    more.title = "More actions";
    more.dataset.tool = "more";
    more.addEventListener("click", (e) => {
      e.stopPropagation();
      app.showShortcutMenu(more, msg);
    });
  }
  return bar;
}

// opts: { inThread, ephemeral }
export function renderMessage(msg, app, opts = {}) {
  const snap = app.snap;
  const users = app.usersById;
  const isBot = !!msg.bot_id || msg.user === snap.bot_user;
  const user = users[msg.user];
  const node = el("div", "msg" + (msg.ephemeral ? " msg-ephemeral" : ""));
  node.dataset.ts = msg.ts;
  node.appendChild(avatar(user, isBot));
  const main = node.appendChild(el("div", "msg-main"));
  const head = main.appendChild(el("div", "msg-head"));
  head.appendChild(el("span", "msg-name", msg.local ? "Slackbot" : isBot ? "taskpin" : (user && user.name) || msg.user));
  if (isBot && !msg.local) head.appendChild(el("span", "app-badge", "APP"));
  head.appendChild(el("span", "msg-time", timeOf(msg.ts)));
  const ctx = {
    ...app.baseCtx(),
    act: (payload) => app.act({
      ...payload,
      type: payload.kind,
      ts: msg.ts,
    }),
    checked: (actionId) => app.checks.get(`${msg.ts}|${actionId}`),
    setChecked: (actionId, values) => app.checks.set(`${msg.ts}|${actionId}`, values),
  };
  main.appendChild(body(msg, ctx)).classList.add("msg-body");
  if (msg.ephemeral) {
    const note = main.appendChild(el("div", "eph-note"));
    note.appendChild(el("span", "eph-eye", "👁"));
    note.appendChild(el("span", null, " Only visible to you · "));
    const dismiss = note.appendChild(el("button", "link-button", "Dismiss"));
    dismiss.addEventListener("click", () => app.dismiss(msg.ts));
  }
  const replies = !opts.inThread && (snap.threads[msg.ts] || []);
  if (replies && replies.length) {
    const link = main.appendChild(el("button", "replies"));
    const who = [...new Set(replies.map((r) => r.user))].slice(0, 4);
    for (const uid of who) link.appendChild(avatar(users[uid], uid === snap.bot_user)).classList.add("avatar-mini");
    link.appendChild(el("span", "replies-count", `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`));
    link.appendChild(el("span", "replies-last", `Last reply ${timeOf(replies[replies.length - 1].ts)}`));
    link.addEventListener("click", () => app.openThread(msg.ts));
  }
  node.appendChild(hoverMenu(msg, app, opts));
  return node;
}

// Keep a list of messages in a container, redrawing only those whose content changed.
export function syncList(container, items, render) {
  const existing = new Map([...container.children].filter((c) => c.dataset.key).map((c) => [c.dataset.key, c]));
  let changed = false;
  let before = null;
  items.forEach((item) => {
    const sig = item.sig;
    let node = existing.get(item.key);
    if (!node || node.dataset.sig !== sig) {
      const fresh = render(item);
      fresh.dataset.key = item.key;
      fresh.dataset.sig = sig;
      if (node) {
        node.replaceWith(fresh);
        fresh.classList.add("flash");
      } else {
        changed = true;
      }
      node = fresh;
    }
    existing.delete(item.key);
    const want = before ? before.nextSibling : container.firstChild;
    if (want !== node) container.insertBefore(node, want);
    before = node;
  });
  for (const node of existing.values()) node.remove();
  return changed;
}
