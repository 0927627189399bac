"""Arrivals as a plug: a run is given any arrival process; numbering, --count and sharding wrap it."""

from __future__ import annotations

from engine import RunOptions, Simulation
from engine.envelope import NATIVE
from engine.run.arrivals import Arrival, ArrivalProcess, ChainMix, Steady, shard
from engine.sinks.memory import ListSink

from .conftest import START_MS

TWO_CHAINS = {
    "a.yaml": "name: a\nsteps: [{id: x, event_type: a.x}, {id: y, delay: 10, event_type: a.y}]\n",
    "b.yaml": "name: b\nsteps: [{id: x, event_type: b.x}]\n",
}


class Script:
    """A scripted arrival process: these chains at these times."""

    def __init__(self, starts: list[tuple[float, str]]) -> None:
        self.starts = list(starts)

    def next(self) -> Arrival | None:
        return Arrival(*self.starts.pop(0)) if self.starts else None


def _events(catalog, arrivals, **options) -> list[dict]:
    sink = ListSink()
    Simulation(catalog, RunOptions(seed=1, start_ms=START_MS, **options), sink, arrivals=arrivals).run()
    return sink.events


def test_a_run_starts_the_chains_its_arrival_process_gives(catalog_of):
    """A scripted process: b at +0 ms, a at +5 ms, b at +5 ms; the run starts exactly those, in that order."""
    catalog = catalog_of(TWO_CHAINS)
    events = _events(catalog, Script([(START_MS, "b"), (START_MS + 5, "a"), (START_MS + 5, "b")]), count=None,
                     duration_ms=1000)
    assert [("b.x", 0), ("a.x", 5), ("b.x", 5), ("a.y", 15)] == [
        (e["event_type"], int(e["timestamp"][20:23])) for e in events]


def test_count_limits_any_arrival_process(catalog_of):
    """--count takes the first N arrivals of the plugged process."""
    catalog = catalog_of(TWO_CHAINS)
    events = _events(catalog, Script([(START_MS + i, "b") for i in range(10)]), count=3)
    assert 3 == len(events)


def test_shards_of_a_plugged_process_together_are_the_whole_run(catalog_of):
    """Sharding wraps any process: shards 0/3, 1/3 and 2/3 of a scripted run write, together, its events."""
    catalog = catalog_of(TWO_CHAINS)
    starts = [(START_MS + 3 * i, "ab"[i % 2]) for i in range(30)]
    whole = _events(catalog, Script(starts), duration_ms=10_000)
    parts = [e for i in range(3) for e in _events(catalog, Script(starts), duration_ms=10_000, shard=(i, 3))]
    key = lambda e: (e["timestamp"], e["event_id"])  # noqa: E731
    assert sorted(map(NATIVE.encode, whole)) == sorted(map(NATIVE.encode, parts))
    assert sorted(whole, key=key) == sorted(parts, key=key)


def test_the_arrival_process_numbers_arrivals_it_does_not_own():
    """Another shard's arrivals are numbered (instance numbers as in one process) but not started."""
    started: list[tuple[str, int, int]] = []
    process = ArrivalProcess(Script([(0, "a"), (0, "b"), (1, "a"), (2, "a")]), shard(1, 2),
                             lambda arrival, number, rank, now: started.append((arrival.chain, number, rank)))
    now = process.first()
    while now is not None:
        now = process.resume(now)
    assert [("b", 0, 1), ("a", 2, 3)] == started


def test_steady_arrivals_start_a_burst_then_keep_their_interval():
    """Steady: `initial` arrivals at the start, then one per interval."""
    import random

    steady = Steady(ChainMix([("a", 1.0)]), random.Random(1), 1000, interval_ms=250.0, initial=2)
    assert [1000.0, 1000.0, 1250.0, 1500.0] == [steady.next().at for _ in range(4)]
