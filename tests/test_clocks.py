"""The clocks over the scheduler: the wall clock waits until items are due and flushes the sink before it
waits; the asyncio clock does the same inside an event loop without blocking it."""

from __future__ import annotations

import asyncio
import time

from engine.run.clocks import WallClock
from engine.run.scheduler import Scheduler
from engine.sinks import SinkBase

from .conftest import LagProbe
from .test_scheduler import Ticker


class Flushes(SinkBase):
    """A sink that notes each flush_until: (items run so far, the time waited for)."""

    def __init__(self, log: list, flush_every: float = 0.0, clock: list | None = None) -> None:
        self.log, self.flushes, self.flush_every, self.clock = log, [], flush_every, clock

    def write(self, event: dict, line: bytes) -> None:
        pass

    def flush_until(self, at: int) -> None:
        self.flushes.append(self.clock[0] if self.clock else (len(self.log), at))


def test_the_wall_clock_waits_until_items_are_due():
    """Simulated 200 ms at speed 2 take about 100 ms of real time, and the sink is flushed before each wait."""
    log: list = []
    sink = Flushes(log)
    scheduler = Scheduler(1000)
    scheduler.schedule(1000, Ticker("t", [100, 100], log))
    began = time.monotonic()
    WallClock(scheduler, sink, speed=2.0).run()
    elapsed = time.monotonic() - began
    assert [1000, 1100, 1200] == [t for t, _ in log]
    assert 0.095 <= elapsed < 0.6
    assert [(1, 1100), (2, 1200)] == sink.flushes  # told which item it waits for


def test_the_wall_clock_runs_late_items_at_once():
    """An item already due does not wait (a late run catches up instead of sleeping)."""
    fake_now = [100.0]
    scheduler = Scheduler(0)
    clock = WallClock(scheduler, Flushes([]), monotonic=lambda: fake_now[0], sleep=lambda s: None)
    fake_now[0] = 105.0  # five seconds later: everything up to 5000 ms is due
    log: list = []
    scheduler.schedule(0, Ticker("t", [1000] * 4, log))
    clock.run()
    assert [0, 1000, 2000, 3000, 4000] == [t for t, _ in log]


def _flush_times(flush_every: float) -> tuple[list[float], list[float]]:
    """(wall times items ran at, wall times of the flushes) for an item every 10 ms for one second,
    on a fake clock that sleeping moves forward."""
    clock = [50.0]
    log: list = []
    sink = Flushes(log, flush_every, clock)
    scheduler = Scheduler(0)
    wall = WallClock(scheduler, sink, monotonic=lambda: clock[0],
                     sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    scheduler.schedule(0, Ticker("t", [10] * 100, log))
    wall.run()
    sink.flushes.append(clock[0])  # Simulation.run flushes the sink when the clock is done
    return [50.0 + t / 1000 for t, _ in log], sink.flushes


def test_by_default_the_sink_is_flushed_before_every_wait():
    """With flush_every 0, a paced run flushes before each of its 100 waits (and once at the end)."""
    ran, flushes = _flush_times(0.0)
    assert 101 == len(flushes)


def test_a_sink_with_flush_every_is_flushed_that_often_and_no_event_waits_longer():
    """flush_every=0.1 (the PostgreSQL sink: one transaction per flush): about 10 flushes in one second
    instead of 100, and every item is followed by a flush within 0.1 s."""
    ran, flushes = _flush_times(0.1)
    assert 9 <= len(flushes) <= 12
    for moment in ran:
        assert any(moment <= flush <= moment + 0.1 + 1e-9 for flush in flushes), moment


def test_the_asyncio_clock_waits_without_blocking_the_loop():
    """Inside an event loop, 200 simulated ms at speed 2 take about 100 ms while another task keeps ticking."""
    log: list = []
    ticks: list[float] = []

    async def main() -> float:
        scheduler = Scheduler(1000)
        scheduler.schedule(1000, Ticker("t", [100, 100], log))

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        other = asyncio.create_task(ticker())
        began = time.monotonic()
        await WallClock(scheduler, Flushes(log), speed=2.0).run_async()
        elapsed = time.monotonic() - began
        other.cancel()
        return elapsed

    elapsed = asyncio.run(main())
    assert [1000, 1100, 1200] == [t for t, _ in log]
    assert 0.095 <= elapsed < 0.6
    assert len(ticks) >= 5  # the loop ran the other task while the clock waited


def test_the_asyncio_clock_running_behind_still_hands_the_loop_back():
    """A run far behind (all due at once) yields to the loop every few milliseconds: another task's sleep of
    1 ms is never held up for long."""
    probe = LagProbe()

    class Busy:
        def resume(self, now: int) -> int | None:
            end = time.perf_counter() + 0.0002  # 0.2 ms of work per item
            while time.perf_counter() < end:
                pass
            return now + 1 if now < 2000 else None  # 2,000 items, all due at once (speed is huge)

    async def main() -> None:
        scheduler = Scheduler(0)
        scheduler.schedule(0, Busy())

        task = asyncio.create_task(probe.run())
        await WallClock(scheduler, Flushes([]), speed=1e9).run_async()
        task.cancel()

    asyncio.run(main())
    assert len(probe.lags) >= 20
    assert sorted(probe.lags)[len(probe.lags) // 2] < 0.01  # the median: a shared machine can stall anyone


def test_a_stop_ends_an_asyncio_wait_at_once():
    """stop() and wake() end the clock's wait for an item due in an hour."""
    async def main() -> float:
        scheduler = Scheduler(0)
        scheduler.schedule(3_600_000, Ticker("t", [], []))
        wall = WallClock(scheduler, Flushes([]))
        loop = asyncio.get_running_loop()

        def stop() -> None:
            scheduler.stop()
            wall.wake()

        loop.call_later(0.05, stop)
        began = time.monotonic()
        await wall.run_async()
        return time.monotonic() - began

    assert asyncio.run(main()) < 1.0
