"""`LiveGenerator`: a catalog run on the wall clock inside a running asyncio event loop, started and stopped
at will (what the seed's `eventBusMockGenerator.start({continuous, interval_ms, initialChains})` / `stop()` did).

    generator = LiveGenerator("chains/", callback=print)
    await generator.start(continuous=True, interval_ms=5000, initial_chains=20)
    async for event in generator.events():     # or a sink / callback of your own
        ...
    await generator.stop()

The run awaits between events (engine/run/clocks.py: WallClock.run_async), so the event loop stays free; it
never sleeps on the loop's thread. Each start is a new run: the first with the seed given, the k-th with
seed + k, so a restarted generator does not repeat the event ids of the one before.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import UsageError
from ..sinks import Sink, SinkBase
from ..sinks.fanout import fan_out
from ..sinks.memory import CallbackSink
from .options import RunOptions, Stats
from .settings import Settings, resolve

if TYPE_CHECKING:
    from ..load.catalog import Catalog
    from ..scenarios.apply import Applied
    from .simulation import Simulation

SUBSCRIBER_QUEUE = 10_000  # events an `events()` reader may fall behind by before it loses the oldest


class _Subscribers(SinkBase):
    """Hands a copy of each event to every `events()` iterator (bounded: a slow reader loses the oldest)."""

    def __init__(self) -> None:
        self.queues: list[_Subscription] = []

    def write(self, event: dict[str, Any], line: bytes) -> None:
        if self.queues:
            copy = orjson.loads(line)
            for queue in self.queues:
                queue.put(copy)


class _Subscription:
    def __init__(self, size: int) -> None:
        self.items: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)
        self.ready = asyncio.Event()
        self.dropped = 0

    def put(self, item: dict[str, Any]) -> None:
        if len(self.items) == self.items.maxlen:
            self.dropped += 1
        self.items.append(item)
        self.ready.set()


class LiveGenerator:
    """Runs a catalog (or a scenario) on the wall clock in the running event loop, between start() and stop().

    `chains`: a catalog folder or a loaded Catalog; `scenario`: a scenario file applied to it; `sink`: a Sink
    of the caller's (SinkBase subclasses are), `callback`: a function given a copy of each event. Settings
    given to the constructor apply to every start; start()'s own arguments to that run.
    """

    def __init__(self, chains: str | Path | Catalog = "chains", *, sink: Sink | None = None,
                 callback: Callable[[dict[str, Any]], Any] | None = None, scenario: str | Path | None = None,
                 seed: int | None = None, speed: float | None = None, only: tuple[str, ...] = ()) -> None:
        from ..load.catalog import Catalog, load_catalog

        self.catalog = chains if isinstance(chains, Catalog) else load_catalog(chains)
        self.applied: Applied | None = None
        if scenario is not None:
            from ..scenarios.load import load_scenario

            self.applied = load_scenario(scenario, self.catalog)
        self.seed, self.speed, self.only = seed, speed, tuple(only)
        self._subscribers = _Subscribers()
        sinks: list[Sink] = [self._subscribers]
        if sink is not None:
            sinks.append(sink)
        if callback is not None:
            sinks.append(CallbackSink(callback))
        self.sink = fan_out(sinks)
        self.simulation: Simulation | None = None
        self.options: RunOptions | None = None
        self.since: float | None = None  # epoch seconds the running (or last) run started at
        self.starts = 0
        self.totals = Stats()  # what every run so far generated, this one included once it ends
        self._task: asyncio.Task[Stats] | None = None
        self.error: BaseException | None = None  # what ended the last run, if it failed

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def stats(self) -> Stats:
        """The running (or last) run's figures."""
        return self.simulation.stats if self.simulation is not None else Stats()

    def next_due(self) -> float:
        """The `time.monotonic()` at which the run's next step is due (now or earlier: it is behind); infinity
        when nothing is (not running, or nothing scheduled). Others on the loop (the server's stream senders)
        let the generator go first while it is due."""
        simulation = self.simulation
        if simulation is None or simulation.wall is None or not self.running:
            return math.inf
        at = simulation.scheduler.peek()
        return math.inf if at is None else simulation.wall.due(at)

    def generated(self) -> dict[str, int]:
        """Events and chains generated by every run so far."""
        current = self.stats if self.running else Stats()
        return {"events": self.totals.events + current.events, "chains": self.totals.started + current.started}

    async def start(self, continuous: bool = True, interval_ms: float | None = None,
                    initial_chains: int | None = None, *, rate: float | str | None = None,
                    shape: dict[str, Any] | None = None, count: int | None = None,
                    duration_ms: float | None = None, speed: float | None = None,
                    start: str | int | None = None) -> RunOptions:
        """Begin a run now: `initial_chains` at once, then (if `continuous`) one chain every `interval_ms`, or
        at `rate`, or along `shape`, until stop() (or its count or duration). `continuous=False` runs only the
        initial chains. Without any, the seed's development mode: 20 at once, then one every 5 s. UsageError
        when already running or when the settings do not fit together."""
        if self.running:
            raise UsageError("the generator is already running: stop it first")
        options = self._options(continuous, interval_ms, initial_chains, rate, shape, count, duration_ms, speed,
                                start)
        from ..scenarios.run import simulation as scenario_simulation
        from .simulation import Simulation

        if self.applied is not None:
            self.simulation = scenario_simulation(self.applied, options, self.sink)
        else:
            self.simulation = Simulation(self.catalog, options, self.sink)
        self.options, self.since, self.error = options, time.time(), None
        self.starts += 1
        self._task = asyncio.get_running_loop().create_task(self._run(self.simulation))
        return options

    def _options(self, continuous: bool, interval_ms: float | None, initial: int | None, rate: float | str | None,
                 shape: dict[str, Any] | None, count: int | None, duration_ms: float | None,
                 speed: float | None, start: str | int | None) -> RunOptions:
        import attrs

        if not continuous:
            if initial is None:
                initial = 20
            count, interval_ms, rate, shape = initial, None, None, None
        seed = None if self.seed is None else self.seed + self.starts
        given = Settings(seed=seed, start=start, count=count, duration_ms=duration_ms, rate=rate,
                         interval_ms=interval_ms, shape=shape, initial=initial, realtime=True,
                         speed=speed if speed is not None else self.speed, only=self.only)
        scenario_run = self.applied.run if self.applied is not None else None
        options = resolve(given, scenario_run, bool(self.applied and self.applied.starts), development=True,
                          prefix="")
        if start is None and (scenario_run is None or "start" not in scenario_run):
            now_ms = int(time.time() * 1000)  # timestamps are the wall time the events leave at
            options = attrs.evolve(options, start_ms=now_ms, wall_origin=now_ms / 1000)
        return options

    async def _run(self, simulation: Simulation) -> Stats:
        try:
            return await simulation.run_async()
        except Exception as error:  # kept for the caller (stop() raises it); the loop goes on
            self.error = error
            return simulation.stats
        finally:
            self._add(simulation.stats)
            for subscription in self._subscribers.queues:
                subscription.ready.set()  # readers wake, find the run over and end

    def _add(self, stats: Stats) -> None:
        totals = self.totals
        totals.events += stats.events
        totals.started += stats.started
        totals.by_type.update(stats.by_type)
        totals.by_outcome.update(stats.by_outcome)
        totals.faults.update(stats.faults)

    async def stop(self) -> Stats | None:
        """End the run after the current event and wait for it; its figures (None if none was running).
        Raises what made the run fail, if it failed."""
        task, simulation = self._task, self.simulation
        if task is None or simulation is None:
            return None
        simulation.stop()
        stats = await task
        self._task = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return stats

    async def wait(self) -> Stats | None:
        """Wait until the run ends by itself (its count or duration)."""
        if self._task is None:
            return None
        return await asyncio.shield(self._task)

    async def events(self, queue: int = SUBSCRIBER_QUEUE) -> AsyncIterator[dict[str, Any]]:
        """Each event generated from now on, a copy of its own, until the iterator is closed; a reader more
        than `queue` events behind loses the oldest (`dropped` counts them). Ends when a run ends."""
        subscription = _Subscription(queue)
        self._subscribers.queues.append(subscription)
        try:
            while True:
                while subscription.items:
                    yield subscription.items.popleft()
                if not self.running:
                    return
                subscription.ready.clear()
                await subscription.ready.wait()
        finally:
            self._subscribers.queues.remove(subscription)
