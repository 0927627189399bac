"""A run: the arrival process starts chain instances, the scheduler interleaves their events, the sink
receives them in timestamp order, and `Stats` counts what happened.

Randomness is explicit: arrivals and the choice of chain draw from `Random("<seed>:arrivals")`; the
k-th instance of chain X draws only from `Random("<seed>:X:k")`, so adding a chain file or changing the
interleaving never changes what an instance of another chain draws.
"""

from __future__ import annotations

import bisect
import collections
import itertools
from random import Random
from typing import Any, Protocol

from orjson import dumps

from .events import LINE, Clock
from .interpreter import ChainInstance, Chooser, choose_by_weight
from .loader import Catalog
from .options import DEFAULT_RATE, RunOptions, Stats
from .scheduler import Scheduler, WallClockScheduler
from .sinks import Sink


class Arrivals:
    """The arrival process: `initial` chains at the start, then one per interval or Poisson gap."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        self.options = simulation.options
        self.rng = Random(f"{self.options.seed}:arrivals")
        chains = simulation.catalog.chains
        self.chains = [chain.name for chain in chains]
        self.cumulative = list(itertools.accumulate(chain.weight for chain in chains))
        self.burst = max(self.options.initial, 1)  # chains to start at the first resume
        self.at = 0.0  # exact time of the next arrival: gaps add up unrounded, so a high rate stays exact
        self.interval = self.options.interval_ms
        self.rate_per_ms = (self.options.rate or DEFAULT_RATE) / 1000.0

    def first(self, start: int) -> int:
        """When the first chains start: at `start`, or one gap later when no initial chains are asked for."""
        self.at = float(start) if self.options.initial else start + self.gap()
        return round(self.at)

    def resume(self, now: int) -> int | None:
        simulation, count = self.simulation, self.options.count
        burst, self.burst = self.burst, 1
        for _ in range(burst):
            if count is not None and simulation.arrived >= count:
                return None
            simulation.start_instance(self.pick(), now)
        while True:
            if count is not None and simulation.arrived >= count:
                return None
            self.at += self.gap()
            if simulation.owns(simulation.arrived):
                return round(self.at)
            # That arrival starts a chain of another shard: draw it now (the streams advance as in one
            # process) instead of waking up for it.
            simulation.start_instance(self.pick(), round(self.at))

    def pick(self) -> str:
        point = self.rng.random() * self.cumulative[-1]
        return self.chains[bisect.bisect_right(self.cumulative, point)]

    def gap(self) -> float:
        """Milliseconds to the next arrival: the fixed interval, or a Poisson (exponential) gap."""
        if self.interval is not None:
            return self.interval
        return self.rng.expovariate(self.rate_per_ms)


class Claims(Protocol):
    """Blocks of CLAIM_BLOCK instances handed out to whichever process asks first (`--workers`)."""

    def take(self, block: int) -> bool:
        """Claim `block`, asked for in order: True if it is this process's to run."""
        ...


CLAIM_BLOCK = 32  # instances per claim: a few milliseconds of work


class Simulation:
    """Wires a catalog, the options, a scheduler and a sink into one run.

    Which instances this process runs: all of them; shard i of n (`options.shard`, a fixed split); or,
    with `claims`, the blocks it claims first, so a worker slowed down by its neighbours takes fewer.
    """

    def __init__(self, catalog: Catalog, options: RunOptions, sink: Sink, choose: Chooser = choose_by_weight,
                 claims: Claims | None = None) -> None:
        self.catalog, self.options, self.sink, self.choose = catalog, options, sink, choose
        self._write = sink.write
        self._seed, self._shard, self._programs = options.seed, options.shard, catalog.programs
        self._claims = claims
        self._block, self._mine = -1, False  # the last block asked for, and whether it is ours
        self.stats = Stats()
        self.clock = Clock()
        self.shared = {"data": catalog.data}
        self._ordinals: collections.Counter[str] = collections.Counter()
        self.arrived = 0  # chain instances the arrival process has started, in every shard
        if options.realtime:
            # A sink can take the time the scheduler waits for (flush_until): the workers' watermarks.
            before_wait = getattr(sink, "flush_until", None) or (lambda at: sink.flush())
            self.scheduler: Scheduler = WallClockScheduler(options.start_ms, options.speed, before_wait=before_wait,
                                                           origin=options.wall_origin,
                                                           flush_every=getattr(sink, "flush_every", 0.0))
        else:
            self.scheduler = Scheduler(options.start_ms)

    def emit(self, event: dict[str, Any]) -> None:
        stats = self.stats
        stats.events += 1
        stats.by_type[event["event_type"]] += 1
        self._write(event, dumps(event, option=LINE))

    def finish(self, instance: ChainInstance) -> None:
        self.stats.by_outcome[(instance.program.chain.name, instance.result)] += 1

    def owns(self, rank: int) -> bool:
        """This process runs the instance of this number in the run (asked for every number, in order)."""
        if self._claims is None:
            shard, shards = self._shard
            return rank % shards == shard
        block = rank // CLAIM_BLOCK
        if block != self._block:
            self._block, self._mine = block, self._claims.take(block)
        return self._mine

    def start_instance(self, name: str, now: int) -> ChainInstance | None:
        """Start the next instance of chain `name` at `now` (None when it belongs to another shard).

        An instance depends only on (seed, chain, its ordinal) and its start time, so shard i of n can
        skip the others' instances and the shards' events together are exactly those of one run.
        """
        rank = self.arrived
        self.arrived += 1
        number = self._ordinals[name]
        self._ordinals[name] = number + 1
        if not self.owns(rank):
            return None
        rng = Random(f"{self._seed}:{name}:{number}")
        instance = ChainInstance(self._programs[name], number, rng, self.shared, self.emit, self.clock, self.choose,
                                 self.finish)
        self.stats.started += 1
        first = instance.start(now)
        if first is not None:
            self.scheduler.schedule(first, instance, rank=rank)
        return instance

    def stop(self) -> None:
        self.scheduler.stop()

    def run(self) -> Stats:
        """Run to the end (or until stop()); the sink is flushed, not closed."""
        options = self.options
        if options.count == 0:
            return self.stats
        arrivals = Arrivals(self)
        self.scheduler.schedule(arrivals.first(options.start_ms), arrivals, rank=-1)  # arrivals before events
        until = None if options.duration_ms is None else options.start_ms + options.duration_ms
        self.scheduler.run(until)
        self.sink.flush()
        return self.stats
