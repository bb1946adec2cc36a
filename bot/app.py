"""Builds the bolt AsyncApp: the services middleware and the listeners. Wiring only."""
from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from .listeners import register
from .services import Services
from .slack_errors import classify

# Events about the bot's own messages that still matter: someone deleting the board. bolt's
# built-in self-event filter would drop them (the deleted message's author is the bot).
KEEP_SELF_SUBTYPES = {"message_deleted"}


def build_app(svc: Services, *, http_mode: bool) -> AsyncApp:
    secret = svc.settings.signing_secret.get_secret_value() if svc.settings.signing_secret else None
    app = AsyncApp(
        client=svc.client,
        signing_secret=secret,
        request_verification_enabled=http_mode,   # Socket Mode has no signatures to check
        ignoring_self_events_enabled=False,       # replaced by ignore_own_events below
    )

    @app.middleware
    async def ignore_own_events(body, context, next):
        event = body.get("event") if isinstance(body, dict) else None
        if isinstance(event, dict) and event.get("subtype") not in KEEP_SELF_SUBTYPES and event.get("type") not in (
                "member_joined_channel", "member_left_channel"):
            bot_user, bot_id = context.get("bot_user_id"), context.get("bot_id")
            if (bot_user and context.get("user_id") == bot_user) or (bot_id and event.get("bot_id") == bot_id):
                return await context.ack()   # a 200 with no listener, like bolt's own filter
        await next()

    @app.middleware
    async def inject_services(context, next):
        context["taskpin"] = svc
        await next()

    @app.error
    async def one_line_for_slack_failures(error, logger):
        # A listener's Web API call failed (Slack down, a 5xx, a revoked token): one line, no
        # traceback; /healthz reports the state. Anything else is a bug and shows in full.
        failure = classify(error)
        if failure is None:
            logger.error("a listener failed", exc_info=error)
        else:
            logger.warning("a Slack call in a listener failed: %s", failure.reason)

    register(app)
    return app
