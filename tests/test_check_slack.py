"""`taskpin check` and `taskpin run` ask Slack before anything else: each first-contact mistake
of a new workspace is one problem with its fix, exit code 1, no traceback, no token printed.

Slack is the project's emulator on loopback, set up as the broken workspace would be; the
connection problems are a closed port and a tiny aiohttp server answering HTML.
"""
from __future__ import annotations

import asyncio
import signal
import sys

import pytest
from aiohttp import web

from bot.emulator import SlackEmulator
from bot.manifest import bot_scopes
from tests.cli_helpers import clean_env, free_port, run_taskpin, write_config

BOARD = "C0BOARD0001"
HIDDEN = "C0HIDDEN001"          # a public channel the bot was never invited to
PRIVATE = "G0PRIVATE01"         # a private one: Slack does not even show it to the bot


@pytest.fixture
async def emu():
    async with SlackEmulator(rate_limits=False) as e:
        e.add_channel(BOARD, "taskpin-board")
        e.add_channel(HIDDEN, "elsewhere", bot_member=False)
        e.add_channel(PRIVATE, "secret", is_private=True, bot_member=False)
        yield e


@pytest.fixture
def folder(tmp_path, git_repo):
    work = tmp_path / "work"
    work.mkdir()
    write_config(work, git_repo)
    return work


def workspace_env(emu: SlackEmulator, **overrides) -> dict:
    env = {"SLACK_BOT_TOKEN": emu.bot_token, "SLACK_APP_TOKEN": emu.app_token, "SLACK_API_URL": emu.api_url,
           "TASKPIN_BOARD_CHANNEL": BOARD, "TASKPIN_HTTP_HOST": "127.0.0.1", "TASKPIN_HTTP_PORT": str(free_port())}
    env.update(overrides)
    return env


def assert_one_problem(result, where: str, *expected: str, secrets: tuple[str, ...] = ()) -> None:
    out = result.output
    assert result.returncode == 1, out
    assert "Traceback" not in out, out
    assert "1 configuration problem:" in out, out
    assert f"- {where}: " in out, out
    for text in expected:
        assert text in out, f"{text!r} missing from:\n{out}"
    for secret in secrets:
        assert secret not in out


async def test_a_workspace_set_up_right_passes(emu, folder):
    result = await run_taskpin(folder, "check", env=workspace_env(emu))
    assert result.returncode == 0, result.output
    assert "configuration OK" in result.stdout
    asked = {c.method for c in emu.calls}
    assert {"auth.test", "conversations.info", "apps.connections.open"} <= asked


# (what is wrong, the setting at fault, text the user must see) for `check` and `run` alike.
MISTAKES = {
    "bot not invited": (dict(TASKPIN_BOARD_CHANNEL=HIDDEN), "TASKPIN_BOARD_CHANNEL",
                        ("not a member of #elsewhere", "/invite @taskpin")),
    "private channel": (dict(TASKPIN_BOARD_CHANNEL=PRIVATE), "TASKPIN_BOARD_CHANNEL",
                        ("channel_not_found", "/invite @taskpin")),
    "wrong channel id": (dict(TASKPIN_BOARD_CHANNEL="C0NOSUCH01"), "TASKPIN_BOARD_CHANNEL",
                         ("C0NOSUCH01", "channel_not_found", "copy the id")),
    "wrong bot token": (dict(SLACK_BOT_TOKEN="xoxb-1-wrong-token"), "SLACK_BOT_TOKEN",
                        ("invalid_auth", "OAuth & Permissions")),
    "wrong app token": (dict(SLACK_APP_TOKEN="xapp-1-wrong-token"), "SLACK_APP_TOKEN",
                        ("invalid_auth", "App-Level Tokens")),
}


# `run` runs the very same preflight: a few of the mistakes prove it without doubling the time.
RUN_TOO = {"bot not invited", "wrong bot token", "wrong app token"}


@pytest.mark.parametrize("mistake, command", [(m, "check") for m in MISTAKES] + [(m, "run") for m in sorted(RUN_TOO)])
async def test_a_workspace_mistake_is_one_problem_with_its_fix(emu, folder, command, mistake):
    overrides, where, expected = MISTAKES[mistake]
    env = workspace_env(emu, **overrides)
    result = await run_taskpin(folder, command, env=env)
    assert_one_problem(result, where, *expected, secrets=(env["SLACK_BOT_TOKEN"], env["SLACK_APP_TOKEN"]))
    if command == "run":
        assert "not starting" in result.stderr
        assert emu.count("chat.postMessage") == 0 and emu.socket_connections == 0


@pytest.mark.parametrize("error, expected, command", [("token_revoked", "was revoked", "check"),
                                                      ("token_revoked", "was revoked", "run"),
                                                      ("account_inactive", "uninstalled or deactivated", "check")])
async def test_a_revoked_or_deactivated_bot_token(emu, folder, command, error, expected):
    emu.tokens.revoke(emu.bot_token, error)
    result = await run_taskpin(folder, command, env=workspace_env(emu))
    assert_one_problem(result, "SLACK_BOT_TOKEN", f"({error})", "reinstall the app", secrets=(emu.bot_token,))


async def test_a_revoked_app_token(emu, folder):
    emu.tokens.revoke(emu.app_token, "token_revoked")
    result = await run_taskpin(folder, "check", env=workspace_env(emu))
    assert_one_problem(result, "SLACK_APP_TOKEN", "was revoked", secrets=(emu.app_token,))


async def test_scopes_missing_from_the_install_are_named(emu, folder):
    wanted = bot_scopes()
    assert wanted and "pins:write" in wanted and "channels:read" in wanted
    emu.tokens.bot_scopes = [s for s in wanted if s not in ("pins:write", "channels:read")]
    result = await run_taskpin(folder, "check", env=workspace_env(emu))
    assert_one_problem(result, "SLACK_BOT_TOKEN", "pins:write, channels:read", "manifests/socket-mode.yaml",
                       "reinstall")


async def test_a_missing_scope_is_named_even_without_the_scopes_header(emu, folder):
    emu.tokens.bot_scopes = [s for s in bot_scopes() if s != "channels:read"]
    emu.tokens.scopes_header = False          # a proxy in between dropped x-oauth-scopes
    result = await run_taskpin(folder, "check", env=workspace_env(emu))
    assert_one_problem(result, "SLACK_BOT_TOKEN", "lacks the scope channels:read (missing_scope)", BOARD)


async def test_http_mode_does_not_ask_for_a_socket(emu, folder):
    env = workspace_env(emu, SLACK_APP_TOKEN="", SLACK_SIGNING_SECRET=emu.signing_secret)
    result = await run_taskpin(folder, "check", env=env)
    assert result.returncode == 0, result.output
    assert emu.count("apps.connections.open") == 0


# ---- SLACK_API_URL pointing at something that is not Slack -----------------------------------

@pytest.fixture
async def not_slack():
    """An HTTP server answering like a misconfigured proxy: /html500/, /html405/, /text200/."""
    async def html(request):
        status = int(request.match_info["status"])
        return web.Response(status=status, text=f"<html><body><h1>{status}</h1></body></html>",
                            content_type="text/html")

    async def text(request):
        return web.Response(text="hello, I am not Slack", content_type="text/plain")

    released = asyncio.Event()

    async def silent(request):          # accepts the request and never answers (until teardown)
        await released.wait()
        return web.Response(status=504)

    app = web.Application()
    app.router.add_route("*", "/html{status:\\d+}/{method}", html)
    app.router.add_route("*", "/text200/{method}", text)
    app.router.add_route("*", "/silent/{method}", silent)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    released.set()
    await runner.cleanup()


@pytest.mark.parametrize("path, expected, command", [("html500", "answers HTTP 500", "check"),
                                                     ("html405", "answers HTTP 405", "check"),
                                                     ("html405", "answers HTTP 405", "run"),   # crashed start-up
                                                     ("text200", "does not answer like Slack's Web API", "check"),
                                                     ("silent", "did not answer within 5s", "check")])
async def test_a_server_that_is_not_slack(emu, folder, not_slack, command, path, expected):
    env = workspace_env(emu, SLACK_API_URL=f"{not_slack}/{path}/")
    result = await run_taskpin(folder, command, env=env)
    assert_one_problem(result, "SLACK_API_URL", expected, "check the network and SLACK_API_URL",
                       secrets=(emu.bot_token,))


@pytest.mark.parametrize("command", ["check", "run"])
async def test_a_closed_port(emu, folder, command):
    env = workspace_env(emu, SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/")
    result = await run_taskpin(folder, command, env=env)
    assert_one_problem(result, "SLACK_API_URL", "cannot connect to http://127.0.0.1:", "check the network")


async def test_offline_skips_slack(emu, folder):
    env = workspace_env(emu, SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/")
    result = await run_taskpin(folder, "check", "--offline", env=env)
    assert result.returncode == 0, result.output


async def test_run_starts_at_debug_level_and_stops_on_sigterm(emu, folder):
    """The good path of the same preflight: `taskpin run --log-level debug` posts the board and
    exits 0 on SIGTERM (a lower-case level used to crash after the checks)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--log-level", "debug", cwd=folder,
        env=clean_env(workspace_env(emu)), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("taskpin is running" in line for line in seen):
                line = await proc.stderr.readline()
                assert line, "taskpin run exited early:\n" + "".join(seen)
                seen.append(line.decode())
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), 60)
        assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = "".join(seen) + rest.decode()
    assert "Traceback" not in log and emu.bot_token not in log and emu.app_token not in log
    assert emu.count("pins.add", ok=True) == 1
