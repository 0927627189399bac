"""The envelope's fields: their names and order, reproducible ids, RFC 3339 timestamps.

Timestamps have four-digit years (RFC 3339): a run's times stay within FIRST_MS and LAST_MS.
"""

from __future__ import annotations

import datetime as dt
import time
from random import Random

FIELDS = (
    "event_id",
    "event_type",
    "correlation_id",
    "causation_id",
    "tenant_id",
    "namespace",
    "timestamp",
    "chain",
    "step",
    "payload",
)

FIRST_MS, LAST_MS = -30610224000000, 253402300799999  # 1000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # version and variant bits
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def new_uuid(rng: Random) -> str:
    """A version-4 UUID drawn from rng (so ids are reproducible), as text."""
    text = (rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET).to_bytes(16).hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class Clock:
    """Formats epoch milliseconds as RFC 3339 UTC with milliseconds, caching the seconds part."""

    __slots__ = ("_second", "_prefix")

    def __init__(self) -> None:
        self._second: int | None = None  # no second yet (-1 is a real one: 1969-12-31T23:59:59)
        self._prefix = ""

    def format(self, ms: int) -> str:
        second, millis = divmod(ms, 1000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{millis:03d}Z"


def format_timestamp(ms: int) -> str:
    return Clock().format(ms)


def parse_timestamp(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 time; a time without offset is UTC. ValueError when unreadable."""
    moment = dt.datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return round(moment.timestamp() * 1000)
