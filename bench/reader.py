"""Reads JSON lines on stdin, notes when each arrives (time.time()), and prints how late they were.

An event is due at the wall time its `timestamp` stands for: with `--realtime`, `--initial 1` and no
`--start`, the run starts at "now" with a chain, so the first event's timestamp is the run's start; with
`--speed S`, simulated time runs S times faster, so an event t ms after the first is due t / S ms after it.
Lateness is arrival minus due, less the clock offset (the smallest lateness seen, below 1 ms: the start
is a whole millisecond, and no event can leave early). Events due in the first `--warmup` seconds are left out
(start-up, not steady state).

    python -m engine --chains bench/chains --realtime --count 10000 --rate 100 --speed 10 -q \
        | python bench/reader.py --speed 10
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import sys
import time

MARK = b'"timestamp":"'


def epoch_ms(stamp: bytes, seconds: dict[bytes, int]) -> int:
    """Epoch milliseconds of b'2026-01-01T00:00:00.150Z' (the seconds part cached)."""
    prefix = stamp[:19]
    if prefix not in seconds:
        seconds[prefix] = calendar.timegm(time.strptime(prefix.decode(), "%Y-%m-%dT%H:%M:%S"))
    return seconds[prefix] * 1000 + int(stamp[20:23])


def read(fd: int) -> list[tuple[float, bytes]]:
    """Every chunk read from fd with its arrival time; only the minimum of work while the run lasts."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append((time.time(), chunk))
    return chunks


def lateness(chunks: list[tuple[float, bytes]], speed: float, warmup: float) -> dict[str, float]:
    arrivals, stamps, seconds, rest = [], [], {}, b""
    for arrived, chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()  # a line is complete only when its newline has arrived
        for line in lines:
            at = line.index(MARK) + len(MARK)
            arrivals.append(arrived)
            stamps.append(epoch_ms(line[at:at + 24], seconds))
    if not stamps:
        return {"events": 0}
    first = stamps[0]
    due = [first / 1000 + (stamp - first) / 1000 / speed for stamp in stamps]
    raw = [(arrival - when) * 1000 for arrival, when in zip(arrivals, due, strict=True)]
    # The engine stamps its start (whole ms of time.time()) a little before its clock starts: no event
    # can leave before it is due, so the smallest lateness is that offset, not lateness.
    offset = min(raw)
    late = sorted(ms - offset for ms, when in zip(raw, due, strict=True) if when >= due[0] + warmup)
    span = due[-1] - due[0]
    pick = lambda fraction: late[min(len(late) - 1, round(fraction * len(late)))]  # noqa: E731
    return {
        "events": len(stamps), "measured": len(late), "offered_events_per_s": len(stamps) / span if span else 0.0,
        "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": late[-1], "offset_ms": offset,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=1.0, help="the engine's --speed")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds at the start left out")
    args = parser.parse_args()
    print(json.dumps(lateness(read(sys.stdin.fileno()), args.speed, args.warmup)))


if __name__ == "__main__":
    main()
