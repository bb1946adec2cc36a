// Block Kit to DOM: the blocks and elements taskpin sends, drawn the way the Slack client draws them.
// `ctx` says where the blocks are (a message or a view) and how to act: ctx.act(payload) sends what
// the Slack client would send, ctx.confirm(dialog) asks first when an element has a confirm dialog.
import { el, renderMrkdwn, renderText } from "./mrkdwn.js";

function plainText(obj) {
  return (obj && obj.text) || "";
}

function busy(node, promise) {
  node.classList.add("busy");
  node.disabled = true;
  return Promise.resolve(promise).finally(() => {
    node.classList.remove("busy");
    node.disabled = false;
  });
}

function button(element, block, ctx) {
  const node = el("button", "bk-button" + (element.style ? ` bk-${element.style}` : ""), plainText(element.text));
  node.type = "button";
  node.dataset.actionId = element.action_id || "";
  node.addEventListener("click", async () => {
    if (element.confirm && !(await ctx.confirm(element.confirm))) return;
    if (element.url) ctx.openLink(element.url);
    await busy(node, ctx.act({ kind: "click", action_id: element.action_id, value: element.value ?? null }));
  });
  return node;
}

function optionsOf(element) {
  return element.options || (element.option_groups || []).flatMap((g) => g.options || []);
}

function staticSelect(element, block, ctx, inInput) {
  const node = el("select", "bk-select");
  node.dataset.actionId = element.action_id || "";
  const placeholder = el("option", null, plainText(element.placeholder) || "Select an item");
  placeholder.value = "";
  placeholder.disabled = true;
  node.appendChild(placeholder);
  for (const opt of optionsOf(element)) {
    const o = el("option", null, plainText(opt.text));
    o.value = opt.value;
    if (opt.description) o.title = plainText(opt.description);
    node.appendChild(o);
  }
  const initial = element.initial_option && element.initial_option.value;
  node.value = initial !== undefined && initial !== null ? initial : "";
  if (!inInput) {
    node.addEventListener("change", () =>
      busy(node, ctx.act({ kind: "select", action_id: element.action_id, value: node.value })));
  }
  return node;
}

function checkboxes(element, block, ctx) {
  const node = el("div", "bk-checkboxes");
  node.dataset.actionId = element.action_id || "";
  const ticked = new Set(ctx.checked(element.action_id) ||
    (element.initial_options || []).map((o) => o.value));
  for (const opt of element.options || []) {
    const row = el("label", "bk-checkbox");
    const box = el("input");
    box.type = "checkbox";
    box.value = opt.value;
    box.checked = ticked.has(opt.value);
    row.appendChild(box);
    const label = el("span", "bk-checkbox-text");
    label.appendChild(renderText(opt.text, ctx));
    if (opt.description) label.appendChild(renderText(opt.description, ctx, "bk-description"));
    row.appendChild(label);
    box.addEventListener("change", () => {
      const values = [...node.querySelectorAll("input:checked")].map((b) => b.value);
      ctx.setChecked(element.action_id, values);
      ctx.act({ kind: "check", action_id: element.action_id, values });
    });
    node.appendChild(row);
  }
  return node;
}

function overflow(element, block, ctx) {
  const node = staticSelect({ ...element, placeholder: { text: "⋯" } }, block, ctx, false);
  node.classList.add("bk-overflow");
  return node;
}

function image(element) {
  const node = el("span", "bk-image", element.alt_text ? `🖼 ${element.alt_text}` : "🖼");
  node.title = element.image_url || "";
  return node;
}

function element(elementDef, block, ctx) {
  switch (elementDef.type) {
    case "button": return button(elementDef, block, ctx);
    case "static_select": return staticSelect(elementDef, block, ctx, false);
    case "checkboxes": return checkboxes(elementDef, block, ctx);
    case "overflow": return overflow(elementDef, block, ctx);
    case "image": return image(elementDef);
    case "mrkdwn": case "plain_text": return renderText(elementDef, ctx);
    default: return el("span", "bk-unknown", `[${elementDef.type} is not drawn by taskpin dev]`);
  }
}

// --- rich_text: what people type ----------------------------------------------------------
function richElements(elements, ctx, parent) {
  for (const item of elements || []) {
    let node;
    if (item.type === "text") {
      node = document.createTextNode(item.text || "");
      const style = item.style || {};
      for (const [flag, tag] of [["code", "code"], ["bold", "b"], ["italic", "i"], ["strike", "s"]]) {
        if (style[flag]) {
          const wrap = el(tag, flag === "code" ? "code" : null);
          wrap.appendChild(node);
          node = wrap;
        }
      }
    } else if (item.type === "link") {
      node = el("a", "link", item.text || item.url);
      if (/^https?:/i.test(item.url || "")) {
        node.href = item.url;
        node.target = "_blank";
        node.rel = "noopener noreferrer";
      }
    } else if (item.type === "user") {
      const user = (ctx.users || {})[item.user_id];
      node = el("span", "mention" + (item.user_id === ctx.me ? " mention-me" : ""), "@" + (user ? user.name : item.user_id));
    } else if (item.type === "channel") {
      node = el("span", "mention channel-mention", "#" + ((ctx.channels || {})[item.channel_id] || item.channel_id));
    } else if (item.type === "broadcast") {
      node = el("span", "mention mention-broadcast", "@" + item.range);
    } else if (item.type === "emoji") {
      node = document.createTextNode(item.unicode ? String.fromCodePoint(...item.unicode.split("-").map((h) => parseInt(h, 16))) : `:${item.name}:`);
    } else {
      node = el("span", "bk-unknown", `[${item.type}]`);
    }
    parent.appendChild(node);
  }
  return parent;
}

function richText(block, ctx) {
  const root = el("div", "bk-rich mrkdwn");
  for (const part of block.elements || []) {
    if (part.type === "rich_text_section") richElements(part.elements, ctx, root.appendChild(el("div")));
    else if (part.type === "rich_text_preformatted") richElements(part.elements, ctx, root.appendChild(el("pre", "pre")));
    else if (part.type === "rich_text_quote") richElements(part.elements, ctx, root.appendChild(el("blockquote", "quote")));
    else if (part.type === "rich_text_list") {
      const list = root.appendChild(el(part.style === "ordered" ? "ol" : "ul", "bk-list"));
      for (const item of part.elements || []) richElements(item.elements, ctx, list.appendChild(el("li")));
    } else root.appendChild(el("span", "bk-unknown", `[${part.type}]`));
  }
  return root;
}

// --- inputs (modals) ------------------------------------------------------------------------
function input(block, ctx) {
  const node = el("div", "bk-input");
  node.dataset.blockId = block.block_id || "";
  const label = node.appendChild(el("label", "bk-label", plainText(block.label)));
  if (block.optional) label.appendChild(el("span", "bk-optional", " (optional)"));
  const def = block.element || {};
  let field;
  if (def.type === "plain_text_input") {
    field = el(def.multiline ? "textarea" : "input", "bk-text-input");
    if (!def.multiline) field.type = "text";
    if (def.placeholder) field.placeholder = plainText(def.placeholder);
    if (def.max_length) field.maxLength = def.max_length;
    field.value = def.initial_value || "";
  } else if (def.type === "static_select") {
    field = staticSelect(def, block, ctx, true);
  } else {
    field = el("span", "bk-unknown", `[${def.type} is not drawn by taskpin dev]`);
  }
  field.id = `input-${block.block_id}`;
  label.htmlFor = field.id;
  node.appendChild(field);
  ctx.registerInput?.(block, def, field);
  if (block.hint) node.appendChild(el("div", "bk-hint", plainText(block.hint)));
  const error = (ctx.errors || {})[block.block_id];
  if (error) {
    node.classList.add("bk-has-error");
    node.appendChild(el("div", "bk-error", error));
  }
  return node;
}

// --- blocks -----------------------------------------------------------------------------------
function section(block, ctx) {
  const node = el("div", "bk-section");
  const body = node.appendChild(el("div", "bk-section-body"));
  if (block.text) body.appendChild(renderText(block.text, ctx, "bk-section-text"));
  if (block.fields && block.fields.length) {
    const fields = body.appendChild(el("div", "bk-fields"));
    for (const f of block.fields) fields.appendChild(renderText(f, ctx, "bk-field"));
  }
  if (block.accessory) node.appendChild(el("div", "bk-accessory")).appendChild(element(block.accessory, block, ctx));
  return node;
}

function context(block, ctx) {
  const node = el("div", "bk-context");
  for (const item of block.elements || []) node.appendChild(element(item, block, ctx));
  return node;
}

function actions(block, ctx) {
  const node = el("div", "bk-actions");
  for (const item of block.elements || []) node.appendChild(element(item, block, ctx));
  return node;
}

export function renderBlock(block, ctx) {
  let node;
  switch (block.type) {
    case "header": node = el("div", "bk-header", plainText(block.text)); break;
    case "section": node = section(block, ctx); break;
    case "context": node = context(block, ctx); break;
    case "divider": node = el("hr", "bk-divider"); break;
    case "actions": node = actions(block, ctx); break;
    case "rich_text": node = richText(block, ctx); break;
    case "input": node = input(block, ctx); break;
    case "image": node = image(block); break;
    default: node = el("div", "bk-unknown", `[${block.type} block is not drawn by taskpin dev]`);
  }
  node.classList.add("bk-block");
  if (block.block_id) node.dataset.blockId = block.block_id;
  return node;
}

export function renderBlocks(blocks, ctx) {
  const root = el("div", "bk-blocks");
  for (const block of blocks || []) {
    // An element's action belongs to its block: the payload names both.
    const blockCtx = { ...ctx, act: (payload) => ctx.act({ ...payload, block_id: block.block_id }) };
    root.appendChild(renderBlock(block, blockCtx));
  }
  return root;
}

export { renderMrkdwn };
