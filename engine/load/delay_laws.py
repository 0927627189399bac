"""What a delay's sampler returns, as a law: its mean, its distribution function, its values (`Delay.sampler`
in delays.py draws whole milliseconds, redrawing up to REDRAWS times outside [min, max], then clamping).

`expect.py` adds these up over a chain's paths. They are exact for fixed and uniform delays; for normal,
lognormal and exponential ones they come from the continuous law's closed forms, with the lowest milliseconds
(and laws on few of them) summed draw by draw: within 0.001 ms of the sampler's exact law.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from .delays import _REDRAWS as REDRAWS  # how often a bounded sampler draws before it clamps
from .delays import Delay

_TAIL = 8.0  # standard deviations (of the log for lognormal) beyond which a law's mass is below 1e-15
_EXACT_SPAN = 256  # integers a delay's mass lies on, at most, for its mean to be summed draw by draw
_EXACT_EDGE = 64  # otherwise the lowest integers are summed draw by draw, where a density may be steep


def delay_mean(delay: Delay | None) -> float:
    """The mean of what the delay's sampler returns, in milliseconds: whole-millisecond draws, at most REDRAWS of
    them outside [min, max] before the last is clamped to the nearer bound."""
    if delay is None:
        return 0.0
    constant = fixed_value(delay)
    if constant is not None:
        return float(constant)
    low, high = delay.bounds
    if delay.distribution == "uniform":
        return (low + high) / 2
    law = _Law.of(delay)
    below, above, inside = law.split(low, high)
    kept, clamped = _kept(inside)
    return (kept / inside * law.rounded_partial(low, high) if inside > 0 else 0.0) + clamped * (
        low * below + high * above)


def delay_cdf(delay: Delay | None) -> Callable[[int], float]:
    """The distribution function of what the delay's sampler returns: t -> P(draw <= t milliseconds)."""
    low, high = delay.bounds if delay is not None else (0, 0)
    constant = fixed_value(delay)
    if constant is not None:
        return lambda t: 1.0 if t >= constant else 0.0
    assert delay is not None
    if delay.distribution == "uniform":
        return lambda t: 0.0 if t < low else 1.0 if t >= high else (t - low + 1) / (high - low + 1)
    law = _Law.of(delay)
    below, _, inside = law.split(low, high)
    kept, clamped = _kept(inside)
    scale, cdf, start = kept / inside if inside > 0 else 0.0, law.cdf, law.cdf(low - 0.5)
    return lambda t: 0.0 if t < low else 1.0 if t >= high else (
        scale * max(0.0, cdf(t + 0.5) - start) + clamped * below)


def pmf(delay: Delay | None) -> dict[int, float]:
    """Each value a delay's sampler returns, with its probability (for delays of few values)."""
    low, high = delay.bounds if delay is not None else (0, 0)
    cdf = delay_cdf(delay)
    return {k: cdf(k) - cdf(k - 1) for k in range(low, high + 1)}


def fixed_value(delay: Delay | None) -> int | None:
    """The one value a delay's sampler returns, if it returns one only."""
    if delay is None:
        return 0
    low, high = delay.bounds
    if delay.distribution == "fixed" or low == high:
        return low
    if delay.distribution == "normal" and delay.spread == 0:
        return min(max(round(delay.mean), low), high)  # every draw is the mean, rounded; clamped if outside
    return None


def _kept(inside: float) -> tuple[float, float]:
    """(chance a draw within bounds is kept before the clamp, chance of REDRAWS - 1 misses before the last)."""
    if inside >= 1.0:
        return 1.0, 0.0
    miss = math.log1p(-inside)
    return -math.expm1(REDRAWS * miss), math.exp((REDRAWS - 1) * miss)


class _Law(NamedTuple):
    """A continuous law X: the sampler draws round(X)."""

    cdf: Callable[[float], float]  # P(X <= x)
    survival: Callable[[float], float]  # P(X > x), precise in the upper tail
    partial: Callable[[float], float]  # E[X; X <= x]
    window: tuple[float, float]  # X lies outside with probability below 1e-15

    @classmethod
    def of(cls, delay: Delay) -> _Law:  # a NamedTuple: an attrs class would cost validate ~0.5 ms to define
        if delay.distribution == "normal":
            mu, sigma = delay.mean, delay.spread
            return cls(lambda x: _phi_cdf((x - mu) / sigma), lambda x: _phi_cdf((mu - x) / sigma),
                       lambda x: mu * _phi_cdf((x - mu) / sigma) - sigma * _phi((x - mu) / sigma),
                       (mu - _TAIL * sigma, mu + _TAIL * sigma))
        if delay.distribution == "lognormal":
            m, s = math.log(delay.mean), delay.spread
            scale = math.exp(m + s * s / 2)
            z = lambda x: (math.log(x) - m) / s if x > 0 else -math.inf  # noqa: E731
            return cls(lambda x: _phi_cdf(z(x)), lambda x: _phi_cdf(-z(x)),
                       lambda x: scale * _phi_cdf(z(x) - s),
                       (math.exp(m - _TAIL * s), math.exp(min(m + _TAIL * s, 700.0))))
        mean = delay.mean  # exponential
        return cls(lambda x: -math.expm1(-x / mean) if x > 0 else 0.0,
                   lambda x: math.exp(-x / mean) if x > 0 else 1.0,
                   lambda x: mean - (x + mean) * math.exp(-x / mean) if x > 0 else 0.0,
                   (0.0, 36.0 * mean))

    def between(self, a: float, b: float) -> float:
        """P(a < X <= b), from whichever tail keeps its precision."""
        if self.cdf(b) < 0.5:
            return max(0.0, self.cdf(b) - self.cdf(a))
        return max(0.0, self.survival(a) - self.survival(b))

    def split(self, low: int, high: int) -> tuple[float, float, float]:
        """P(a draw is below low), P(above high), P(within): round(X) against [low, high]."""
        return self.cdf(low - 0.5), self.survival(high + 0.5), self.between(low - 0.5, high + 0.5)

    def rounded_partial(self, low: int, high: int) -> float:
        """E[round(X); low <= round(X) <= high]: summed draw by draw where the mass lies on few integers or a
        density may be steep (its lowest integers), by the integral of X elsewhere (rounding's error there is
        far below 0.01 ms)."""
        start = max(low, math.floor(self.window[0]))
        stop = min(high, math.ceil(self.window[1]))
        if start > stop:
            return self.partial(high + 0.5) - self.partial(low - 0.5)
        if stop - start <= _EXACT_SPAN:
            return sum(k * self.between(k - 0.5, k + 0.5) for k in range(start, stop + 1))
        edge = start + _EXACT_EDGE
        summed = sum(k * self.between(k - 0.5, k + 0.5) for k in range(start, edge))
        return summed + self.partial(high + 0.5) - self.partial(edge - 0.5)


def _phi_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _phi(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
