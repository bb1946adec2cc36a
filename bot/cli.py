"""The `taskpin` command: run, check, db, demo, dev."""
from __future__ import annotations

import argparse
import asyncio
import sys
import tomllib

from pydantic import ValidationError

from orchestrator.check import Problem, check_all
from orchestrator.config import Settings

from .settings import SlackSettings, check_slack


def _validation_problems(exc: ValidationError, prefix: str = "TASKPIN_") -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        where = loc if "." in loc else f"{prefix}{loc.upper()}"
        problems.append(Problem(where, err["msg"], "fix the value in the environment, .env or taskpin.toml"))
    return problems


def load_settings() -> tuple[Settings | None, SlackSettings | None, list[Problem]]:
    """Both settings objects, or the problems that stop them from loading."""
    problems: list[Problem] = []
    core = slack = None
    try:
        core = Settings()
    except ValidationError as exc:
        problems += _validation_problems(exc)
    except (tomllib.TOMLDecodeError, OSError) as exc:
        problems.append(Problem("TASKPIN_CONFIG", f"the TOML file cannot be read: {exc}",
                                "fix the file (see taskpin.example.toml) or point TASKPIN_CONFIG at another"))
    try:
        slack = SlackSettings()
    except ValidationError as exc:
        problems += _validation_problems(exc, prefix="")
    return core, slack, problems


def print_problems(problems: list[Problem]) -> None:
    print(f"taskpin: {len(problems)} configuration problem{'s' if len(problems) != 1 else ''}:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


async def _check(include_slack: bool = True) -> list[Problem]:
    core, slack, problems = load_settings()
    if core is not None:
        problems += await check_all(core)
    if slack is not None and include_slack:
        problems += check_slack(slack)
    return problems


def cmd_check(args) -> int:
    problems = asyncio.run(_check(include_slack=not args.core_only))
    if problems:
        print_problems(problems)
        return 1
    print("taskpin: configuration OK")
    return 0


def cmd_db(args) -> int:
    core, _, problems = load_settings()
    if core is None:
        print_problems(problems)
        return 1

    async def run() -> None:
        from orchestrator.store import make_engine
        from orchestrator.store import migrate

        engine = make_engine(core.database_url)
        try:
            if args.action == "upgrade":
                await migrate.upgrade(engine)
            print(f"database schema at revision {await migrate.current_revision(engine)}")
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except Exception as exc:
        print(f"taskpin: the database could not be migrated: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_run(args) -> int:
    problems = asyncio.run(_check())
    if problems:
        print_problems(problems)
        print("taskpin: not starting. Run `taskpin check` after fixing these.", file=sys.stderr)
        return 1
    core, slack, _ = load_settings()
    from .logging_setup import setup_logging
    from .runtime import serve

    secrets = [s.get_secret_value() for s in (slack.bot_token, slack.app_token, slack.signing_secret) if s]
    setup_logging(args.log_level, secrets)
    try:
        asyncio.run(serve(core, slack))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return asyncio.run(run_demo(fast=args.fast))


def cmd_dev(args) -> int:
    from pathlib import Path

    from orchestrator.suggest import unknown_name

    from .dev.run import run_dev
    from .dev.session import DevOptions

    agents = None
    if args.agent:
        core, _, problems = load_settings()
        if core is None:
            print_problems(problems)
            return 1
        if not core.agents:
            print("taskpin dev: no agents are configured: describe one in taskpin.toml (see taskpin.example.toml), "
                  "or leave --agent out for the demo agent", file=sys.stderr)
            return 1
        if args.agent not in core.agents:
            what, fix = unknown_name("agent", args.agent, core.agents)
            print(f"taskpin dev: {what} in taskpin.toml; {fix}", file=sys.stderr)
            return 1
        agents = {args.agent: core.agents[args.agent].model_dump()}
    options = DevOptions(repo=Path(args.repo) if args.repo else None, agents=agents,
                         agent_pause=0.1 if args.fast else 0.8)
    return asyncio.run(run_dev(options, host=args.host, port=args.port))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskpin", description="Supervise AI coding agents from Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the core and the Slack bot")
    run.add_argument("--log-level", default="INFO")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="validate the configuration and say how to fix each problem")
    check.add_argument("--core-only", action="store_true", help="skip the Slack settings")
    check.set_defaults(func=cmd_check)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "current"])
    db.set_defaults(func=cmd_db)
    demo = sub.add_parser("demo", help="the whole flow offline: a local Slack emulator, a demo agent, the bot")
    demo.add_argument("--fast", action="store_true", help="no pauses between steps")
    demo.set_defaults(func=cmd_demo)
    dev = sub.add_parser("dev", help="a local Slack workspace in your browser: the emulator, the bot and an agent")
    dev.add_argument("--port", type=int, default=8765, help="the page's port (default 8765; 0: any free port)")
    dev.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this machine only)")
    dev.add_argument("--repo", metavar="PATH", help="a git repository for the tasks (default: a throwaway one)")
    dev.add_argument("--agent", metavar="NAME", help="an agent from taskpin.toml instead of the demo agent")
    dev.add_argument("--fast", action="store_true", help="the demo agent works without pauses")
    dev.set_defaults(func=cmd_dev)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
