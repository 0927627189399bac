"""One timed run in a fresh interpreter: `python bench/_timed_run.py engine|hand COUNT OUTPUT`.

Each side runs in its own process so that nothing one side installs (the engine speeds up Faker's
weighted draws in its process) can reach the other. Set-up (imports, loading the chains, building
Faker) is left out; the run itself is timed, and `{"wall": s, "cpu": s, "events": n}` is printed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, SEVEN, START_MS  # noqa: E402


def main() -> None:
    side, count, output = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    if side == "engine":
        from virtual import FileSink

        import engine as chainsim
        from engine.process import settle_memory

        catalog = chainsim.load_catalog(ROOT / "chains").select(SEVEN)
        sink = FileSink(output)
        simulation = chainsim.Simulation(catalog, chainsim.RunOptions(seed=1, start_ms=START_MS, count=count), sink)
        settle_memory()  # what the CLI does before a run: gc.freeze() and a higher collection threshold
        run = lambda: simulation.run().events  # noqa: E731
    else:
        import handwritten

        out = open(output, "wb", buffering=256 * 1024)  # noqa: SIM115 - closed below
        hand = handwritten.Run(1, START_MS, count, 10.0, out)
        run = hand.run
    wall, cpu = time.perf_counter(), time.process_time()
    events = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"wall": wall, "cpu": cpu, "events": events}))


if __name__ == "__main__":
    main()
