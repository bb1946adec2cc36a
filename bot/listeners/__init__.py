"""Listener registration: one module per kind, each with register(app)."""
from slack_bolt.async_app import AsyncApp

from . import actions, commands, events, fallback, shortcuts, views


def register(app: AsyncApp) -> None:
    for module in (commands, actions, views, events, shortcuts, fallback):   # fallback last
        module.register(app)
