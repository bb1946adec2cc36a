"""The one-line /task syntax: options, the prompt as typed, `after #N`, and every refusal."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.quick_text import OPTIONS, QuickTask, QuickTextError, choice_problem, parse


@pytest.mark.parametrize("text, expected", [
    ("Fix the flaky login test", QuickTask("Fix the flaky login test")),
    ("repo=api agent=codex branch=release-2 Fix the flaky login test",
     QuickTask("Fix the flaky login test", repo="api", agent="codex", branch="release-2")),
    ("agent=codex   repo=api\nFix it\nthoroughly", QuickTask("Fix it\nthoroughly", repo="api", agent="codex")),
    ("Fix the API after #12 #13", QuickTask("Fix the API", depends_on=(12, 13))),
    ("Fix the API after #12, #13 and #12.", QuickTask("Fix the API", depends_on=(12, 13))),
    ("repo=api Fix the API after #7", QuickTask("Fix the API", repo="api", depends_on=(7,))),
    ("Fix what broke after lunch", QuickTask("Fix what broke after lunch")),
    ("Check why x=1 after #3 of the loop fails", QuickTask("Check why x=1 after #3 of the loop fails")),
    ("x=1 makes the parser crash", QuickTask("x=1 makes the parser crash")),
    ("REPO=api Fix it", QuickTask("Fix it", repo="api")),
    ("Fix repo=api in the docs", QuickTask("Fix repo=api in the docs")),
])
def test_parse(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("text, message", [
    ("rep=api Fix it", "unknown option rep= (did you mean repo=?)"),
    ("agnt=codex Fix it", "did you mean agent=?"),
    ("repo= Fix it", "repo= needs a value, e.g. repo=api"),
    ("repo=api repo=web Fix it", "repo= is given twice"),
    ("repo=api agent=codex", "say what the agent should do after the options"),
    ("after #3", "say what the agent should do"),
    ("Fix it after #0", "task ids start at #1"),
    ("", "say what the agent should do"),
])
def test_refusals_say_what_to_change(text, message):
    with pytest.raises(QuickTextError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        parse(text)


def test_choice_problems():
    assert choice_problem("repository", "repo", None, ["api"], None) is None
    assert choice_problem("repository", "repo", None, ["api", "web"], "web") is None
    several = choice_problem("repository", "repo", None, ["api", "web"], None)
    assert "pick one in the same line, e.g. /task repo=api" in several and "repositories: api, web" in several
    unknown = choice_problem("agent", "agent", "codx", ["claude", "codex"], "claude")
    assert "no agent named 'codx' (did you mean agent=codex?)" in unknown and "claude, codex" in unknown
    assert "no repository is configured" in choice_problem("repository", "repo", None, [], None)


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
words = st.from_regex(r"[A-Za-z][A-Za-z0-9,.!?']{0,12}", fullmatch=True).filter(
    lambda w: "=" not in w and w.lower() != "after")


@given(options=st.dictionaries(st.sampled_from(OPTIONS), names, max_size=3),
       prompt=st.lists(words, min_size=1, max_size=12).map(" ".join),
       after=st.lists(st.integers(1, 10_000), max_size=4, unique=True))
@settings(max_examples=300, deadline=None)
def test_what_is_written_is_what_is_parsed(options, prompt, after):
    line = " ".join(f"{k}={v}" for k, v in options.items()) + " " + prompt
    if after:
        line += " after " + " ".join(f"#{n}" for n in after)
    task = parse(line)
    assert task.prompt == prompt
    assert {k: getattr(task, k) for k in OPTIONS if getattr(task, k)} == options
    assert task.depends_on == tuple(after)


@given(st.text(max_size=400))
@settings(max_examples=500, deadline=None)
def test_any_text_parses_or_is_refused_with_a_message(text):
    try:
        task = parse(text)
    except QuickTextError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert task.prompt and task.prompt == task.prompt.strip()
    assert task.prompt in text
