"""Random boards, homes and interventions: every output must pass the limit checkers."""
import random
import string
from datetime import timedelta

from bot.blocks.board import render_board
from bot.blocks.home import render_home
from bot.blocks.intervention import render_intervention, render_intervention_resolved
from bot.blocks.limits import validate_message, validate_view
from orchestrator.models import DiffSummary, InterventionKind, InterventionStatus, Option
from orchestrator.states import TaskState

from .block_factories import NASTY_TITLE, NOW, build_intervention, build_task

ALPHABET = string.ascii_letters + string.digits + " *_~`<>&!@#|:\n" + "ü🙂"


def _random_text(rng, longest):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


def _random_task(rng, task_id):
    state = rng.choice(list(TaskState))
    files = tuple(_random_text(rng, 300) or "f" for _ in range(rng.randint(0, 6)))
    return build_task(
        task_id,
        state,
        title=rng.choice([NASTY_TITLE, _random_text(rng, 400), "x" * 5000]),
        owner=rng.choice(["U1", "W2ABC", "cli", "<!channel>"]),
        agent=_random_text(rng, 40) or "a",
        branch=_random_text(rng, 300),
        queue_position=rng.choice([None, rng.randint(1, 50)]),
        failure_reason=_random_text(rng, 2000) if state == TaskState.FAILED else None,
        diff=DiffSummary(rng.randint(0, 500), rng.randint(0, 10**6), rng.randint(0, 10**6), files=files),
        pending_interventions=rng.randint(0, 4),
        state_changed_at=NOW - timedelta(seconds=rng.randint(0, 10**6)),
        cost_usd=rng.random() * 3000,
        attempts=rng.randint(0, 5),
    )


def test_random_boards_and_homes_fit():
    rng = random.Random(1234)
    for _ in range(25):
        tasks = [_random_task(rng, i) for i in range(1, rng.choice([1, 3, 10, 40, 150, 400]) + 1)]
        urls = {t.id: f"https://example.slack.com/archives/C1/p{t.id}" for t in tasks if rng.random() < 0.5}
        payload = render_board(tasks, now=NOW, thread_urls=urls, max_blocks=rng.choice([50, 30, 12]))
        validate_message(payload)
        for page in (0, 1, 5):
            validate_view(render_home(tasks, viewer="U1", now=NOW, page=page, thread_urls=urls))


def test_random_interventions_fit():
    rng = random.Random(99)
    for _ in range(40):
        options = tuple(
            Option(id=_random_text(rng, 300) + str(i), label=_random_text(rng, 120), kind=rng.choice(["allow", "deny", "other"]),
                   description=_random_text(rng, 200))
            for i in range(rng.choice([0, 1, 5, 25, 26, 120, 700]))
        )
        intervention = build_intervention(
            kind=rng.choice(list(InterventionKind)), options=options, prompt=_random_text(rng, 5000),
            tool=_random_text(rng, 200), detail=_random_text(rng, 6000), multi_select=rng.random() < 0.3,
        )
        task = _random_task(rng, 5)
        validate_message(render_intervention(task, intervention, owner="U1"))
        resolved = build_intervention(
            kind=intervention.kind, options=options, prompt=intervention.prompt, detail=intervention.detail,
            status=rng.choice(list(InterventionStatus)), answer_text=_random_text(rng, 5000),
            answer_options=tuple(o.id for o in options[:3]), answered_by=rng.choice([None, "U9", "cli"]),
        )
        validate_message(render_intervention_resolved(task, resolved))
