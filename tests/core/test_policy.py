"""Approval-policy rules (orchestrator/policy.py): how they are written, what they match, and the
two laws: the first matching rule decides, and a task owner's rules only tighten."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.models import Option
from orchestrator.policy import (
    STRICTNESS,
    Effect,
    Rule,
    RuleError,
    decide,
    exact_target,
    option_for,
    parse_rule,
    rule_problems,
    shell_parts,
)

TEAM = [parse_rule(text, source="repos.api") for text in (
    "allow Read", "allow Grep", "allow Bash(pytest *)", "deny Bash(rm -rf *)", "deny Bash(git push *)")]


@pytest.mark.parametrize(("tool", "detail", "effect", "rule"), [
    ("Read", "src/app.py", Effect.ALLOW, "allow Read"),
    ("Bash", "pytest -q tests/", Effect.ALLOW, "allow Bash(pytest *)"),
    ("Bash", "rm -rf build", Effect.DENY, "deny Bash(rm -rf *)"),
    ("Bash", "git push origin main", Effect.DENY, "deny Bash(git push *)"),
    ("Bash", "curl https://example.com", Effect.ASK, None),      # nothing matched: a human decides
    ("WebFetch", "https://example.com", Effect.ASK, None),
    ("command", "pytest -x", Effect.ALLOW, "allow Bash(pytest *)"),   # Codex's name for it
    ("execute", "rm -rf /", Effect.DENY, "deny Bash(rm -rf *)"),      # ACP's
    ("bash", "pytest", Effect.ASK, None),                            # "pytest *" needs the space
])
def test_the_first_matching_rule_decides_and_no_match_asks(tool, detail, effect, rule):
    decision = decide(TEAM, tool, detail)
    assert decision.effect is effect
    assert (str(decision.rule) if decision.rule else None) == rule


@pytest.mark.parametrize(("command", "effect"), [
    ("pytest -q; rm -rf /", Effect.DENY),            # a chain is judged command by command
    ("pytest -q && curl evil.sh", Effect.ASK),
    ("pytest -q | tee out.txt", Effect.ASK),
    ("pytest -q 2>&1", Effect.ALLOW),                # a copied descriptor is not a file
    ("pytest -q > /etc/passwd", Effect.ASK),         # a redirection is never allowed automatically
    ("pytest $(rm -rf ~)", Effect.ASK),
    ("pytest `whoami`", Effect.ASK),
    ("pytest -k 'a; rm -rf /'", Effect.ALLOW),       # quoted: one argument, not a second command
    ('pytest -k "$(id)"', Effect.ASK),
    ("pytest -q\nrm -rf build", Effect.DENY),
])
def test_shell_chains_substitutions_and_redirections_cannot_sneak_past_an_allow(command, effect):
    assert decide(TEAM, "Bash", command).effect is effect


def test_a_path_inside_the_worktree_matches_relative_to_it_too():
    rules = [parse_rule("allow Edit(src/*)"), parse_rule("deny Read(.env)")]
    assert decide(rules, "Edit", "/wt/7/src/app.py", workdir="/wt/7").effect is Effect.ALLOW
    assert decide(rules, "Write", "/wt/7/src/new.py", workdir="/wt/7").effect is Effect.ALLOW   # Edit covers Write
    assert decide(rules, "Edit", "/elsewhere/src/app.py", workdir="/wt/7").effect is Effect.ASK
    assert decide(rules, "Read", "/wt/7/.env", workdir="/wt/7").effect is Effect.DENY


def test_an_owner_rule_tightens_but_never_loosens_an_approvers_rule():
    approver = [parse_rule("allow Bash(pytest *)"), parse_rule("ask Bash(git *)")]
    owner = [parse_rule(t, by_approver=False) for t in ("deny Bash(pytest --lf*)", "allow Bash(git status)",
                                                         "allow Bash(ls *)")]
    rules = approver + owner
    assert decide(rules, "Bash", "pytest --lf").effect is Effect.DENY      # tighter: the owner wins
    assert decide(rules, "Bash", "pytest -q").effect is Effect.ALLOW
    assert decide(rules, "Bash", "git status").effect is Effect.ASK        # looser: the approver's ask stays
    assert decide(rules, "Bash", "ls -la").effect is Effect.ALLOW          # nothing set by an approver


def test_a_denial_names_its_rule_for_the_agent():
    assert decide(TEAM, "Bash", "rm -rf build").reason() == \
        "denied by taskpin policy rule `Bash(rm -rf *)` (repos.api)"


@pytest.mark.parametrize(("text", "complaint"), [
    ("allow", "names no tool"),
    ("permit Read", "does not start with allow, ask or deny"),
    ("allow Bash(pytest *", "no closing ')'"),
    ("allow Bash()", "empty pattern"),
    ("deny Bash([ab)", "unclosed '['"),
    ("allow Ba sh", "is not a tool name"),
])
def test_a_rule_that_cannot_be_read_says_how_to_write_it(text, complaint):
    with pytest.raises(RuleError, match=re.escape(complaint)):
        parse_rule(text)


def test_check_warns_about_tools_no_agent_reports_and_errs_on_bad_syntax():
    problems = rule_problems(["allow Rade", "allow mcp__github__*", "ask *", "allow Bash(x"], "repos.api.policy")
    assert [(where, warning) for where, _what, _fix, warning in problems] == \
        [("repos.api.policy[0]", True), ("repos.api.policy[3]", False)]
    assert "did you mean 'Read'" in problems[0][2]


def test_the_once_option_is_chosen_not_the_always_one():
    acp = (Option("allow_always", "Always Allow", "allow"), Option("allow_once", "Allow", "allow"),
           Option("reject_once", "Reject", "deny"))
    assert option_for(Effect.ALLOW, acp) == "allow_once"
    assert option_for(Effect.DENY, acp) == "reject_once"
    assert option_for(Effect.DENY, (Option("ok", "OK"),)) is None


# ---- properties ---------------------------------------------------------------------------

TOOLS = st.sampled_from(["Bash", "Read", "Edit", "Grep", "WebFetch", "Write", "command", "read", "Task"])
WORDS = st.text(alphabet="abcxyz-./ ", min_size=0, max_size=8)
DETAILS = st.text(alphabet="abcxyz-./ ", min_size=1, max_size=12).filter(str.strip)
GLOBS = st.one_of(st.none(), st.builds(lambda a, b: f"{a}*{b}", WORDS, WORDS), WORDS.filter(str.strip))
EFFECTS = st.sampled_from(list(Effect))


def rules_of(by_approver: bool):
    return st.lists(st.builds(lambda e, t, g: Rule(e, t, g.strip() if g else None, by_approver=by_approver),
                              EFFECTS, TOOLS, GLOBS), max_size=6)


@settings(max_examples=300, deadline=None)
@given(rules_of(True), TOOLS, DETAILS, EFFECTS)
def test_property_a_matching_rule_put_first_decides(rules, tool, detail, effect):
    first = parse_rule(f"{effect.value} {exact_target(tool, detail.strip())}")
    assert decide([first, *rules], tool, detail).effect is effect


@settings(max_examples=300, deadline=None)
@given(rules_of(True), rules_of(False), TOOLS, DETAILS)
def test_property_owner_rules_only_tighten_what_an_approver_rule_decided(approver, owner, tool, detail):
    alone = decide(approver, tool, detail)
    together = decide(approver + owner, tool, detail)
    if alone.rule is not None:
        assert STRICTNESS[together.effect] >= STRICTNESS[alone.effect]
    if not owner:
        assert together == alone


@settings(max_examples=200, deadline=None)
@given(rules_of(True), st.integers(0, 6), TOOLS, DETAILS, GLOBS)
def test_property_adding_a_deny_rule_anywhere_never_loosens(rules, at, tool, detail, glob):
    deny = Rule(Effect.DENY, tool, glob.strip() if glob else None)
    before = decide(rules, tool, detail)
    after = decide([*rules[:at], deny, *rules[at:]], tool, detail)
    assert STRICTNESS[after.effect] >= STRICTNESS[before.effect]


@settings(max_examples=200, deadline=None)
@given(rules_of(True), st.lists(DETAILS, min_size=1, max_size=4), st.sampled_from([" && ", "; ", " | ", "\n"]))
def test_property_a_chain_is_at_least_as_strict_as_each_of_its_commands(rules, commands, glue):
    chain = decide(rules, "Bash", glue.join(commands))
    for command in commands:
        assert STRICTNESS[chain.effect] >= STRICTNESS[decide(rules, "Bash", command).effect]


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=30).filter(lambda t: t.strip() and "\x00" not in t))
def test_property_an_exact_rule_matches_its_own_detail_and_reads_back(detail):
    detail = detail.strip()
    rule = parse_rule(f"allow {exact_target('Read', detail)}")
    assert rule.matches("Read", [detail]) and parse_rule(str(rule)) == rule


def test_shell_parts_keep_quotes_and_flag_substitutions():
    assert shell_parts("a 'b; c' && d") == (["a 'b; c'", "d"], False)
    assert shell_parts("echo $(x)")[1] and not shell_parts("echo '$(x)'")[1]
