"""Traffic shapes: arrival rates that change with simulated time, as arrival processes (engine/run/arrivals.py).

A shape is a rate function of the time since the run's start, with an upper bound that holds until a given
time. `Shaped` draws a non-homogeneous Poisson process from it, exactly and seeded, by thinning (Lewis and
Shedler): candidates come at the bound's rate and each is kept with probability rate / bound. The shapes:

    constant  {rate}                       one chain every 1/rate seconds (not random)
    poisson   {rate}                       Poisson arrivals at a constant rate
    ramp      {from, to, over}             from one rate to another, linearly, then stays at `to`
    stages    [{rate, for}, ...]           each rate for its time, then the next; no arrivals after the last
    bursts    {rate, on, off, base}        `rate` for `on`, then `base` (default 0) for `off`, again and again
    daily     {peak, night, weekend, hours, utc_offset}
                                           a day's curve: quiet night, busy afternoon (or 24 hourly weights);
                                           weekends scaled by `weekend`

A rate is chain starts per second (a number, or "10/s", "600/min", "10 chains/s") or events per second
("500 events/s"), turned into chain starts with the catalog's mean events per chain.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Sequence
from random import Random
from typing import Any, Protocol

from ..load.delays import parse_duration
from .arrivals import Arrival, ChainMix

_RATE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)\s*(chains?|events?)?\s*"
                   r"(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_PER = {None: 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0,
        "hour": 3600.0}
_DAY_MS, _HOUR_MS = 86_400_000, 3_600_000
# The default daily curve, relative to the peak, hour by hour (UTC unless utc_offset): a quiet night, a
# morning rise, a busy early afternoon, an evening fall.
DAILY_HOURS = (0.06, 0.04, 0.03, 0.03, 0.04, 0.08, 0.18, 0.35, 0.6, 0.8, 0.9, 0.95,
               0.97, 1.0, 1.0, 0.97, 0.9, 0.78, 0.62, 0.48, 0.36, 0.25, 0.16, 0.1)
_NEVER = math.inf


class RateError(ValueError):
    """A rate that cannot be read."""


def parse_rate(value: Any, events_per_chain: Callable[[], float]) -> float:
    """Chain starts per second in a rate: 10, "10/s", "600/min", "500 events/s" (with the catalog's mean events
    per chain, asked for only when events are given)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        rate = float(value)
        unit, per = None, None
    else:
        match = _RATE.match(str(value))
        if match is None:
            raise RateError(f"{value!r} is not a rate")
        rate, unit, per = float(match.group(1)), match.group(2), match.group(3)
    rate /= _PER[per]
    if unit and unit.startswith("event"):
        rate /= events_per_chain()
    if not math.isfinite(rate) or rate < 0:
        raise RateError(f"{value!r} is not a rate")
    return rate


class Shape(Protocol):
    """A rate of chain starts per second as a function of the milliseconds since the run's start."""

    def rate(self, t: float) -> float: ...

    def bound(self, t: float) -> tuple[float, float]:
        """(a rate the shape stays at or below from t on, until when that holds); until may be infinite."""
        ...


class Constant:
    def __init__(self, rate: float) -> None:
        self.value = rate

    def rate(self, t: float) -> float:
        return self.value

    def bound(self, t: float) -> tuple[float, float]:
        return self.value, _NEVER


class Ramp:
    """`start` to `end` over `over_ms`, in pieces of a twentieth of it for tight bounds; then `end`."""

    def __init__(self, start: float, end: float, over_ms: float) -> None:
        self.start, self.end, self.over = start, end, max(over_ms, 1.0)
        self.piece = self.over / 20

    def rate(self, t: float) -> float:
        if t >= self.over:
            return self.end
        return self.start + (self.end - self.start) * max(t, 0.0) / self.over

    def bound(self, t: float) -> tuple[float, float]:
        if t >= self.over:
            return self.end, _NEVER
        until = min(self.over, (math.floor(t / self.piece) + 1) * self.piece)
        return max(self.rate(t), self.rate(until)), until


class Stages:
    """Each (rate, duration) in turn; no arrivals after the last."""

    def __init__(self, stages: Sequence[tuple[float, float]]) -> None:
        self.rates = [rate for rate, _ in stages]
        self.ends: list[float] = []
        total = 0.0
        for _, duration in stages:
            total += duration
            self.ends.append(total)

    def _stage(self, t: float) -> int:
        return bisect.bisect_right(self.ends, t)

    def rate(self, t: float) -> float:
        stage = self._stage(t)
        return self.rates[stage] if stage < len(self.rates) else 0.0

    def bound(self, t: float) -> tuple[float, float]:
        stage = self._stage(t)
        if stage >= len(self.rates):
            return 0.0, _NEVER
        return self.rates[stage], self.ends[stage]


class Bursts:
    """`rate` for `on_ms`, then `base` for `off_ms`, repeating from the start."""

    def __init__(self, rate: float, on_ms: float, off_ms: float, base: float = 0.0) -> None:
        self.high, self.on, self.off, self.base = rate, on_ms, off_ms, base
        self.period = on_ms + off_ms

    def rate(self, t: float) -> float:
        return self.high if (t % self.period) < self.on else self.base

    def bound(self, t: float) -> tuple[float, float]:
        cycle = math.floor(t / self.period) * self.period
        if t - cycle < self.on:
            return self.high, cycle + self.on
        return self.base, cycle + self.period


class Daily:
    """A day's curve hour by hour (linear between the hours), in the run's calendar: `start_ms` is the run's
    start (epoch ms), `utc_offset_h` the local time's offset; Saturdays and Sundays are scaled by `weekend`."""

    def __init__(self, peak: float, start_ms: int, hours: Sequence[float] = DAILY_HOURS, weekend: float = 1.0,
                 utc_offset_h: float = 0.0) -> None:
        top = max(hours) or 1.0
        self.levels = [peak * h / top for h in hours]
        self.weekend, self.start = weekend, start_ms + utc_offset_h * _HOUR_MS

    def _local(self, t: float) -> float:
        return self.start + t

    def rate(self, t: float) -> float:
        local = self._local(t)
        hour, into = divmod(local % _DAY_MS, _HOUR_MS)
        level = self.levels[int(hour)] + (self.levels[(int(hour) + 1) % 24] - self.levels[int(hour)]) * into / _HOUR_MS
        return level * self._day_factor(local)

    def _day_factor(self, local: float) -> float:
        weekday = (math.floor(local / _DAY_MS) + 3) % 7  # 1970-01-01 was a Thursday: 0 is Monday
        return self.weekend if weekday >= 5 else 1.0

    def bound(self, t: float) -> tuple[float, float]:
        local = self._local(t)
        hour = int((local % _DAY_MS) // _HOUR_MS)
        until = t + (_HOUR_MS - local % _HOUR_MS)
        factor = self._day_factor(local)
        return max(self.levels[hour], self.levels[(hour + 1) % 24]) * factor, until


class Shaped:
    """Arrivals of a shape: a non-homogeneous Poisson process by thinning (or, for `constant`, evenly spaced),
    after `initial` chains at the start; each chain drawn from the mix. Exact and seeded by `rng`."""

    def __init__(self, shape: Shape, mix: ChainMix, rng: Random, start: int, initial: int = 0,
                 even: bool = False) -> None:
        self.shape, self.mix, self.rng, self.start = shape, mix, rng, start
        self.burst, self.even = initial, even
        self.t = 0.0  # ms since the start of the last arrival (or candidate)

    def next(self) -> Arrival | None:
        rng = self.rng
        if self.burst:
            self.burst -= 1
            return Arrival(float(self.start), self.mix.pick(rng))
        shape, t = self.shape, self.t
        while True:
            ceiling, until = shape.bound(t)
            if ceiling <= 0.0:
                if until == _NEVER:
                    return None
                t = until
                continue
            if self.even:  # constant: exactly one arrival per 1/rate
                t += 1000.0 / ceiling
                break
            gap = rng.expovariate(ceiling / 1000.0)
            if t + gap > until:
                t = until
                continue
            t += gap
            if rng.random() * ceiling <= shape.rate(t):
                break
        self.t = t
        return Arrival(self.start + t, self.mix.pick(rng))


def shape_of(spec: dict[str, Any], start_ms: int, events_per_chain: Callable[[], float]) -> tuple[Shape, bool]:
    """The shape of a schema-valid spec ({ramp: {...}}, {daily: {...}}...), and whether arrivals are even."""
    kind, body = next(iter(spec.items()))

    def rate(value: Any) -> float:
        return parse_rate(value, events_per_chain)

    if kind == "constant":
        return Constant(rate(body["rate"])), True
    if kind == "poisson":
        return Constant(rate(body["rate"])), False
    if kind == "ramp":
        return Ramp(rate(body["from"]), rate(body["to"]), parse_duration(body["over"])), False
    if kind == "stages":
        return Stages([(rate(stage["rate"]), parse_duration(stage["for"])) for stage in body]), False
    if kind == "bursts":
        return Bursts(rate(body["rate"]), parse_duration(body["on"]), parse_duration(body["off"]),
                      rate(body.get("base", 0))), False
    hours = body.get("hours", DAILY_HOURS)
    return Daily(rate(body["peak"]), start_ms, hours, float(body.get("weekend", 1.0)),
                 float(body.get("utc_offset", 0.0))), False
