"""A progress line on stderr while a long run goes, when stderr is a terminal (and not with --quiet).

    chainsim: 1,204,551 events  98,410/s  312 in flight  at 2026-01-01T03:20:11.402Z  41% of --count 500000

It is drawn by a thread of its own a few times a second from what the run counts anyway (its events, its
chains started, the scheduler's heap and clock), so the run's own loop does nothing for it, and it is erased
before the summary is printed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import IO, NamedTuple

from ..envelope.fields import format_timestamp
from ..run.options import RunOptions

EVERY_S = 0.25
_ERASE = "\r\x1b[K"


class Reading(NamedTuple):
    events: int
    started: int | None  # chains started (None: not known here)
    in_flight: int | None
    simulated_ms: int | None


class Progress:
    """Draws `read()` every EVERY_S seconds on `stream` while inside the `with`; nothing if it is no terminal."""

    def __init__(self, read: Callable[[], Reading], options: RunOptions, stream: IO[str],
                 enabled: bool = True) -> None:
        self.read, self.options, self.stream = read, options, stream
        self.enabled = enabled and _is_terminal(stream)
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._began = time.monotonic()
        self._drawn = False

    def __enter__(self) -> Progress:
        if self.enabled:
            self._began = time.monotonic()
            self._thread = threading.Thread(target=self._draw_until_done, name="chainsim-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._done.set()
            self._thread.join()
            if self._drawn:
                self.stream.write(_ERASE)
                self.stream.flush()

    def line(self, reading: Reading, seconds: float) -> str:
        options = self.options
        parts = [f"chainsim: {reading.events:,} events", f"{reading.events / max(seconds, 1e-9):,.0f}/s"]
        if reading.in_flight is not None:
            parts.append(f"{reading.in_flight:,} in flight")
        if reading.simulated_ms is not None:
            parts.append(f"at {format_timestamp(reading.simulated_ms)}")
        if options.count and reading.started is not None:
            parts.append(f"{100 * reading.started // options.count}% of --count {options.count}")
        elif options.duration_ms and reading.simulated_ms is not None:
            share = (reading.simulated_ms - options.start_ms) / options.duration_ms
            parts.append(f"{min(100, int(100 * share))}% of --duration")
        return "  ".join(parts)

    def _draw_until_done(self) -> None:
        while not self._done.wait(EVERY_S):
            text = self.line(self.read(), time.monotonic() - self._began)
            self.stream.write(_ERASE + text)
            self.stream.flush()
            self._drawn = True


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
