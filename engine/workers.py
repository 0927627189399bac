"""Past one core: `--workers N` runs N processes that share the chain instances of one run, and merges
their events.

Every worker draws every arrival (it is cheap), so instance numbers and random streams are those of one
process, but it starts, and wakes for, only its own instances: the blocks of CLAIM_BLOCK instances it
claimed first (`FileClaims`), so a worker that falls behind takes fewer and all finish together; or,
without POSIX locks, a fixed shard (i modulo n, as `--shard`).
A worker writes each line behind its scheduler key, as fixed-width digits (13 of time since the start,
10 of rank) that sort as bytes; the parent merges the workers' streams on those keys, which is the
scheduler's own order, so N workers give byte for byte the output of one process. A rank belongs to
one worker, so two workers' events never share a key; one worker's lines with equal keys keep their order.
Workers load and check the chain files themselves; the first line each writes says it is ready. On the
wall clock they then wait for one line on stdin, `<epoch seconds> <start ms>`: the moment the run begins
(shared by all, just after the last is ready) and its simulated start. They report their counts on stderr
as one `chainsim-stats {json}` line.
"""

from __future__ import annotations

import bisect
import operator
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from typing import IO, Any

import orjson

try:
    import fcntl
except ImportError:  # Windows: fixed shards
    fcntl = None  # type: ignore[assignment]

from .events import format_timestamp
from .options import RunOptions, Stats
from .scheduler import Scheduler
from .sinks import Sink

STATS_PREFIX = "chainsim-stats "
# A worker that runs ahead of the others blocks once its pipe is full, until the merge reaches it.
# A few chunks fit in the pipe, so the merge never waits long for the slowest worker; chunks this large
# keep the parent's reads (and the context switches behind each) few: 32 KiB chunks cost the parent
# half again as much CPU time on a virtual run. (On the wall clock a worker flushes before each wait.)
BUFFER_BYTES = 256 * 1024
PIPE_BYTES = 1024 * 1024


class KeyedSink:
    """A worker's output: each JSON line behind the scheduler's (time, rank) of the event."""

    needs_event = False

    def __init__(self, stream: IO[bytes], scheduler: Scheduler) -> None:
        self.stream, self.scheduler = stream, scheduler
        self._chunks: list[bytes] = []
        self._size = 0

    def write(self, event: dict[str, Any], line: bytes) -> None:
        scheduler, chunks = self.scheduler, self._chunks
        chunks.append(b"%013d%010d" % (scheduler.now - scheduler.start_ms, scheduler.rank + 1))
        chunks.append(line)  # not copied behind its key: the flush joins them
        self._size += len(line)
        if self._size >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        self.flush_until(self.scheduler.now)

    def ready(self) -> None:
        """The first line: this worker has loaded the chain files (a watermark at the start)."""
        self.stream.write(b"%013d%010d\n" % (0, 0))
        self.stream.flush()

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


def worker_arguments(chains: str, options: RunOptions, shard: int, shards: int, claims_fd: int | None = None
                     ) -> list[str]:
    """The command line of one worker: the same run, fully pinned, restricted to the blocks of instances
    it claims first from `claims_fd` (or, without one, to one fixed shard)."""
    share = ["--shard", f"{shard}/{shards}"] if claims_fd is None else ["--claims-fd", str(claims_fd)]
    args = ["run", "--chains", chains, "--seed", str(options.seed), "--start", format_timestamp(options.start_ms),
            "--initial", str(options.initial), *share, "--keyed", "--quiet"]
    if options.count is not None:
        args += ["--count", str(options.count)]
    if options.duration_ms is not None:
        args += ["--duration", f"{options.duration_ms}ms"]
    if options.interval_ms is not None:
        args += ["--interval", f"{options.interval_ms!r}ms"]
    else:
        args += ["--rate", repr(options.rate)]
    if options.realtime:
        args += ["--realtime", "--speed", repr(options.speed), "--await-go"]
    return args


KEY_BYTES = 23
KEY = operator.itemgetter(slice(0, KEY_BYTES))
_UNKEYED = operator.itemgetter(slice(KEY_BYTES, None))
STOP = b"!"  # a worker's line that marks where its run failed
LAST = b"9" * KEY_BYTES  # the frontier of a worker that has finished
STOP_BYTES = KEY_BYTES + 1  # a stop mark read: its key and STOP (a watermark read is its key alone)
HOLD_LINES = 50_000  # a worker this far ahead of the merge is not read until the others catch up
READ_BYTES = 1 << 20


class Workers:
    """The worker processes of one run, and the merge of their keyed lines into one sink.

    The merge reads whatever any worker has written and passes on, in key order, every line that no
    worker can still precede: every worker's last key (event or watermark) is at or after it. Lines are
    merged in batches: the workers' runs of lines are joined and sorted on their keys in C (a stable sort,
    so lines of one worker with equal keys keep their order). A worker that runs far ahead is not read
    until the others catch up, so the parent's memory stays flat and the worker waits on its full pipe.
    """

    def __init__(self, processes: list[subprocess.Popen[bytes]]) -> None:
        self.processes = processes
        self.streams = [p.stdout for p in processes if p.stdout is not None]
        count = len(self.streams)
        self._lines: list[list[bytes]] = [[] for _ in range(count)]  # read, not yet passed on; key order
        self._frontier = [b""] * count  # each worker's last key read (LAST once it has ended)
        self._partial = [b""] * count
        self._started = [False] * count  # each worker's first line has been read
        # Reads go into one buffer (os.read would allocate, and fault in, READ_BYTES on every call).
        self._buffers = [bytearray(READ_BYTES)]
        self._view = memoryview(self._buffers[0])
        self._stop: bytes | None = None  # the key of the lowest stop mark read
        self.said: list[list[str]] = [[] for _ in processes]  # each worker's lines on stderr, but its stats
        self.stats = Stats()
        self._readers = [threading.Thread(target=_read_stderr, args=(p.stderr, self.stats, lines), daemon=True)
                         for p, lines in zip(processes, self.said, strict=True)]
        for reader in self._readers:
            reader.start()

    def ready(self) -> bool:
        """Wait until every worker has loaded the chain files (a worker's first line says so).

        False when one ended before that: it could not load them, and its report is in `errors()`.
        """
        while not all(self._started):
            if any(front == LAST for front, started in zip(self._frontier, self._started, strict=True)
                   if not started):
                return False
            self._read(wait=True)
        return True

    def go(self, origin: float, start_ms: int) -> None:
        """Wall clock: tell every ready worker when the run begins (epoch seconds) and its simulated start."""
        for process in self.processes:
            if process.stdin is not None:
                try:
                    process.stdin.write(f"{origin!r} {start_ms}\n".encode())
                    process.stdin.close()
                except OSError:
                    pass  # that worker has ended: the merge will see it

    def merge(self, sink: Sink, paced: bool) -> None:
        """Pass every worker's events on to `sink` in key order until all have ended (or one stops).

        `paced` (wall clock): flush the sink after each batch, so events leave as soon as they may.
        """
        write, needs_event = sink.write, getattr(sink, "needs_event", True)
        # A sink that takes encoded lines only gets each batch as one block, keys cut off in C.
        write_lines = None if needs_event else getattr(sink, "write_lines", None)
        while True:
            batch = self._release()
            if write_lines is not None:
                if batch:
                    write_lines(b"\n".join([*map(_UNKEYED, batch), b""]))
            else:
                for line in batch:
                    event = line[KEY_BYTES:]
                    write(orjson.loads(event) if needs_event else {}, event + b"\n")
            if paced and batch:
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
                key = line[:KEY_BYTES]
                self._stop = key if self._stop is None else min(self._stop, key)

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

    def errors(self) -> list[str]:
        """What went wrong, once every worker has ended: one worker's report (they load the same files)."""
        for reader in self._readers:
            reader.join()
        errors = next((lines for lines in self.said if lines), [])
        codes = [p.returncode for p in self.processes]
        if any(code not in (0, -signal.SIGTERM) for code in codes) and not errors:
            errors = [f"a worker failed with exit codes {codes}"]
        return errors


class FileClaims:
    """The workers' claims (`simulation.Claims`): the number of the next free block, in a file they all
    inherit, read and moved on under a POSIX lock (per process, unlike flock on a shared descriptor).

    Every worker asks for every block in order, so when one asks for block b, all blocks below b are
    taken: the counter is b (free: take it) or above (another worker took it).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def take(self, block: int) -> bool:
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            if int.from_bytes(os.pread(self.fd, 8, 0), "little") != block:
                return False
            os.pwrite(self.fd, (block + 1).to_bytes(8, "little"), 0)
            return True
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)


def _claims_file() -> int | None:
    """A new counter at 0 in an unlinked file (nothing to clean up); None where POSIX locks are missing."""
    if fcntl is None:
        return None
    fd, path = tempfile.mkstemp(prefix="chainsim-claims-")
    os.unlink(path)
    os.write(fd, bytes(8))
    return fd


def spawn_workers(chains: str, options: RunOptions, workers: int) -> Workers:
    """Start the worker processes; each loads and validates the chain files itself.

    They share the instances by claiming blocks of them as they go (a worker slowed down by the merge or
    a neighbour takes fewer), or, without POSIX locks, by fixed shards.
    """
    stdin = subprocess.PIPE if options.realtime else subprocess.DEVNULL  # on the wall clock: go()
    claims = _claims_file()
    try:
        processes = [
            subprocess.Popen([sys.executable, "-m", "engine", *worker_arguments(chains, options, i, workers, claims)],
                             stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             pass_fds=() if claims is None else (claims,))
            for i in range(workers)
        ]
    finally:
        if claims is not None:
            os.close(claims)  # the workers hold it open
    for process in processes:
        _enlarge_pipe(process.stdout)
    return Workers(processes)


def stop_workers(workers: Workers) -> None:
    """Ask every worker to stop and stop reading them (one blocked on a full pipe then ends too); wait."""
    for process in workers.processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        if process.stdout is not None:
            process.stdout.close()
    for process in workers.processes:
        process.wait()


def run_workers(workers: Workers, options: RunOptions, sink: Sink) -> tuple[Stats, list[str]]:
    """Merge the workers' events into `sink` until they finish; (added-up stats, error lines).

    A worker that fails at run time writes a stop mark where the one-process run would have stopped;
    the merge ends there and the other workers are stopped, so the output is still that of one process.
    """
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def stop(number: int, frame: Any) -> None:
        for process in workers.processes:  # workers stop cleanly on SIGTERM; the parent drains what they wrote
            process.send_signal(signal.SIGTERM)

    for sig in previous:
        signal.signal(sig, stop)
    try:
        workers.merge(sink, paced=options.realtime)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_workers(workers)  # after a stop mark or a failing sink; finished workers are just waited for
    return workers.stats, workers.errors()


def _enlarge_pipe(stream: IO[bytes] | None) -> None:
    """Ask Linux for a larger pipe (F_SETPIPE_SZ); elsewhere, or when refused, keep the default."""
    try:
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)  # type: ignore[union-attr]
    except (OSError, AttributeError):  # AttributeError: no fcntl (None), or no fileno
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
