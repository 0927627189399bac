"""Delays: durations, ranges and bounded distributions, compiled once into samplers."""

from __future__ import annotations

import random
import statistics

import pytest

from engine.load.delays import Delay, parse_duration


@pytest.mark.parametrize(("text", "ms"), [(150, 150.0), (2.5, 2.5), ("150ms", 150.0), ("1.5s", 1500.0),
                                          ("2m", 120_000.0), ("1h", 3_600_000.0)])
def test_durations_read_numbers_as_milliseconds_and_units_as_given(text, ms):
    """Plain numbers are milliseconds; ms, s, m and h are units."""
    assert ms == parse_duration(text)


@pytest.mark.parametrize("text", ["5 sec", "-1s", "1.5", "s", ""])
def test_other_strings_are_not_durations(text):
    """Anything else is refused with ValueError."""
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    "spec",
    [[100, 300], "1.5s", 42, {"distribution": "uniform", "min": 10, "max": 20},
     {"distribution": "normal", "mean": 200, "stddev": 80, "max": 260},
     {"distribution": "lognormal", "median": 100, "sigma": 1.2, "min": 20, "max": 400},
     {"distribution": "exponential", "mean": "50ms", "max": "120ms"}],
)
def test_every_draw_is_a_whole_millisecond_within_bounds(spec):
    """Each sampler returns integer milliseconds inside the declared [min, max]."""
    delay = Delay.from_spec(spec)
    low, high = delay.bounds
    sample, rng = delay.sampler(), random.Random(1)
    draws = [sample(rng) for _ in range(5000)]
    assert all(isinstance(d, int) and low <= d <= high for d in draws)


def test_distributions_have_their_declared_centre():
    """A wide normal delay averages its mean; a lognormal its median."""
    rng = random.Random(2)
    normal = Delay.from_spec({"distribution": "normal", "mean": 500, "stddev": 50, "max": 2000}).sampler()
    lognormal = Delay.from_spec({"distribution": "lognormal", "median": 300, "sigma": 0.4, "max": 10_000}).sampler()
    assert 495 < statistics.fmean(normal(rng) for _ in range(20_000)) < 505
    assert 294 < statistics.median(lognormal(rng) for _ in range(20_000)) < 306


@pytest.mark.parametrize(
    ("spec", "message"),
    [([300, 100], "max (100ms) is below min (300ms)"),
     ({"distribution": "normal", "mean": 5, "stddev": 1, "min": 10, "max": 20},
      "mean (5ms) is outside [min, max] (10ms, 20ms)"),
     ({"distribution": "exponential", "mean": 0, "max": 20}, "mean of an exponential delay must be above 0")],
)
def test_impossible_delays_are_refused(spec, message):
    """A range upside down or a centre outside the range is a ValueError naming the problem."""
    with pytest.raises(ValueError) as error:
        Delay.from_spec(spec)
    assert message == str(error.value)


@pytest.mark.parametrize("low, high", [(0, 1), (1, 5), (150, 400), (0, 1023), (0, 1024), (7, 10**9)])
def test_uniform_draws_are_those_of_random_randint(low, high):
    """The uniform sampler skips randint's layers but draws exactly what rng.randint(low, high) would."""
    sample = Delay.from_spec([low, high]).sampler()
    ours, theirs = random.Random(f"u:{low}:{high}"), random.Random(f"u:{low}:{high}")
    assert [sample(ours) for _ in range(2000)] == [theirs.randint(low, high) for _ in range(2000)]
