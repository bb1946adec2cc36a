"""The `acp` harness: any agent speaking the Agent Client Protocol over stdio."""
from .adapter import AcpHarness, AcpSession
from .options import AcpOptions

__all__ = ["AcpHarness", "AcpOptions", "AcpSession"]
