"""Tokens the emulated workspace knows: revoked or deactivated ones, and the scopes the bot was
granted (sent back in every Web API response's `x-oauth-scopes` header, as Slack does).

    emu.tokens.revoke("xoxb-old", "token_revoked")     # or "account_inactive", "invalid_auth"
    emu.tokens.bot_scopes = ["chat:write"]              # an app installed with too few scopes
"""
from __future__ import annotations

from bot.manifest import bot_scopes

TOKEN_ERRORS = ("token_revoked", "account_inactive", "invalid_auth", "token_expired")


class TokenRules:
    def __init__(self, bot_token: str) -> None:
        self.bot_token = bot_token
        self.refused: dict[str, str] = {}                       # token -> the error Slack answers
        # By default the bot has exactly what the shipped manifest asks for (None: no header).
        self.bot_scopes: list[str] | None = bot_scopes()

    def revoke(self, token: str, error: str = "token_revoked") -> None:
        if error not in TOKEN_ERRORS:
            raise ValueError(f"unknown token error {error!r}; one of {TOKEN_ERRORS}")
        self.refused[token] = error

    def error_for(self, token: str) -> str | None:
        return self.refused.get(token)

    def headers(self, token: str | None) -> dict[str, str]:
        if token != self.bot_token or token in self.refused or self.bot_scopes is None:
            return {}
        return {"x-oauth-scopes": ",".join(self.bot_scopes)}
