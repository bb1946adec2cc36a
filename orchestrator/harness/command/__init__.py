"""The `command` harness: any executable speaking taskpin's JSON-lines protocol on stdio."""
from .adapter import CommandHarness, CommandSession
from .options import CommandOptions

__all__ = ["CommandHarness", "CommandOptions", "CommandSession"]
