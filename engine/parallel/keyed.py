"""What a `--workers` worker writes on stdout: each event's line behind its scheduler key.

A key is the scheduler's (time, rank) of the event as fixed-width digits that sort as bytes: 15 digits of
simulated milliseconds since the run's start (the whole span of RFC 3339 years fits), then 10 digits of
rank + 1. A watermark is a key of rank 0 and no line: nothing the worker writes later sorts before it. A
stop mark is a key and `!`: the worker's run failed at the event of that key, which was not written.
The counts of a worker go to stderr as one `chainsim-stats {json}` line.
"""

from __future__ import annotations

import operator
from typing import IO, Any

import orjson

from ..run.options import Stats
from ..run.scheduler import Scheduler
from ..sinks import SinkBase

TIME_DIGITS, RANK_DIGITS = 15, 10
KEY_BYTES = TIME_DIGITS + RANK_DIGITS
KEY = operator.itemgetter(slice(0, KEY_BYTES))
UNKEYED = operator.itemgetter(slice(KEY_BYTES, None))
STOP = b"!"  # after a key: the worker's run failed there
STOP_BYTES = KEY_BYTES + 1  # a stop mark read: its key and STOP (a watermark read is its key alone)
LAST = b"9" * KEY_BYTES  # the frontier of a worker that has finished
STATS_PREFIX = "chainsim-stats "
BUFFER_BYTES = 256 * 1024  # a few chunks fit in the pipe; fewer, larger reads cost the merging parent less


KEY_FORMAT = b"%015d%010d"  # TIME_DIGITS, RANK_DIGITS


def key(elapsed_ms: int, rank: int) -> bytes:
    """The key of an event (rank >= 1) or a watermark (rank 0) at `elapsed_ms` after the run's start."""
    return KEY_FORMAT % (elapsed_ms, rank)


class KeyedSink(SinkBase):
    """A worker's output: each line behind the scheduler's (time, rank + 1) of its event, in chunks."""

    needs_event = False

    def __init__(self, stream: IO[bytes], scheduler: Scheduler | None = None) -> None:
        self.stream, self.scheduler = stream, scheduler
        self._chunks: list[bytes] = []
        self._size = 0

    def write(self, event: dict[str, Any], line: bytes) -> None:
        scheduler, chunks = self.scheduler, self._chunks
        assert scheduler is not None
        chunks.append(KEY_FORMAT % (scheduler.now - scheduler.start_ms, scheduler.rank + 1))  # key(), inlined
        chunks.append(line)  # not copied behind its key: the flush joins them
        self._size += len(line)
        if self._size >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        assert self.scheduler is not None
        self.flush_until(self.scheduler.now)

    def ready(self) -> None:
        """The first line: this worker has loaded the chain files (a watermark at the start)."""
        self.stream.write(key(0, 0) + b"\n")
        self.stream.flush()

    def stop_here(self) -> None:
        """Mark where this worker's run failed: the event due now (at this rank) was not written."""
        scheduler = self.scheduler
        assert scheduler is not None
        self._chunks.append(key(scheduler.now - scheduler.start_ms, scheduler.rank + 1) + STOP + b"\n")
        self.flush()

    def flush_until(self, at: int) -> None:
        """Write what is buffered, then a watermark: nothing this worker writes later sorts before `at`.

        With the wall clock the parent cannot wait for every worker's next line: a worker that sleeps until
        `at` would hold back everything the others have due before it. Its watermark lets that through.
        """
        assert self.scheduler is not None
        self._chunks.append(key(at - self.scheduler.start_ms, 0) + b"\n")
        self.stream.write(b"".join(self._chunks))
        self._chunks.clear()
        self._size = 0
        self.stream.flush()

    def close(self) -> None:
        self.flush()


def stats_line(stats: Stats) -> str:
    """The line a worker prints on stderr so the parent can add up the counts."""
    outcomes = [[chain, outcome, count] for (chain, outcome), count in stats.by_outcome.items()]
    data = {"events": stats.events, "started": stats.started, "by_type": stats.by_type, "by_outcome": outcomes,
            "end_of_time": stats.end_of_time, "faults": stats.faults}
    return STATS_PREFIX + orjson.dumps(data).decode()


def add_stats(total: Stats, line: str) -> None:
    data = orjson.loads(line[len(STATS_PREFIX):])
    total.events += data["events"]
    total.started += data["started"]
    total.by_type.update(data["by_type"])
    total.end_of_time = total.end_of_time or data["end_of_time"]
    total.faults.update(data["faults"])
    for chain, outcome, count in data["by_outcome"]:
        total.by_outcome[(chain, outcome)] += count
