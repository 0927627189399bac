"""JSON lines to stdout or a file: one event per line, whole lines only."""

from __future__ import annotations

import sys
from typing import IO, Any

from ..envelope import Encoding
from . import SinkBase

BUFFER_BYTES = 256 * 1024


class JsonlSink(SinkBase):
    """Buffers whole lines and writes them in large chunks; a line is never split by a stop."""

    needs_event = False  # writes the encoded line only

    def __init__(self, stream: IO[bytes], owned: bool = False) -> None:
        self.stream = stream
        self.owned = owned
        self._chunks: list[bytes] = []
        self._size = 0

    def write(self, event: dict[str, Any], line: bytes) -> None:
        self._chunks.append(line)
        self._size += len(line)
        if self._size >= BUFFER_BYTES:
            self.flush()

    def write_lines(self, lines: bytes) -> None:
        """Several whole lines at once (the merge of `--workers`)."""
        self._chunks.append(lines)
        self._size += len(lines)
        if self._size >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._chunks:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._size = 0
            self.stream.write(data)
        self.stream.flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self.owned:
                self.stream.close()


def open_jsonl(target: str, encoding: Encoding | None = None) -> JsonlSink:
    """`-` or empty: stdout; anything else: a file path, created or truncated."""
    if target in ("", "-"):
        return JsonlSink(sys.stdout.buffer)
    return JsonlSink(open(target, "wb"), owned=True)  # noqa: SIM115 - closed by close()
