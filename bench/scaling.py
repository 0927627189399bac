"""Past one core: wall time of `--workers 2` against `--workers 1` for the same virtual run.

Both write the same bytes (checked); median of alternating runs. The ratio is the speed-up of two
worker processes (plus the parent that merges them) over one process. Beside it, the machine's own
ceiling in the same run: two independent pure-Python loops at once against one (on a shared VM two
"cores" often give far less than 2x, and it varies from minute to minute).
"""

from __future__ import annotations

import filecmp
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ONLY_SEVEN, PYTHON, START, engine_command, median, run_child

TARGET = 1.7
SPIN = "x = 0\nfor i in range(N): x += i"


def _spins(processes: int, loops: int) -> float:
    """Wall seconds for `processes` pure-Python loops running at once."""
    began = time.perf_counter()
    children = [subprocess.Popen([PYTHON, "-c", f"N = {loops}\n{SPIN}"]) for _ in range(processes)]
    for child in children:
        child.wait()
    return time.perf_counter() - began


def ceiling(loops: int) -> float:
    """How much faster two loops run side by side than one after the other, here and now."""
    return 2 * _spins(1, loops) / _spins(2, loops)


def measure(count: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {n: Path(tmp, f"workers{n}.jsonl") for n in (1, 2)}
        walls: dict[int, list[float]] = {1: [], 2: []}
        ceilings = []
        for _ in range(rounds):
            ceilings.append(ceiling(3_000_000 if count < 10_000 else 20_000_000))
            for n, output in outputs.items():
                command = engine_command("--chains", "chains/", *ONLY_SEVEN, "--count", str(count), "--seed", "1",
                                         "--start", START, "--workers", str(n), "--output", str(output), "-q")
                walls[n].append(run_child(command).wall_s)
        identical = filecmp.cmp(outputs[1], outputs[2], shallow=False)
    one, two = median(walls[1]), median(walls[2])
    return {"chains": count, "rounds": rounds, "one_worker_s": one, "two_workers_s": two, "speedup": one / two,
            "machine_ceiling": median(ceilings), "identical": identical}


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    same = "byte-identical output" if result["identical"] else "OUTPUT DIFFERS"
    verdict = "meets" if result["speedup"] >= TARGET else "misses"
    return [(f"past one core: `--workers 2`, {result['chains']:,} chains (median of {result['rounds']})",
             f"{result['two_workers_s']:.2f} s", f"{result['one_worker_s']:.2f} s `--workers 1`",
             f"**{result['speedup']:.2f}x** ({verdict} target >= {TARGET}); two spin loops here: "
             f"{result['machine_ceiling']:.2f}x; {same}")]
