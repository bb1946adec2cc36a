"""Approval policies: which permission requests are answered without a human.

Pure: no store, no clock. A rule is written ``EFFECT TOOL`` or ``EFFECT TOOL(GLOB)``, e.g.
``allow Read``, ``allow Bash(pytest *)``, ``deny Bash(rm -rf *)``, ``ask WebFetch``. TOOL is a
tool name (case-insensitive, a glob too: ``mcp__github__*``); the same name covers the
adapters' names for that tool (``Bash`` is Codex's ``command`` and ACP's ``execute``). GLOB is
matched against the request's detail (the command, path or URL) with fnmatch: ``*`` matches
anything, ``/`` and spaces included; ``[*]`` is a literal ``*``. Without ``(GLOB)`` any detail
matches. A path inside the task's worktree also matches as a path relative to it.

A rule list is read in order and the first rule that matches decides; no match asks a
human. Rules come in two layers: those an approver set (taskpin.toml, and rules an approver
added) and those the task's owner added. The owner's rules can only tighten: where an
approver's rule matched, the owner's first matching rule can make the decision stricter
(allow < ask < deny), never looser; where no approver rule matched, the owner's rule decides.
End the configured list with ``ask *`` to leave owners nothing to allow.

A shell command is judged one simple command at a time (``a && b; c | d`` is three, quotes
respected) and the strictest verdict wins, so ``allow Bash(pytest *)`` never lets
``pytest; rm -rf /`` through. A command with ``$(...)``, backticks or a ``>`` redirection to a
file is never allowed automatically (at most asked).
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from .models import Option
from .suggest import closest


class Effect(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


STRICTNESS = {Effect.ALLOW: 0, Effect.ASK: 1, Effect.DENY: 2}


def stricter(a: Effect, b: Effect) -> Effect:
    return a if STRICTNESS[a] >= STRICTNESS[b] else b


class RuleError(ValueError):
    """A rule that cannot be read; the message says how to write it."""


# Tool names each adapter reports (orchestrator/harness/*), by family: a rule naming any
# member covers them all. Claude Code's names first, then Codex's, then ACP's tool kinds.
TOOL_FAMILIES: dict[str, tuple[str, ...]] = {
    "bash": ("Bash", "command", "execute", "shell"),
    "edit": ("Edit", "Write", "MultiEdit", "NotebookEdit", "edit"),
    "read": ("Read", "NotebookRead", "read"),
    "grep": ("Grep", "search"),
    "glob": ("Glob", "LS", "search"),
    "webfetch": ("WebFetch", "fetch"),
}
KNOWN_TOOLS: frozenset[str] = frozenset({
    # Claude Code
    "Bash", "BashOutput", "KillShell", "Read", "Write", "Edit", "MultiEdit", "NotebookEdit", "NotebookRead",
    "Glob", "Grep", "LS", "WebFetch", "WebSearch", "Task", "TodoWrite", "ExitPlanMode", "SlashCommand", "Skill",
    # Codex (orchestrator/harness/codex/translate.py)
    "command", "edit", "permissions",
    # ACP tool kinds (an ACP agent that names its tools uses its own names, e.g. Claude Code's)
    "read", "delete", "move", "search", "execute", "think", "fetch", "switch_mode", "other",
    # the command protocol's example (docs/command-protocol.md); its agents name their own tools
    "shell",
})
SHELL_FAMILY = "bash"
_FAMILY_OF = {name.casefold(): family for family, names in TOOL_FAMILIES.items() for name in names}
_RULE = re.compile(r"^\s*(allow|ask|deny)\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_TOOL = re.compile(r"^[A-Za-z0-9_.:/*?\[\]-]+$")


@dataclass(frozen=True)
class Rule:
    effect: Effect
    tool: str                  # a name or glob, as written
    pattern: str | None        # a glob on the detail; None: any detail
    source: str = ""           # where it comes from: "repos.api", "agents.claude", "rule 3"
    by_approver: bool = True   # False: added by the task's owner (it can only tighten)
    rule_id: int | None = None   # an added rule's number (/task policy remove N)

    @property
    def target(self) -> str:
        """``Bash(pytest *)`` or ``Read``: the rule without its effect."""
        return self.tool if self.pattern is None else f"{self.tool}({self.pattern})"

    def __str__(self) -> str:
        return f"{self.effect.value} {self.target}"

    def matches(self, tool: str | None, details: Sequence[str]) -> bool:
        if not tool_matches(self.tool, tool or ""):
            return False
        return self.pattern is None or any(fnmatch.fnmatchcase(d, self.pattern) for d in details)


def parse_target(text: str) -> tuple[str, str | None]:
    """``Bash(pytest *)`` -> ("Bash", "pytest *"); ``Read`` -> ("Read", None). RuleError if bad."""
    text = (text or "").strip()
    tool, paren, rest = text.partition("(")
    tool = tool.strip()
    if not tool:
        raise RuleError(f"{text!r} names no tool: write a tool name, like Read or Bash(pytest *)")
    if not _TOOL.match(tool):
        raise RuleError(f"{tool!r} is not a tool name: write it like Read, Bash or mcp__github__*")
    _check_glob(tool, f"tool {tool!r}")
    if not paren:
        return tool, None
    if not rest.endswith(")"):
        raise RuleError(f"{text!r} has no closing ')': write it like Bash(pytest *)")
    pattern = rest[:-1]
    if not pattern.strip():
        raise RuleError(f"{text!r} has an empty pattern: write {tool} to match anything, or {tool}(pytest *)")
    _check_glob(pattern, f"pattern {pattern!r}")
    return tool, pattern


def parse_rule(text: str, *, source: str = "", by_approver: bool = True, rule_id: int | None = None) -> Rule:
    """``allow Bash(pytest *)`` -> Rule. RuleError with how to write it for anything else."""
    if not isinstance(text, str):
        raise RuleError(f"a rule is a string like \"allow Bash(pytest *)\", got {text!r}")
    match = _RULE.match(text)
    if match is None and text.strip().lower() in tuple(Effect):
        raise RuleError(f"{text.strip()!r} names no tool: write it like \"{text.strip().lower()} Read\"")
    if match is None:
        raise RuleError(f"{text.strip()!r} does not start with allow, ask or deny: write it like "
                        "\"allow Read\" or \"deny Bash(rm -rf *)\"")
    tool, pattern = parse_target(match.group(2))
    return Rule(Effect(match.group(1).lower()), tool, pattern, source, by_approver, rule_id)


def _check_glob(glob: str, what: str) -> None:
    """fnmatch reads an unclosed ``[`` as a literal; in a rule it is almost surely a typo."""
    i = 0
    while i < len(glob):
        if glob[i] == "[":
            j = i + 1
            j += glob[j:j + 1] == "!"
            j += glob[j:j + 1] == "]"   # a ']' right after '[' or '[!' is part of the set
            end = glob.find("]", j)
            if end < 0:
                raise RuleError(f"{what} has an unclosed '[': write [[] for a literal '['")
            i = end
        i += 1


def tool_matches(rule_tool: str, tool: str) -> bool:
    rule_key, key = rule_tool.casefold(), tool.casefold()
    if fnmatch.fnmatchcase(key, rule_key):
        return True
    family = _FAMILY_OF.get(rule_key)
    return family is not None and family == _FAMILY_OF.get(key)


def unknown_tool(rule_tool: str) -> bool:
    """True when no adapter reports a tool of this name (or glob): probably a typo."""
    if rule_tool.startswith("mcp"):
        return False
    return not any(tool_matches(rule_tool, known) for known in KNOWN_TOOLS)


def literal(text: str) -> str:
    """A glob matching exactly `text` (its *, ? and [ made literal)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def exact_target(tool: str, detail: str | None) -> str:
    """The rule target for exactly this request: ``Bash(pytest -q)``, or ``Read`` with no detail."""
    return f"{tool}({literal(detail)})" if detail and detail.strip() else tool


# ---- shell commands ------------------------------------------------------------------------

_FD_DUP = re.compile(r">&(\d+|-)")


def shell_parts(command: str) -> tuple[list[str], bool]:
    """The simple commands of a command line (split on ; & | && || and new lines outside
    quotes), and whether it substitutes or redirects (then it is never allowed automatically)."""
    parts, current, risky = [], [], False
    quote: str | None = None
    i = 0
    while i < len(command):
        ch = command[i]
        if quote == "'":
            quote = None if ch == "'" else quote
        elif ch == "\\" and i + 1 < len(command):
            current.append(command[i:i + 2])
            i += 2
            continue
        elif quote == '"':
            quote = None if ch == '"' else quote
            risky = risky or ch == "`" or command.startswith("$(", i)
        elif ch in "'\"":
            quote = ch
        elif ch in ";&|\n":
            parts.append("".join(current))
            current = []
            i += 1
            continue
        elif ch == "`" or command.startswith(("$(", "<(", ">("), i):
            risky = True
        elif ch == ">":
            dup = _FD_DUP.match(command, i)   # 2>&1: a copy of a descriptor, not a file
            if dup is None:
                risky = True
            else:
                current.append(dup.group())
                i = dup.end()
                continue
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()], risky


# ---- deciding ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    effect: Effect
    rule: Rule | None = None     # None: no rule matched (ask), or the owner's rule did not apply
    detail: str | None = None    # the part of a command line the rule is about

    @property
    def automatic(self) -> bool:
        return self.effect is not Effect.ASK

    def reason(self) -> str:
        """What the agent (and the audit log) is told: ``denied by taskpin policy rule `Bash(rm -rf *)` ``."""
        verb = {Effect.ALLOW: "allowed", Effect.DENY: "denied", Effect.ASK: "asked"}[self.effect]
        if self.rule is None:
            return "no taskpin policy rule matched: asked a human"
        where = f" ({self.rule.source})" if self.rule.source else ""
        return f"{verb} by taskpin policy rule `{self.rule.target}`{where}"


def first_match(rules: Iterable[Rule], tool: str | None, details: Sequence[str]) -> Rule | None:
    return next((rule for rule in rules if rule.matches(tool, details)), None)


def _decide_one(rules: Sequence[Rule], tool: str | None, details: Sequence[str]) -> Decision:
    approved = first_match((r for r in rules if r.by_approver), tool, details)
    owned = first_match((r for r in rules if not r.by_approver), tool, details)
    if approved is None:
        return Decision(owned.effect, owned) if owned else Decision(Effect.ASK)
    if owned is not None and STRICTNESS[owned.effect] > STRICTNESS[approved.effect]:
        return Decision(owned.effect, owned)
    return Decision(approved.effect, approved)


def _candidates(detail: str, workdir: str | None) -> list[str]:
    """The detail, and for a path inside the worktree the same path relative to it."""
    found = [detail]
    if workdir and detail.startswith("/"):
        try:
            relative = PurePosixPath(detail).relative_to(PurePosixPath(workdir))
        except ValueError:
            return found
        if str(relative) != ".":
            found.append(str(relative))
    return found


def decide(rules: Sequence[Rule], tool: str | None, detail: str | None, *, workdir: str | None = None) -> Decision:
    """The verdict on one permission request: the first matching rule of each layer (the
    owner's only tightening), per simple command for a shell tool, the strictest winning."""
    detail = (detail or "").strip()
    if _FAMILY_OF.get((tool or "").casefold()) != SHELL_FAMILY or not detail:
        return _decide_one(rules, tool, _candidates(detail, workdir))
    parts, risky = shell_parts(detail)
    verdicts = [_about(_decide_one(rules, tool, [part]), part) for part in parts or [""]]
    worst = max(verdicts, key=lambda d: STRICTNESS[d.effect])
    if risky and worst.effect is Effect.ALLOW:
        return Decision(Effect.ASK)
    return worst


def _about(decision: Decision, detail: str) -> Decision:
    return Decision(decision.effect, decision.rule, detail)


# ---- answering -------------------------------------------------------------------------------

def option_for(effect: Effect, options: Sequence[Option]) -> str | None:
    """The offered option that carries out `effect` once (not "always"/"for the session": taskpin
    keeps the rule); None when the agent offered no such option."""
    wanted = ("allow",) if effect is Effect.ALLOW else ("deny", "reject")
    fitting = [o for o in options if (o.kind or "").lower().startswith(wanted)]
    once = [o for o in fitting if not re.search(r"always|session", f"{o.id} {o.label}", re.IGNORECASE)]
    chosen = (once or fitting)[:1]
    return chosen[0].id if chosen else None


def parse_rules(texts: Sequence[str], *, source: str = "") -> list[Rule]:
    """Configured rules; RuleError naming the rule's position for the first bad one."""
    rules = []
    for n, text in enumerate(texts):
        try:
            rules.append(parse_rule(text, source=source))
        except RuleError as exc:
            raise RuleError(f"rule {n + 1} ({str(text).strip()!r}): {exc}") from None
    return rules


def rule_problems(rules: Sequence[object], where: str) -> list[tuple[str, str, str, bool]]:
    """(where, what is wrong, how to fix it, only a warning) for each configured rule."""
    problems = []
    for n, text in enumerate(rules):
        at = f"{where}[{n}]"
        try:
            rule = parse_rule(text)  # type: ignore[arg-type]
        except RuleError as exc:
            problems.append((at, str(exc), 'write rules like "allow Read", "allow Bash(pytest *)", '
                                           '"deny Bash(rm -rf *)"', False))
            continue
        if unknown_tool(rule.tool):
            guess = closest(rule.tool, sorted(KNOWN_TOOLS, key=lambda n: (n[:1].isupper(), n)))   # Read over read
            fix = f"did you mean {guess!r}?" if guess else "check the spelling"
            problems.append((at, f"no agent kind reports a tool named {rule.tool!r}, so {str(rule)!r} may never "
                                 "match", f"{fix} (tools: Bash, Read, Edit, Write, Grep, Glob, WebFetch, ...; "
                                          "an agent of kind command may name its own)", True))
    return problems
