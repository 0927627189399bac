"""Sinks: where events go. A sink is any object with `write`, `flush` and `close`.

Each sink lives in its own module and imports its client library there, lazily, so the engine starts
fast and needs only what the chosen sinks use. The registry maps a scheme to a factory:

    --sink jsonl:-            JSON lines on stdout (the default)
    --sink jsonl:out.jsonl    JSON lines in a file (same as --output out.jsonl)
    --sink kafka://HOST:PORT/TOPIC                          one message per event (needs chainsim[kafka])
    --sink postgresql://USER@HOST:PORT/DBNAME?table=events  one row per event (needs chainsim[postgres])
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..errors import UsageError


class Sink(Protocol):
    """Receives every event in timestamp order, with its JSON line already encoded."""

    def write(self, event: dict[str, Any], line: bytes) -> None: ...

    def flush(self) -> None:
        """Hand everything written so far to the destination (called before the wall clock waits).

        A sink for which each flush is costly (a transaction) may set `flush_every` (seconds): on the wall
        clock it is then flushed at most that often, and no event waits longer than that for its flush.
        """

    def close(self) -> None:
        """Flush and release the destination; called once, also after an interrupted run."""


# scheme -> "module:factory"; a factory takes the text after "scheme:" and returns a Sink.
REGISTRY: dict[str, str] = {
    "jsonl": "engine.sinks.jsonl:open_jsonl",
    "kafka": "engine.sinks.kafka:open_kafka",
    "postgresql": "engine.sinks.postgres:open_postgres",
    "postgres": "engine.sinks.postgres:open_postgres",
}


def open_sink(spec: str) -> Sink:
    """A sink from `scheme:target`; UsageError for an unknown scheme."""
    scheme, _, target = spec.partition(":")
    if scheme not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise UsageError(f"unknown sink {scheme!r} in {spec!r}; known sinks: {known}")
    module_name, _, factory_name = REGISTRY[scheme].partition(":")
    factory: Callable[[str], Sink] = getattr(importlib.import_module(module_name), factory_name)
    return factory(target)


class Fanout:
    """Several sinks as one: each event is encoded once and written to all."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        # Sinks that only write the encoded line say so (needs_event = False), which spares decoding.
        self.needs_event = any(getattr(sink, "needs_event", True) for sink in self.sinks)
        self.flush_every = min(getattr(sink, "flush_every", 0.0) for sink in self.sinks)

    def write(self, event: dict[str, Any], line: bytes) -> None:
        for sink in self.sinks:
            sink.write(event, line)

    def write_lines(self, lines: bytes) -> None:
        """Several whole lines: for sinks that take encoded lines only (`needs_event = False`)."""
        for sink in self.sinks:
            write_lines = getattr(sink, "write_lines", None)
            if write_lines is not None:
                write_lines(lines)
            else:
                for line in lines.splitlines(keepends=True):
                    sink.write({}, line)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        errors = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as error:  # close every sink even when one fails
                errors.append(error)
        if errors:
            raise errors[0]
