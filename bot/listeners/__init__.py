"""Listener registration: one module per kind, each with register(app)."""
from slack_bolt.async_app import AsyncApp

from . import actions, commands, events, fallback, shortcuts, views


def register(app: AsyncApp) -> None:
    # bolt tries the listeners in this order for every delivery until one matches, at about
    # 0.1 ms a try: events go first, as channel messages are the most frequent deliveries
    # (fifty thread replies at once each skipped some twenty action and view listeners).
    for module in (events, commands, actions, views, shortcuts, fallback):   # fallback last
        module.register(app)
