"""Wall clock: how late events leave `python -m engine --realtime`, seen by a separate reader process.

The engine writes to a pipe; bench/reader.py timestamps every line on arrival. Arrival rates are given in
events/s and converted to chain starts/s with the chain folder's events per chain.
The engine runs at speed 1 (simulated time is wall time) with Poisson arrivals at the wanted rate; the
reader reports the rate actually offered.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from _common import BENCH, PYTHON, ROOT, SEVEN, START, START_MS, engine_command, run_child

import engine as chainsim

P99_BUDGET_MS = 5.0
RATES = (1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000)
WORKER_RATES = (20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 90_000, 100_000)


def events_per_chain(folder: str, only: tuple[str, ...] = ()) -> float:
    catalog = chainsim.load_catalog(ROOT / folder)
    catalog = catalog.select(only) if only else catalog
    events = chainsim.run_to_list(catalog, chainsim.RunOptions(seed=1, start_ms=START_MS, count=2000, rate=10.0))
    return len(events) / 2000


def run(folder: str, per_chain: float, events_per_s: float, seconds: float, workers: int = 1,
        only: tuple[str, ...] = ()) -> dict[str, Any]:
    """One paced run of about `seconds` at `events_per_s` (with `workers` processes, of the chains `only` names,
    all by default); the reader's figures."""
    starts = events_per_s / per_chain
    speed = 1.0
    count = max(1, round(events_per_s * seconds / per_chain))
    command = engine_command("--chains", folder, *(("--only", ",".join(only)) if only else ()), "--realtime",
                             "--initial", "1", "--count", str(count),
                             "--rate", f"{starts:g}", "--seed", "1", "--workers", str(workers), "-q")
    warmup = min(0.5, seconds / 4)
    producer = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    reader = subprocess.run([PYTHON, str(BENCH / "reader.py"), "--speed", f"{speed:g}", "--warmup", str(warmup)],
                            stdin=producer.stdout, capture_output=True, check=True)
    producer.stdout.close()  # type: ignore[union-attr]
    producer.wait()
    return {"folder": folder, "asked_events_per_s": events_per_s, "speed": speed, **json.loads(reader.stdout)}


def sweep(folder: str, per_chain: float, rates: tuple[int, ...], seconds: float, workers: int) -> dict[str, Any]:
    """Step the rate up until p99 passes the budget; the last step that held is the steady rate.

    A step that misses is run once more: on a shared VM one stall of the host (seen: 20-30 ms, once in a
    few runs, with the engine's collector idle) is enough to miss, at any rate. The table shows both tries.
    """
    steps, steady = [], None
    for rate in rates:
        result = run(folder, per_chain, rate, seconds, workers)
        if result["p99_ms"] > P99_BUDGET_MS:
            retry = run(folder, per_chain, rate, seconds, workers)
            result = {**retry, "missed_first_p99_ms": result["p99_ms"]}
        steps.append(result)
        if result["p99_ms"] > P99_BUDGET_MS:
            break  # higher rates only get later
        steady = result
    return {"workers": workers, "steps": steps,
            "steady_events_per_s": steady["offered_events_per_s"] if steady else 0.0,
            "steady_asked": steady["asked_events_per_s"] if steady else 0}


def capacity(folder: str, per_chain: float, chains: int) -> float:
    """Events/s of the same chains on the virtual clock, this minute, on this machine: the most any
    paced rate could reach in one process. Two runs (chains and 4 x chains), so start-up cancels out."""
    walls = []
    for count in (chains, 4 * chains):
        command = engine_command("--chains", folder, "--count", str(count), "--rate", "10000", "--seed", "1",
                                 "--start", START, "-q", "-o", "/dev/null")
        walls.append(run_child(command).wall_s)
    return 3 * chains * per_chain / max(walls[1] - walls[0], 1e-9)


def measure(smoke: bool) -> dict[str, Any]:
    seconds = 0.4 if smoke else 3.0
    light, seven = "bench/chains", "chains"
    light_per_chain, seven_per_chain = events_per_chain(light), events_per_chain(seven, SEVEN)
    rates = (1_000, 10_000) if smoke else RATES
    one = sweep(light, light_per_chain, rates, seconds, workers=1)
    two = sweep(light, light_per_chain, (10_000,) if smoke else WORKER_RATES, seconds, workers=2)
    at_10k = next((r for r in one["steps"] if r["asked_events_per_s"] == 10_000), None) or run(
        light, light_per_chain, 10_000, seconds)
    virtual = capacity(light, light_per_chain, 500 if smoke else 20_000)
    return {"light_10k": at_10k, "seven_2k": run(seven, seven_per_chain, 2_000, seconds, only=SEVEN),
            "sweeps": [one, two], "light_virtual_events_per_s": virtual}


def _late(result: dict[str, Any]) -> str:
    return f"p50 {result['p50_ms']:.2f} / p99 {result['p99_ms']:.2f} / max {result['max_ms']:.1f} ms"


def _tries(step: dict[str, Any]) -> str:
    first = step.get("missed_first_p99_ms")
    return f"{step['p99_ms']:.1f}" if first is None else f"{first:.1f} then {step['p99_ms']:.1f}"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    light, seven = result["light_10k"], result["seven_2k"]
    table = [
        ("wall clock: lateness, 2-step chain at 10k ev/s", _late(light),
         f"offered {light['offered_events_per_s']:,.0f} ev/s", f"{light['measured']:,} events after warm-up"),
        ("wall clock: lateness, seven chains at 2k ev/s", _late(seven),
         f"offered {seven['offered_events_per_s']:,.0f} ev/s", f"{seven['measured']:,} events after warm-up"),
    ]
    for run_ in result["sweeps"]:
        steps = ", ".join(f"{r['asked_events_per_s'] // 1000}k: p99 {_tries(r)} ms" for r in run_["steps"])
        who = "one process" if run_["workers"] == 1 else f"`--workers {run_['workers']}`"
        table.append((f"wall clock: highest steady rate with p99 <= 5 ms, {who}",
                      f"{run_['steady_events_per_s']:,.0f} ev/s", f"step {run_['steady_asked']:,} ev/s asked", steps))
    virtual = result["light_virtual_events_per_s"]
    one = result["sweeps"][0]["steady_events_per_s"]
    table.append(("wall clock: the 2-step chain on the virtual clock (one process, this run)", f"{virtual:,.0f} ev/s",
                  "the ceiling of any paced rate in one process",
                  f"steady paced rate above = {one / virtual:.0%} of it"))
    return table
