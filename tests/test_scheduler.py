"""The scheduler: order, first-in-first-out at equal times, peek and step, stop."""

from __future__ import annotations

from engine.run.clocks import run_virtual
from engine.run.scheduler import Scheduler


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
    run_virtual(scheduler)
    assert [(10, "early"), (15, "early"), (30, "late"), (115, "early")] == log


def test_equal_times_are_first_in_first_out():
    """Items due at the same time run in the order they were scheduled, so runs repeat."""
    log: list = []
    scheduler = Scheduler(0)
    for name in "abcde":
        scheduler.schedule(7, Ticker(name, [], log))
    run_virtual(scheduler)
    assert [(7, n) for n in "abcde"] == log


def test_run_until_stops_at_the_limit_and_can_go_on():
    """run(until) leaves later items in the heap; a second run continues from there."""
    log: list = []
    scheduler = Scheduler(0)
    scheduler.schedule(0, Ticker("t", [10] * 5, log))
    run_virtual(scheduler, until=25)
    assert [0, 10, 20] == [t for t, _ in log]
    assert 25 == scheduler.now
    run_virtual(scheduler)
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
    run_virtual(scheduler)
    assert [(5, "t")] == log
    assert scheduler.stopped


def test_peek_says_when_the_next_item_is_due_and_step_runs_it():
    """peek() is the time of the next item (None when there is none); step() runs exactly that one."""
    log: list = []
    scheduler = Scheduler(0)
    assert scheduler.peek() is None
    scheduler.schedule(20, Ticker("b", [], log))
    scheduler.schedule(10, Ticker("a", [30], log))
    assert 10 == scheduler.peek()
    scheduler.step()
    assert ([(10, "a")], 20, 10) == (log, scheduler.peek(), scheduler.now)
    scheduler.step()
    scheduler.step()
    assert ([(10, "a"), (20, "b"), (40, "a")], None) == (log, scheduler.peek())


def test_a_stopped_scheduler_has_nothing_due():
    """After stop(), peek() is None, so every clock ends its loop."""
    scheduler = Scheduler(0)
    scheduler.schedule(5, Ticker("t", [], []))
    scheduler.stop()
    assert (None, 1) == (scheduler.peek(), len(scheduler))
