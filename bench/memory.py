"""Memory: peak RSS of a virtual run of N events against one of N/10, written to /dev/null.

A ratio near 1 means memory does not grow with the number of events (finished chain instances are freed).
Peak RSS comes from the child's own rusage (os.wait4), taken by a small launcher that starts it (Linux keeps a
process's peak across fork and exec: a child forked from the bench itself reports at least the bench's size,
which is what this figure showed until 2026-12: 41.9 MiB was the bench's own size, the engine's is about 38).
"""

from __future__ import annotations

from typing import Any

from _common import ONLY_SEVEN, START, engine_command, peak_rss_kib

EVENTS_PER_CHAIN = 2.4  # the seven chains' weighted mean: agent_execution (weight 20) has 4 events, the rest 2


def _run(events: int) -> int:
    chains = max(1, round(events / EVENTS_PER_CHAIN))
    return peak_rss_kib(engine_command("--chains", "chains/", *ONLY_SEVEN, "--count", str(chains), "--seed", "1",
                                       "--start", START, "--output", "/dev/null", "-q"))


def measure(events: int) -> dict[str, Any]:
    small = _run(events // 10)
    large = _run(events)
    return {"events": events, "small_events": events // 10, "peak_rss_kib": large, "small_peak_rss_kib": small,
            "ratio": large / small}


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(f"memory: peak RSS, {result['events']:,} events", f"{result['peak_rss_kib'] / 1024:.1f} MiB",
             f"{result['small_peak_rss_kib'] / 1024:.1f} MiB at {result['small_events']:,} events",
             f"{result['ratio']:.2f}x (1.00 = flat)")]
