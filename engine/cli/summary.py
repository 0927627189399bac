"""The end-of-run summary on stderr: one line, then events by type and chains by outcome."""

from __future__ import annotations

from ..envelope.fields import LAST_MS, format_timestamp
from ..hints import hint
from ..run.options import RunOptions, Stats


def summary(stats: Stats, options: RunOptions, seconds: float, verbose: bool = True) -> str:
    clock = f"wall clock x{options.speed:g}" if options.realtime else "virtual clock"
    line = (
        f"chainsim: {stats.events} events from {stats.started} chains "
        f"({stats.finished} finished, {stats.in_flight} in flight) in {seconds:.2f} s; "
        f"seed {options.seed}, start {format_timestamp(options.start_ms)}, {clock}"
    )
    if stats.end_of_time:
        line += (f"\nchainsim: the run stopped at {format_timestamp(LAST_MS)}, the last RFC 3339 time, "
                 f"with events still to come\n  hint: {hint('run', 'end of time')}")
    if stats.faults:
        injected = ", ".join(f"{count} {kind}" for kind, count in sorted(stats.faults.items()))
        line += f"\nfaults injected: {injected}"
    if not verbose or not stats.events:
        return line
    lines = [line, "events by type:"]
    width = len(str(max(stats.by_type.values())))
    for event_type, count in sorted(stats.by_type.items()):
        lines.append(f"  {count:>{width}}  {event_type}")
    if stats.by_outcome:
        lines.append("chains by outcome:")
        width = len(str(max(stats.by_outcome.values())))
        for (chain, outcome), count in sorted(stats.by_outcome.items()):
            lines.append(f"  {count:>{width}}  {chain}: {outcome}")
    return "\n".join(lines)
