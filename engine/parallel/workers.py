"""Past one core: `--workers N` runs N processes that share the chain instances of one run, and merges
their events (engine/parallel/merge.py) into the sinks.

Every worker draws every arrival (it is cheap), so instance numbers and random streams are those of one
process, but it starts, and wakes for, only its own instances: the blocks it claimed first
(engine/parallel/claims.py), so a worker that falls behind takes fewer and all finish together; or, without
POSIX locks, a fixed shard (i modulo n, as `--shard`). Each worker is `python -m engine.parallel.child`
(engine/parallel/child.py), given its job whole as one JSON line on stdin; it loads and checks the chain
files itself, and its first line on stdout says it is ready. On the wall clock it then waits for a second
line on stdin, `<epoch seconds> <start ms>`: the moment the run begins (shared by all, just after the last
is ready) and its simulated start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import IO

from ..run.options import RunOptions, Stats
from ..sinks import Sink
from .claims import claims_file
from .keyed import STATS_PREFIX, add_stats
from .merge import Merge

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# A worker that runs ahead of the others blocks once its pipe is full, until the merge reaches it.
PIPE_BYTES = 1024 * 1024


def job(chains: str, options: RunOptions, shard: int, shards: int, claims_fd: int | None,
        scenario: str | None = None) -> str:
    """A worker's job: the chains (and scenario), the run's options whole, and its share of the instances."""
    return json.dumps({"chains": chains, "scenario": scenario, "options": json.loads(options.to_json()),
                       "claims_fd": claims_fd, "shard": [shard, shards]})


class Workers:
    """The worker processes of one run: their merged stdout, and what they say on stderr."""

    def __init__(self, processes: list[subprocess.Popen[bytes]]) -> None:
        self.processes = processes
        self.merge = Merge([p.stdout for p in processes if p.stdout is not None])
        self.said: list[list[str]] = [[] for _ in processes]  # each worker's lines on stderr, but its stats
        self.stats = Stats()
        self._lock = threading.Lock()  # the stderr readers add to one Stats
        self._readers = [threading.Thread(target=self._read_stderr, args=(p.stderr, lines), daemon=True)
                         for p, lines in zip(processes, self.said, strict=True)]
        for reader in self._readers:
            reader.start()

    def ready(self) -> bool:
        """Wait until every worker has loaded the chain files; False when one could not (see `errors()`)."""
        return self.merge.ready()

    def go(self, origin: float, start_ms: int) -> None:
        """Wall clock: tell every ready worker when the run begins (epoch seconds) and its simulated start."""
        for process in self.processes:
            if process.stdin is not None:
                try:
                    process.stdin.write(f"{origin!r} {start_ms}\n".encode())
                    process.stdin.close()
                except OSError:
                    pass  # that worker has ended: the merge will see it

    def errors(self) -> list[str]:
        """What went wrong, once every worker has ended: one worker's report (they load the same files)."""
        for reader in self._readers:
            reader.join()
        errors = next((lines for lines in self.said if lines), [])
        codes = [p.returncode for p in self.processes]
        if any(code not in (0, -signal.SIGTERM) for code in codes) and not errors:
            errors = [f"a worker failed with exit codes {codes}"]
        return errors

    def _read_stderr(self, stream: IO[bytes], said: list[str]) -> None:
        for raw in stream:
            text = raw.decode(errors="replace").rstrip("\n")
            with self._lock:
                if text.startswith(STATS_PREFIX):
                    add_stats(self.stats, text)
                elif text:
                    said.append(text)


def spawn_workers(chains: str, options: RunOptions, count: int, scenario: str | None = None) -> Workers:
    """Start the worker processes; each loads and validates the chain files itself."""
    claims = claims_file()
    processes = []
    try:
        for index in range(count):
            process = subprocess.Popen([sys.executable, "-m", "engine.parallel.child"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       pass_fds=() if claims is None else (claims,))
            processes.append(process)
            assert process.stdin is not None
            process.stdin.write(job(chains, options, index, count, claims, scenario).encode() + b"\n")
            process.stdin.flush()
            if not options.realtime:  # on the wall clock, go() comes later on the same pipe
                process.stdin.close()
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
    Ctrl-C or SIGTERM asks the workers to stop (they stop cleanly on SIGTERM); what they wrote is drained.
    """
    from ..process import stopping_on_signals

    def stop() -> None:
        for process in workers.processes:
            process.send_signal(signal.SIGTERM)

    try:
        with stopping_on_signals(stop, once=False):
            workers.merge.into(sink, paced=options.realtime)
    finally:
        stop_workers(workers)  # after a stop mark or a failing sink; finished workers are just waited for
    return workers.stats, workers.errors()


def _enlarge_pipe(stream: IO[bytes] | None) -> None:
    """Ask Linux for a larger pipe (F_SETPIPE_SZ); elsewhere, or when refused, keep the default."""
    try:
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)  # type: ignore[union-attr]
    except (OSError, AttributeError):  # AttributeError: no fcntl (None), or no fileno
        pass
