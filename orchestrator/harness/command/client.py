"""The command protocol's wire: JSON (or plain) lines to the agent's stdin, lines from its
stdout and stderr (an over-long line is truncated, never fatal). docs/command-protocol.md."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..errors import HarnessError

MAX_LINE_BYTES = 1024 * 1024          # longer lines are truncated (the rest is discarded)


def fold_line(text: str) -> str:
    """One line for a plain-text agent: every newline (and CR) becomes a single space."""
    return " ".join(part for part in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def json_line(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def text_line(text: str) -> bytes:
    return (fold_line(text) + "\n").encode("utf-8")


class AgentStdin:
    """Writes to the agent's stdin, one message at a time."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self._proc = proc
        self._lock = asyncio.Lock()

    def write_nowait(self, data: bytes) -> None:
        """Before the session starts (the prompt): buffered, never blocks."""
        stdin = self._proc.stdin
        if stdin is not None and not stdin.is_closing():
            try:
                stdin.write(data)
            except (OSError, RuntimeError):
                pass

    async def write(self, data: bytes, what: str) -> None:
        stdin = self._proc.stdin
        code = self._proc.returncode
        if code is not None or stdin is None or stdin.is_closing():
            raise HarnessError(f"cannot send the {what}: the agent process has exited"
                               + (f" (code {code})" if code is not None else ""))
        async with self._lock:
            try:
                stdin.write(data)
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError, OSError, RuntimeError) as exc:
                raise HarnessError(f"cannot send the {what}: the agent closed its input ({exc})") from exc


async def read_lines(reader: asyncio.StreamReader, max_bytes: int = MAX_LINE_BYTES) -> AsyncIterator[str]:
    """Lines without their newline; a line over `max_bytes` is truncated, never fatal."""
    while True:
        buf = bytearray()
        dropped = 0
        eof = ended = False
        while not ended:
            try:
                piece = (await reader.readuntil(b"\n"))[:-1]
                ended = True
            except asyncio.IncompleteReadError as exc:
                piece, eof, ended = exc.partial, True, True
            except asyncio.LimitOverrunError as exc:
                # No newline within the buffer limit: take what is there, keep looking.
                piece = await reader.read(max(exc.consumed, 1))
                if not piece:
                    eof = ended = True
            room = max_bytes - len(buf)
            if room > 0:
                buf += piece[:room]
            dropped += max(0, len(piece) - max(room, 0))
        if buf.endswith(b"\r"):
            del buf[-1]
        if buf or dropped or not eof:
            text = buf.decode("utf-8", errors="replace")
            if dropped:
                text += f" … [line truncated: {dropped} more bytes]"
            yield text
        if eof:
            return
