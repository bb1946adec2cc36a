"""The `taskpin` command: run, check, db, demo, dev. Every failure is one problem and its fix, or
one line and a non-zero exit: never a traceback (those go to the log at --log-level DEBUG)."""
from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from pydantic import ValidationError

from orchestrator.check import ROLES, Problem, check_all, database_url_problem
from orchestrator.config import DOTENV_FILE, Settings, config_file, env_names, load_toml, toml_keys
from orchestrator.config_check import dotenv_problems, name_problems

from .settings import SlackSettings, check_slack, env_aliases, toml_aliases

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
log = logging.getLogger("taskpin")


def _validation_problems(exc: ValidationError, prefix: str = "TASKPIN_") -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        where = loc if "." in loc else f"{prefix}{loc.upper()}"
        problems.append(Problem(where, err["msg"].removeprefix("Value error, "),
                                "fix the value in the environment, .env or taskpin.toml"))
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
    except (UnicodeDecodeError, ValueError):
        pass        # a .env that cannot be read: config_problems() names the file and the fix
    try:
        slack = SlackSettings()
    except ValidationError as exc:
        problems += _validation_problems(exc, prefix="")
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError, ValueError):
        pass        # reported above, once
    return core, slack, problems


def config_problems(core: Settings | None) -> list[Problem]:
    """Names nobody reads (misspelt keys and variables) and .env lines that cannot be parsed."""
    dotenv, problems = dotenv_problems(Path(DOTENV_FILE))
    toml_file = core.config if core is not None and core.config else config_file(dotenv.get("TASKPIN_CONFIG"))
    try:
        toml_data = load_toml(toml_file) if toml_file is not None else None
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
        toml_data = None    # load_settings() reported it
    problems += name_problems(toml_file=toml_file, toml_data=toml_data, toml_keys=toml_keys() | set(toml_aliases()),
                              env_names=env_names() | set(env_aliases()), environ=os.environ, dotenv=dotenv,
                              dotenv_name=DOTENV_FILE)
    return problems


def port_problem(host: str, port: int) -> Problem | None:
    """Whether `taskpin run` can listen where it is told to (checked before it connects to Slack)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return Problem("TASKPIN_HTTP_PORT", f"port {port} on {host} is already in use (is taskpin already "
                           "running?)", "stop what uses it, or set TASKPIN_HTTP_PORT to a free port")
        return Problem("TASKPIN_HTTP_HOST", f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                       "set TASKPIN_HTTP_HOST to an address of this machine (0.0.0.0: all of them)")
    return None


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def print_problems(problems: list[Problem]) -> None:
    for warning in (p for p in problems if p.warning):
        print(f"  - {warning}", file=sys.stderr)
    problems = [p for p in problems if not p.warning]
    if not problems:
        return
    print(f"taskpin: {len(problems)} configuration problem{'s' if len(problems) != 1 else ''}:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


async def _check(include_slack: bool = True, online: bool = True, for_run: bool = False,
                 role: str = "all") -> list[Problem]:
    """Every problem: the files' names and syntax, the core's settings, the Slack settings, and
    (online) what Slack itself says about the tokens, scopes and board channel. A `worker`
    needs no Slack settings; a `slack` process needs no repositories or agent CLIs."""
    core, slack, problems = load_settings()
    problems += config_problems(core)
    if core is not None:
        problems += await check_all(core, online=online, role=role)
    if slack is not None and for_run and role == "worker":    # its /healthz
        problems += [p for p in [port_problem(slack.http_host, slack.http_port)] if p]
    if slack is not None and include_slack and role != "worker":
        static = check_slack(slack)
        problems += static
        if for_run and not static:
            problems += [p for p in [port_problem(slack.http_host, slack.http_port)] if p]
        broken = {p.where for p in static}
        if online and not broken & {"SLACK_BOT_TOKEN", "SLACK_API_URL"}:
            from .slack_check import check_slack_api

            problems += [p for p in await check_slack_api(slack) if p.where not in broken]
    return _dedupe(problems)


def cmd_check(args) -> int:
    problems = asyncio.run(_check(include_slack=not args.core_only, online=not args.offline, role=args.role))
    print_problems(problems)
    if any(not p.warning for p in problems):
        return 1
    print("taskpin: configuration OK" + (" (see the warnings above)" if problems else ""))
    return 0


def cmd_db(args) -> int:
    core, _, problems = load_settings()
    url_problem = database_url_problem(core.database_url) if core is not None else None
    if core is None or url_problem is not None:
        print_problems([url_problem] if url_problem else problems)
        return 1

    async def run() -> None:
        from orchestrator import migrate_database

        revision = await migrate_database(core.database_url, upgrade=args.action == "upgrade")
        print(f"database schema at revision {revision}")

    try:
        asyncio.run(run())
    except Exception as exc:
        print(f"taskpin: the database could not be migrated: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0


def cmd_run(args) -> int:
    problems = asyncio.run(_check(for_run=True, role=args.role))
    print_problems(problems)
    if any(not p.warning for p in problems):
        check = "taskpin check" + (f" --role {args.role}" if args.role != "all" else "")
        print(f"taskpin: not starting. Run `{check}` after fixing these.", file=sys.stderr)
        return 1
    core, slack, _ = load_settings()
    if core is None or slack is None:   # the check above reported why
        return 1
    from orchestrator import DatabaseInUse

    from .logging_setup import setup_logging
    from .runtime import serve

    secrets = [s.get_secret_value() for s in (slack.bot_token, slack.app_token, slack.signing_secret,
                                              core.github_token) if s]
    setup_logging(args.log_level, secrets)
    try:
        asyncio.run(serve(core, slack, role=args.role))
    except KeyboardInterrupt:
        pass
    except DatabaseInUse as exc:
        print(f"taskpin: not starting: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line for the user; the traceback at DEBUG only
        log.debug("taskpin stopped on an error", exc_info=True)
        print(f"taskpin: stopped: {one_line(exc)}", file=sys.stderr)
        print("taskpin: run `taskpin check`; `taskpin run --log-level DEBUG` logs the details", file=sys.stderr)
        return 1
    return 0


def cmd_gc(args) -> int:
    """Remove (or, with --dry-run, list) the worktrees of finished tasks past their retention."""
    core, _, problems = load_settings()
    url_problem = database_url_problem(core.database_url) if core is not None else None
    if core is None or url_problem is not None:
        print_problems([url_problem] if url_problem else problems)
        return 1

    async def run():
        from orchestrator import Orchestrator

        orchestrator = await Orchestrator.open(core)
        try:
            return await orchestrator.collect_worktrees(dry_run=args.dry_run)
        finally:
            await orchestrator.close()

    try:
        verdicts = asyncio.run(run())
    except Exception as exc:
        print(f"taskpin gc: failed: {one_line(exc)}", file=sys.stderr)
        return 1
    removed = [v for v in verdicts if v.remove]
    for verdict in verdicts:
        verb = ("would remove" if args.dry_run else "removed") if verdict.remove else "kept"
        why = verdict.why.removeprefix("kept: ")
        print(f"{verb} #{verdict.task_id} {verdict.worktree} ({why})")
    days = f"{core.worktree_retention_days:g}"
    print(f"taskpin gc: {len(removed)} worktree(s) {'would go' if args.dry_run else 'removed'}, "
          f"{len(verdicts) - len(removed)} kept (finished more than {days} day(s) ago; "
          f"TASKPIN_WORKTREE_RETENTION_DAYS)")
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
    parser.add_argument("--version", action="version", version=f"taskpin {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the core and the Slack bot")
    run.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS,
                     help="DEBUG also logs tracebacks")
    run.add_argument("--role", default="all", choices=ROLES,
                     help="all: everything in one process (default); slack: serve Slack, run no agents; "
                          "worker: run agents, no Slack (slack and worker need PostgreSQL)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="validate the configuration and say how to fix each problem")
    check.add_argument("--core-only", action="store_true", help="skip the Slack settings")
    check.add_argument("--offline", action="store_true", help="do not ask Slack about the tokens and channel")
    check.add_argument("--role", default="all", choices=ROLES,
                       help="check what this role needs: a worker is not asked for Slack settings, a slack "
                            "process not for repositories and agent CLIs")
    check.set_defaults(func=cmd_check)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "current"])
    db.set_defaults(func=cmd_db)
    gc = sub.add_parser("gc", help="remove the worktrees of finished tasks past worktree_retention_days")
    gc.add_argument("--dry-run", action="store_true", help="only show what would be removed and what is kept")
    gc.set_defaults(func=cmd_gc)
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


def version() -> str:
    try:
        return metadata.version("taskpin")
    except metadata.PackageNotFoundError:
        return "(not installed: run pip install -e .)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)   # check names each bad .env line itself
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug of ours still gets one line, not a traceback
        print(f"taskpin {args.command}: failed: {one_line(exc)}", file=sys.stderr)
        print("taskpin: please report this with the output of the same command with TASKPIN_TRACEBACK=1",
              file=sys.stderr)
        if os.environ.get("TASKPIN_TRACEBACK"):
            raise
        return 1


if __name__ == "__main__":
    sys.exit(main())
