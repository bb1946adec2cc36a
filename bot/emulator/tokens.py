"""Tokens the emulated workspace knows: revoked or deactivated ones, and the scopes the bot was
granted (sent back in every Web API response's `x-oauth-scopes` header, as Slack does).

    emu.tokens.revoke("xoxb-old", "token_revoked")     # or "account_inactive", "invalid_auth"
    emu.tokens.bot_scopes = ["chat:write"]              # an app installed with too few scopes
"""
from __future__ import annotations

from bot.manifest import bot_scopes

TOKEN_ERRORS = ("token_revoked", "account_inactive", "invalid_auth", "token_expired")
# Scopes a method needs, by the kind of channel it is called on (what Slack enforces first).
CHANNEL_SCOPES = {"conversations.info": {"channel": "channels:read", "group": "groups:read",
                                         "im": "im:read"},
                  "conversations.open": {"": "im:write"}}   # called without a channel


class TokenRules:
    def __init__(self, bot_token: str) -> None:
        self.bot_token = bot_token
        self.refused: dict[str, str] = {}                       # token -> the error Slack answers
        # By default the bot has exactly what the shipped manifest asks for (None: no header).
        self.bot_scopes: list[str] | None = bot_scopes()
        self.scopes_header = True                               # False: a proxy that drops it

    def revoke(self, token: str, error: str = "token_revoked") -> None:
        if error not in TOKEN_ERRORS:
            raise ValueError(f"unknown token error {error!r}; one of {TOKEN_ERRORS}")
        self.refused[token] = error

    def error_for(self, token: str) -> str | None:
        return self.refused.get(token)

    def missing_scope(self, method: str, token: str | None, channel_type: str | None) -> dict | None:
        """Slack's missing_scope fields when the bot lacks the scope `method` needs, else None."""
        needed = CHANNEL_SCOPES.get(method, {}).get(channel_type or "")
        if token != self.bot_token or self.bot_scopes is None or not needed or needed in self.bot_scopes:
            return None
        return {"needed": needed, "provided": ",".join(self.bot_scopes)}

    def headers(self, token: str | None) -> dict[str, str]:
        if token != self.bot_token or token in self.refused or self.bot_scopes is None or not self.scopes_header:
            return {}
        return {"x-oauth-scopes": ",".join(self.bot_scopes)}
