"""What a caller asks of a run, over a scenario's run settings, resolved into RunOptions: one set of rules for
the command line's flags and the Python API's arguments (a setting given by the caller wins over the
scenario's; the caller's arrivals replace the scenario's)."""

from __future__ import annotations

import random
import time
from typing import Any

import attrs

from ..envelope.fields import FIRST_MS, LAST_MS, parse_timestamp
from ..errors import UsageError
from ..load.delays import parse_duration
from .options import RunOptions

DEV_INITIAL, DEV_INTERVAL = 20, "5s"  # development mode: the seed's 20 chains at once, then one every 5 s
MIN_INTERVAL_MS, MAX_RATE = 0.001, 1_000_000.0


@attrs.frozen
class Settings:
    """A run's settings as a caller gives them; None: not given (the scenario's, else the default)."""

    seed: int | None = None
    start: str | int | None = None  # RFC 3339 text, or epoch milliseconds
    count: int | None = None
    duration_ms: float | None = None
    rate: float | str | None = None
    interval_ms: float | None = None
    shape: dict[str, Any] | None = None
    initial: int | None = None
    realtime: bool = False
    speed: float | None = None
    shard: tuple[int, int] | None = None
    only: tuple[str, ...] = ()


def resolve(given: Settings, scenario_run: dict[str, Any] | None = None, scripted: bool = False,
            development: bool = True, prefix: str = "--") -> RunOptions:
    """RunOptions from the caller's settings over a scenario's `run:` (with `scripted` starts). Without a count
    or a duration the run has no end: in `development` (the command line) it runs on the wall clock with the
    seed's mode, else it is a UsageError. `prefix` names settings in messages (`--rate`, or `rate`)."""
    base = dict(scenario_run or {})
    if given.rate is not None or given.interval_ms is not None or given.shape is not None:
        base = {key: value for key, value in base.items() if key not in ("rate", "interval", "shape")}
    rate = given.rate if given.rate is not None else base.get("rate")
    interval = given.interval_ms if given.interval_ms is not None else _ms(base.get("interval"))
    shape = given.shape if given.shape is not None else base.get("shape")
    if sum(value is not None for value in (rate, interval, shape)) > 1:
        raise UsageError(f"give {prefix}rate (Poisson arrivals), {prefix}interval (fixed gap) or {prefix}shape, "
                         "not more than one")
    # Above a million chain starts per second, arrivals would stop moving simulated time forward.
    if interval is not None and interval < MIN_INTERVAL_MS:
        raise UsageError(f"{prefix}interval must be at least {MIN_INTERVAL_MS * 1000:g} µs (a million chains "
                         "per second)")
    if isinstance(rate, int | float) and rate > MAX_RATE:
        raise UsageError(f"{prefix}rate must be at most {MAX_RATE:,.0f} chain starts per second")
    count = given.count if given.count is not None else base.get("count")
    duration = given.duration_ms if given.duration_ms is not None else _ms(base.get("duration"))
    script_only = scripted and rate is None and interval is None and shape is None
    finite = count is not None or duration is not None or script_only or (shape is not None and "stages" in shape)
    if not finite and not development:
        raise UsageError(f"give {prefix}count or {prefix}duration: the run would never end")
    seed = given.seed if given.seed is not None else base.get("seed")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    realtime = given.realtime or not finite
    start_ms = _start_ms(given.start if given.start is not None else base.get("start"), prefix)
    if rate is None and interval is None and shape is None and not script_only and not finite:
        interval = parse_duration(DEV_INTERVAL)
    initial = given.initial if given.initial is not None else base.get("initial", 1 if finite else DEV_INITIAL)
    if given.speed is not None and not realtime:
        raise UsageError(f"{prefix}speed paces the wall clock: add {prefix}realtime (a {prefix}count run is in "
                         "virtual time)")
    return RunOptions(seed=seed, start_ms=start_ms, count=count, rate=rate, interval_ms=interval,
                      initial=initial, realtime=realtime, speed=given.speed or 1.0,
                      duration_ms=None if duration is None else round(duration), shard=given.shard or (0, 1),
                      only=given.only, shape=shape)


def _ms(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


def _start_ms(start: str | int | None, prefix: str) -> int:
    if start is None:
        return int(time.time() * 1000)
    if isinstance(start, int) and not isinstance(start, bool):
        start_ms = start
    else:
        try:
            start_ms = parse_timestamp(str(start))
        except (ValueError, OverflowError):
            raise UsageError(f"{prefix}start {start!r} is not an ISO 8601 time, e.g. 2026-01-01T00:00:00Z") from None
    if not FIRST_MS <= start_ms <= LAST_MS:
        raise UsageError(f"{prefix}start {start!r} is outside the years 1000 to 9999 (RFC 3339 timestamps)")
    return start_ms
