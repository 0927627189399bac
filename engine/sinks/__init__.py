"""Sinks: where events go. A sink satisfies the `Sink` protocol; `SinkBase` gives every method but `write`.

Each sink lives in its own module and imports its client library there, lazily, so the engine starts
fast and needs only what the chosen sinks use. The registry maps a scheme to a factory:

    --sink jsonl:-            JSON lines on stdout (the default)
    --sink jsonl:out.jsonl    JSON lines in a file (same as --output out.jsonl)
    --sink kafka://HOST:PORT/TOPIC                          one message per event (needs chainsim[kafka])
    --sink postgresql://USER@HOST:PORT/DBNAME?table=events  one row per event (needs chainsim[postgres])
    --sink sqlite:events.db   the embedded store's tables in a SQLite file (what `serve` serves)

A factory takes the text after `scheme:` and the run's encoding (engine/envelope), which says what the bytes
of a line are, so a sink never slices a line itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

from ..envelope import NATIVE, Encoding
from ..errors import SinkError, UsageError
from ..hints import hint


class Sink(Protocol):
    """Receives every event in timestamp order, with its line already encoded. The engine calls exactly these."""

    needs_event: bool  # False: the sink reads `line` only (the `--workers` merge then skips decoding lines)
    flush_every: float  # seconds: on the wall clock, flush at most this often (0: before every wait)

    def write(self, event: dict[str, Any], line: bytes) -> None:
        """One event: the dict (do not keep it: the engine shares its constant parts) and its encoded line."""

    def write_lines(self, lines: bytes) -> None:
        """Several whole encoded lines at once (the `--workers` merge), for sinks with needs_event False."""

    def flush(self) -> None:
        """Hand everything written so far to the destination."""

    def flush_until(self, at: int) -> None:
        """The run is about to wait until simulated time `at` (ms): flush (the workers add a watermark)."""

    def end_chain(self, correlation_id: str, chain: str, outcome: str, at: int) -> None:
        """A chain instance finished at simulated `at` (ms) with `outcome` (its `outcome:`, else its last step's
        id), after its last event was written. Stuck chains never finish."""

    def close(self) -> None:
        """Flush and release the destination; called once, also after an interrupted run."""


class SinkBase:
    """Defaults for every method of `Sink` but `write`: a sink subclasses this and writes."""

    needs_event = True
    flush_every = 0.0

    def write(self, event: dict[str, Any], line: bytes) -> None:
        raise NotImplementedError

    def write_lines(self, lines: bytes) -> None:
        """Each line decoded only if the sink needs the event."""
        if self.needs_event:
            import orjson

            for line in lines.splitlines(keepends=True):
                self.write(orjson.loads(line), line)
        else:
            for line in lines.splitlines(keepends=True):
                self.write({}, line)

    def flush(self) -> None:
        pass

    def flush_until(self, at: int) -> None:
        self.flush()

    def end_chain(self, correlation_id: str, chain: str, outcome: str, at: int) -> None:
        pass

    def close(self) -> None:
        self.flush()


Factory = Callable[[str, Encoding], Sink]

# scheme -> "module:factory"; a factory takes (the text after "scheme:", the encoding) and returns a Sink.
REGISTRY: dict[str, str] = {
    "jsonl": "engine.sinks.jsonl:open_jsonl",
    "kafka": "engine.sinks.kafka:open_kafka",
    "postgresql": "engine.sinks.postgres:open_postgres",
    "postgres": "engine.sinks.postgres:open_postgres",
    "sqlite": "engine.sinks.sqlite:open_sqlite",
}


def open_sink(spec: str, encoding: Encoding = NATIVE) -> Sink:
    """A sink from `scheme:target`: UsageError for an unknown scheme or a malformed target, SinkError when its
    destination cannot be opened."""
    scheme, _, target = spec.partition(":")
    if scheme not in REGISTRY:
        known = hint("usage", "sink", known=", ".join(sorted(REGISTRY)))
        raise UsageError(f"unknown sink {scheme!r} in {spec!r}; {known}")
    module_name, _, factory_name = REGISTRY[scheme].partition(":")
    factory: Factory = getattr(importlib.import_module(module_name), factory_name)
    try:
        return factory(target, encoding)
    except OSError as error:  # the destination is not there, or refuses us
        raise SinkError(f"cannot open sink: {error}") from None
