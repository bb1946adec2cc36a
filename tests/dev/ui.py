"""What a person does on the page, in Playwright terms."""
from __future__ import annotations

from playwright.async_api import Page, expect

LONG = 20_000   # ms: an agent round trip through the real bot


async def send(page: Page, text: str, *, box: str = "#composer") -> None:
    await page.fill(box, text)
    await page.press(box, "Enter")


async def card_id(page: Page, title: str) -> int:
    """The id of the task whose card on the pinned board shows `title`."""
    card = page.locator('#pinned-list [data-block-id^="card:"]', has_text=title).first
    await expect(card).to_be_visible(timeout=LONG)
    return int((await card.get_attribute("data-block-id")).split(":")[1])


def card(page: Page, task_id: int):
    return page.locator(f'#pinned-list [data-block-id="card:{task_id}"]')


def card_button(page: Page, task_id: int, label: str):
    return page.locator(f'#pinned-list [data-block-id="card_actions:{task_id}"] button', has_text=label)


async def open_thread(page: Page, title: str) -> None:
    """Click "N replies" under the task's dispatch message: the thread opens beside the channel."""
    message = page.locator("#history-list .msg", has_text="dispatched by").filter(has_text=title)
    await message.locator(".replies").click(timeout=LONG)
    await expect(page.locator("#thread")).to_be_visible()


async def follow_card_link(page: Page, task_id: int) -> None:
    """Follow the card's 🧵 thread link (a permalink): the page opens the thread instead of leaving."""
    link = page.locator(f'#pinned-list [data-block-id="card_meta:{task_id}"] a', has_text="thread")
    await link.click(timeout=LONG)
    await expect(page.locator("#thread")).to_be_visible()


INITIALS = {"U_OWNER": "A", "U_OTHER": "B", "U_APPROVER": "C"}   # alice, bob, carol


async def act_as(page: Page, user: str) -> None:
    """Pick the person in the switcher; the page then shows what they see."""
    await page.select_option("#user-switcher", user)
    await expect(page.locator("#me-avatar")).to_have_text(INITIALS[user])
