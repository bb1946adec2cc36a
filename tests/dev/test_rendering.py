"""The page draws every block and element the bot sends, and draws mrkdwn the way Slack does:
formatting, mentions by name, links, and escaped text shown literally, never as markup."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.blocks import (
    create_task_modal,
    output_summary_message,
    render_board,
    render_home,
    render_intervention,
    render_intervention_resolved,
    request_changes_modal,
    result_message,
    review_message,
)
from bot.blocks.text import escape_mrkdwn
from bot.emulator.blockkit import iter_elements
from orchestrator.models import InterventionKind, InterventionStatus, Option
from orchestrator.states import TaskState
from tests.blocks.block_factories import NASTY_TITLE, NOW, build_intervention, build_task, build_tasks

pytestmark = pytest.mark.asyncio(loop_scope="package")

RENDER = """async (cases) => {
  const { renderBlocks } = await import("/static/blocks.js");
  const ctx = { users: {}, channels: {}, me: "U1", act: async () => ({ ok: true }), confirm: async () => false,
                openLink: () => false, checked: () => null, setChecked: () => {} };
  return cases.map((blocks) => {
    const root = renderBlocks(blocks, ctx);
    const count = (selector) => root.querySelectorAll(selector).length;
    return {
      blocks: root.children.length, unknown: [...root.querySelectorAll(".bk-unknown")].map((n) => n.textContent),
      buttons: [...root.querySelectorAll("button.bk-button")].map((b) => [b.textContent, b.className]),
      selects: [...root.querySelectorAll("select")].map((s) => s.options.length - 1),
      checkboxes: count("input[type=checkbox]"), inputs: count("input[type=text], textarea"),
      headers: count(".bk-header"), contexts: count(".bk-context"), pres: count("pre"), text: root.textContent,
    };
  });
}"""

MRKDWN = """async (cases) => {
  const { renderMrkdwn } = await import("/static/mrkdwn.js");
  const ctx = { users: { U_OWNER: { name: "alice" } }, channels: { C_BOARD: "taskpin" }, me: "U_OWNER" };
  return cases.map((text) => {
    const root = renderMrkdwn(text, ctx);
    return { text: root.textContent, tags: [...root.querySelectorAll("*")].map((n) => n.tagName.toLowerCase() + (n.className ? "." + n.className.split(" ").join(".") : "")),
             hrefs: [...root.querySelectorAll("a")].map((a) => a.getAttribute("href")),
             quotes: [...root.querySelectorAll("blockquote")].map((q) => q.textContent) };
  });
}"""


def _messages() -> dict[str, list[dict]]:
    task = build_task(3, TaskState.BLOCKED, title="Pick a database")
    review = build_task(4, TaskState.AWAITING_REVIEW)
    two = (Option("pg", "PostgreSQL", description="the usual"), Option("sqlite", "SQLite"))
    many = tuple(Option(f"o{i}", f"Option {i}") for i in range(30))
    permission = build_intervention(8, kind=InterventionKind.PERMISSION, tool="Bash", detail="rm -rf build/",
                                    options=(Option("allow", "Approve", "allow"), Option("deny", "Deny", "deny")))
    answered = build_intervention(9, options=two, status=InterventionStatus.ANSWERED, answered_by="U_OWNER",
                                  answer_options=("pg",), resolved_at=NOW)
    done = build_task(5, TaskState.COMPLETED, started_at=NOW - timedelta(minutes=9), cost_usd=0.4)
    urls = {t.id: f"https://taskpin-emu.slack.com/archives/C_BOARD/p17000000{t.id:02d}000100" for t in build_tasks(12)}
    return {
        "board": render_board(build_tasks(12, nasty_every=5), now=NOW, thread_urls=urls,
                              home_hint="slack://app?team=T_EMU&id=A_TASKPIN&tab=home")["blocks"],
        "buttons": render_intervention(task, build_intervention(options=two), owner="U_OWNER")["blocks"],
        "select": render_intervention(task, build_intervention(options=many), owner="U_OWNER")["blocks"],
        "checkboxes": render_intervention(task, build_intervention(options=two, multi_select=True),
                                          owner="U_OWNER")["blocks"],
        "permission": render_intervention(task, permission, owner="U_OWNER")["blocks"],
        "resolved": render_intervention_resolved(task, answered)["blocks"],
        "review": review_message(review)["blocks"],
        "result": result_message(done)["blocks"],
        "output": output_summary_message(task, ["collected 12 items", "12 passed <in 0.4s>"])["blocks"],
        "home": render_home(build_tasks(6), viewer="U001OWNER", now=NOW)["blocks"],
        "create_modal": create_task_modal(repos=["web", "api"], agents=["claude-code", "codex"], default_repo="web",
                                          default_agent=None, prompt="Fix it")["blocks"],
        "changes_modal": request_changes_modal(review)["blocks"],
    }


async def test_every_block_and_element_the_bot_sends_is_drawn(page):
    messages = _messages()
    drawn = dict(zip(messages, await page.evaluate(RENDER, list(messages.values()))))
    for name, blocks in messages.items():
        out = drawn[name]
        elements = [el for _b, el in iter_elements(blocks)]
        assert out["unknown"] == [], (name, out["unknown"])
        assert out["blocks"] == len(blocks), name
        assert len(out["buttons"]) == sum(el["type"] == "button" for el in elements), name
        assert out["checkboxes"] == sum(len(el["options"]) for el in elements if el["type"] == "checkboxes"), name
        assert out["selects"] == [len(el["options"]) for el in elements if el["type"] == "static_select"], name
    assert drawn["board"]["headers"] == 1 and drawn["board"]["contexts"] >= 12
    styles = dict(drawn["permission"]["buttons"])
    assert styles == {"Approve": "bk-button bk-primary", "Deny": "bk-button bk-danger", "Always allow this": "bk-button"}
    assert drawn["permission"]["pres"] == 1 and "rm -rf build/" in drawn["permission"]["text"]
    assert drawn["output"]["pres"] == 1 and "12 passed <in 0.4s>" in drawn["output"]["text"]
    assert drawn["create_modal"]["inputs"] == 4 and drawn["create_modal"]["selects"] == [2, 2]
    assert "+120 −30 · 5 files" in drawn["review"]["text"]


async def test_mrkdwn_formats_mentions_links_and_shows_escaped_text_literally(page):
    cases = [
        "*bold* _italic_ ~gone~ `a <b> code`",
        "<@U_OWNER> in <#C_BOARD> and <!channel> <!here>",
        "<https://example.com/a_b|a link> and <javascript:alert(1)|not a link>",
        "&lt;img src=x onerror=alert(1)&gt; &amp;amp; &lt;!channel&gt;",
        "```\n<b>not bold</b> *not bold*\n```",
        "> quoted *line*\nnot quoted",
        escape_mrkdwn(NASTY_TITLE),
        "snake_case_name and 2*3*4 stay as they are",
    ]
    fmt, mentions, links, escaped, fence, quote, nasty, plain = await page.evaluate(MRKDWN, cases)
    assert fmt["tags"] == ["b", "i", "s", "code.code"] and fmt["text"] == "bold italic gone a <b> code"
    assert mentions["text"] == "@alice in #taskpin and @channel @here"
    assert mentions["tags"] == ["span.mention.mention-me", "span.mention.channel-mention",
                                "span.mention.mention-broadcast", "span.mention.mention-broadcast"]
    assert links["hrefs"] == ["https://example.com/a_b"] and links["text"] == "a link and not a link"
    assert escaped["text"] == "<img src=x onerror=alert(1)> &amp; <!channel>" and escaped["tags"] == []
    assert fence["tags"] == ["pre.pre"] and fence["text"] == "<b>not bold</b> *not bold*"
    assert quote["tags"] == ["blockquote.quote", "b"] and quote["quotes"] == ["quoted line"]
    assert quote["text"].endswith("not quoted")
    assert nasty["tags"] == [] and "<!channel> <@U123>" in nasty["text"] and "<https://evil.example|click>" in nasty["text"]
    assert plain["text"] == "snake_case_name and 2*3*4 stay as they are" and plain["tags"] == []
