"""The `claude-code` harness: Claude Code through claude-agent-sdk."""
from .adapter import ClaudeCodeHarness, ClaudeCodeSession
from .options import ClaudeCodeOptions

__all__ = ["ClaudeCodeHarness", "ClaudeCodeOptions", "ClaudeCodeSession"]
