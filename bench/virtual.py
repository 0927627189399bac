"""Virtual clock: events per second of the engine against bench/handwritten.py doing the same work.

In process: `engine.Simulation` with a file sink against `handwritten.Run`, alternating, best of 3.
End to end: `python -m engine ... --output FILE -q` against `python bench/handwritten.py`, median of 3,
start-up included. Both write the same bytes; `identical` says whether they did.
"""

from __future__ import annotations

import filecmp
import tempfile
import time
from pathlib import Path
from typing import Any

import handwritten
from _common import BENCH, PYTHON, ROOT, START, START_MS, engine_command, median, timed

import engine as chainsim


class FileSink:
    """The engine's sink protocol over a buffered file (what the jsonl sink does, minus its own buffer)."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb", buffering=256 * 1024)  # noqa: SIM115 - closed by close()

    def write(self, event: dict[str, Any], line: bytes) -> None:
        self.file.write(line)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _engine_in_process(catalog: Any, count: int, path: Path) -> tuple[float, int]:
    sink = FileSink(path)
    options = chainsim.RunOptions(seed=1, start_ms=START_MS, count=count, rate=10.0)
    began = time.perf_counter()
    stats = chainsim.Simulation(catalog, options, sink).run()
    sink.close()
    return time.perf_counter() - began, stats.events


def _handwritten_in_process(count: int, path: Path) -> tuple[float, int]:
    with open(path, "wb", buffering=256 * 1024) as out:
        began = time.perf_counter()
        events = handwritten.Run(1, START_MS, count, 10.0, out).run()
    return time.perf_counter() - began, events


def measure(count: int, rounds: int) -> dict[str, Any]:
    """`count` chain instances (about 2.4 events each); best of `rounds` in process, median end to end."""
    catalog = chainsim.load_catalog(ROOT / "chains")
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp, "engine.jsonl"), Path(tmp, "hand.jsonl")
        engine_s, hand_s, events = [], [], 0
        for _ in range(rounds):  # alternate, so a noisy neighbour hurts both sides alike
            seconds, events = _engine_in_process(catalog, count, ours)
            engine_s.append(seconds)
            hand_s.append(_handwritten_in_process(count, theirs)[0])
        identical = filecmp.cmp(ours, theirs, shallow=False)
        cli = engine_command("--chains", "chains/", "--count", str(count), "--seed", "1", "--start", START,
                     "--output", str(ours), "-q")
        hand = [PYTHON, str(BENCH / "handwritten.py"), "--count", str(count), "--seed", "1",
                "--start-ms", str(START_MS), "--output", str(theirs)]
        cli_s, hand_cli_s = [], []
        for _ in range(rounds):
            cli_s.append(timed(cli))
            hand_cli_s.append(timed(hand))
        identical = identical and filecmp.cmp(ours, theirs, shallow=False)
    engine_rate, hand_rate = events / min(engine_s), events / min(hand_s)
    cli_rate, hand_cli_rate = events / median(cli_s), events / median(hand_cli_s)
    return {
        "chains": count, "events": events, "identical": identical, "rounds": rounds,
        "engine_events_per_s": engine_rate, "handwritten_events_per_s": hand_rate,
        "ratio": engine_rate / hand_rate,
        "cli_events_per_s": cli_rate, "handwritten_cli_events_per_s": hand_cli_rate,
        "cli_ratio": cli_rate / hand_cli_rate,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    same = "byte-identical output" if result["identical"] else "OUTPUT DIFFERS"
    n = f"{result['events']:,} events, {same}"
    return [
        (f"virtual: events/s in process (best of {result['rounds']})", f"{result['engine_events_per_s']:,.0f}",
         f"{result['handwritten_events_per_s']:,.0f} hand-written", f"**{result['ratio']:.2f}x** ({n}; target >= 1.0)"),
        (f"virtual: events/s CLI incl. start-up (median of {result['rounds']})", f"{result['cli_events_per_s']:,.0f}",
         f"{result['handwritten_cli_events_per_s']:,.0f} hand-written", f"{result['cli_ratio']:.2f}x"),
    ]
