"""`taskpin dev` in a real browser: a person clicks through the page, the real bot answers over Socket
Mode, and the page shows what Slack would show. One session and one page for all of tests/dev."""
from __future__ import annotations

import pytest

from .conftest import need_browser

need_browser()
from playwright.async_api import expect  # noqa: E402

from .ui import LONG, act_as, card, card_button, card_id, follow_card_link, open_thread, send  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="package")

HOSTILE = "<img src=x onerror=alert(1)> <!channel> *hi*"


def user_deliveries(emu) -> list:
    return [d for d in emu.deliveries if d.type in ("slash_commands", "interactive")]


async def test_create_dispatch_answer_with_a_button_approve(page, dev):
    before = len(user_deliveries(dev.emu))
    await send(page, "/task Add a CONTRIBUTING guide for new contributors")
    created = page.locator("#history-list .msg-ephemeral", has_text="Created")
    await expect(created).to_contain_text("Only visible to you")
    task = await card_id(page, "Add a CONTRIBUTING guide")
    await expect(card_button(page, task, "Dispatch")).to_have_class("bk-button bk-primary")

    await card_button(page, task, "Dispatch").click()
    await expect(card(page, task)).to_contain_text("question waiting", timeout=LONG)
    await open_thread(page, "Add a CONTRIBUTING guide")
    thread = page.locator("#thread")
    await expect(thread).to_contain_text("dispatched by @alice")
    await expect(thread).to_contain_text("Which tone should CONTRIBUTING.md take?")

    await thread.locator("button", has_text="Friendly").click()
    await expect(thread).to_contain_text("@alice chose Friendly", timeout=LONG)
    await expect(thread).to_contain_text("is ready for review", timeout=LONG)
    await expect(thread).to_contain_text("+4 −0 · 1 file")
    await expect(thread.locator("button", has_text="Friendly")).to_have_count(0)   # the question was edited

    await card_button(page, task, "Approve").click(timeout=LONG)
    await expect(card(page, task)).to_contain_text("completed", timeout=LONG)
    await expect(page.locator('#pinned-list [data-block-id="column:completed"]')).to_be_visible()
    await expect(thread).to_contain_text("is completed", timeout=LONG)
    await page.click("#thread-close")
    await follow_card_link(page, task)
    await expect(thread).to_contain_text("is completed")
    assert page.url.startswith(dev.server.url), page.url

    # Every click went to the bot the way Slack sends it: a Socket Mode envelope, acked in time.
    sent = user_deliveries(dev.emu)[before:]
    assert {d.kind for d in sent} >= {"slash_command", "block_actions"}
    assert all(d.mode == "socket" and d.ack and d.ack.acked for d in sent), [(d.kind, d.ack) for d in sent]


async def test_answer_by_reply_and_an_approver_approves(page, dev):
    await send(page, "/task Write a changelog entry")
    task = await card_id(page, "Write a changelog entry")
    await card_button(page, task, "Dispatch").click()
    await open_thread(page, "Write a changelog entry")
    thread = page.locator("#thread")
    await expect(thread).to_contain_text("Which tone", timeout=LONG)

    await send(page, "Formal, please: <b>no</b> emoji", box="#thread-composer")
    # alice's own reply (the question, edited once answered, quotes it too)
    reply = thread.locator(".msg").filter(has_text="Formal, please").filter(has_not_text="answered")
    await expect(reply).to_contain_text("alice")
    await expect(thread).to_contain_text("@alice answered", timeout=LONG)
    await expect(thread.locator(".quote", has_text="Formal, please")).to_contain_text("<b>no</b> emoji")
    await expect(thread).to_contain_text("is ready for review", timeout=LONG)

    await act_as(page, "U_APPROVER")
    await card_button(page, task, "Approve").click(timeout=LONG)
    await expect(card(page, task)).to_contain_text("completed", timeout=LONG)


async def test_a_stranger_is_refused_privately_and_cancel_asks_first(page, dev):
    await send(page, "/task Tidy the README")
    task = await card_id(page, "Tidy the README")
    await card_button(page, task, "Dispatch").click()
    await open_thread(page, "Tidy the README")
    thread = page.locator("#thread")
    await expect(thread).to_contain_text("Which tone", timeout=LONG)

    await act_as(page, "U_OTHER")
    await thread.locator("button", has_text="Formal").click()
    refusal = thread.locator(".msg-ephemeral", has_text="owner or an approver")
    await expect(refusal).to_contain_text(f"#{task}")
    await expect(refusal).to_contain_text("Only visible to you")
    await expect(thread.locator("button", has_text="Formal")).to_be_visible()     # still unanswered

    await act_as(page, "U_OWNER")
    await expect(thread).to_contain_text("Which tone")
    await expect(page.locator(".msg-ephemeral", has_text="owner or an approver")).to_have_count(0)

    await card_button(page, task, "Cancel").click()
    dialog = page.locator("#confirm")
    await expect(dialog).to_contain_text(f"Cancel #{task}?")
    await dialog.locator("button", has_text="Keep it").click()
    await expect(dialog).to_have_count(0)
    assert not [d for d in dev.emu.deliveries if d.kind == "block_actions"
                and d.payload["actions"][0]["action_id"] == f"task_cancel:{task}"], "Keep it sent the click"
    await card_button(page, task, "Cancel").click()
    await page.locator("#confirm button", has_text="Stop the agent").click()
    await expect(card(page, task)).to_contain_text("failed", timeout=LONG)
    await expect(card_button(page, task, "Retry")).to_be_visible()


async def test_the_form_shows_field_errors_and_a_hostile_title_shows_literally(page, dev):
    await send(page, "/task")
    modal = page.locator("#modal")
    await expect(modal).to_contain_text("New agent task")
    await modal.locator("#input-title").fill(HOSTILE)
    await modal.locator("#input-base_branch").fill("bad..branch")
    await modal.locator("[data-role=submit]").click()
    await expect(modal.locator('[data-block-id="prompt"] .bk-error')).to_have_text("Please complete this required field.")

    await modal.locator("#input-prompt").fill("Check how titles are escaped")
    await modal.locator("[data-role=submit]").click()
    await expect(modal.locator('[data-block-id="base_branch"] .bk-error')).to_contain_text("valid branch name")
    await expect(modal.locator("#input-title")).to_have_value(HOSTILE)            # nothing typed is lost

    await modal.locator("#input-base_branch").fill("")
    await modal.locator("[data-role=submit]").click()
    await expect(modal).to_have_count(0)
    task = await card_id(page, "onerror")
    shown = await card(page, task).inner_text()
    assert "<img src=x onerror=alert(1)> <!channel> ∗hi∗" in shown, shown
    assert await page.locator("#pinned-list img, #history-list img").count() == 0
    assert await card(page, task).locator(".mention-broadcast, b:text-is('hi')").count() == 0
    await expect(page.locator("#history-list .msg-ephemeral", has_text="onerror")).to_contain_text("<!channel>")
    assert dev.dialogs == [], "the title ran as code"


async def test_message_shortcut_turns_a_message_into_a_task(page, dev):
    await send(page, "The login test is flaky on CI")
    message = page.locator("#history-list .msg", has_text="The login test is flaky on CI")
    await expect(message).to_contain_text("alice")
    await message.hover()
    await message.locator("[data-tool=more]").click()
    await page.locator(".menu .menu-item", has_text="Create agent task").click()
    modal = page.locator("#modal")
    await expect(modal.locator("#input-prompt")).to_have_value("The login test is flaky on CI")
    await modal.locator("[data-role=submit]").click()
    await card_id(page, "The login test is flaky on CI")


async def test_home_tab_lists_my_tasks_and_opens_the_form(page, dev):
    await page.click("#nav-home")
    home = page.locator("#home-blocks")
    await expect(home).to_contain_text("Your tasks", timeout=LONG)
    await expect(home.locator('[data-block-id^="card:"]').first).to_be_visible()
    await home.locator("button", has_text="New agent task").click()
    modal = page.locator("#modal")
    await expect(modal).to_contain_text("What should the agent do?")
    await modal.locator("[data-role=close]").click()
    await expect(modal).to_have_count(0)


async def test_checkboxes_answer_a_multi_select_question(page, dev):
    await send(page, "/task")
    modal = page.locator("#modal")
    await modal.locator("#input-title").fill("Release notes")
    await modal.locator("#input-prompt").fill("choices for the release notes")
    await modal.locator("#input-agent").select_option("scene-agent")
    await modal.locator("[data-role=submit]").click()
    task = await card_id(page, "Release notes")
    await card_button(page, task, "Dispatch").click()
    await open_thread(page, "Release notes")
    thread = page.locator("#thread")
    await expect(thread).to_contain_text("Which platforms", timeout=LONG)
    await expect(thread).to_contain_text("needs the new installer")
    await thread.locator("label", has_text="Linux").locator("input").check()
    await thread.locator("label", has_text="Windows").locator("input").check()
    await thread.locator("button", has_text="Submit").click()
    await expect(thread).to_contain_text("chose Linux, Windows", timeout=LONG)


async def test_an_unknown_command_is_answered_privately_and_nothing_is_sent(page, dev):
    before = len(user_deliveries(dev.emu))
    await send(page, "/deploy production")
    note = page.locator("#history-list .msg-ephemeral", has_text="/deploy is not a valid command")
    await expect(note).to_contain_text("Slackbot")
    assert len(user_deliveries(dev.emu)) == before
    await note.locator("button", has_text="Dismiss").click()
    await expect(note).to_have_count(0)
