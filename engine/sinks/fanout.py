"""Several sinks as one: each event is encoded once and written to all of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import Sink


class Fanout:
    """Every call goes to each sink; closing closes all of them, even when one fails."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self.needs_event = any(sink.needs_event for sink in self.sinks)
        self.flush_every = min(sink.flush_every for sink in self.sinks)

    def write(self, event: dict[str, Any], line: bytes) -> None:
        for sink in self.sinks:
            sink.write(event, line)

    def write_lines(self, lines: bytes) -> None:
        for sink in self.sinks:
            sink.write_lines(lines)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def flush_until(self, at: int) -> None:
        for sink in self.sinks:
            sink.flush_until(at)

    def end_chain(self, correlation_id: str, chain: str, outcome: str, at: int) -> None:
        for sink in self.sinks:
            sink.end_chain(correlation_id, chain, outcome, at)

    def close(self) -> None:
        errors = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as error:  # close every sink even when one fails
                errors.append(error)
        if errors:
            raise errors[0]


def fan_out(sinks: Sequence[Sink]) -> Sink:
    """One sink for several (the sink itself when there is one)."""
    return sinks[0] if len(sinks) == 1 else Fanout(sinks)
