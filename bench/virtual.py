"""Virtual clock: events per second of the engine against bench/handwritten.py doing the same work.

Run phase: `engine.Simulation` with a file sink against `handwritten.Run`, each in a fresh interpreter
(bench/_timed_run.py: set-up excluded), alternating, best of N, in wall and CPU seconds (the CPU ratio
shrugs off noisy neighbours).
End to end: `python -m engine ... --output FILE -q` against `python bench/handwritten.py`, median of N,
start-up included. Both write the same bytes; `identical` says whether they did.
Instructions: when valgrind is installed, the CPU instructions per event of each side (cachegrind), which
no neighbour can disturb: the difference between a run of `small` and of `large` chains, over the
difference in events, so set-up and start-up cancel out.
"""

from __future__ import annotations

import filecmp
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from _common import BENCH, ONLY_SEVEN, PYTHON, ROOT, START, START_MS, engine_command, median, run_child

from engine.sinks import SinkBase  # noqa: E402


class FileSink(SinkBase):
    """The engine's sink protocol over a buffered file (what the jsonl sink does, minus its own buffer)."""

    needs_event = False

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb", buffering=256 * 1024)  # noqa: SIM115 - closed by close()

    def write(self, event: dict[str, Any], line: bytes) -> None:
        self.file.write(line)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _timed(side: str, count: int, path: Path) -> tuple[float, float, int]:
    """(wall s, CPU s, events) of one run, set-up excluded, in a fresh interpreter (bench/_timed_run.py)."""
    output = subprocess.run([PYTHON, str(BENCH / "_timed_run.py"), side, str(count), str(path)], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    result = json.loads(output)
    return result["wall"], result["cpu"], result["events"]


def _instructions(side: str, count: int, path: Path) -> tuple[int, int]:
    """(instructions, events) of one run of bench/_timed_run.py under valgrind's cachegrind."""
    run = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                          PYTHON, str(BENCH / "_timed_run.py"), side, str(count), str(path)],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output: {run.stderr[-500:]}")
    return int(found.group(1).replace(",", "")), json.loads(run.stdout)["events"]


def instructions(small: int, large: int) -> dict[str, Any]:
    """Instructions per event of the engine and of the hand-written script (None without valgrind)."""
    if shutil.which("valgrind") is None:
        return {"per_event": None, "note": "valgrind is not installed"}
    per_event = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in ("engine", "hand"):
            (few, few_events), (many, many_events) = (_instructions(side, n, Path(tmp, f"{side}.jsonl"))
                                                      for n in (small, large))
            per_event[side] = (many - few) / (many_events - few_events)
    return {"per_event": per_event, "chains": (small, large),
            "ratio": per_event["hand"] / per_event["engine"]}


def measure(count: int, rounds: int) -> dict[str, Any]:
    """`count` chain instances (about 2.4 events each); best of `rounds` in process, median end to end."""
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp, "engine.jsonl"), Path(tmp, "hand.jsonl")
        engine_runs, hand_runs = [], []
        for _ in range(rounds):  # alternate, so a noisy neighbour hurts both sides alike
            engine_runs.append(_timed("engine", count, ours))
            hand_runs.append(_timed("hand", count, theirs))
        identical = filecmp.cmp(ours, theirs, shallow=False)
        cli = engine_command("--chains", "chains/", *ONLY_SEVEN, "--count", str(count), "--seed", "1",
                             "--start", START, "--output", str(ours), "-q")
        hand = [PYTHON, str(BENCH / "handwritten.py"), "--count", str(count), "--seed", "1",
                "--start-ms", str(START_MS), "--output", str(theirs)]
        cli_runs, hand_cli_runs = [], []
        for _ in range(rounds):
            cli_runs.append(run_child(cli))
            hand_cli_runs.append(run_child(hand))
        identical = identical and filecmp.cmp(ours, theirs, shallow=False)
    events = engine_runs[0][2]
    rate = lambda runs, i: events / min(run[i] for run in runs)  # noqa: E731 - best of the rounds
    cli_rate = lambda runs: events / median([run.wall_s for run in runs])  # noqa: E731
    return {
        "chains": count, "events": events, "identical": identical, "rounds": rounds,
        "engine_events_per_s": rate(engine_runs, 0), "handwritten_events_per_s": rate(hand_runs, 0),
        "ratio": rate(engine_runs, 0) / rate(hand_runs, 0),
        "engine_events_per_cpu_s": rate(engine_runs, 1), "handwritten_events_per_cpu_s": rate(hand_runs, 1),
        "cpu_ratio": rate(engine_runs, 1) / rate(hand_runs, 1),
        "cli_events_per_s": cli_rate(cli_runs), "handwritten_cli_events_per_s": cli_rate(hand_cli_runs),
        "cli_ratio": cli_rate(cli_runs) / cli_rate(hand_cli_runs),
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    same = "byte-identical output" if result["identical"] else "OUTPUT DIFFERS"
    n, best = f"{result['events']:,} events, {same}", f"best of {result['rounds']}"
    return [
        (f"virtual: events/s, run phase ({best})", f"{result['engine_events_per_s']:,.0f}",
         f"{result['handwritten_events_per_s']:,.0f} hand-written",
         f"**{result['ratio']:.2f}x** (target >= 1.0); {n}"),
        (f"virtual: events per CPU-second, run phase ({best})", f"{result['engine_events_per_cpu_s']:,.0f}",
         f"{result['handwritten_events_per_cpu_s']:,.0f} hand-written", f"{result['cpu_ratio']:.2f}x"),
        (f"virtual: events/s CLI incl. start-up (median of {result['rounds']})", f"{result['cli_events_per_s']:,.0f}",
         f"{result['handwritten_cli_events_per_s']:,.0f} hand-written", f"{result['cli_ratio']:.2f}x"),
        _instruction_row(result.get("instructions") or {"per_event": None, "note": "not measured"}),
    ]


def _instruction_row(result: dict[str, Any]) -> tuple[str, str, str, str]:
    title = "virtual: CPU instructions per event, run phase (cachegrind; noise-free)"
    if result["per_event"] is None:
        return (title, "-", "-", result["note"])
    small, large = result["chains"]
    return (title, f"{result['per_event']['engine']:,.0f}", f"{result['per_event']['hand']:,.0f} hand-written",
            f"{result['ratio']:.2f}x fewer (hand-written / engine): instructions, not time (the script's "
            f"O(n) weighted draws are many cheap instructions in C); {large:,} less {small:,} chains")
