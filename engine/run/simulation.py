"""A run: an arrival process starts chain instances, the scheduler interleaves their events, a clock decides
when each step runs, the sink receives the events in timestamp order, and `Stats` counts what happened.

Randomness is explicit: the default arrivals and the choice of chain draw from `Random("<seed>:arrivals")`;
the k-th instance of chain X draws only from `Random("<seed>:X:k")`, so adding a chain file or changing the
interleaving never changes what an instance of another chain draws. Everything a run changes belongs to it
(its Faker generators and their simulated time, its clock, its scheduler): runs in several threads, or
beside a user's own Faker, do not touch each other.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from random import Random
from typing import TYPE_CHECKING, Any

from orjson import JSONEncodeError

from ..envelope import NATIVE, Encoding
from ..envelope.fields import LAST_MS, Clock
from ..errors import TemplateRunError
from ..sinks import Sink
from ..templates.compiler import RenderError
from ..templates.fakers import Fakers
from .arrivals import Arrival, ArrivalProcess, Arrivals, ChainMix, Steady, shard
from .clocks import WallClock, run_virtual
from .faults import Fault, Faults
from .interpreter import ChainInstance, Chooser, choose_by_weight
from .options import DEFAULT_RATE, RunOptions, Stats
from .scheduler import Scheduler
from .shapes import Shaped, parse_rate, shape_of

if TYPE_CHECKING:  # a catalog is made by engine/load, which compiles with this folder's interpreter
    from ..load.catalog import Catalog


def default_arrivals(catalog: Catalog, options: RunOptions) -> Arrivals:
    """The options' arrivals: `initial` chains at the start, then a traffic shape (`options.shape`), Poisson at
    `rate` (default 10 per second) or one per `interval_ms`, the chain drawn from the catalog's weights."""
    mix = ChainMix((chain.name, chain.weight) for chain in catalog.chains)
    rng = Random(f"{options.seed}:arrivals")
    events = functools.cache(lambda: mean_events_per_chain(catalog))
    if options.shape is not None:
        shape, even = shape_of(options.shape, options.start_ms, events)
        return Shaped(shape, mix, rng, options.start_ms, options.initial, even)
    rate = None if options.interval_ms is not None else parse_rate(options.rate or DEFAULT_RATE, events)
    return Steady(mix, rng, options.start_ms, rate, options.interval_ms, options.initial)


def mean_events_per_chain(catalog: Catalog, chains: int = 2000) -> float:
    """The mean events of a chain instance of the catalog's mix, from a seeded virtual run (a rate given in
    events per second is divided by it)."""
    from ..sinks import SinkBase

    class Count(SinkBase):
        needs_event = False

        def write(self, event: dict[str, Any], line: bytes) -> None:
            pass

    stats = Simulation(catalog, RunOptions(seed=0, start_ms=0, count=chains, rate=1000.0), Count()).run()
    return max(stats.events, 1) / chains


class Simulation:
    """Wires a catalog, the options, the arrivals, a scheduler, a clock and a sink into one run.

    `arrivals` defaults to the options' (see `default_arrivals`); `count` limits any of them. Which arrivals
    this process starts: all; shard i of n (`options.shard`); or those `owns(number in the run)` says are
    its own (the blocks a `--workers` worker claimed).
    """

    def __init__(self, catalog: Catalog, options: RunOptions, sink: Sink, *, arrivals: Arrivals | None = None,
                 choose: Chooser = choose_by_weight, owns: Callable[[int], bool] | None = None,
                 encoding: Encoding = NATIVE, faults: Sequence[Fault] = ()) -> None:
        if options.only:
            catalog = catalog.select(options.only)
        self.catalog, self.options, self.sink, self.choose = catalog, options, sink, choose
        self._write = sink.write
        self._encode = encoding.encode
        self._seed, self._programs = options.seed, catalog.programs
        self.owns = owns or shard(*options.shard)  # None: every arrival is this process's
        self.stats = Stats()
        self.clock = Clock()
        self.fakers = Fakers()
        self.shared = {"data": catalog.data}
        self.scheduler = Scheduler(options.start_ms)
        source = arrivals if arrivals is not None else default_arrivals(catalog, options)
        self.arrivals = ArrivalProcess(source, self.owns, self.start, options.count)
        first = self.arrivals.first()
        if first is not None:
            self.scheduler.schedule(first, self.arrivals, rank=-1)  # arrivals come before events
        self.wall: WallClock | None = None
        if options.realtime:
            self.wall = WallClock(self.scheduler, sink, options.speed, origin=options.wall_origin)
        self.faults: Faults | None = None
        if faults:
            self.faults = Faults(faults, options.seed, self.scheduler, sink.write, self._encode)
            self.stats.faults = self.faults.counts
            self.emit = self._emit_with_faults  # type: ignore[method-assign,assignment]

    @property
    def until(self) -> int:
        """The last simulated millisecond of the run: its duration's end, and never past year 9999."""
        options = self.options
        end = LAST_MS if options.duration_ms is None else options.start_ms + options.duration_ms
        return min(end, LAST_MS)

    @property
    def _advance(self) -> bool:
        """At the end, move simulated time on to `until`: a run of a duration lasts all of it."""
        return self.options.duration_ms is not None

    def emit(self, event: dict[str, Any]) -> bool | None:
        try:
            line = self._encode(event)
        except JSONEncodeError as error:  # an integer beyond 64 bits: JSON as orjson writes it has none
            raise self._not_json(event, error) from None
        stats = self.stats
        stats.events += 1
        stats.by_type[event["event_type"]] += 1
        self._write(event, line)
        return None

    def _emit_with_faults(self, event: dict[str, Any]) -> bool:
        """emit, through the run's faults; True when the event's chain is stuck there."""
        try:
            line = self._encode(event)
        except JSONEncodeError as error:
            raise self._not_json(event, error) from None
        stats = self.stats
        stats.events += 1
        stats.by_type[event["event_type"]] += 1
        assert self.faults is not None
        return self.faults.deliver(event, line)

    def _not_json(self, event: dict[str, Any], error: Exception) -> RenderError:
        step = next(s for s in self._programs[event["chain"]].chain.walk() if s.id == event["step"])
        failure = RenderError((*step.path, "payload"), TypeError(f"the payload is not JSON: {error}"))
        failure.file = self._programs[event["chain"]].chain.file
        return failure

    def finish(self, instance: ChainInstance) -> None:
        name, result = instance.program.chain.name, instance.result
        self.stats.by_outcome[(name, result)] += 1
        self.sink.end_chain(instance.correlation_id, name, result, self.scheduler.now)

    def start(self, arrival: Arrival, number: int, rank: int, now: int) -> None:
        """Start instance `number` of the arrival's chain at `now` (`rank`: its number in the run).

        An instance depends only on (seed, chain, its number), its start time and what a scripted arrival
        sets for it, so shard i of n can skip the others' instances and the shards' events together are
        exactly those of one run.
        """
        name = arrival.chain
        instance = ChainInstance(self._programs[name], number, Random(f"{self._seed}:{name}:{number}"), self.shared,
                                 self.emit, self.clock, self.fakers, self.choose, self.finish, arrival.start)
        self.stats.started += 1
        first = instance.start(now)
        if first is not None:
            self.scheduler.schedule(first, instance, rank=rank)

    def stop(self) -> None:
        """End the run after the current event (from a signal handler, another thread or the event loop)."""
        self.scheduler.stop()
        if self.wall is not None:
            self.wall.wake()

    def run(self) -> Stats:
        """Run to the end (or until stop()) on the options' clock; the sink is flushed, not closed.

        A template that fails on the way raises TemplateRunError (where it is written); the events before it
        were handed to the sink.
        """
        with self._running():
            if self.wall is not None:
                self.wall.run(self.until, self._advance)
            else:
                run_virtual(self.scheduler, self.until, self._advance)
        return self.stats

    async def run_async(self) -> Stats:
        """`run` inside a running asyncio event loop: on the wall clock it awaits instead of sleeping and never
        holds the loop for more than a few milliseconds; on the virtual clock it runs at once."""
        with self._running():
            if self.wall is not None:
                await self.wall.run_async(self.until, self._advance)
            else:
                run_virtual(self.scheduler, self.until, self._advance)
        return self.stats

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        """Around a clock's loop: a failed template becomes a located error; the sink is flushed after."""
        try:
            yield
        except RenderError as error:
            raise self.template_error(error) from error.error
        finally:
            at = self.scheduler.peek()
            if at is not None and at > LAST_MS:
                self.stats.end_of_time = True
        self.sink.flush()

    def template_error(self, error: RenderError) -> TemplateRunError:
        return self.catalog.template_error(error)
