"""The scheduler: a heap of (time, rank, counter, process), public in two pieces: `peek()` says when the
next item is due, `step()` runs it. The clocks (engine/run/clocks.py) are short loops over the two.

Time is integer milliseconds since the epoch. At equal times, the lower rank comes first (a chain
instance's rank is its number in the run, so older chains go first and the order of two instances
never depends on what else runs: shards of a run merge back into the same order); the counter makes
items of equal time and rank come out first-in-first-out. A run is repeatable. A process is anything
with `resume(now) -> next time or None`: chain instances and the arrival process.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Protocol


class Process(Protocol):
    def resume(self, now: int) -> int | None: ...


class Scheduler:
    """The discrete-event heap; it never waits: when steps run is the clock's business."""

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

    def peek(self) -> int | None:
        """The time of the next item, or None when there is none (or the run was stopped)."""
        heap = self._heap
        return heap[0][0] if heap and not self._stopped else None

    def step(self) -> int | None:
        """Run the next item: its process emits what is due and is put back for its next time. Returns what
        peek() would now (a clock's loop needs no second call)."""
        heap = self._heap
        at, rank, _, process = heapq.heappop(heap)
        self.now, self.rank = at, rank
        following = process.resume(at)
        if following is not None:
            heapq.heappush(heap, (following, rank, next(self._counter), process))
        return heap[0][0] if heap and not self._stopped else None

    def advance(self, to: int) -> None:
        """Move simulated time forward to `to` without running anything (the end of a run's duration)."""
        self.now = max(self.now, to)

    def stop(self) -> None:
        """End the run after the current item; safe to call from a signal handler."""
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def __len__(self) -> int:
        return len(self._heap)
