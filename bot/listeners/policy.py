"""Approval policies in Slack: `/task policy` lists the rules (taskpin.toml's and those added
here) and removes added ones; the Always allow this button under a permission request."""
from __future__ import annotations

import re

from ..blocks.text import escape_mrkdwn, inline_code, user_mention
from ..ids import parse_id
from ..services import Services, services_of
from .feedback import tell, tell_error, tell_mrkdwn

COMMAND = re.compile(r"^policy(?:\s+(list|remove)(?:\s+#?(\S+))?)?\s*$", re.IGNORECASE)
LIST_MAX = 3500
EMPTY = ("No approval-policy rules yet: every permission request asks a human. Add `policy = [\"allow Read\", "
         "\"deny Bash(rm -rf *)\"]` to a repository or an agent in taskpin.toml, or press *Always allow this* "
         "under a request.")


def is_policy_command(text: str) -> bool:
    return COMMAND.match(text.strip()) is not None


async def policy_command(svc: Services, user: str, text: str, respond) -> None:
    """`/task policy [list]` and `/task policy remove N`: ephemeral, like every refusal."""
    match = COMMAND.match(text.strip())
    assert match is not None
    verb, arg = (match.group(1) or "list").lower(), match.group(2)
    if verb == "list":
        await tell_mrkdwn(svc, user, await listing_text(svc), "the approval-policy rules", respond=respond)
        return
    try:
        rule_id = parse_id(arg or "")
    except ValueError:
        await tell(svc, user, "Say which rule: /task policy remove 3 (/task policy lists their numbers).",
                   respond=respond)
        return
    try:
        removed = await svc.core.remove_policy_rule(rule_id, actor=user)
    except Exception as exc:
        await tell_error(svc, user, exc, "remove that rule", respond=respond)
        return
    await tell(svc, user, f"Removed policy rule {removed.id} ({removed.text}): requests it allowed ask again.",
               respond=respond)


async def listing_text(svc: Services) -> str:
    listing = await svc.core.policy_rules()
    if not listing.configured and not listing.added:
        return EMPTY
    lines = ["*Approval policy*: rules are read in order and the first that matches decides; "
             "no match asks a human. An owner's rule can only make a decision stricter."]
    for where, rules in listing.configured:
        lines.append(f"*{escape_mrkdwn(where)}* (taskpin.toml)")
        lines += [f"  {inline_code(str(rule))}" for rule in rules]   # in order; numbers are for added rules
    if listing.added:
        lines.append("*Added in Slack* (after taskpin.toml's; remove one with `/task policy remove N`)")
    for rule in listing.added:
        scope = f"task #{rule.task_id} only" if rule.task_id else f"every task of {escape_mrkdwn(rule.repo)}"
        owner = "" if rule.by_approver else ", by its owner: can only tighten"
        lines.append(f"• rule {rule.id}: {inline_code(rule.text)} for {scope}{owner} "
                     f"(added by {user_mention(rule.added_by)})")
    text = "\n".join(lines)
    return text if len(text) <= LIST_MAX else text[:LIST_MAX].rsplit("\n", 1)[0] + "\n…(more than fit here)"


async def on_answer_always(ack, body, action, respond, context) -> None:
    """Allow the request now and add a rule allowing exactly it from now on."""
    await ack()
    svc, user = services_of(context), body["user"]["id"]
    try:
        intervention_id = parse_id(action.get("value"))
    except ValueError:
        await tell(svc, user, "That button is not one taskpin made.", respond=respond)
        return
    try:
        _answered, rule = await svc.core.always_allow(intervention_id, actor=user)
    except Exception as exc:
        await tell_error(svc, user, exc, "always allow this", respond=respond)
        return
    scope = f"task #{rule.task_id}" if rule.task_id else f"every task of repository {rule.repo}"
    await tell(svc, user, f"Allowed, and from now on without asking for {scope}: policy rule {rule.id} "
                          f"({rule.text}). /task policy remove {rule.id} removes it.", respond=respond)
