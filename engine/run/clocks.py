"""The clocks: short loops over the scheduler's `peek()` and `step()` that decide only *when* a step runs.

- `run_virtual`: at once, one after the other; a million events take only the CPU time they need.
- `WallClock.run`: each item when real time reaches it (`speed` times faster), sleeping in between.
- `WallClock.run_async`: the same inside a running asyncio event loop, awaiting instead of sleeping and
  handing the loop back every few milliseconds when it runs behind, so the loop stays responsive.

A paced run hands buffered events to the sink before it waits (`Flushing`), so they leave on time; a sink
whose flush is costly (a transaction) asks for `flush_every` seconds and is flushed at most that often.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .scheduler import Scheduler

if TYPE_CHECKING:
    import asyncio  # imported when a run uses it: it costs the command's start-up 18 ms

SLICE = 0.05  # seconds: the longest sleep, so a stop (a signal handler sets a flag) is prompt
FLUSH_EVERY = 0.001  # seconds: the longest a late event waits in the sink's buffer
YIELD_EVERY = 0.002  # seconds: the longest the asyncio clock keeps the event loop while it runs behind


def run_virtual(scheduler: Scheduler, until: int | None = None, advance: bool = True) -> None:
    """Run every item due up to `until` (ms; None: until none is left) at once, in order; then, with
    `advance`, move simulated time on to `until`."""
    step = scheduler.step
    at = scheduler.peek()
    while at is not None and (until is None or at <= until):
        at = step()
    if advance and until is not None and not scheduler.stopped:
        scheduler.advance(until)


class Flushing:
    """When a paced run hands what the sink buffers to its destination.

    Before every wait (events leave on time), and every FLUSH_EVERY while running behind (or they would sit
    in the buffer for as long as the run stays behind). A sink with `flush_every` (seconds) is flushed at
    most that often, and a written event never waits longer than that for its flush.
    """

    def __init__(self, sink: Any, now: float) -> None:
        self.flush_until: Callable[[int], None] = sink.flush_until
        self.every = float(sink.flush_every)
        self.behind_every = max(FLUSH_EVERY, self.every)
        self.flushed = now

    def behind(self, now: float, simulated: int) -> None:
        if now - self.flushed >= self.behind_every:
            self.flush_until(simulated)
            self.flushed = now

    def before_wait(self, now: float, wakes: float, at: int) -> bool:
        """Flush unless the next flush is due after this wait anyway; True if it flushed."""
        if wakes >= self.flushed + self.every:
            self.flush_until(at)
            return True
        return False


class WallClock:
    """The scheduler paced by the wall clock: the item due at simulated `at` runs when real time reaches it.

    `origin` is the epoch second at which the scheduler's start time happens (processes that share a run
    agree on it); None: now.
    """

    def __init__(self, scheduler: Scheduler, sink: Any, speed: float = 1.0, origin: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if not speed > 0:
            raise ValueError("speed must be above 0")
        self.scheduler, self.speed = scheduler, speed
        self._monotonic, self._sleep = monotonic, sleep
        self._origin = monotonic() + (0.0 if origin is None else origin - time.time())
        self.flushing = Flushing(sink, self._origin)
        self._waiter: asyncio.Future[None] | None = None

    def due(self, at: int) -> float:
        """The monotonic time at which simulated time `at` is reached."""
        return self._origin + (at - self.scheduler.start_ms) / 1000.0 / self.speed

    def run(self, until: int | None = None, advance: bool = True) -> None:
        """Run to `until` (ms; None: until no item is left) or a stop, sleeping until each item is due."""
        scheduler, monotonic, flushing = self.scheduler, self._monotonic, self.flushing
        peek, step = scheduler.peek, scheduler.step
        while (at := peek()) is not None and (until is None or at <= until):
            now = monotonic()
            delay = self.due(at) - now
            if delay > 0:
                flushed = flushing.before_wait(now, now + delay, at)
                while delay > 0 and not scheduler.stopped:
                    self._sleep(min(delay, SLICE))
                    delay = self.due(at) - monotonic()
                if flushed:
                    flushing.flushed = monotonic()
                continue  # peek again: a stop may have come while it slept
            flushing.behind(now, scheduler.now)
            step()
        if advance and until is not None and not scheduler.stopped:
            scheduler.advance(until)

    async def run_async(self, until: int | None = None, advance: bool = True) -> None:
        """`run` inside a running event loop: await until each item is due; never block the loop for long."""
        import asyncio

        scheduler, monotonic, flushing = self.scheduler, self._monotonic, self.flushing
        peek, step = scheduler.peek, scheduler.step
        loop = asyncio.get_running_loop()
        held = monotonic()  # since when this loop has kept the event loop
        while (at := peek()) is not None and (until is None or at <= until):
            now = monotonic()
            delay = self.due(at) - now
            if delay > 0:
                flushed = flushing.before_wait(now, now + delay, at)
                await self._wait(loop, delay)
                if flushed:
                    flushing.flushed = monotonic()
                held = monotonic()
                continue
            flushing.behind(now, scheduler.now)
            if now - held >= YIELD_EVERY:
                # A timer, not sleep(0): the loop runs timers that fell due meanwhile before ours (it orders
                # them by time), where sleep(0) would put this loop first again in the next round.
                await self._wait(loop, 0.0)
                held = monotonic()
                continue
            step()
        if advance and until is not None and not scheduler.stopped:
            scheduler.advance(until)

    async def _wait(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self._waiter = waiter = loop.create_future()
        handle = loop.call_later(delay, _wake, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiter = None

    def wake(self) -> None:
        """End a wait now (after a stop): from the event loop's thread, or any thread."""
        waiter = self._waiter
        if waiter is None:
            return
        import asyncio

        loop = waiter.get_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            _wake(waiter)
        else:
            loop.call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
