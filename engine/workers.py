"""Past one core: `--workers N` runs N processes, each one shard of the same run, and merges their events.

Shard i of n starts only the chain instances whose number in the run is i modulo n (every shard runs
the cheap arrival process in full, so instance numbers and random streams are those of one process).
A worker writes each line behind its scheduler key, `<time> <rank> `; the parent merges the workers'
streams by that key, which is the scheduler's own order, so N workers give byte for byte the output of
one process. Workers report their counts on stderr as one `chainsim-stats {json}` line.
"""

from __future__ import annotations

import heapq
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

import orjson

from .events import format_timestamp
from .scheduler import Scheduler
from .simulation import RunOptions, Stats
from .sinks import Sink

STATS_PREFIX = "chainsim-stats "
BUFFER_BYTES = 256 * 1024


class KeyedSink:
    """A worker's output: each JSON line behind the scheduler's (time, rank) of the event."""

    needs_event = False

    def __init__(self, stream: IO[bytes], scheduler: Scheduler) -> None:
        self.stream, self.scheduler = stream, scheduler
        self._chunks: list[bytes] = []
        self._size = 0

    def write(self, event: dict[str, Any], line: bytes) -> None:
        chunk = b"%d %d %s" % (self.scheduler.now, self.scheduler.rank, line)
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
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
    return args


def _keyed_lines(stream: IO[bytes]) -> Iterator[tuple[int, int, bytes]]:
    for raw in stream:
        at, rank, line = raw.split(b" ", 2)
        yield int(at), int(rank), line


def _order(item: tuple[int, int, bytes]) -> tuple[int, int]:
    return item[0], item[1]


def run_workers(chains: str, options: RunOptions, workers: int, sink: Sink) -> tuple[Stats, list[str]]:
    """Run `workers` processes and merge their events into `sink`; (added-up stats, workers' error lines)."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "engine", *worker_arguments(chains, options, i, workers)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(workers)
    ]
    total, errors = Stats(), list[str]()
    readers = [threading.Thread(target=_read_stderr, args=(p.stderr, total, errors), daemon=True) for p in processes]
    for reader in readers:
        reader.start()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def stop(number: int, frame: Any) -> None:
        for process in processes:  # workers stop cleanly on SIGTERM; the parent drains what they wrote
            process.send_signal(signal.SIGTERM)

    for sig in previous:
        signal.signal(sig, stop)
    try:
        needs_event = getattr(sink, "needs_event", True)
        streams = [_keyed_lines(p.stdout) for p in processes if p.stdout is not None]
        for _, _, line in heapq.merge(*streams, key=_order):
            sink.write(orjson.loads(line) if needs_event else {}, line)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in processes:
            process.wait()
        for reader in readers:
            reader.join()
    if any(p.returncode not in (0, -signal.SIGTERM) for p in processes) and not errors:
        errors.append(f"a worker failed with exit codes {[p.returncode for p in processes]}")
    return total, errors


_LOCK = threading.Lock()  # stderr readers of all workers add to one Stats


def _read_stderr(stream: IO[bytes], total: Stats, errors: list[str]) -> None:
    for raw in stream:
        text = raw.decode(errors="replace").rstrip("\n")
        with _LOCK:
            if text.startswith(STATS_PREFIX):
                _add_stats(total, text)
            elif text:
                errors.append(text)
