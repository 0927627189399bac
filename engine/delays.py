"""Delays: a declarative spec compiles once into a sampler called for every step.

Every delay is an integer number of milliseconds within [min, max]: timestamps have millisecond
resolution, so a gap between two events is exactly the delay drawn, and always within its range.
"""

from __future__ import annotations

import math
import re
from random import Random
from typing import Any

import attrs

_UNITS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$")
_REDRAWS = 16  # bounded rejection sampling: then clamp, so a sampler never loops forever


def parse_duration(value: float | int | str) -> float:
    """Milliseconds in a duration: 150 -> 150.0, "1.5s" -> 1500.0, "2m" -> 120000.0."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, found {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration")
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_ms(ms: float) -> str:
    """A compact, human duration: 150 -> '150ms', 1500 -> '1.5s'."""
    if ms >= 1000 and ms % 100 == 0:
        return f"{ms / 1000:g}s"
    return f"{ms:g}ms"


@attrs.frozen
class Delay:
    """A delay distribution, bounded by [low, high] milliseconds."""

    distribution: str  # fixed | uniform | normal | lognormal | exponential
    low: float
    high: float
    mean: float = 0.0
    spread: float = 0.0  # stddev (normal) or sigma (lognormal)

    @classmethod
    def fixed(cls, ms: float) -> Delay:
        return cls("fixed", ms, ms, ms)

    @classmethod
    def from_spec(cls, spec: Any) -> Delay:
        """Build from a schema-valid `delay:` value; ValueError names the problem."""
        if isinstance(spec, list):
            low, high = parse_duration(spec[0]), parse_duration(spec[1])
            if high < low:
                raise ValueError(f"max ({format_ms(high)}) is below min ({format_ms(low)})")
            return cls("uniform", low, high, (low + high) / 2)
        if not isinstance(spec, dict):
            return cls.fixed(parse_duration(spec))
        kind = spec["distribution"]
        low = parse_duration(spec.get("min", 0))
        high = parse_duration(spec["max"])
        if high < low:
            raise ValueError(f"max ({format_ms(high)}) is below min ({format_ms(low)})")
        if kind == "uniform":
            return cls("uniform", low, high, (low + high) / 2)
        if kind == "normal":
            mean, spread = parse_duration(spec["mean"]), parse_duration(spec["stddev"])
        elif kind == "lognormal":
            mean, spread = parse_duration(spec["median"]), float(spec["sigma"])
            if mean <= 0:
                raise ValueError("median of a lognormal delay must be above 0")
        else:
            mean, spread = parse_duration(spec["mean"]), 0.0
            if mean <= 0:
                raise ValueError("mean of an exponential delay must be above 0")
        if not low <= mean <= high:
            what = "median" if kind == "lognormal" else "mean"
            raise ValueError(
                f"{what} ({format_ms(mean)}) is outside [min, max] ({format_ms(low)}, {format_ms(high)})"
            )
        return cls(kind, low, high, mean, spread)

    def describe(self) -> str:
        if self.distribution == "fixed":
            return format_ms(self.low)
        if self.distribution == "uniform":
            return f"{format_ms(self.low)}-{format_ms(self.high)}"
        return f"{self.distribution} {format_ms(self.low)}-{format_ms(self.high)}"

    @property
    def bounds(self) -> tuple[int, int]:
        """The integer millisecond range every draw falls in."""
        low, high = math.ceil(self.low), math.floor(self.high)
        return (low, max(low, high))

    def sampler(self) -> Any:
        """A function rng -> int milliseconds, built once; the per-step hot path calls only this."""
        low, high = self.bounds
        kind = self.distribution
        if kind == "fixed" or low == high:
            return lambda rng: low
        if kind == "uniform":
            return _uniform(low, high)
        if kind == "normal":
            mu, sigma = self.mean, self.spread
            return _bounded(lambda rng: rng.gauss(mu, sigma), low, high)
        if kind == "lognormal":
            mu, sigma = math.log(self.mean), self.spread
            return _bounded(lambda rng: rng.lognormvariate(mu, sigma), low, high)
        rate = 1.0 / self.mean
        return _bounded(lambda rng: rng.expovariate(rate), low, high)


def _uniform(low: int, high: int) -> Any:
    """`rng.randint(low, high)`, the same draws without its three layers of calls: CPython's rejection
    sampling on getrandbits (`Random._randbelow_with_getrandbits`), written out once."""
    width = high - low + 1
    bits = width.bit_length()

    def sample(rng: Random) -> int:
        value = rng.getrandbits(bits)
        while value >= width:
            value = rng.getrandbits(bits)
        return low + value

    return sample


def _bounded(draw: Any, low: int, high: int) -> Any:
    def sample(rng: Random) -> int:
        for _ in range(_REDRAWS):
            value = round(draw(rng))
            if low <= value <= high:
                return value
        return min(max(value, low), high)

    return sample
