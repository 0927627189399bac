"""What a chainsim process does to its interpreter, and only a process (the command and its `--workers`
workers), never the library: signals that stop a run, Python's cycle collector, a stdout whose reader went away.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stopping_on_signals(stop: Callable[[], None], once: bool = True) -> Iterator[None]:
    """While inside: SIGINT and SIGTERM call `stop()`; with `once`, a second one stops at once, the system's way
    (no traceback). The handlers before are restored on the way out."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def on_signal(number: int, frame: Any) -> None:
        stop()
        if once:
            for sig in previous:
                signal.signal(sig, signal.SIG_DFL)

    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def settle_memory() -> None:
    """Before a run: fewer, shorter pauses of Python's cycle collector (`gc`), which is on from here (the
    command keeps it off while it starts: `engine.cli.console`).

    Everything loaded so far (modules, Faker's tables, the compiled chains) lives for the whole run:
    gc.freeze() moves it out of the collector's sight, so a full collection no longer scans it (36 ms
    pauses seen here, which a wall-clock run shows as lateness). Events are short-lived dicts and tuples
    that CPython recycles through free lists, which the collector still counts as new objects: at the
    default threshold of 700 it ran every ~200 events. Chain instances hold no reference cycles (they
    are freed as soon as they end), so collecting every 50,000 allocations only delays rare garbage.
    What loading left as cyclic garbage (about half a MiB) is frozen with the rest instead of collected: a
    full collection here would add 20-40 ms to the start of every run, for memory that stays the same
    whatever the run's length.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    gc.enable()


def silence_stdout() -> None:
    """The reader went away (`| head`): stop writing, and keep Python quiet about stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
