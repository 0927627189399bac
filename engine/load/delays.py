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

_UNITS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$")
MAX_DELAY_MS = 366 * 86_400_000  # the longest delay (and bound of a distribution): 366 days
_REDRAWS = 16  # bounded rejection sampling: then clamp, so a sampler never loops forever


def parse_duration(value: float | int | str) -> float:
    """Milliseconds in a duration: 150 -> 150.0, "1.5s" -> 1500.0, "2m" -> 120000.0, "1d" -> 86400000.0.

    ValueError for anything else, a negative, a NaN or an infinite duration included.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, found {value!r}")
    if isinstance(value, int | float):
        ms = float(value)
    else:
        match = _DURATION.match(value.strip())
        if not match:
            raise ValueError(f"{value!r} is not a duration")
        ms = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(ms) or ms < 0:
        raise ValueError(f"{value!r} is not a duration")
    return ms


def format_ms(ms: float) -> str:
    """A compact, human duration: 150 -> '150ms', 1500 -> '1.5s'."""
    if ms >= 1000 and ms % 100 == 0:
        return f"{ms / 1000:g}s"
    return f"{ms:g}ms"


def written(value: Any) -> str:
    """A duration as the author wrote it: "5m" stays 5m, 1500 (milliseconds) is 1500ms."""
    return value.strip() if isinstance(value, str) else f"{value:g}ms"


class DelayProblem(ValueError):
    """A delay that cannot be: `key` is the key of the spec it is about ("" for the delay as a whole), and
    `kind` names its hint in the table (`("model", kind)`)."""

    def __init__(self, message: str, key: str, kind: str) -> None:
        super().__init__(message)
        self.key, self.kind = key, kind


@attrs.frozen
class Delay:
    """A delay distribution, bounded by [low, high] milliseconds."""

    distribution: str  # fixed | uniform | normal | lognormal | exponential | computed
    low: float
    high: float
    mean: float = 0.0
    spread: float = 0.0  # stddev (normal) or sigma (lognormal)
    text: tuple[str, str] = ("", "")  # min and max as the author wrote them (for `list`)
    template: str = ""  # a computed delay's template (compiled with the chain's templates)

    @classmethod
    def fixed(cls, ms: float, text: str = "") -> Delay:
        return cls("fixed", ms, ms, ms, text=(text or format_ms(ms), text or format_ms(ms)))

    @classmethod
    def from_spec(cls, spec: Any) -> Delay:
        """Build from a schema-valid `delay:` value; ValueError names the problem."""
        if isinstance(spec, list):
            low, high = _bounded_duration(spec[0], "min"), _bounded_duration(spec[1], "max")
            if high < low:
                raise DelayProblem(f"max ({format_ms(high)}) is below min ({format_ms(low)})", "", "delay range")
            return cls("uniform", low, high, (low + high) / 2, text=(written(spec[0]), written(spec[1])))
        if not isinstance(spec, dict):
            return cls.fixed(_bounded_duration(spec, "delay"), written(spec))
        if "template" in spec:
            low, high = _bounded_duration(spec.get("min", 0), "min"), _bounded_duration(spec["max"], "max")
            if high < low:
                raise DelayProblem(f"max ({format_ms(high)}) is below min ({format_ms(low)})", "max", "delay max")
            return cls("computed", low, high, text=(written(spec.get("min", 0)), written(spec["max"])),
                       template=spec["template"])
        kind = spec["distribution"]
        low = _bounded_duration(spec.get("min", 0), "min")
        high = _bounded_duration(spec["max"], "max")
        text = (written(spec.get("min", 0)), written(spec["max"]))
        if high < low:
            raise DelayProblem(f"max ({format_ms(high)}) is below min ({format_ms(low)})", "max", "delay max")
        if kind == "uniform":
            return cls("uniform", low, high, (low + high) / 2, text=text)
        if kind == "normal":
            mean, spread = _bounded_duration(spec["mean"], "mean"), _bounded_duration(spec["stddev"], "stddev")
        elif kind == "lognormal":
            mean, spread = _bounded_duration(spec["median"], "median"), float(spec["sigma"])
            if mean <= 0:
                raise DelayProblem("median of a lognormal delay must be above 0", "median", "delay median")
        else:
            mean, spread = _bounded_duration(spec["mean"], "mean"), 0.0
            if mean <= 0:
                raise DelayProblem("mean of an exponential delay must be above 0", "mean", "delay mean")
        if not low <= mean <= high:
            what = "median" if kind == "lognormal" else "mean"
            raise DelayProblem(
                f"{what} ({format_ms(mean)}) is outside [min, max] ({format_ms(low)}, {format_ms(high)})",
                what, f"delay {what}")
        return cls(kind, low, high, mean, spread, text=text)

    def describe(self) -> str:
        """The delay as the author wrote its bounds: `5m`, `50ms-150ms`, `lognormal 500ms-10s`."""
        low, high = self.text if self.text[0] else (format_ms(self.low), format_ms(self.high))
        if self.distribution == "fixed":
            return low
        if self.distribution == "uniform":
            return f"{low}-{high}"
        return f"{self.distribution} {low}-{high}"

    @property
    def bounds(self) -> tuple[int, int]:
        """The integer millisecond range every draw falls in."""
        low, high = math.ceil(self.low), math.floor(self.high)
        return (low, max(low, high))

    def scaled(self, factor: float) -> Delay:
        """The delay with every draw `factor` times longer (a scenario's `scale`): the same law, stretched."""
        spread = self.spread if self.distribution == "lognormal" else self.spread * factor
        low, high = self.low * factor, self.high * factor
        return attrs.evolve(self, low=low, high=high, mean=self.mean * factor, spread=spread,
                            text=(format_ms(low), format_ms(high)))

    def clamp(self, ms: float) -> int:
        """A computed delay's result, as whole milliseconds within [min, max]."""
        low, high = self.bounds
        return min(max(round(ms), low), high)

    def sampler(self) -> Any:
        """A function rng -> int milliseconds, built once; the per-step hot path calls only this. (A computed
        delay has none: the interpreter renders its template, then clamps the result.)"""
        low, high = self.bounds
        kind = self.distribution
        if kind == "computed":
            return lambda rng: low
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


def _bounded_duration(value: Any, what: str) -> float:
    ms = parse_duration(value)
    if ms > MAX_DELAY_MS:
        raise DelayProblem(f"{what} ({written(value)}) is longer than the longest delay, 366 days",
                           "" if what == "delay" else what, "delay too long")
    return ms


def _bounded(draw: Any, low: int, high: int) -> Any:
    def sample(rng: Random) -> int:
        value = low
        for _ in range(_REDRAWS):
            try:
                value = round(draw(rng))
            except OverflowError:  # a draw beyond any float (a wide lognormal): far above max
                value = high
                continue
            if low <= value <= high:
                return value
        return min(max(value, low), high)

    return sample
