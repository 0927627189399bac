"""The asyncio clock: how long an event loop is held up while a run generates inside it.

A probe task sleeps 1 ms at a time and notes how late it wakes (the loop's lag). The baseline is the same
probe in an idle loop, in the same process and the same run; then the 2-step chain (bench/chains/ping.yaml)
runs with `Simulation.run_async()` on the wall clock at 10,000 events/s (the clock awaits between events),
and as fast as it can (speed 1e6: always behind, so the clock hands the loop back every 2 ms). A subprocess
per measurement keeps the other sections' state out.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from _common import PYTHON, ROOT, START_MS

SCRIPT = """
import asyncio, json, sys, time
import engine as chainsim
from engine.sinks import SinkBase

class Null(SinkBase):
    def write(self, event, line):
        pass

def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else 0.0

async def probe(lags, until):
    while time.monotonic() < until:
        asked = time.monotonic()
        await asyncio.sleep(0.001)
        lags.append(time.monotonic() - asked - 0.001)

async def main(events_per_s, speed, seconds):
    lags = []
    if events_per_s == 0:  # the idle loop
        await probe(lags, time.monotonic() + seconds)
        return {"lags": lags, "events": 0}
    catalog = chainsim.load_catalog(sys.argv[1])
    count = int(events_per_s * seconds / 2)
    options = chainsim.RunOptions(seed=1, start_ms=START_MS, count=count, rate=events_per_s / 2, realtime=True,
                                  speed=speed)
    simulation = chainsim.Simulation(catalog, options, Null())
    task = asyncio.create_task(probe(lags, float("inf")))
    began = time.monotonic()
    stats = await simulation.run_async()
    elapsed = time.monotonic() - began
    task.cancel()
    return {"lags": lags, "events": stats.events, "seconds": elapsed}

START_MS = int(sys.argv[2])
result = asyncio.run(main(float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])))
lags = result.pop("lags")
result.update(p50=percentile(lags, 0.5), p99=percentile(lags, 0.99), max=max(lags, default=0) * 1000,
              wakes=len(lags))
print(json.dumps(result))
"""


def _measure(events_per_s: float, speed: float, seconds: float) -> dict[str, Any]:
    output = subprocess.run([PYTHON, "-c", SCRIPT, str(ROOT / "bench" / "chains"), str(START_MS), str(events_per_s),
                             str(speed), str(seconds)], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def measure(smoke: bool) -> dict[str, Any]:
    seconds = 0.5 if smoke else 3.0
    return {
        "idle": _measure(0, 1.0, seconds),
        "paced": _measure(2_000 if smoke else 10_000, 1.0, seconds),
        "behind": _measure(20_000 if smoke else 200_000, 1e6, seconds),
    }


def _lag(figures: dict[str, Any]) -> str:
    return f"p50 {figures['p50']:.2f} / p99 {figures['p99']:.2f} / max {figures['max']:.1f} ms"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    idle, paced, behind = result["idle"], result["paced"], result["behind"]
    rate = behind["events"] / behind["seconds"] if behind.get("seconds") else 0.0
    return [
        ("asyncio clock: event-loop lag while pacing the 2-step chain at "
         f"{paced['events'] / max(paced['seconds'], 1e-9):,.0f} ev/s", _lag(paced), f"idle loop {_lag(idle)}",
         f"{paced['wakes']} wake-ups of a 1 ms sleep"),
        (f"asyncio clock: event-loop lag while running behind ({rate:,.0f} ev/s, as fast as it can)", _lag(behind),
         f"idle loop {_lag(idle)}", "the clock hands the loop back every 2 ms"),
    ]
