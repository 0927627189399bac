"""The ordered merge of the workers' keyed streams (engine/parallel/keyed.py) into one sink.

The merge reads whatever any worker has written and passes on, in key order, every line that no worker can
still precede: every worker's last key (event or watermark) is at or after it. Lines are merged in batches:
the workers' runs of lines are joined and sorted on their keys in C (a stable sort, so lines of one worker
with equal keys keep their order). A worker that runs far ahead is not read until the others catch up, so
the parent's memory stays flat and the worker waits on its full pipe. Keys are the scheduler's own order,
so N workers give byte for byte the output of one process.
"""

from __future__ import annotations

import bisect
import os
import select
from typing import IO

import orjson

from ..sinks import Sink
from .keyed import KEY, KEY_BYTES, LAST, STOP, STOP_BYTES, TIME_DIGITS, UNKEYED

HOLD_LINES = 50_000  # a worker this far ahead of the merge is not read until the others catch up
READ_BYTES = 1 << 20


class Merge:
    """The keyed streams of a run's workers, read as they come and passed on in key order."""

    def __init__(self, streams: list[IO[bytes]]) -> None:
        self.streams = streams
        count = len(streams)
        self._lines: list[list[bytes]] = [[] for _ in range(count)]  # read, not yet passed on; key order
        self._frontier = [b""] * count  # each worker's last key read (LAST once it has ended)
        self._partial = [b""] * count
        self._started = [False] * count  # each worker's first line has been read
        # Reads go into one buffer (os.read would allocate, and fault in, READ_BYTES on every call).
        self._buffers = [bytearray(READ_BYTES)]
        self._view = memoryview(self._buffers[0])
        self._stop: bytes | None = None  # the key of the lowest stop mark read
        self.passed = 0  # events passed on so far (for the progress line)
        self.reached = 0  # simulated ms since the start of the last event passed on

    def ready(self) -> bool:
        """Wait until every worker has loaded the chain files (a worker's first line says so).

        False when one ended before that: it could not load them.
        """
        while not all(self._started):
            if any(front == LAST for front, started in zip(self._frontier, self._started, strict=True)
                   if not started):
                return False
            self._read(wait=True)
        return True

    def into(self, sink: Sink, paced: bool) -> None:
        """Pass every worker's events on to `sink` in key order until all have ended (or one stops).

        `paced` (wall clock): flush the sink after each batch, so events leave as soon as they may.
        """
        write, needs_event, write_lines = sink.write, sink.needs_event, sink.write_lines
        while True:
            batch = self._release()
            if not needs_event:  # a sink of encoded lines gets each batch as one block, keys cut off in C
                if batch:
                    write_lines(b"\n".join([*map(UNKEYED, batch), b""]))
            else:
                for line in batch:
                    event = line[KEY_BYTES:]
                    write(orjson.loads(event), event + b"\n")
            if batch:
                self.passed += len(batch)
                self.reached = int(batch[-1][:TIME_DIGITS])
                if paced:
                    sink.flush()
            if self._done():
                return
            self._read(wait=not batch)

    def _done(self) -> bool:
        """Every worker has ended and all is passed on, or a stop mark has been reached."""
        if self._stop is not None and min(self._frontier) >= self._stop:
            return not any(lines and lines[0] < self._stop for lines in self._lines)
        return all(front == LAST for front in self._frontier) and not any(self._lines)

    def _read(self, wait: bool) -> bool:
        """Read what the workers have written (waiting up to 0.1 s for some when `wait`); True if any."""
        open_fds = {}
        for index, stream in enumerate(self.streams):
            if self._frontier[index] != LAST and len(self._lines[index]) < HOLD_LINES:
                open_fds[stream.fileno()] = index
        if not open_fds:
            return False
        readable, _, _ = select.select(list(open_fds), [], [], 0.1 if wait else 0)
        for fd in readable:
            index = open_fds[fd]
            size = os.readv(fd, self._buffers)
            if not size:
                self._frontier[index] = LAST
                continue
            data = self._view[:size].tobytes()
            # Lines without their newlines (JSON lines hold no raw line breaks): split(b"\n") tests each byte
            # for one value, splitlines() for several. The last piece is the start of an unfinished line.
            lines = data.split(b"\n")
            if self._partial[index]:
                lines[0] = self._partial[index] + lines[0]
            self._partial[index] = lines.pop()
            if lines:
                self._started[index] = True
                self._frontier[index] = lines[-1][:KEY_BYTES]
                # Watermarks only move the frontier. (A worker's buffer flush writes one behind the event
                # that filled the buffer, with a lower key: the events alone are in key order.)
                events = [line for line in lines if len(line) > STOP_BYTES]
                # Look for a stop mark only where one may be: a one-byte search runs at memchr speed.
                if STOP in data or lines[0].endswith(STOP):
                    self._note_stop(lines)
                self._lines[index] += events
        return bool(readable)

    def _note_stop(self, lines: list[bytes]) -> None:
        """Keep the lowest stop mark's key: the run ends there, as one process's would."""
        for line in lines:
            if len(line) == STOP_BYTES and line[KEY_BYTES:] == STOP:
                found = line[:KEY_BYTES]
                self._stop = found if self._stop is None else min(self._stop, found)

    def _release(self) -> list[bytes]:
        """The lines read that no worker can still precede (and before any stop mark), in key order."""
        cut = min(self._frontier) + b"\xff"  # above every line whose key is at or before the lowest frontier
        if self._stop is not None:
            cut = min(cut, self._stop)  # lines of a lower key only: the failed event had the stop's key
        batch: list[bytes] = []
        runs = 0
        for lines in self._lines:
            if lines and lines[0] < cut:
                end = bisect.bisect_left(lines, cut)  # keys are sorted, so "line < cut" holds for a prefix
                batch += lines[:end]
                del lines[:end]
                runs += 1
        if runs > 1:
            batch.sort(key=KEY)
        return batch
