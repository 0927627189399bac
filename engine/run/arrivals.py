"""Arrivals: when chain instances start, and of which chain.

A run is given an arrival process (`Arrivals`: the next arrival's exact time and chain, in time order); the
run numbers the arrivals (the k-th of the run, the k-th of its chain) and starts those it owns. Which it owns
is a plain function of the arrival's number in the run, so sharding (`--shard`) and the workers' claimed
blocks (`--workers`) wrap any arrival process the same way: a shard numbers every arrival, as one process
would, and starts only its own.

`Steady` is today's process: `initial` chains at the start, then one per fixed interval or Poisson gap, the
chain drawn from the weighted mix. Traffic shapes, scripted starts and replays are other `Arrivals`.
"""

from __future__ import annotations

import bisect
import collections
import itertools
from collections.abc import Callable, Iterable
from random import Random
from typing import Any, NamedTuple, Protocol


class Arrival(NamedTuple):
    """One chain instance to start: at `at` (exact simulated ms; it starts at round(at)), of chain `chain`."""

    at: float
    chain: str
    start: Any = None  # what a scripted start sets for this instance; None: nothing


_new = tuple.__new__  # Arrival(...) without NamedTuple's __new__ in Python: one per chain instance


class Arrivals(Protocol):
    """An arrival process: the next arrival, never earlier than the one before; None when there are no more."""

    def next(self) -> Arrival | None: ...


class ChainMix:
    """The weighted choice of the chain of a new instance."""

    def __init__(self, weights: Iterable[tuple[str, float]]) -> None:
        pairs = list(weights)
        self.names = [name for name, _ in pairs]
        self.cumulative = list(itertools.accumulate(weight for _, weight in pairs))

    def pick(self, rng: Random) -> str:
        point = rng.random() * self.cumulative[-1]
        return self.names[bisect.bisect_right(self.cumulative, point)]


class Steady:
    """`initial` chains at `start`, then one every `interval_ms`, or Poisson arrivals at `rate` per second.

    Gaps add up unrounded (each arrival starts at the nearest millisecond), so a high rate stays exact.
    With no initial chains, the first starts one gap after `start`.
    """

    def __init__(self, mix: ChainMix, rng: Random, start: int, rate: float | None = None,
                 interval_ms: float | None = None, initial: int = 1) -> None:
        if (rate is None) == (interval_ms is None):
            raise ValueError("give a rate or an interval")
        self.mix, self.rng = mix, rng
        self.interval = interval_ms
        self.rate_per_ms = (rate or 0.0) / 1000.0
        self.burst = initial
        self.at = float(start)

    def next(self) -> Arrival:
        if self.burst:
            self.burst -= 1
        else:
            self.at += self.interval if self.interval is not None else self.rng.expovariate(self.rate_per_ms)
        return _new(Arrival, (self.at, self.mix.pick(self.rng), None))


def shard(index: int, count: int) -> Callable[[int], bool] | None:
    """Ownership of shard `index` of `count`: the arrivals whose number in the run is index modulo count
    (None for the one shard of one: every arrival)."""
    if count == 1:
        return None
    return lambda rank: rank % count == index


Start = Callable[[Arrival, int, int, int], None]  # start(arrival, number in its chain, rank in the run, now)


class ArrivalProcess:
    """The scheduler's process for arrivals: at each arrival's time, start it (if this process owns it).

    Arrivals this process does not own are numbered as they are drawn, without waking up for them, so the
    instance numbers and random streams are those of one process running the whole run. `count` ends the
    arrivals after that many (None: when the source has no more); `owns` None: every arrival is this
    process's.
    """

    def __init__(self, source: Arrivals, owns: Callable[[int], bool] | None, start: Start,
                 count: int | None = None) -> None:
        self.source, self.owns, self.start = source, owns, start
        self.arrived = 0  # arrivals numbered so far, in every shard
        self.count = count
        self.ordinals: collections.Counter[str] = collections.Counter()
        self.pending = source.next() if count is None or count > 0 else None

    def first(self) -> int | None:
        """When to resume first: the first arrival's time (None: there are none)."""
        return None if self.pending is None else round(self.pending.at)

    def resume(self, now: int) -> int | None:
        source, owns, ordinals, count = self.source, self.owns, self.ordinals, self.count
        pending = self.pending
        while pending is not None:
            rank = self.arrived
            mine = owns is None or owns(rank)
            at = round(pending.at)
            if mine and at > now:
                return at
            self.arrived = rank + 1
            chain = pending.chain
            number = ordinals[chain]
            ordinals[chain] = number + 1
            if mine:
                self.start(pending, number, rank, now)
            pending = self.pending = None if count is not None and rank + 1 >= count else source.next()
        return None
