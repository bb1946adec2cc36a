import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.blocks.text import (
    code_block,
    escape_mrkdwn,
    fmt_cost,
    fmt_duration,
    fmt_elapsed,
    inline_code,
    link,
    minutes_between,
    plain,
    truncate,
    user_mention,
)

FORMATTING = "*_~`"


def test_escape_defuses_mentions_and_links():
    out = escape_mrkdwn("<!channel> <@U123> <https://x.example|click> a & b")
    assert "<" not in out and ">" not in out
    assert "&lt;!channel&gt;" in out
    assert "&lt;@U123&gt;" in out
    assert "a &amp; b" in out


@pytest.mark.parametrize("text", ["*bold*", "_italic_", "~strike~", "`code`", "```block```", "a*b*c_d_"])
def test_escape_leaves_no_formatting_characters(text):
    out = escape_mrkdwn(text)
    assert not any(ch in out for ch in FORMATTING)
    assert len(out) == len(text)  # one look-alike per character: reads the same


def test_escape_breaks_bare_broadcasts():
    out = escape_mrkdwn("hey @channel and @HERE and @everyone, not @chan")
    assert "@channel" not in out and "@HERE" not in out and "@everyone" not in out
    assert "@chan" in out


def test_escape_is_not_applied_twice_to_entities():
    assert escape_mrkdwn("&amp;") == "&amp;amp;"


def _no_broken_entity(s: str) -> bool:
    return all(re.match(r"&(amp|lt|gt);", s[m.start():]) for m in re.finditer("&", s))


@pytest.mark.parametrize("limit", range(1, 40))
def test_truncate_never_cuts_an_entity(limit):
    escaped = escape_mrkdwn("<&>" * 20)
    out = truncate(escaped, limit)
    assert len(out) <= limit
    assert _no_broken_entity(out)


def test_truncate_never_cuts_a_token():
    text = "owner <@U12345678> and <https://example.com/a|a link> end"
    for limit in range(1, len(text)):
        out = truncate(text, limit)
        assert len(out) <= limit
        assert out.count("<") == out.count(">")


def test_truncate_keeps_short_text_and_adds_ellipsis():
    assert truncate("short", 10) == "short"
    assert truncate("a" * 20, 10) == "a" * 9 + "…"
    assert plain("b" * 20, 5) == "bbbb…"
    assert plain("<@U1>", 50) == "<@U1>"


def test_code_block_survives_fences_in_the_text():
    command = "echo ```\n```rm -rf /``` <!channel> & done`"
    out = code_block(command, 3000)
    assert out.startswith("```\n") and out.endswith("\n```")
    assert out.count("```") == 2
    assert "&lt;!channel&gt;" in out and "&amp;" in out


def test_code_block_respects_its_limit():
    out = code_block("x&" * 5000, 3000)
    assert len(out) <= 3000
    assert out.count("```") == 2
    assert _no_broken_entity(out)


def test_inline_code_keeps_identifiers_exact_but_safe():
    assert inline_code("taskpin/12-fix_login") == "`taskpin/12-fix_login`"
    out = inline_code("a`b<c")
    assert out.count("`") == 2 and "&lt;" in out


@pytest.mark.parametrize(
    "user_id, expected",
    [("U123ABC", "<@U123ABC>"), ("W0AB", "<@W0AB>"), ("cli", "cli"), ("u123", "u123"), ("<!channel>", "&lt;!channel&gt;")],
)
def test_user_mention(user_id, expected):
    assert user_mention(user_id) == expected


def test_link_only_embeds_safe_urls():
    assert link("https://x.slack.com/archives/C1/p1", "#1") == "<https://x.slack.com/archives/C1/p1|#1>"
    assert link("https://x|y", "#1") == "#1"
    assert link("javascript:alert(1)", "#1") == "#1"
    assert link(None, "#1") == "#1"


@pytest.mark.parametrize(
    "seconds, expected",
    [(0, "0s"), (45, "45s"), (60, "1m"), (719, "11m"), (3600, "1h"), (3900, "1h 5m"), (86400, "1d"), (93600, "1d 2h"), (-5, "0s")],
)
def test_fmt_duration(seconds, expected):
    assert fmt_duration(seconds) == expected


@pytest.mark.parametrize(
    "usd, expected", [(0, "$0.00"), (0.004, "&lt;$0.01"), (0.4234, "$0.42"), (12.3, "$12.30"), (1234.5, "$1,234")]
)
def test_fmt_cost(usd, expected):
    assert fmt_cost(usd) == expected


def test_elapsed_ticks_on_wall_clock_minutes():
    since = datetime(2025, 1, 1, 10, 0, 50, tzinfo=UTC)
    assert minutes_between(since, since + timedelta(seconds=5)) == 0
    assert minutes_between(since, since + timedelta(seconds=15)) == 1  # crossed 10:01:00
    assert fmt_elapsed(since, since) == "&lt;1m"
    naive_now = datetime(2025, 1, 1, 11, 0, 0)
    assert minutes_between(since, naive_now) == 60  # naive taken as UTC
