"""chainsim's own encoding: one strict JSON object per line, the envelope fields in order, payload last.

    {"event_id": ..., "event_type": ..., "correlation_id": ..., "causation_id": ..., "tenant_id": ...,
     "namespace": ..., "timestamp": "2026-01-01T00:00:00.150Z", "chain": ..., "step": ..., "payload": {...}}
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import orjson

LINE = orjson.OPT_APPEND_NEWLINE  # orjson.dumps(event, option=LINE) is encode(event), one call less
_PAYLOAD_KEY = b',"payload":'


class Encoding(Protocol):
    """How events become bytes: a line for streams, a message value, the payload's own JSON."""

    name: str

    def encode(self, event: dict[str, Any]) -> bytes:
        """The event as one line (UTF-8, ending in a newline): what JSON-lines sinks write."""
        ...

    def value(self, line: bytes) -> bytes:
        """The message a broker carries for this line (Kafka's value)."""
        ...

    def payload_json(self, line: bytes) -> str | None:
        """The payload's JSON text from an encoded line (None for a null payload): what a table stores."""
        ...


class NativeEncoding:
    """The JSON line of chainsim's envelope."""

    name = "native"

    def __init__(self) -> None:
        # orjson itself, the option bound: no Python frame between a run's emit and the encoder.
        self.encode: Callable[[dict[str, Any]], bytes] = functools.partial(orjson.dumps, option=LINE)

    def value(self, line: bytes) -> bytes:
        return line[:-1]

    def payload_json(self, line: bytes) -> str | None:
        """`payload` is the last field and every field before it is a string or null. Inside a JSON string
        every `"` is escaped, so the first `,"payload":` in the line is the key itself."""
        start = line.find(_PAYLOAD_KEY) + len(_PAYLOAD_KEY)
        text = line[start:-2]  # without the closing brace and the newline
        return None if text == b"null" else text.decode()


NATIVE = NativeEncoding()
