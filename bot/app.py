"""Builds the bolt AsyncApp: the services middleware and the listeners. Wiring only."""
from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from .listeners import register
from .services import Services


def build_app(svc: Services, *, http_mode: bool) -> AsyncApp:
    secret = svc.settings.signing_secret.get_secret_value() if svc.settings.signing_secret else None
    app = AsyncApp(
        client=svc.client,
        signing_secret=secret,
        request_verification_enabled=http_mode,   # Socket Mode has no signatures to check
        ignoring_self_events_enabled=True,
    )

    @app.middleware
    async def inject_services(context, next):
        context["taskpin"] = svc
        await next()

    register(app)
    return app
