"""Text helpers: make user and agent text safe for Slack mrkdwn, and fit it into limits.

Escaping policy
---------------
* ``&``, ``<`` and ``>`` become ``&amp;``, ``&lt;`` and ``&gt;`` (Slack's own escaping).
  This defuses ``<!channel>``, ``<@U123>`` and ``<url|links>`` in user text.
* The formatting characters ``* _ ~ ` `` are replaced by look-alikes (∗ ˍ ∼ ˋ). Slack mrkdwn
  has no backslash escape, and whether an invisible character next to a marker stops
  formatting depends on Slack's undocumented word-boundary rules; a look-alike can never
  open or close formatting. Identifiers that must stay exact (branches, file names) go
  through :func:`inline_code` instead, where those characters are literal anyway.
* Bare ``@channel``/``@here``/``@everyone`` get a word joiner after the ``@``: our mrkdwn
  objects are ``verbatim`` (no auto-parsing), this is a second guard for fallback text.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime

ELLIPSIS = "…"
ZERO_WIDTH_SPACE = "\u200b"
WORD_JOINER = "\u2060"

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_LOOKALIKES = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
_ESCAPE_ENTITIES = str.maketrans(_ENTITIES)
_ESCAPE_MRKDWN = str.maketrans({**_ENTITIES, **_LOOKALIKES})
_BROADCAST = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
# A cut must not leave half an entity ("&am") or half a <token> ("<@U12", "<https://x|lab").
_DANGLING_TAIL = re.compile(r"(?:&[a-z#0-9]{0,5}|<[^>]*)$")
_WHITESPACE = re.compile(r"\s+")
_USER_ID = re.compile(r"^[UW][A-Z0-9_]+$")  # Slack ids are [A-Z0-9]; the emulator adds _
_SAFE_URL = re.compile(r"^(?:https?|slack)://[^\s<>|]+$")


def escape_entities(s: str) -> str:
    """Only Slack's three control characters; for text inside code spans and blocks."""
    return s.translate(_ESCAPE_ENTITIES)


def escape_mrkdwn(s: str) -> str:
    """User or agent text shown literally in mrkdwn: no formatting, links or mentions."""
    return _BROADCAST.sub("@" + WORD_JOINER, s.translate(_ESCAPE_MRKDWN))


def unescape_slack(s: str) -> str:
    """What a user typed, from the `text` Slack sends (which has ``&``, ``<`` and ``>`` as entities)."""
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def one_line(s: str) -> str:
    """Collapse newlines and runs of whitespace: titles and list items stay on one line."""
    return _WHITESPACE.sub(" ", s).strip()


def truncate(s: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """Cut mrkdwn to at most ``limit`` characters, never inside an entity or a <token>."""
    if len(s) <= limit:
        return s
    if limit <= len(ellipsis):
        return ellipsis[:limit]
    cut = _DANGLING_TAIL.sub("", s[: limit - len(ellipsis)])
    return cut.rstrip() + ellipsis


def plain(s: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """Fit text for a plain_text object (no escaping needed there)."""
    if len(s) <= limit:
        return s
    if limit <= len(ellipsis):
        return ellipsis[:limit]
    return s[: limit - len(ellipsis)].rstrip() + ellipsis


def safe_text(s: str, limit: int) -> str:
    """Escape then truncate: the usual path for user text in mrkdwn."""
    return truncate(escape_mrkdwn(s), limit)


def inline_code(s: str, limit: int = 200) -> str:
    """An exact identifier (branch, path) as `code`; a backtick inside becomes a look-alike."""
    body = truncate(escape_entities(one_line(s)).replace("`", _LOOKALIKES["`"]), max(1, limit - 2))
    return f"`{body}`" if body else ""


def code_block(s: str, limit: int) -> str:
    """Text in a ``` block, at most ``limit`` characters including the fences.

    A run of backticks in the text would close the block early, so a zero-width space goes
    between adjacent backticks: the text still reads (and mostly copies) exactly, but never
    contains ```. The fences sit on their own lines so the text cannot touch them.
    """
    fence_overhead = len("```\n\n```")
    body = escape_entities(s.strip("\n"))
    body = re.sub(r"`(?=`)", "`" + ZERO_WIDTH_SPACE, body)
    body = truncate(body, max(1, limit - fence_overhead)) or " "
    return f"```\n{body}\n```"


def user_mention(user_id: str) -> str:
    """``<@U123>`` for a Slack user id; anything else (``cli``, an email) as escaped text."""
    if _USER_ID.match(user_id or ""):
        return f"<@{user_id}>"
    return escape_mrkdwn(user_id or "someone")


def link(url: str | None, label_mrkdwn: str) -> str:
    """``<url|label>`` when the url is safe to embed, else just the (already escaped) label."""
    if url and len(url) <= 3000 and _SAFE_URL.match(url):
        return f"<{url}|{label_mrkdwn}>"
    return label_mrkdwn


def fmt_duration(seconds: float) -> str:
    """45s, 12m, 3h 5m, 2d 4h."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def fmt_cost(usd: float) -> str:
    """A cost label, as mrkdwn (every caller puts it in mrkdwn, where ``<`` opens a control sequence)."""
    if usd <= 0:
        return "$0.00"
    if usd < 0.01:
        return "&lt;$0.01"
    if usd < 1000:
        return f"${usd:,.2f}"
    return f"${usd:,.0f}"


def _epoch_minutes(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() // 60)


def minutes_between(since: datetime, now: datetime) -> int:
    """Whole wall-clock minutes from ``since`` to ``now``.

    Both ends are floored to the minute, so every elapsed time on a board ticks at the same
    instant: the rendered board changes at most once a minute and identical renders can be
    skipped.
    """
    return max(0, _epoch_minutes(now) - _epoch_minutes(since))


def fmt_elapsed(since: datetime, now: datetime) -> str:
    """An elapsed-time label, as mrkdwn: under a minute is ``&lt;1m`` (Slack shows ``<1m``)."""
    minutes = minutes_between(since, now)
    return "&lt;1m" if minutes == 0 else fmt_duration(minutes * 60)


def epoch_seconds(at: datetime) -> float:
    """Comparable timestamps even when naive (taken as UTC) and aware datetimes mix."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


FALLBACK_MESSAGE_MAX = 3900   # under chat.postMessage's 4000


def plain_fallback(payload: dict) -> str:
    """The words of a message with no blocks, for when Slack refuses its blocks: the texts of its
    header, section and context blocks (already escaped mrkdwn), else its `text`; buttons dropped."""
    parts: list[str] = []
    for block in payload.get("blocks") or ():
        if not isinstance(block, dict) or block.get("type") not in ("header", "section", "context"):
            continue
        pieces = [block.get("text")] + list(block.get("fields") or ()) + list(block.get("elements") or ())
        for piece in pieces:
            if isinstance(piece, dict) and isinstance(piece.get("text"), str) and piece["text"].strip():
                text = piece["text"]
                parts.append(escape_entities(text) if piece.get("type") == "plain_text" else text)
    text = "\n".join(parts) or str(payload.get("text") or "") or "taskpin"
    return text if len(text) <= FALLBACK_MESSAGE_MAX else text[: FALLBACK_MESSAGE_MAX - 1].rstrip() + ELLIPSIS
