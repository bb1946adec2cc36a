// Overlays: the bot's modals (views), Block Kit confirm dialogs, and error toasts.
import { renderBlocks } from "./blocks.js";
import { el, renderText } from "./mrkdwn.js";

export function toast(message, kind = "error") {
  const box = document.getElementById("toasts");
  const node = box.appendChild(el("div", `toast toast-${kind}`, message));
  setTimeout(() => node.remove(), 6000);
  node.addEventListener("click", () => node.remove());
}

function overlay(id) {
  const back = el("div", "overlay");
  back.id = id;
  const card = back.appendChild(el("div", "dialog"));
  card.setAttribute("role", "dialog");
  document.body.appendChild(back);
  return [back, card];
}

// A Block Kit confirm object: resolves true when the person confirms.
export function confirmDialog(confirm, ctx) {
  return new Promise((resolve) => {
    const [back, card] = overlay("confirm");
    card.classList.add("dialog-confirm");
    card.appendChild(el("div", "dialog-title", (confirm.title && confirm.title.text) || "Are you sure?"));
    card.appendChild(el("div", "dialog-body")).appendChild(renderText(confirm.text, ctx));
    const foot = card.appendChild(el("div", "dialog-foot"));
    const deny = foot.appendChild(el("button", "bk-button", (confirm.deny && confirm.deny.text) || "Cancel"));
    const ok = foot.appendChild(el("button", `bk-button bk-${confirm.style || "primary"}`,
      (confirm.confirm && confirm.confirm.text) || "Yes"));
    const done = (answer) => { back.remove(); resolve(answer); };
    deny.addEventListener("click", () => done(false));
    ok.addEventListener("click", () => done(true));
    back.addEventListener("click", (e) => { if (e.target === back) done(false); });
    ok.focus();
  });
}

// The open modal (the top of the person's view stack). Kept while its hash is the same, so what
// the person typed survives the page's live updates.
export class ModalLayer {
  constructor(app) {
    this.app = app;
    this.shown = null;      // "<view id>:<hash>"
    this.node = null;
    this.errors = {};
  }

  render(view) {
    const key = view ? `${view.id}:${view.hash}` : null;
    if (key === this.shown) return;
    if (this.node) this.node.remove();
    this.node = null;
    this.shown = key;
    if (!view) return;
    if (key !== this.errorsFor) this.errors = {};   // a new or updated view starts without errors
    this.build(view);
  }

  build(view) {
    const [back, card] = overlay("modal");
    this.node = back;
    card.classList.add("dialog-modal");
    card.dataset.viewId = view.id;
    const head = card.appendChild(el("div", "dialog-head"));
    head.appendChild(el("div", "dialog-title", (view.title && view.title.text) || ""));
    const x = head.appendChild(el("button", "dialog-x", "×"));
    x.title = "Close";
    const inputs = [];
    const ctx = {
      ...this.app.baseCtx(),
      errors: this.errors,
      registerInput: (block, def, field) => inputs.push({ block, def, field }),
      act: (payload) => this.app.act({ ...payload, type: "view_click", view_id: view.id }),
      checked: () => null,
      setChecked: () => {},
    };
    const body = card.appendChild(el("div", "dialog-body"));
    body.appendChild(renderBlocks(view.blocks, ctx));
    const foot = card.appendChild(el("div", "dialog-foot"));
    const close = foot.appendChild(el("button", "bk-button", (view.close && view.close.text) || "Cancel"));
    close.dataset.role = "close";
    const closeIt = () => this.app.act({ type: "close", view_id: view.id });
    close.addEventListener("click", closeIt);
    x.addEventListener("click", closeIt);
    if (view.submit) {
      const submit = foot.appendChild(el("button", "bk-button bk-primary", view.submit.text));
      submit.dataset.role = "submit";
      submit.addEventListener("click", () => this.submit(view, inputs, submit));
    }
    const first = card.querySelector("input, textarea, select");
    if (first) first.focus();
  }

  async submit(view, inputs, button) {
    const values = {};
    const missing = {};
    for (const { block, def, field } of inputs) {
      const value = field.value;
      if (!block.optional && !String(value || "").trim()) missing[block.block_id] = "Please complete this required field.";
      if (value !== "" && value !== null && value !== undefined) values[block.block_id] = { [def.action_id]: value };
    }
    if (Object.keys(missing).length) {   // the Slack client checks required fields itself
      this.showErrors(view, missing);
      return;
    }
    button.disabled = true;
    const result = await this.app.act({ type: "submit", view_id: view.id, values });
    button.disabled = false;
    if (result && result.errors && Object.keys(result.errors).length) this.showErrors(view, result.errors);
  }

  showErrors(view, errors) {
    // Redraw the same view with the errors, keeping what was typed.
    const typed = [...this.node.querySelectorAll("[id^=input-]")].map((f) => [f.id, f.value]);
    this.errors = errors;
    this.errorsFor = `${view.id}:${view.hash}`;
    this.node.remove();
    this.build(view);
    for (const [id, value] of typed) {
      const field = document.getElementById(id);
      if (field) field.value = value;
    }
  }
}
