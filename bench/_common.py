"""Helpers every section uses: paths, the interpreter, timing and the median."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
START = "2026-01-01T00:00:00Z"
START_MS = 1767225600000
# The seven chains of the seed, which handwritten.py reproduces byte for byte. chains/ holds more since: the
# engine's side of every comparison runs these seven (Catalog.select, or --only on the command line).
SEVEN = ("agent_execution", "code_generation", "consul_service", "database_query", "intelligence_query",
         "metadata_stamping", "vault_secret")
ONLY_SEVEN = ("--only", ",".join(SEVEN))


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def engine_command(*args: str) -> list[str]:
    return [PYTHON, "-m", "engine", *args]


class Child(NamedTuple):
    wall_s: float
    cpu_s: float  # user + system: what the child itself used, whatever its neighbours did
    peak_rss_kib: int


# Started by a small process of its own: Linux keeps a process's peak RSS across fork and exec, so a child
# forked straight from the bench (tens of MiB by then) would report at least the bench's size.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_kib(command: Sequence[str]) -> int:
    """The peak RSS of a command (it must succeed), started from a small launcher process, from the project root."""
    result = subprocess.run([PYTHON, "-c", _LAUNCHER, *command], cwd=ROOT, check=True, capture_output=True, text=True)
    return int(result.stdout.split()[-1])


def run_child(command: Sequence[str]) -> Child:
    """Run a command from the project root (it must succeed); its own rusage, not all children's.

    Its peak RSS is at least the bench's own at the fork (see peak_rss_kib for a figure of its own).
    """
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, list(command))
    return Child(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
