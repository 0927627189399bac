"""The benchmark suite: `python bench/run.py` (full, minutes) or `python bench/run.py --smoke` (seconds).

Prints a markdown table and writes bench/results/latest.json. Every figure is a ratio against a baseline
measured in the same run, or an absolute figure printed beside its baseline: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import features  # noqa: E402
import looplag  # noqa: E402
import memory  # noqa: E402
import scaling  # noqa: E402
import sinks  # noqa: E402
import startup  # noqa: E402
import virtual  # noqa: E402
import wallclock  # noqa: E402
from _common import BENCH  # noqa: E402

# The server's benches print tables of their own (see bench/README.md): run after the suite's, in processes of
# their own, with --smoke in smoke mode.
SERVER_BENCHES = ("delivery.py", "store.py", "queries.py")


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds; asserts nothing about speed")
    parser.add_argument("--memory-events", type=int, help="events of the big memory run (default 1M, smoke 20k)")
    args = parser.parse_args()
    smoke = args.smoke
    began = time.perf_counter()
    # Start every section from bytecode, as an installed package does (see startup.py for why).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(BENCH.parent / "engine")], check=True)
    results = {
        "mode": "smoke" if smoke else "full",
        "machine": machine(),
        "virtual": {**virtual.measure(count=300 if smoke else 10_000, rounds=1 if smoke else 3),
                    "instructions": virtual.instructions(*((5, 10) if smoke else (200, 1000)))},
        "wallclock": wallclock.measure(smoke),
        "looplag": looplag.measure(smoke),
        "features": features.measure(count=300 if smoke else 20_000, rounds=1 if smoke else 3),
        "scaling": scaling.measure(count=300 if smoke else 100_000, rounds=1 if smoke else 5),
        "startup": startup.measure(rounds=1 if smoke else 5),
        "memory": memory.measure(args.memory_events or (20_000 if smoke else 1_000_000)),
        "sinks": sinks.measure(smoke),
    }
    results["seconds"] = time.perf_counter() - began
    table = [("figure", "engine", "baseline (same run)", "ratio / note"), ("---", "---", "---", "---")]
    for module in (virtual, wallclock, looplag, features, scaling, startup, memory, sinks):
        table += module.rows(results[module.__name__])
    m = results["machine"]
    print(f"chainsim bench ({results['mode']}, {results['seconds']:.0f} s): {m['nproc']} cores, {m['cpu']}, "
          f"Python {m['python']}\n")
    print("\n".join(f"| {' | '.join(row)} |" for row in table))
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    for name in SERVER_BENCHES:
        print(f"\n## {name}\n", flush=True)
        subprocess.run([sys.executable, str(BENCH / name), *(["--smoke"] if smoke else [])], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
