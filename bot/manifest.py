"""The app manifests shipped in manifests/: what taskpin asks Slack for, read from the files users
paste into Slack, so that the check and the manifest can never disagree."""
from __future__ import annotations

from pathlib import Path

import yaml

MANIFESTS_DIR = Path(__file__).resolve().parents[1] / "manifests"   # the repository (pip install -e)
SOCKET_MODE = "socket-mode.yaml"


def manifest(name: str = SOCKET_MODE) -> dict | None:
    """The parsed manifest, or None when taskpin runs without its repository next to it."""
    path = MANIFESTS_DIR / name
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def bot_scopes(name: str = SOCKET_MODE) -> list[str] | None:
    """The bot scopes the manifest asks for (both manifests ask for the same ones)."""
    data = manifest(name)
    if data is None:
        return None
    return list(data.get("oauth_config", {}).get("scopes", {}).get("bot", []))
