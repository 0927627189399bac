"""What traffic shapes and faults cost: a virtual run of the seven chains with a daily curve, and with every
fault switched on (bench/scenarios/every_fault.yaml, 2% each), against the same run without either, each
through the CLI in a fresh process, alternating, median of the rounds. A plain run must not pay for the
features it does not use: its figure is the virtual-clock section's.
"""

from __future__ import annotations

from typing import Any

from _common import START, engine_command, median, run_child

SEVEN = "agent_execution,code_generation,consul_service,database_query,intelligence_query,metadata_stamping," \
        "vault_secret"
VARIANTS = {
    "plain": (),
    "daily curve": ("--shape", "daily: {peak: 40, weekend: 0.3}"),
    "every fault": ("--scenario", "bench/scenarios/every_fault.yaml"),
}


def measure(count: int, rounds: int) -> dict[str, Any]:
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name, flags in VARIANTS.items():
            command = engine_command("--chains", "chains/", "--only", SEVEN, "--count", str(count), "--seed", "1",
                                     "--start", START, "-q", "-o", "/dev/null", *flags)
            walls[name].append(run_child(command).wall_s)
    result: dict[str, Any] = {"count": count, "rounds": rounds}
    for name in VARIANTS:
        result[name] = median(walls[name])
    return result


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    plain = result["plain"]
    return [(f"features: {name}, {result['count']:,} chains (median of {result['rounds']}, CLI)",
             f"{result[name]:.2f} s", f"{plain:.2f} s without", f"{result[name] / plain:.2f}x the time")
            for name in ("daily curve", "every fault")]
