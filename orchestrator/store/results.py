"""Small readers of SQLAlchemy results."""
from __future__ import annotations

from typing import Any, cast

from sqlalchemy.engine import CursorResult, Result


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE touched (SQLAlchemy types `execute()` as a plain Result)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)
