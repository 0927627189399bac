"""The scheduler: a heap of (time, rank, counter, process) and a loop that pops it in order.

Time is integer milliseconds since the epoch. At equal times, the lower rank comes first (a chain
instance's rank is its number in the run, so older chains go first and the order of two instances
never depends on what else runs: shards of a run merge back into the same order); the counter makes
items of equal time and rank come out first-in-first-out. A run is repeatable. A process is anything
with `resume(now) -> next time or None`: chain instances and the arrival process.

`Scheduler` runs on a virtual clock: it never sleeps, so a million events take only the CPU time they
need. `WallClockScheduler` changes only *when* the next item runs: it waits until the item is due
(`speed` times faster than real time), flushing the sink before it waits so events leave on time (or,
for a sink that asks for `flush_every` seconds, only when the next flush would otherwise come later).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

_SLICE = 0.05  # seconds
FLUSH_EVERY = 0.001  # seconds: the longest a late event waits in the sink's buffer


class Process(Protocol):
    def resume(self, now: int) -> int | None: ...


class Scheduler:
    """Discrete-event loop on a virtual clock."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.now = start_ms
        self.rank = 0  # rank of the item running now
        self._heap: list[tuple[int, int, int, Process]] = []
        self._counter = itertools.count()
        self._stopped = False

    def schedule(self, at: int, process: Process, rank: int = 0) -> None:
        """Resume `process` at time `at` (never before now); `rank` orders items due at the same time."""
        heapq.heappush(self._heap, (max(at, self.now), rank, next(self._counter), process))

    def stop(self) -> None:
        """Ask the loop to end after the current item; safe to call from a signal handler."""
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def run(self, until: int | None = None) -> None:
        """Run until the heap is empty, `until` (ms) is passed, or stop() is called."""
        heap, pop, push, counter = self._heap, heapq.heappop, heapq.heappush, self._counter
        wait = self._wait
        while heap and not self._stopped:
            at, rank, _, process = heap[0]
            if until is not None and at > until:
                break
            if not wait(at):
                break
            pop(heap)
            self.now, self.rank = at, rank
            following = process.resume(at)
            if following is not None:
                push(heap, (following, rank, next(counter), process))
        if until is not None and not self._stopped and (not heap or heap[0][0] > until):
            self.now = max(self.now, until)

    def _wait(self, at: int) -> bool:
        """Hook for clocks that wait; True when the item may run now."""
        return True


class WallClockScheduler(Scheduler):
    """The same loop, paced by the wall clock: the item due at `at` runs when real time reaches it."""

    def __init__(self, start_ms: int, speed: float = 1.0, before_wait: Callable[[int], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic, origin: float | None = None,
                 flush_every: float = 0.0) -> None:
        super().__init__(start_ms)
        if speed <= 0:
            raise ValueError("speed must be above 0")
        self.speed = speed
        self._before_wait = before_wait or (lambda at: None)  # told the time of the item it waits for
        # The sink's wish (seconds): flushes at most this often, and a written event flushed at most this
        # late. 0: before every wait (events leave on time), and every FLUSH_EVERY while running behind.
        self.flush_every = flush_every
        self._behind_every = max(FLUSH_EVERY, flush_every)
        self._monotonic = monotonic
        # start_ms happens now, or at the wall time `origin` (epoch seconds: processes that share a run).
        self._origin = monotonic() + (0.0 if origin is None else origin - time.time())
        self._flushed = self._origin

    def due(self, at: int) -> float:
        """The monotonic time at which simulated time `at` is reached."""
        return self._origin + (at - self.start_ms) / 1000.0 / self.speed

    def _wait(self, at: int) -> bool:
        now = self._monotonic()
        delay = self.due(at) - now
        if delay <= 0:
            # Running behind: events are due already. Still hand them on at least every FLUSH_EVERY, or
            # they would sit in the sink's buffer for as long as the engine stays behind.
            if now - self._flushed >= self._behind_every:
                self._before_wait(self.now)
                self._flushed = now
            return True
        flush = now + delay >= self._flushed + self.flush_every  # else: awake again before it is due
        if flush:
            self._before_wait(at)
        while delay > 0:
            # Sleep in short slices: a signal handler can only set a flag, and stop must be prompt.
            time.sleep(min(delay, _SLICE))
            if self._stopped:
                return False
            delay = self.due(at) - self._monotonic()
        if flush:
            self._flushed = self._monotonic()
        return True
