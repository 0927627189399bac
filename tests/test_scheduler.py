"""The scheduler: order, first-in-first-out at equal times, stop, and the wall-clock variant."""

from __future__ import annotations

import time

from engine.scheduler import Scheduler, WallClockScheduler


class Ticker:
    """A process that logs each resume and comes back `gaps` later, until they run out."""

    def __init__(self, name: str, gaps: list[int], log: list) -> None:
        self.name, self.gaps, self.log = name, list(gaps), log

    def resume(self, now: int) -> int | None:
        self.log.append((now, self.name))
        return now + self.gaps.pop(0) if self.gaps else None


def test_processes_run_in_time_order():
    """Items come out by time, whatever order they were scheduled in."""
    log: list = []
    scheduler = Scheduler(0)
    scheduler.schedule(30, Ticker("late", [], log))
    scheduler.schedule(10, Ticker("early", [5, 100], log))
    scheduler.run()
    assert [(10, "early"), (15, "early"), (30, "late"), (115, "early")] == log


def test_equal_times_are_first_in_first_out():
    """Items due at the same time run in the order they were scheduled, so runs repeat."""
    log: list = []
    scheduler = Scheduler(0)
    for name in "abcde":
        scheduler.schedule(7, Ticker(name, [], log))
    scheduler.run()
    assert [(7, n) for n in "abcde"] == log


def test_run_until_stops_at_the_limit_and_can_go_on():
    """run(until) leaves later items in the heap; a second run continues from there."""
    log: list = []
    scheduler = Scheduler(0)
    scheduler.schedule(0, Ticker("t", [10] * 5, log))
    scheduler.run(until=25)
    assert [0, 10, 20] == [t for t, _ in log]
    assert 25 == scheduler.now
    scheduler.run()
    assert [0, 10, 20, 30, 40, 50] == [t for t, _ in log]


def test_stop_ends_the_loop_after_the_current_item():
    """stop() (as a signal handler calls it) ends the run; nothing after it runs."""
    log: list = []
    scheduler = Scheduler(0)

    class Stopper:
        def resume(self, now: int) -> int | None:
            scheduler.stop()
            return None

    scheduler.schedule(5, Ticker("t", [10] * 5, log))
    scheduler.schedule(6, Stopper())
    scheduler.run()
    assert [(5, "t")] == log
    assert scheduler.stopped


def test_the_wall_clock_waits_until_items_are_due():
    """Simulated 200 ms at speed 2 take about 100 ms of real time, and before_wait runs before sleeping."""
    log: list = []
    flushes: list = []
    scheduler = WallClockScheduler(1000, speed=2.0, before_wait=lambda at: flushes.append((len(log), at)))
    scheduler.schedule(1000, Ticker("t", [100, 100], log))
    began = time.monotonic()
    scheduler.run()
    elapsed = time.monotonic() - began
    assert [1000, 1100, 1200] == [t for t, _ in log]
    assert 0.095 <= elapsed < 0.6
    assert [(1, 1100), (2, 1200)] == flushes  # told which item it waits for


def test_the_wall_clock_runs_late_items_at_once():
    """An item already due does not wait (a late scheduler catches up instead of sleeping)."""
    fake_now = [100.0]
    scheduler = WallClockScheduler(0, monotonic=lambda: fake_now[0])
    fake_now[0] = 105.0  # five seconds later: everything up to 5000 ms is due
    log: list = []
    scheduler.schedule(0, Ticker("t", [1000] * 4, log))
    scheduler.run()
    assert [0, 1000, 2000, 3000, 4000] == [t for t, _ in log]


def _flush_times(monkeypatch, flush_every: float) -> tuple[list[float], list[float]]:
    """(wall times items ran at, wall times of the flushes) for an item every 10 ms for one second,
    on a fake clock that sleeping moves forward."""
    clock = [50.0]
    monkeypatch.setattr(time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    flushes: list[float] = []
    scheduler = WallClockScheduler(0, before_wait=lambda at: flushes.append(clock[0]), monotonic=lambda: clock[0],
                                   flush_every=flush_every)
    log: list = []
    scheduler.schedule(0, Ticker("t", [10] * 100, log))
    scheduler.run()
    flushes.append(clock[0])  # Simulation.run flushes the sink when the scheduler is done
    return [50.0 + t / 1000 for t, _ in log], flushes


def test_by_default_the_sink_is_flushed_before_every_wait(monkeypatch):
    ran, flushes = _flush_times(monkeypatch, 0.0)
    assert 101 == len(flushes)


def test_a_sink_with_flush_every_is_flushed_that_often_and_no_event_waits_longer(monkeypatch):
    """flush_every=0.1 (the PostgreSQL sink: one transaction per flush): about 10 flushes in one second
    instead of 100, and every item is followed by a flush within 0.1 s."""
    ran, flushes = _flush_times(monkeypatch, 0.1)
    assert 9 <= len(flushes) <= 12
    for moment in ran:
        assert any(moment <= flush <= moment + 0.1 + 1e-9 for flush in flushes), moment
