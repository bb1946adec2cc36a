"""The shipped Slack app manifests: valid against Slack's official schema, and declaring exactly
what the code uses (the command, the shortcut, the events, the scopes of every Web API call).

What the code uses is read from the code itself: the listeners are registered on a recorder,
and the Web API calls are found in bot/'s sources. A new listener or a new Web API method
therefore fails here until the manifests (and the tables below) say what Slack needs for it.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator
from slack_sdk.web.async_client import AsyncWebClient

from bot import listeners
from bot.ids import CallbackId

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
SCHEMA_DIR = MANIFESTS / "schema"      # Slack's official schemas (slackapi/manifest-schema), kept here
SOCKET, HTTP = "socket-mode.yaml", "http.yaml"
PLACEHOLDER_URL = "https://taskpin.example.com/slack/events"

# Bot scopes per Web API method (https://api.slack.com/methods/<method>, "Required scopes").
# An empty tuple: the method needs no scope beyond having a bot token.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),                       # bolt calls it itself
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.getPermalink": (),
    "pins.add": ("pins:write",),
    "pins.remove": ("pins:write",),
    "pins.list": ("pins:read",),
    "views.open": (),
    "views.publish": (),
    "views.update": (),
    "views.push": (),
    "users.info": ("users:read",),
    "conversations.info": ("channels:read", "groups:read"),   # the board channel may be public or private
    "conversations.open": ("im:write",),   # the DM telling an owner an agent waits (bot/notify.py)
    "conversations.history": ("channels:history", "groups:history"),   # the outbox finds a lost post
    "conversations.replies": ("channels:history", "groups:history"),
    "apps.connections.open": (),           # the app-level token's connections:write, not a bot scope
}
# Methods every bolt app calls without our code naming them.
IMPLICIT_METHODS = {"auth.test"}

# The manifest subscriptions a bolt event listener needs. `message`: the board channel may be
# public (message.channels) or private (message.groups); taskpin ignores DMs, so no message.im.
EVENT_SUBSCRIPTIONS: dict[str, set[str]] = {
    "message": {"message.channels", "message.groups"},
    "app_home_opened": {"app_home_opened"},
    "pin_removed": {"pin_removed"},
}
# Bot scopes per event subscription (https://api.slack.com/events/<event>).
SUBSCRIPTION_SCOPES: dict[str, tuple[str, ...]] = {
    "message.channels": ("channels:history",),
    "message.groups": ("groups:history",),
    "message.im": ("im:history",),
    "message.mpim": ("mpim:history",),
    "app_home_opened": (),
    "pin_added": ("pins:read",),
    "pin_removed": ("pins:read",),
}


# ---- what the code uses ----------------------------------------------------------------------

class Recorder:
    """Stands in for AsyncApp: records what each listener module registers."""

    def __init__(self) -> None:
        self.registered: dict[str, list] = {}

    def _record(self, kind: str):
        def register(*args, **kwargs):
            key = args[0] if args else kwargs.get("callback_id") or kwargs.get("constraints")
            self.registered.setdefault(kind, []).append(key)
            return lambda handler: handler
        return register

    def __getattr__(self, kind: str):
        if kind in ("event", "command", "shortcut", "action", "view", "options", "message"):
            return self._record(kind)
        raise AttributeError(kind)


@pytest.fixture(scope="module")
def used() -> dict[str, set]:
    recorder = Recorder()
    listeners.register(recorder)
    # Catch-all fallbacks (bot/listeners/fallback.py, a pattern) only ack what nothing else handles.
    reg = {kind: [key for key in keys if not isinstance(key, re.Pattern)] for kind, keys in recorder.registered.items()}
    events = {key if isinstance(key, str) else key["type"] for key in reg.get("event", [])}
    if reg.get("message"):
        events.add("message")
    return {
        "events": events,
        "commands": set(reg.get("command", [])),
        "shortcuts": {key.value if isinstance(key, CallbackId) else key for key in reg.get("shortcut", [])},
        "interactive": set(reg.get("action", [])) | set(reg.get("view", [])) | set(reg.get("shortcut", [])),
    }


def web_api_methods() -> set[str]:
    """Slack Web API methods called anywhere in bot/ (the emulator, which serves them, excluded)."""
    client_methods = {name for name in dir(AsyncWebClient) if not name.startswith("_") and "_" in name}
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        if "emulator" in path.relative_to(ROOT / "bot").parts:
            continue
        source = path.read_text(encoding="utf-8")
        for name in re.findall(r"\.([a-z]+_[A-Za-z_]+)\s*\(", source):
            if name in client_methods and name != "api_call":
                found.add(name.replace("_", "."))
        found.update(re.findall(r"api_call\(\s*[\"']([a-z]+(?:\.[A-Za-z]+)+)[\"']", source))
    return found


def served_path() -> str:
    """The path bot/runtime.py serves Slack's HTTP requests on."""
    paths = re.findall(r"add_post\(\s*[\"']([^\"']+)[\"']", (ROOT / "bot" / "runtime.py").read_text(encoding="utf-8"))
    assert len(paths) == 1, f"expected one POST route in bot/runtime.py, found {paths}"
    return paths[0]


# ---- the manifests ---------------------------------------------------------------------------

def load(name: str) -> dict:
    data = yaml.safe_load((MANIFESTS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{name} is not a YAML mapping"
    return data


@pytest.fixture(scope="module", params=[SOCKET, HTTP])
def manifest(request) -> tuple[str, dict]:
    return request.param, load(request.param)


def schema_dir() -> Path:
    assert SCHEMA_DIR.is_dir(), f"Slack's manifest JSON schemas belong in {SCHEMA_DIR}"
    return SCHEMA_DIR


def test_manifest_matches_official_schema(manifest):
    name, data = manifest
    major = data.get("_metadata", {}).get("major_version", 1)
    schema_path = schema_dir() / f"manifest.schema.{major}.0.0.json"
    assert schema_path.is_file(), f"{name}: no official schema for _metadata.major_version {major}"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, f"{name}:\n" + "\n".join(
        f"  {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors)
    # The schema spells this constraint "regex", which JSON Schema ignores: check it here.
    color = data["display_information"].get("background_color")
    assert color is None or re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", color), color


def test_identity_and_app_home(manifest, used):
    name, data = manifest
    assert data["display_information"]["name"] == "taskpin"
    assert data["display_information"]["description"]
    features = data["features"]
    assert features["bot_user"] == {"display_name": "taskpin", "always_online": True}
    if "app_home_opened" in used["events"]:
        assert features["app_home"]["home_tab_enabled"] is True, f"{name}: the Home tab is published but disabled"
    settings = data["settings"]
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False


def test_slash_commands_match_listeners(manifest, used):
    name, data = manifest
    commands = data["features"]["slash_commands"]
    declared = {c["command"] for c in commands}
    assert "/task" in declared
    assert declared == used["commands"], f"{name}: commands {declared} vs listeners {used['commands']}"
    for command in commands:
        assert command["description"] and command.get("usage_hint")
        assert command.get("should_escape") is False   # /task reads the raw text


def test_shortcut_matches_listener(manifest, used):
    name, data = manifest
    shortcuts = data["features"]["shortcuts"]
    assert {s["callback_id"] for s in shortcuts} == used["shortcuts"] == {CallbackId.CREATE_TASK_SHORTCUT.value}
    (shortcut,) = shortcuts
    assert shortcut["type"] == "message" and shortcut["name"] == "Create agent task" and shortcut["description"]


def test_event_subscriptions_match_listeners(manifest, used):
    name, data = manifest
    unknown = used["events"] - EVENT_SUBSCRIPTIONS.keys()
    assert not unknown, f"listeners handle {unknown}: add them to EVENT_SUBSCRIPTIONS and the manifests"
    needed = set().union(*(EVENT_SUBSCRIPTIONS[event] for event in used["events"]))
    declared = data["settings"]["event_subscriptions"]["bot_events"]
    assert len(declared) == len(set(declared))
    assert set(declared) == needed, (f"{name}: missing {needed - set(declared)}, "
                                     f"not handled by any listener {set(declared) - needed}")
    assert {"message.channels", "message.groups", "app_home_opened", "pin_removed"} <= set(declared)


def test_interactivity_enabled(manifest, used):
    name, data = manifest
    assert used["interactive"], "the listeners register buttons, modals and a shortcut"
    assert data["settings"]["interactivity"]["is_enabled"] is True


def test_scopes_are_exactly_what_the_code_needs(manifest, used):
    name, data = manifest
    methods = web_api_methods()
    # The scan itself must work: these calls are the heart of the bot.
    assert {"chat.postMessage", "chat.update", "pins.add", "pins.list", "views.publish", "views.open"} <= methods
    methods |= IMPLICIT_METHODS
    unknown = methods - METHOD_SCOPES.keys()
    assert not unknown, f"bot/ calls {unknown}: add their scopes to METHOD_SCOPES (and the manifests)"
    declared_events = data["settings"]["event_subscriptions"]["bot_events"]
    unknown_events = set(declared_events) - SUBSCRIPTION_SCOPES.keys()
    assert not unknown_events, f"add {unknown_events} to SUBSCRIPTION_SCOPES"
    needed = {scope for method in methods for scope in METHOD_SCOPES[method]}
    needed |= {scope for event in declared_events for scope in SUBSCRIPTION_SCOPES[event]}
    if used["commands"] or used["shortcuts"]:
        needed.add("commands")
    scopes = data["oauth_config"]["scopes"]
    assert set(scopes) == {"bot"}, f"{name}: taskpin needs bot scopes only, not {set(scopes) - {'bot'}}"
    declared = scopes["bot"]
    assert len(declared) == len(set(declared))
    assert set(declared) == needed, f"{name}: missing {needed - set(declared)}, unneeded {set(declared) - needed}"


def request_urls(data: dict) -> list[str]:
    urls = [c["url"] for c in data["features"]["slash_commands"] if "url" in c]
    settings = data["settings"]
    for section in ("event_subscriptions", "interactivity"):
        for key in ("request_url", "message_menu_options_url"):
            if key in settings.get(section, {}):
                urls.append(settings[section][key])
    return urls


def test_socket_mode_manifest():
    data = load(SOCKET)
    assert data["settings"]["socket_mode_enabled"] is True
    assert request_urls(data) == [], "Socket Mode apps receive everything over the socket: no request URLs"


def test_http_manifest_urls():
    data = load(HTTP)
    assert data["settings"]["socket_mode_enabled"] is False
    path = served_path()
    assert path == "/slack/events"
    # Slack sends each of these three somewhere: all must point at taskpin's one route.
    assert [c.get("url") for c in data["features"]["slash_commands"]] == [PLACEHOLDER_URL]
    assert data["settings"]["event_subscriptions"].get("request_url") == PLACEHOLDER_URL
    assert data["settings"]["interactivity"].get("request_url") == PLACEHOLDER_URL
    for url in request_urls(data):
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.path == path and url.endswith("/slack/events"), url
    text = (MANIFESTS / HTTP).read_text(encoding="utf-8")
    assert re.search(r"#.*REPLACE.*taskpin\.example\.com", text, re.IGNORECASE), \
        "http.yaml must tell the user to replace the placeholder host"


def without_transport(data: dict) -> dict:
    """The manifest minus what Socket Mode vs HTTP mode changes."""
    data = copy.deepcopy(data)
    for command in data["features"]["slash_commands"]:
        command.pop("url", None)
    settings = data["settings"]
    settings.pop("socket_mode_enabled")
    settings["event_subscriptions"].pop("request_url", None)
    settings["interactivity"].pop("request_url", None)
    settings["interactivity"].pop("message_menu_options_url", None)
    return data


def test_manifests_differ_only_in_transport():
    socket, http = load(SOCKET), load(HTTP)
    assert socket["settings"]["socket_mode_enabled"] != http["settings"]["socket_mode_enabled"]
    assert without_transport(socket) == without_transport(http)
