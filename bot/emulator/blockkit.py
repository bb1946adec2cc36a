"""Block Kit validation with Slack's limits and Slack-style error details.

block_id must be unique in a message or view. action_id must be unique within a block (Slack's
documented rule) and, for messages, within the whole message (stricter than Slack, so that a click
is never ambiguous); modals and Home tabs may reuse an action_id across blocks, as Slack allows
(state.values is keyed by block_id first).

Errors look like Slack's: ``"must be less than 3001 characters [json-pointer:/blocks/0/text/text]"``;
the Web API layer prefixes them with ``[ERROR] `` in ``response_metadata.messages``.
"""
from __future__ import annotations

import json
from typing import Any

MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}
MAX_TEXT = 4000
MAX_VIEW_BYTES = 250_000

BLOCK_TYPES = {"section", "header", "actions", "context", "divider", "image", "input", "rich_text",
               "file", "video", "markdown", "context_actions", "table"}
INPUT_ELEMENTS = {"plain_text_input", "email_text_input", "url_text_input", "number_input",
                  "rich_text_input", "file_input"}
SELECTS = {f"{m}{k}_select" for m in ("", "multi_") for k in
           ("static", "external", "users", "conversations", "channels")}
ELEMENT_TYPES = ({"button", "overflow", "datepicker", "timepicker", "datetimepicker", "checkboxes",
                  "radio_buttons", "image", "workflow_button"} | SELECTS | INPUT_ELEMENTS)


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.block_ids: set[str] = set()
        self.action_ids: set[str] = set()       # reset per block unless `message_wide_action_ids`
        self.message_wide_action_ids = True

    def err(self, msg: str, ptr: str) -> None:
        self.errors.append(f"{msg} [json-pointer:{ptr}]")

    def length(self, value: Any, limit: int, ptr: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.err(f"must be less than {limit + 1} characters", ptr)

    def text(self, obj: Any, ptr: str, limit: int | None = None, *, plain: bool = False) -> None:
        if not isinstance(obj, dict):
            self.err("must provide an object", ptr)
            return
        kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
        if obj.get("type") not in kinds:
            self.err(f"must be one of {', '.join(kinds)}; got {obj.get('type')!r}", ptr + "/type")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.err("must be more than 0 characters", ptr + "/text")
        elif limit is not None:
            self.length(text, limit, ptr + "/text")

    def ident(self, kind: str, value: Any, ptr: str) -> None:
        if value is None:
            return
        if not isinstance(value, str) or not value:
            self.err(f"{kind} must be a non-empty string", ptr)
            return
        self.length(value, 255, ptr)
        seen = self.block_ids if kind == "block_id" else self.action_ids
        if value in seen:
            self.err(f"duplicate {kind} {value!r}", ptr)
        seen.add(value)

    def element(self, el: Any, ptr: str, allowed: set[str] = ELEMENT_TYPES) -> None:
        if not isinstance(el, dict):
            self.err("must provide an object", ptr)
            return
        etype = el.get("type")
        if etype not in allowed:
            self.err(f"unsupported element type {etype!r}", ptr + "/type")
            return
        self.ident("action_id", el.get("action_id"), ptr + "/action_id")
        if etype == "button":
            self.text(el.get("text"), ptr + "/text", 75, plain=True)
            self.length(el.get("value"), 2000, ptr + "/value")
            self.length(el.get("url"), 3000, ptr + "/url")
            if el.get("style") not in (None, "primary", "danger"):
                self.err("must be one of primary, danger", ptr + "/style")
        elif etype == "image":
            if not el.get("image_url") and not el.get("slack_file"):
                self.err("must provide image_url", ptr)
        elif etype in ("static_select", "multi_static_select", "overflow", "checkboxes", "radio_buttons"):
            opts = el.get("options")
            groups = el.get("option_groups")
            if not opts and not groups:
                self.err("must provide options", ptr + "/options")
            limit = {"overflow": 5, "checkboxes": 10, "radio_buttons": 10}.get(etype, 100)
            if opts and len(opts) > limit:
                self.err(f"no more than {limit} items allowed", ptr + "/options")
            for i, opt in enumerate(opts or []):
                self.option(opt, f"{ptr}/options/{i}")
        if etype.endswith("select") and "placeholder" in el:
            self.text(el["placeholder"], ptr + "/placeholder", 150, plain=True)

    def option(self, opt: Any, ptr: str) -> None:
        if not isinstance(opt, dict):
            self.err("must provide an object", ptr)
            return
        self.text(opt.get("text"), ptr + "/text", 75)
        if not isinstance(opt.get("value"), str):
            self.err("must provide a string", ptr + "/value")
        self.length(opt.get("value"), 150, ptr + "/value")

    def block(self, b: Any, ptr: str) -> None:
        if not isinstance(b, dict):
            self.err("must provide an object", ptr)
            return
        btype = b.get("type")
        if btype not in BLOCK_TYPES:
            self.err(f"unsupported block type {btype!r}", ptr + "/type")
            return
        self.ident("block_id", b.get("block_id"), ptr + "/block_id")
        if not self.message_wide_action_ids:
            self.action_ids = set()
        getattr(self, f"b_{btype}", lambda _b, _p: None)(b, ptr)

    def b_section(self, b: dict, ptr: str) -> None:
        if "text" not in b and "fields" not in b:
            self.err("must provide text or fields", ptr)
        if "text" in b:
            self.text(b["text"], ptr + "/text", 3000)
        fields = b.get("fields")
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > 10:
                self.err("no more than 10 items allowed", ptr + "/fields")
            for i, f in enumerate(fields or []):
                self.text(f, f"{ptr}/fields/{i}", 2000)
        if "accessory" in b:
            self.element(b["accessory"], ptr + "/accessory")

    def b_header(self, b: dict, ptr: str) -> None:
        self.text(b.get("text"), ptr + "/text", 150, plain=True)

    def b_actions(self, b: dict, ptr: str) -> None:
        els = b.get("elements")
        if not isinstance(els, list) or not els:
            self.err("must provide at least 1 item", ptr + "/elements")
            return
        if len(els) > 25:
            self.err("no more than 25 items allowed", ptr + "/elements")
        for i, el in enumerate(els):
            self.element(el, f"{ptr}/elements/{i}", ELEMENT_TYPES - INPUT_ELEMENTS - {"image"})

    def b_context(self, b: dict, ptr: str) -> None:
        els = b.get("elements")
        if not isinstance(els, list) or not els:
            self.err("must provide at least 1 item", ptr + "/elements")
            return
        if len(els) > 10:
            self.err("no more than 10 items allowed", ptr + "/elements")
        for i, el in enumerate(els):
            if isinstance(el, dict) and el.get("type") == "image":
                self.element(el, f"{ptr}/elements/{i}", {"image"})
            else:
                self.text(el, f"{ptr}/elements/{i}")

    def b_image(self, b: dict, ptr: str) -> None:
        if not b.get("image_url") and not b.get("slack_file"):
            self.err("must provide image_url", ptr)
        if not b.get("alt_text"):
            self.err("must provide alt_text", ptr + "/alt_text")

    def b_input(self, b: dict, ptr: str) -> None:
        self.text(b.get("label"), ptr + "/label", 2000, plain=True)
        self.element(b.get("element"), ptr + "/element",
                     INPUT_ELEMENTS | SELECTS | {"datepicker", "timepicker", "datetimepicker",
                                                 "checkboxes", "radio_buttons"})

    def b_markdown(self, b: dict, ptr: str) -> None:
        if not isinstance(b.get("text"), str) or not b["text"]:
            self.err("must be more than 0 characters", ptr + "/text")


def validate_blocks(blocks: Any, surface: str = "message", base: str = "/blocks",
                    checker: _Checker | None = None) -> list[str]:
    """Validate a list of blocks for a surface ("message", "modal", "home"); return error strings."""
    c = checker or _Checker()
    c.message_wide_action_ids = surface == "message"
    if not isinstance(blocks, list):
        c.err("must provide an array", base)
        return c.errors
    if len(blocks) > MAX_BLOCKS[surface]:
        c.err(f"no more than {MAX_BLOCKS[surface]} items allowed", base)
    for i, b in enumerate(blocks):
        c.block(b, f"{base}/{i}")
    return c.errors


def validate_view(view: Any) -> list[str]:
    """Validate a modal or Home tab view object."""
    c = _Checker()
    if not isinstance(view, dict):
        c.err("must provide an object", "/view")
        return c.errors
    vtype = view.get("type")
    if vtype not in ("modal", "home"):
        c.err("must be one of modal, home", "/view/type")
        return c.errors
    if vtype == "modal":
        c.text(view.get("title"), "/view/title", 24, plain=True)
    for key in ("submit", "close"):
        if key in view and view[key] is not None:
            c.text(view[key], f"/view/{key}", 24, plain=True)
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
    if vtype == "modal" and has_input and not view.get("submit"):
        c.err("must provide submit when the view has input blocks", "/view/submit")
    c.length(view.get("private_metadata"), 3000, "/view/private_metadata")
    c.length(view.get("callback_id"), 255, "/view/callback_id")
    c.length(view.get("external_id"), 255, "/view/external_id")
    validate_blocks(view.get("blocks"), vtype, "/view/blocks", c)
    if len(json.dumps(view)) > MAX_VIEW_BYTES:
        c.err("view_too_large", "/view")
    return c.errors


def iter_elements(blocks: list[dict] | None):
    """Yield (block, element) for every interactive element in blocks."""
    for b in blocks or []:
        if not isinstance(b, dict):
            continue
        if b.get("type") in ("actions", "context_actions"):
            for el in b.get("elements") or []:
                yield b, el
        elif b.get("type") == "section" and isinstance(b.get("accessory"), dict):
            yield b, b["accessory"]
        elif b.get("type") == "input" and isinstance(b.get("element"), dict):
            yield b, b["element"]


def text_of(obj: Any) -> str:
    """Flatten the visible text of a message, a view, or a list of blocks (one line per piece)."""
    out: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, list):
            for y in x:
                walk(y)
        elif isinstance(x, dict):
            t = x.get("type")
            if t in ("plain_text", "mrkdwn") and isinstance(x.get("text"), str):
                out.append(x["text"])
                return
            if t in ("text", "link") and isinstance(x.get("text") or x.get("url"), str):  # rich_text leaves
                out.append(x.get("text") or x["url"])
                return
            if t == "markdown" and isinstance(x.get("text"), str):
                out.append(x["text"])
                return
            for key in ("title", "text", "fields", "elements", "accessory", "label", "element",
                        "blocks", "placeholder", "initial_option"):
                if key in x:
                    walk(x[key])

    if isinstance(obj, dict) and obj.get("type") == "message":
        if obj.get("blocks"):
            walk(obj["blocks"])
        elif obj.get("text"):
            out.append(obj["text"])
    else:
        walk(obj)
    return "\n".join(out)
