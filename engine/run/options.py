"""What a run is asked to do (`RunOptions`) and what it did (`Stats`).

A light module: the parent of `--workers` needs these, and neither the chains nor the libraries that
run them.
"""

from __future__ import annotations

import collections
import json
from typing import Any

import attrs

DEFAULT_RATE = 10.0  # chain starts per simulated second when neither rate nor interval is given


@attrs.frozen
class RunOptions:
    """What to run: how many chains start when, on which clock."""

    seed: int
    start_ms: int
    count: int | None = None  # chain instances to start in all; None: no end
    rate: float | str | None = None  # Poisson arrivals: chain starts per second (default 10), or "500 events/s"
    interval_ms: float | None = None  # fixed time between chain starts
    initial: int = 1  # chains started at once at the start; 0: the first one starts one gap later
    realtime: bool = False
    speed: float = 1.0
    duration_ms: int | None = None  # stop after this much simulated time
    shard: tuple[int, int] = (0, 1)  # (i, n): run only instances whose number in the run is i modulo n
    wall_origin: float | None = None  # wall clock: the epoch second start_ms happens at (default: at once)
    only: tuple[str, ...] = ()  # run only the chains of these names or globs (default: all)
    shape: dict[str, Any] | None = None  # a traffic shape (engine/run/shapes.py) instead of rate or interval

    def to_json(self) -> str:
        """The options whole, as JSON (what a `--workers` worker is given)."""
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunOptions:
        data: dict[str, Any] = json.loads(text)
        data["shard"], data["only"] = tuple(data["shard"]), tuple(data["only"])
        return cls(**data)


@attrs.define
class Stats:
    """What a run produced, for the summary on stderr."""

    events: int = 0
    started: int = 0
    end_of_time: bool = False  # the run stopped at 9999-12-31T23:59:59.999Z with events still to come
    faults: collections.Counter[str] = attrs.field(factory=collections.Counter)  # injected, by kind
    by_type: collections.Counter[str] = attrs.field(factory=collections.Counter)
    by_outcome: collections.Counter[tuple[str, str]] = attrs.field(factory=collections.Counter)

    @property
    def finished(self) -> int:
        return sum(self.by_outcome.values())

    @property
    def in_flight(self) -> int:
        return self.started - self.finished
