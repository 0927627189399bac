"""Past one core: `--workers N` runs N processes, each one shard of the same run, and merges their events.

Shard i of n starts only the chain instances whose number in the run is i modulo n (every shard runs
the cheap arrival process in full, so instance numbers and random streams are those of one process).
A worker writes each line behind its scheduler key, as fixed-width digits (13 of time since the start,
10 of rank) that sort as bytes; the parent merges the workers' streams on those bytes, which is the
scheduler's own order, so N workers give byte for byte the output of one process. (Two lines of one
worker are never compared: a merge holds one line per stream, and a rank belongs to one worker.)
Workers report their counts on stderr as one `chainsim-stats {json}` line.
"""

from __future__ import annotations

import collections
import heapq
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

import orjson

from .events import format_timestamp
from .scheduler import Scheduler
from .simulation import RunOptions, Stats
from .sinks import Sink

STATS_PREFIX = "chainsim-stats "
# A worker that runs ahead of the others blocks once its pipe is full, until the merge reaches it.
# Small chunks in a large pipe keep every worker busy: the merge never waits long for the slowest.
BUFFER_BYTES = 32 * 1024
PIPE_BYTES = 1024 * 1024


class KeyedSink:
    """A worker's output: each JSON line behind the scheduler's (time, rank) of the event."""

    needs_event = False

    def __init__(self, stream: IO[bytes], scheduler: Scheduler) -> None:
        self.stream, self.scheduler = stream, scheduler
        self._chunks: list[bytes] = []
        self._size = 0

    def write(self, event: dict[str, Any], line: bytes) -> None:
        scheduler = self.scheduler
        chunk = b"%013d%010d%s" % (scheduler.now - scheduler.start_ms, scheduler.rank + 1, line)
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        self.flush_until(self.scheduler.now)

    def stop_here(self) -> None:
        """Mark where this worker's run failed: the event due now (at this rank) was not written."""
        scheduler = self.scheduler
        self._chunks.append(b"%013d%010d%s\n" % (scheduler.now - scheduler.start_ms, scheduler.rank + 1, STOP))
        self.flush()

    def flush_until(self, at: int) -> None:
        """Write what is buffered, then a watermark: nothing this worker writes later sorts before `at`.

        A watermark is a key of rank 0 (events have rank + 1) and no event. With the wall clock the
        parent cannot wait for every worker's next line: a worker that sleeps until `at` would hold
        back everything the others have due before it. Its watermark lets that through.
        """
        self._chunks.append(b"%013d%010d\n" % (at - self.scheduler.start_ms, 0))
        self.stream.write(b"".join(self._chunks))
        self._chunks.clear()
        self._size = 0
        self.stream.flush()

    def close(self) -> None:
        self.flush()


def stats_line(stats: Stats) -> str:
    """The line a worker prints on stderr so the parent can add up the counts."""
    outcomes = [[chain, outcome, count] for (chain, outcome), count in stats.by_outcome.items()]
    data = {"events": stats.events, "started": stats.started, "by_type": stats.by_type, "by_outcome": outcomes}
    return STATS_PREFIX + orjson.dumps(data).decode()


def _add_stats(total: Stats, line: str) -> None:
    data = orjson.loads(line[len(STATS_PREFIX):])
    total.events += data["events"]
    total.started += data["started"]
    total.by_type.update(data["by_type"])
    for chain, outcome, count in data["by_outcome"]:
        total.by_outcome[(chain, outcome)] += count


def worker_arguments(chains: str, options: RunOptions, shard: int, shards: int) -> list[str]:
    """The command line of one worker: the same run, fully pinned, restricted to one shard."""
    args = ["run", "--chains", chains, "--seed", str(options.seed), "--start", format_timestamp(options.start_ms),
            "--initial", str(options.initial), "--shard", f"{shard}/{shards}", "--keyed", "--quiet"]
    if options.count is not None:
        args += ["--count", str(options.count)]
    if options.duration_ms is not None:
        args += ["--duration", f"{options.duration_ms}ms"]
    if options.interval_ms is not None:
        args += ["--interval", f"{options.interval_ms!r}ms"]
    else:
        args += ["--rate", repr(options.rate)]
    if options.realtime:
        args += ["--realtime", "--speed", repr(options.speed), "--wall-origin", repr(options.wall_origin)]
    return args


KEY_BYTES = 23
WATERMARK = b"0" * 10  # the rank digits of a watermark line
STOP = b"!"  # a worker's line that marks where its run failed
LAST = b"9" * KEY_BYTES  # the frontier of a worker that has finished


class _Stop(Exception):
    """A worker's stop mark reached the front of the merge."""


def _writer(sink: Sink) -> Callable[[bytes], None]:
    needs_event, write = getattr(sink, "needs_event", True), sink.write

    def emit(keyed: bytes) -> None:
        line = keyed[KEY_BYTES:]
        if line[:1] == STOP:
            raise _Stop
        write(orjson.loads(line) if needs_event else {}, line)

    return emit


def _merge(streams: list[IO[bytes]], sink: Sink) -> None:
    """Virtual time: the merge may wait for every worker's next line (watermarks are skipped)."""
    emit = _writer(sink)
    for keyed in heapq.merge(*streams):
        if keyed[KEY_BYTES:KEY_BYTES + 1] == STOP:
            return
        if keyed[13:KEY_BYTES] != WATERMARK:
            emit(keyed)


def _merge_paced(streams: list[IO[bytes]], sink: Sink) -> None:
    """Wall clock: read whatever any worker has written; pass on each line once no worker can still
    write one before it (every worker's last key, event or watermark, is at or after it)."""
    emit = _writer(sink)
    count = len(streams)
    frontier = [b""] * count
    pending: list[collections.deque[bytes]] = [collections.deque() for _ in streams]
    partial = [b""] * count
    poller = select.poll()
    owner = {}
    for index, stream in enumerate(streams):
        owner[stream.fileno()] = index
        poller.register(stream.fileno(), select.POLLIN)
    while owner:
        for fd, _ in poller.poll(100):
            index = owner[fd]
            data = os.read(fd, 1 << 20)
            if not data:
                frontier[index] = LAST
                poller.unregister(fd)
                del owner[fd]
                continue
            lines = (partial[index] + data).split(b"\n")
            partial[index] = lines.pop()
            for line in lines:
                frontier[index] = line[:KEY_BYTES]
                if line[13:KEY_BYTES] != WATERMARK:
                    pending[index].append(line + b"\n")
        if _release(pending, min(frontier), emit):
            sink.flush()


def _release(pending: list[collections.deque[bytes]], low: bytes, emit: Callable[[bytes], None]) -> int:
    """Emit, in key order, every pending line whose key is at or before `low`; how many."""
    heads = [(queue[0][:KEY_BYTES], index) for index, queue in enumerate(pending) if queue]
    heapq.heapify(heads)
    released = 0
    while heads and heads[0][0] <= low:
        _, index = heapq.heappop(heads)
        emit(pending[index].popleft())
        released += 1
        if pending[index]:
            heapq.heappush(heads, (pending[index][0][:KEY_BYTES], index))
    return released


def spawn_workers(chains: str, options: RunOptions, workers: int) -> list[subprocess.Popen[bytes]]:
    """Start the worker processes (they load and validate the chain files themselves)."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "engine", *worker_arguments(chains, options, i, workers)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(workers)
    ]
    for process in processes:
        _enlarge_pipe(process.stdout)
    return processes


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    """Ask every worker to stop and stop reading them (one blocked on a full pipe then ends too); wait."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        if process.stdout is not None:
            process.stdout.close()
    for process in processes:
        process.wait()


def run_workers(processes: list[subprocess.Popen[bytes]], options: RunOptions, sink: Sink) -> tuple[Stats, list[str]]:
    """Merge the workers' events into `sink` until they finish; (added-up stats, error lines).

    A worker that fails at run time writes a stop mark where the one-process run would have stopped;
    the merge ends there and the other workers are stopped, so the output is still that of one process.
    """
    total = Stats()
    said: list[list[str]] = [[] for _ in processes]  # each worker's lines on stderr, other than its stats
    readers = [threading.Thread(target=_read_stderr, args=(p.stderr, total, lines), daemon=True)
               for p, lines in zip(processes, said, strict=True)]
    for reader in readers:
        reader.start()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def stop(number: int, frame: Any) -> None:
        for process in processes:  # workers stop cleanly on SIGTERM; the parent drains what they wrote
            process.send_signal(signal.SIGTERM)

    for sig in previous:
        signal.signal(sig, stop)
    try:
        streams = [p.stdout for p in processes if p.stdout is not None]
        (_merge_paced if options.realtime else _merge)(streams, sink)
    except _Stop:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_workers(processes)  # after a stop mark or a failing sink; finished workers are just waited for
        for reader in readers:
            reader.join()
    # Workers load the same files: when they fail, they all say the same, so one of them is enough.
    errors = next((lines for lines in said if lines), [])
    if any(p.returncode not in (0, -signal.SIGTERM) for p in processes) and not errors:
        errors = [f"a worker failed with exit codes {[p.returncode for p in processes]}"]
    return total, errors


def _enlarge_pipe(stream: IO[bytes] | None) -> None:
    """Ask Linux for a larger pipe (F_SETPIPE_SZ); elsewhere, or when refused, keep the default."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)  # type: ignore[union-attr]
    except (OSError, ImportError, AttributeError):
        pass


_LOCK = threading.Lock()  # stderr readers of all workers add to one Stats


def _read_stderr(stream: IO[bytes], total: Stats, errors: list[str]) -> None:
    for raw in stream:
        text = raw.decode(errors="replace").rstrip("\n")
        with _LOCK:
            if text.startswith(STATS_PREFIX):
                _add_stats(total, text)
            elif text:
                errors.append(text)
