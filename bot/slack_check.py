"""Ask Slack whether the workspace is set up: the tokens, the granted scopes, the board channel.

`taskpin check` and the start of `taskpin run` call it. Every call has a short timeout and no
retries, so an unreachable or wrong SLACK_API_URL is one clear problem within seconds. Tokens
never appear in a problem: only Slack's error codes and the settings' names do.
"""
from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from orchestrator.check import Problem

from .manifest import bot_scopes
from .settings import SlackSettings

TIMEOUT_S = 5.0
DEFAULT_API_URL = "https://slack.com/api/"
REINSTALL = "reinstall the app (api.slack.com/apps -> your app -> Install App) and copy the new token into .env"
TOKEN_ERRORS = {
    "invalid_auth": ("Slack does not accept it (invalid_auth)", "copy the token again from your Slack app's page"),
    "not_authed": ("was not sent (not_authed)", "set it in .env"),
    "token_revoked": ("was revoked (token_revoked)", REINSTALL),
    "token_expired": ("has expired (token_expired)", REINSTALL + "; turn token rotation off in the manifest"),
    "account_inactive": ("belongs to an app that was uninstalled or deactivated (account_inactive)", REINSTALL),
    "team_access_not_granted": ("has no access to this workspace (team_access_not_granted)", REINSTALL),
    "not_allowed_token_type": ("is the wrong kind of token (not_allowed_token_type)",
                               "use the token the setting names: xoxb-... for the bot, xapp-... for the app"),
}
SCOPE_FIX = ("add them under OAuth & Permissions -> Bot Token Scopes (or update the app from "
             "manifests/socket-mode.yaml), then reinstall the app; the token stays the same")
WHERE_TOKENS = {"SLACK_BOT_TOKEN": "OAuth & Permissions -> Bot User OAuth Token",
                "SLACK_APP_TOKEN": "Basic Information -> App-Level Tokens, with the connections:write scope"}


class Unreachable(Exception):
    """Slack (or whatever SLACK_API_URL points at) did not answer like Slack's Web API."""

    def __init__(self, problem: Problem):
        super().__init__(problem.what)
        self.problem = problem


async def check_slack_api(settings: SlackSettings, *, timeout: float = TIMEOUT_S) -> list[Problem]:
    """The problems Slack itself reports; [] when everything taskpin needs is in place."""
    bot = settings.bot_token.get_secret_value() if settings.bot_token else ""
    # slack_sdk annotates timeout as int; it is aiohttp's ClientTimeout(total=...), float seconds
    client = AsyncWebClient(token=bot, base_url=settings.api_base_url, timeout=timeout,  # type: ignore[arg-type]
                            retry_handlers=[])
    try:
        auth = await _call(settings, client.auth_test())
    except Unreachable as exc:
        return [exc.problem]
    except SlackApiError as exc:
        return [_token_problem("SLACK_BOT_TOKEN", exc)]
    problems = _scope_problems(auth)
    bot_name = str(auth.get("user") or "taskpin")
    try:
        if settings.board_channel:
            problems += await _channel_problems(settings, client, settings.board_channel, bot_name,
                                                scopes_named=bool(problems))
        if settings.socket_mode and settings.app_token is not None:   # socket_mode: an app token is set
            app = AsyncWebClient(base_url=settings.api_base_url, timeout=timeout,  # type: ignore[arg-type]
                                 retry_handlers=[])
            try:
                await _call(settings, app.apps_connections_open(app_token=settings.app_token.get_secret_value()))
            except SlackApiError as exc:
                problems.append(_token_problem("SLACK_APP_TOKEN", exc))
    except Unreachable as exc:
        problems.append(exc.problem)
    return problems


async def _call(settings: SlackSettings, request) -> AsyncSlackResponse:
    """One Web API call; anything but a Slack answer (ok or a Slack error) becomes Unreachable."""
    url = settings.api_base_url
    fix = "check the network" + ("" if url == DEFAULT_API_URL else
                                 f" and SLACK_API_URL ({url}); leave it unset for slack.com")
    try:
        return await request
    except SlackApiError as exc:
        if isinstance(exc.response.data, dict) and exc.response.data.get("error"):
            raise
        raise Unreachable(Problem("SLACK_API_URL", f"{url} answers HTTP {exc.response.status_code} without a "
                                  "Slack Web API answer", fix + "; if it is Slack, see status.slack.com")) from None
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise Unreachable(Problem("SLACK_API_URL", f"{url} did not answer within {TIMEOUT_S:g}s", fix)) from None
    except (aiohttp.ClientConnectionError, OSError) as exc:
        raise Unreachable(Problem("SLACK_API_URL", f"cannot connect to {url} ({_reason(exc)})", fix)) from None
    except Exception as exc:  # noqa: BLE001 - a body slack_sdk cannot read: not a Slack Web API
        raise Unreachable(Problem("SLACK_API_URL", f"{url} does not answer like Slack's Web API "
                                  f"({type(exc).__name__})", fix)) from None


def _reason(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror
    return getattr(exc, "strerror", None) or type(exc).__name__


def _error(exc: SlackApiError) -> str:
    return str(exc.response.data.get("error"))


def _token_problem(where: str, exc: SlackApiError) -> Problem:
    error = _error(exc)
    what, fix = TOKEN_ERRORS.get(error, (f"Slack refuses it ({error})", "check the token"))
    return Problem(where, what, f"{fix} ({WHERE_TOKENS[where]})")


def _granted_scopes(response: AsyncSlackResponse) -> set[str] | None:
    for name, value in (response.headers or {}).items():
        if name.lower() == "x-oauth-scopes":
            return {scope.strip() for scope in str(value).split(",") if scope.strip()}
    return None


def _scope_problems(auth: AsyncSlackResponse) -> list[Problem]:
    granted, needed = _granted_scopes(auth), bot_scopes()
    if granted is None or needed is None:
        return []         # nothing to compare (a proxy dropped the header, or no manifest here)
    missing = [scope for scope in needed if scope not in granted]
    if not missing:
        return []
    return [Problem("SLACK_BOT_TOKEN", f"the app lacks the scope{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} that manifests/socket-mode.yaml asks for",
                    SCOPE_FIX)]


async def _channel_problems(settings: SlackSettings, client: AsyncWebClient, channel: str,
                            bot_name: str, scopes_named: bool) -> list[Problem]:
    where = "TASKPIN_BOARD_CHANNEL"
    try:
        info = await _call(settings, client.conversations_info(channel=channel))
    except SlackApiError as exc:
        error = _error(exc)
        if error == "channel_not_found":
            return [Problem(where, f"Slack knows no channel {channel} the bot can see (channel_not_found)",
                            "copy the id from the channel's details (at the bottom, C...); for a private channel "
                            f"invite the bot first: /invite @{bot_name}")]
        if error == "missing_scope":
            if scopes_named:
                return []     # the scope comparison already names it
            needed = exc.response.data.get("needed") or "a scope"
            return [Problem("SLACK_BOT_TOKEN", f"the app lacks the scope {needed} (missing_scope), so taskpin "
                            f"cannot look at {channel}", SCOPE_FIX)]
        return [Problem(where, f"Slack cannot show channel {channel} ({error})", "check the channel id")]
    data = info.get("channel") or {}
    name = f"#{data['name']}" if data.get("name") else channel
    if data.get("is_archived"):
        return [Problem(where, f"{name} ({channel}) is archived", "unarchive it, or choose another channel")]
    if data.get("is_member") is False:
        return [Problem(where, f"the bot is not a member of {name} ({channel}), so it cannot post the board",
                        f"type /invite @{bot_name} in {name}")]
    return []
