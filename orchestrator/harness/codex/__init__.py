"""The `codex` harness: Codex's app-server over JSON-RPC on stdio."""
from .adapter import CodexHarness, CodexSession
from .options import CodexOptions

__all__ = ["CodexHarness", "CodexOptions", "CodexSession"]
