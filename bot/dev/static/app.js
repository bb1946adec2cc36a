// taskpin dev: the page. It shows the workspace as the chosen person sees it (pushed by the server
// over a WebSocket whenever it changes) and sends what that person does to /api/act, where the
// emulator turns it into the payloads Slack would deliver to the bot.
import { renderBlocks } from "./blocks.js";
import { ModalLayer, confirmDialog, toast } from "./dialogs.js";
import { renderMessage, syncList } from "./messages.js";
import { el } from "./mrkdwn.js";

const $ = (id) => document.getElementById(id);

class App {
  constructor() {
    const params = new URLSearchParams(location.search);
    this.me = params.get("user") || "U_OWNER";
    this.view = params.get("view") === "home" ? "home" : "channel";
    this.thread = params.get("thread");
    this.snap = null;
    this.checks = new Map();          // "<ts>|<action_id>" -> ticked values (the client's own state)
    this.dismissed = new Set();
    this.notes = [];                  // the client's own notices ("/foo is not a valid command")
    this.modal = new ModalLayer(this);
    this.homeAsked = null;
    this.pending = Promise.resolve();
    this.bind();
    this.connect();
  }

  get usersById() {
    return Object.fromEntries(this.snap.users.map((u) => [u.id, u]));
  }

  baseCtx() {
    return {
      users: this.usersById,
      channels: this.snap.channels,
      me: this.me,
      confirm: (dialog) => confirmDialog(dialog, this.baseCtx()),
      openLink: (url) => this.openLink(url),
      checked: () => null,
      setChecked: () => {},
    };
  }

  // --- server ---------------------------------------------------------------------------
  connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?user=${encodeURIComponent(this.me)}`);
    this.ws = ws;
    ws.addEventListener("open", () => document.body.classList.remove("offline"));
    ws.addEventListener("message", (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === "state" && msg.state.me === this.me) {
        this.snap = msg.state;
        this.render();
      }
    });
    ws.addEventListener("close", () => {
      document.body.classList.add("offline");
      setTimeout(() => this.connect(), 1000);
    });
  }

  // One action at a time, in order, like the Slack client: a tick on a checkbox reaches the bot
  // before the Submit that reads it.
  act(payload) {
    const run = this.pending.then(() => this.send(payload));
    this.pending = run.catch(() => {});
    return run;
  }

  async send(payload) {
    try {
      const response = await fetch("/api/act", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ...payload, user: this.me }),
      });
      const result = await response.json();
      if (!result.ok) toast(result.error || "That did not work.");
      if (result.local) this.note(result.local, payload.thread_ts);
      return result;
    } catch (err) {
      toast(`taskpin dev is not reachable: ${err.message}`);
      return { ok: false };
    }
  }

  // --- what the person does ---------------------------------------------------------------
  bind() {
    $("user-switcher").addEventListener("change", (e) => this.switchUser(e.target.value));
    $("nav-channel").addEventListener("click", () => this.show("channel"));
    $("nav-home").addEventListener("click", () => this.show("home"));
    $("thread-close").addEventListener("click", () => this.openThread(null));
    this.composer($("composer"), $("composer-send"), null);
    this.composer($("thread-composer"), $("thread-send"), () => this.thread);
    document.addEventListener("click", (e) => {
      const a = e.target.closest("a[data-url]");
      if (a && this.openLink(a.dataset.url)) e.preventDefault();
      if (!e.target.closest(".menu")) document.querySelectorAll(".menu").forEach((m) => m.remove());
    });
  }

  composer(box, send, threadOf) {
    const submit = async () => {
      const text = box.value;
      if (!text.trim()) return;
      const thread = threadOf && threadOf();
      box.value = "";
      this.suggest(box, "");
      const isCommand = !thread && text.trim().startsWith("/");
      const result = await this.act(isCommand ? { type: "command", text } : { type: "message", text, thread_ts: thread });
      if (!result.ok && !result.local) box.value = text;   // nothing lost when it failed
    };
    box.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        submit();
      }
    });
    box.addEventListener("input", () => this.suggest(box, threadOf ? "" : box.value));
    send.addEventListener("click", submit);
  }

  // The slash command menu the Slack client shows while you type "/…".
  suggest(box, value) {
    const menu = $("command-menu");
    menu.replaceChildren();
    menu.hidden = true;
    if (!this.snap || !/^\/\S*$/.test(value)) return;
    for (const [name, usage] of Object.entries(this.snap.commands)) {
      if (!name.startsWith(value)) continue;
      const item = menu.appendChild(el("button", "command-item"));
      item.appendChild(el("b", null, name));
      item.appendChild(el("span", "command-usage", ` ${usage}`));
      item.appendChild(el("span", "command-app", "taskpin"));
      item.addEventListener("click", () => {
        box.value = `${name} `;
        menu.hidden = true;
        box.focus();
      });
      menu.hidden = false;
    }
  }

  switchUser(user) {
    this.me = user;
    this.checks.clear();
    this.homeAsked = null;
    this.updateUrl();
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ user }));
  }

  show(view) {
    if (view === "home") this.homeAsked = null;
    this.view = view;
    this.updateUrl();
    this.render();
  }

  openThread(ts) {
    this.thread = ts;
    this.updateUrl();
    this.render();
    if (ts) $("thread-composer").focus();
  }

  updateUrl() {
    const params = new URLSearchParams({ user: this.me });
    if (this.view === "home") params.set("view", "home");
    if (this.thread) params.set("thread", this.thread);
    history.replaceState(null, "", `?${params}`);
  }

  // Permalinks to messages open their thread; the app's Home link opens the Home tab.
  openLink(url) {
    const permalink = url.match(/\/archives\/([A-Z0-9_]+)\/p(\d{7,})(?:\?thread_ts=([\d.]+))?/);
    if (permalink) {
      const ts = `${permalink[2].slice(0, -6)}.${permalink[2].slice(-6)}`;
      this.view = "channel";
      this.openThread(permalink[3] || ts);
      return true;
    }
    if (url.startsWith("slack://app")) {
      this.show("home");
      return true;
    }
    return false;
  }

  showShortcutMenu(anchor, msg) {
    document.querySelectorAll(".menu").forEach((m) => m.remove());
    const menu = document.body.appendChild(el("div", "menu"));
    menu.appendChild(el("div", "menu-title", "Message shortcuts"));
    for (const shortcut of this.snap.shortcuts) {
      const item = menu.appendChild(el("button", "menu-item"));
      item.appendChild(el("span", null, shortcut.name));
      item.appendChild(el("span", "command-app", "taskpin"));
      item.addEventListener("click", () => {
        menu.remove();
        this.act({ type: "shortcut", ts: msg.ts, callback_id: shortcut.callback_id });
      });
    }
    const r = anchor.getBoundingClientRect();
    menu.style.top = `${r.bottom + 4}px`;
    menu.style.left = `${Math.max(8, r.right - 260)}px`;
  }

  dismiss(ts) {
    this.dismissed.add(ts);
    this.render();
  }

  note(text, threadTs) {
    const ts = (Date.now() / 1000).toFixed(6);
    this.notes.push({ ts, text, ephemeral: true, local: true, thread_ts: threadTs || undefined });
    this.render();
  }

  // --- drawing ----------------------------------------------------------------------------------
  render() {
    if (!this.snap) return;
    const s = this.snap;
    this.renderChrome(s);
    if (this.view !== "channel") this.shownChannel = null;
    $("channel-view").hidden = this.view !== "channel";
    $("home-view").hidden = this.view !== "home";
    if (this.view === "channel") this.renderChannel(s);
    else this.renderHome(s);
    this.renderThread(s);
    this.modal.render(s.modals[s.modals.length - 1] || null);
  }

  renderChrome(s) {
    const switcher = $("user-switcher");
    const people = s.users.filter((u) => !u.is_bot);
    const want = people.map((u) => `${u.id}:${u.approver}`).join(",");
    if (switcher.dataset.people !== want) {
      switcher.replaceChildren(...people.map((u) => {
        const o = el("option", null, u.approver ? `${u.name} · approver` : u.name);
        o.value = u.id;
        return o;
      }));
      switcher.dataset.people = want;
    }
    switcher.value = this.me;
    $("me-avatar").textContent = (this.usersById[this.me] || { name: "?" }).name.slice(0, 1).toUpperCase();
    $("nav-channel").classList.toggle("active", this.view === "channel");
    $("nav-home").classList.toggle("active", this.view === "home");
    $("nav-channel-name").textContent = s.channel.name;
    $("channel-name").textContent = s.channel.name;
    $("composer").placeholder = `Message #${s.channel.name} — try /task Add a CONTRIBUTING guide`;
    $("session-facts").textContent = `repository ${s.repo} · agent ${s.agent}`;
  }

  items(messages, ephemerals) {
    const all = [
      ...messages.map((m) => ({ msg: m })),
      ...ephemerals.filter((e) => !this.dismissed.has(e.ts)).map((e) => ({ msg: { ...e, ephemeral: true } })),
    ];
    all.sort((a, b) => parseFloat(a.msg.ts) - parseFloat(b.msg.ts));
    return all.map(({ msg }) => ({
      key: `${msg.ephemeral ? "e" : "m"}${msg.ts}`,
      sig: JSON.stringify([msg, this.me, (this.snap.threads[msg.ts] || []).length]),
      msg,
    }));
  }

  renderChannel(s) {
    const pinned = s.messages.filter((m) => s.pins.includes(m.ts));
    $("pin-count").textContent = pinned.length ? `📌 ${pinned.length} pinned` : "";
    $("pinned").hidden = !pinned.length;
    syncList($("pinned-list"), this.items(pinned, []), (item) => renderMessage(item.msg, this));
    const history = $("history");
    const nearBottom = history.scrollHeight - history.scrollTop - history.clientHeight < 80;
    const rest = s.messages.filter((m) => !s.pins.includes(m.ts));
    const ephemerals = [...s.ephemerals, ...this.notes].filter((e) => !e.thread_ts);
    const added = syncList($("history-list"), this.items(rest, ephemerals), (item) => renderMessage(item.msg, this));
    if ((added && nearBottom) || this.shownChannel !== this.me) history.scrollTop = history.scrollHeight;
    this.shownChannel = this.me;   // the channel opens at its latest messages
  }

  renderThread(s) {
    const pane = $("thread");
    const root = this.thread && s.messages.find((m) => m.ts === this.thread);
    pane.hidden = !root;
    document.body.classList.toggle("with-thread", !!root);
    if (!root) return;
    const replies = s.threads[root.ts] || [];
    const ephemerals = [...s.ephemerals, ...this.notes].filter((e) => e.thread_ts === root.ts);
    syncList($("thread-root"), this.items([root], []), (item) => renderMessage(item.msg, this, { inThread: true }));
    $("thread-count").textContent = replies.length ? `${replies.length} ${replies.length === 1 ? "reply" : "replies"}` : "";
    const list = $("thread-list");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const added = syncList($("thread-replies"), this.items(replies, ephemerals),
      (item) => renderMessage(item.msg, this, { inThread: true }));
    if ((added && nearBottom) || this.shownThread !== root.ts) list.scrollTop = list.scrollHeight;
    this.shownThread = root.ts;
  }

  renderHome(s) {
    if (this.homeAsked !== this.me) {   // Slack sends app_home_opened each time the tab opens
      this.homeAsked = this.me;
      this.act({ type: "home" });
    }
    const target = $("home-blocks");
    const sig = JSON.stringify([s.home && s.home.hash, s.home && s.home.blocks, this.me]);
    if (target.dataset.sig === sig) return;
    target.dataset.sig = sig;
    if (!s.home) {
      target.replaceChildren(el("div", "muted", "Opening the Home tab…"));
      return;
    }
    const view = s.home;
    const ctx = {
      ...this.baseCtx(),
      act: (payload) => this.act({ ...payload, type: "view_click", view_id: view.id }),
    };
    target.replaceChildren(renderBlocks(view.blocks, ctx));
  }
}

window.taskpinDev = new App();
