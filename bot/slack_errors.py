"""What a failed Slack call means for the caller: wait and retry, give up on this message, or fix
the token. Works on every shape slack_sdk raises: JSON errors, 5xx with HTML or plain-text
bodies (where `exc.response` holds a str, or is not a Slack response at all), timeouts and
refused connections."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

# The token does not work (any more): nothing will, until someone fixes it. Keep everything.
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                         "missing_scope", "not_allowed_token_type", "team_access_not_granted",
                         "ekm_access_denied", "org_login_required"})
# Slack refused this payload: a plain-text version may still get through.
CONTENT_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long",
                            "invalid_attachments", "too_many_attachments", "no_text", "invalid_metadata_format",
                            "invalid_metadata_schema", "metadata_too_large", "metadata_must_be_sent_from_app"})
# Slack's own trouble, said in JSON.
SERVER_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


class Kind(StrEnum):
    RATELIMITED = "ratelimited"   # wait Retry-After
    UNREACHABLE = "unreachable"   # Slack's side or the network: back off and retry
    AUTH = "auth"                 # the token is refused: back off, retry, keep everything
    CONTENT = "content"           # this payload is refused: send a plain-text version
    REFUSED = "refused"           # this call is refused for good (channel gone, message gone...)


@dataclass(frozen=True)
class Failure:
    kind: Kind
    reason: str                   # one short line for logs and /healthz
    error: str | None = None      # Slack's error code, when it sent one
    ambiguous: bool = False       # the call may have had its effect anyway (timeout, 5xx, reset)
    retry_after: float = 1.0

    @property
    def transient(self) -> bool:
        return self.kind in (Kind.RATELIMITED, Kind.UNREACHABLE, Kind.AUTH)


def status_of(exc: SlackApiError) -> int | None:
    response = exc.response
    status = getattr(response, "status_code", None)
    if status is None:
        status = getattr(response, "status", None)   # an aiohttp response when the body was not JSON
    return status if isinstance(status, int) else None


def data_of(exc: SlackApiError) -> dict[str, Any]:
    data = getattr(exc.response, "data", None)
    return data if isinstance(data, dict) else {}


def error_of(exc: BaseException) -> str | None:
    """Slack's error code ("channel_not_found"), or None when the answer was not Slack JSON."""
    if not isinstance(exc, SlackApiError):
        return None
    error = data_of(exc).get("error")
    return error if isinstance(error, str) else None


def _retry_after(exc: SlackApiError) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    try:
        return max(0.0, float(headers.get("Retry-After", 1)))
    except (TypeError, ValueError):
        return 1.0


def classify_answer(status: int | None, data: Any, retry_after: float = 1.0) -> Failure | None:
    """An HTTP answer: None when Slack took the call, else what went wrong."""
    error = data.get("error") if isinstance(data, dict) and isinstance(data.get("error"), str) else None
    if status == 429 or error == "ratelimited":
        return Failure(Kind.RATELIMITED, "rate limited", "ratelimited", retry_after=retry_after)
    if status == 200 and isinstance(data, dict) and data.get("ok"):
        return None
    if error in AUTH_ERRORS:
        return Failure(Kind.AUTH, f"the token is refused: {error}", error)
    if error in CONTENT_ERRORS:
        return Failure(Kind.CONTENT, error, error)
    if error in SERVER_ERRORS:
        return Failure(Kind.UNREACHABLE, f"{error} (HTTP {status})", error, ambiguous=True)
    if status is None or status >= 500 or not error:
        answer = f"HTTP {status}" if status else "an answer that is not Slack's"
        if not error and status is not None and status < 500:
            answer += " without a Slack error (is SLACK_API_URL right?)"
        return Failure(Kind.UNREACHABLE, answer, error, ambiguous=status is None or status >= 500)
    return Failure(Kind.REFUSED, error, error)


def classify(exc: BaseException) -> Failure | None:
    """None for exceptions that are not about talking to Slack (bugs: let them show)."""
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        return classify_answer(status_of(exc), data, _retry_after(exc)) or Failure(
            Kind.REFUSED, str(data_of(exc).get("error") or "refused"), error_of(exc))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure(Kind.UNREACHABLE, f"cannot connect ({exc.os_error.strerror or exc.os_error})")
    if isinstance(exc, TimeoutError):
        return Failure(Kind.UNREACHABLE, "timed out", ambiguous=True)
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return Failure(Kind.UNREACHABLE, f"{type(exc).__name__}: {exc}".rstrip(": "), ambiguous=True)
    return None


def describe(exc: BaseException) -> str:
    failure = classify(exc)
    return failure.reason if failure else f"{type(exc).__name__}: {exc}"
