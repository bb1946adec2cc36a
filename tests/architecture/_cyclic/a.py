"""Fixture for the cycle finder: a imports b only under TYPE_CHECKING."""
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .b import B  # noqa: F401
