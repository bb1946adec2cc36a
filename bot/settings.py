"""Slack-side settings: environment, .env, then taskpin.toml (as `board_channel`,
`slack_bot_token`..., the environment name in lower case without TASKPIN_).
Tokens are SecretStr: they never print."""
from __future__ import annotations

from pydantic import AliasChoices, AliasPath, Field, SecretStr
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from orchestrator.check import Problem
from orchestrator.config import DOTENV_FILE, ENV_PREFIX, config_file, load_toml


class SlackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=DOTENV_FILE, env_file_encoding="utf-8", extra="ignore",
                                      env_ignore_empty=True)

    bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    board_channel: str | None = Field(default=None, validation_alias="TASKPIN_BOARD_CHANNEL")
    http_host: str = Field(default="0.0.0.0", validation_alias="TASKPIN_HTTP_HOST")
    http_port: int = Field(default=3000, ge=0, le=65535, validation_alias="TASKPIN_HTTP_PORT")  # 0: any (tests)
    board_sync_interval_s: float = Field(default=1.0, gt=0, validation_alias="TASKPIN_BOARD_SYNC_INTERVAL_S")
    # One chat.update per state change: the naive design, kept only as the benchmarks' baseline.
    board_naive_sync: bool = Field(default=False, validation_alias="TASKPIN_BOARD_NAIVE_SYNC")
    # chat.update calls per minute taskpin allows itself (Slack's Tier 3 is about 50): the board
    # and the task threads share them, the board first.
    chat_update_per_minute: float = Field(default=50, gt=0, validation_alias="TASKPIN_CHAT_UPDATE_PER_MINUTE")
    output_summary_interval_s: float = Field(default=10.0, gt=0,
                                             validation_alias="TASKPIN_OUTPUT_SUMMARY_INTERVAL_S")
    workspace_url: str | None = Field(default=None, validation_alias=AliasChoices("TASKPIN_SLACK_WORKSPACE_URL"))
    # Talking to Slack through faults: the client's timeout per call, the backoff of retries
    # (base doubling up to max), auth.test when no call was made for a while, Socket Mode pings
    # (also the pause between reconnect attempts).
    slack_timeout_s: float = Field(default=30.0, gt=0, validation_alias="TASKPIN_SLACK_TIMEOUT_S")
    slack_retry_base_s: float = Field(default=1.0, gt=0, validation_alias="TASKPIN_SLACK_RETRY_BASE_S")
    slack_retry_max_s: float = Field(default=60.0, gt=0, validation_alias="TASKPIN_SLACK_RETRY_MAX_S")
    slack_probe_interval_s: float = Field(default=30.0, gt=0, validation_alias="TASKPIN_SLACK_PROBE_INTERVAL_S")
    socket_ping_interval_s: float = Field(default=10.0, gt=0, validation_alias="TASKPIN_SOCKET_PING_INTERVAL_S")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file(None, dotenv_settings)
        by_key = toml_aliases()
        data = {by_key[key]: value for key, value in (load_toml(path) if path else {}).items() if key in by_key}
        return init_settings, env_settings, dotenv_settings, InitSettingsSource(settings_cls, data), file_secret_settings

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None and bool(self.app_token.get_secret_value())

    @property
    def api_base_url(self) -> str:
        return self.api_url if self.api_url.endswith("/") else self.api_url + "/"


def env_aliases() -> list[str]:
    """Every environment variable SlackSettings reads (SLACK_BOT_TOKEN, TASKPIN_BOARD_CHANNEL...)."""
    names: list[str | AliasPath | None] = []
    for field in SlackSettings.model_fields.values():
        alias = field.validation_alias
        names += list(alias.choices) if isinstance(alias, AliasChoices) else [alias]
    return [str(name) for name in names]


def toml_aliases() -> dict[str, str]:
    """taskpin.toml key -> environment name: TASKPIN_BOARD_CHANNEL is `board_channel`,
    SLACK_BOT_TOKEN is `slack_bot_token`."""
    return {name.lower().removeprefix(ENV_PREFIX.lower()): name for name in env_aliases()}


# The example values of .env.example (tests/test_check_config.py keeps them in step with it).
PLACEHOLDERS = {
    "SLACK_BOT_TOKEN": "xoxb-your-bot-token",
    "SLACK_APP_TOKEN": "xapp-your-app-token",
    "TASKPIN_BOARD_CHANNEL": "C0123456789",
    "TASKPIN_SLACK_WORKSPACE_URL": "https://your-team.slack.com",
}
PLACEHOLDER_FIXES = {
    "SLACK_BOT_TOKEN": "copy the Bot User OAuth Token from your Slack app's 'OAuth & Permissions' page",
    "SLACK_APP_TOKEN": "copy the app-level token (Basic Information -> App-Level Tokens), or remove the line "
                       "for HTTP mode",
    "TASKPIN_BOARD_CHANNEL": "put the id of your board channel (its details pane, at the bottom)",
    "TASKPIN_SLACK_WORKSPACE_URL": "put your workspace's URL (https://NAME.slack.com), or remove the line",
}


def placeholder_problems(settings: SlackSettings) -> list[Problem]:
    values = {"SLACK_BOT_TOKEN": settings.bot_token.get_secret_value() if settings.bot_token else None,
              "SLACK_APP_TOKEN": settings.app_token.get_secret_value() if settings.app_token else None,
              "TASKPIN_BOARD_CHANNEL": settings.board_channel,
              "TASKPIN_SLACK_WORKSPACE_URL": (settings.workspace_url or "").rstrip("/") or None}
    return [Problem(name, "is still the example value from .env.example", PLACEHOLDER_FIXES[name])
            for name, value in values.items() if value is not None and value == PLACEHOLDERS[name]]


def check_slack(settings: SlackSettings) -> list[Problem]:
    problems = placeholder_problems(settings)
    placeholders = {p.where for p in problems}
    bot = settings.bot_token.get_secret_value() if settings.bot_token else ""
    if "SLACK_BOT_TOKEN" in placeholders:
        pass
    elif not bot:
        problems.append(Problem("SLACK_BOT_TOKEN", "is not set",
                                "copy the Bot User OAuth Token (xoxb-...) from your Slack app's "
                                "'OAuth & Permissions' page into .env"))
    elif not bot.startswith("xoxb-"):
        problems.append(Problem("SLACK_BOT_TOKEN", "does not look like a bot token (it should start with xoxb-)",
                                "use the Bot User OAuth Token, not a user or app token"))
    app = settings.app_token.get_secret_value() if settings.app_token else ""
    if app and not app.startswith("xapp-") and "SLACK_APP_TOKEN" not in placeholders:
        problems.append(Problem("SLACK_APP_TOKEN", "does not look like an app-level token (xapp-...)",
                                "create an app-level token with the connections:write scope under "
                                "'Basic Information' and use it here"))
    if not app and not (settings.signing_secret and settings.signing_secret.get_secret_value()):
        problems.append(Problem("SLACK_APP_TOKEN / SLACK_SIGNING_SECRET", "neither is set, so taskpin cannot "
                                "receive anything from Slack",
                                "set SLACK_APP_TOKEN for Socket Mode (no public URL needed), or "
                                "SLACK_SIGNING_SECRET for HTTP mode"))
    if not settings.board_channel:
        problems.append(Problem("TASKPIN_BOARD_CHANNEL", "is not set",
                                "set it to the id of the channel for the board (C...: open the "
                                "channel's details in Slack; the id is at the bottom), and invite the bot there"))
    elif "TASKPIN_BOARD_CHANNEL" in placeholders:
        pass
    elif settings.board_channel[:1] not in ("C", "G") or not settings.board_channel.isalnum():
        problems.append(Problem("TASKPIN_BOARD_CHANNEL", f"{settings.board_channel!r} is not a channel id",
                                "use the channel's id (C0123456789), not its #name"))
    if not settings.api_url.startswith(("https://", "http://")):
        problems.append(Problem("SLACK_API_URL", "must be an http(s) URL", "leave it unset for slack.com"))
    if not 1 <= settings.http_port <= 65535:
        problems.append(Problem("TASKPIN_HTTP_PORT", f"{settings.http_port} is not a port (1-65535)",
                                "set a port between 1 and 65535, e.g. 3000"))
    return problems
