"""Traffic shapes: each shape's arrivals per window match its declared rate within sampling error; rates in
events per second; the same bytes on both clocks and with --workers; --shape on the command line."""

from __future__ import annotations

import collections
import datetime as dt
import math
import subprocess
import sys
from random import Random

import pytest

from engine.envelope.fields import parse_timestamp
from engine.run.arrivals import ChainMix
from engine.run.shapes import DAILY_HOURS, Shaped, parse_rate, shape_of

from .conftest import ROOT, START_MS

MIX = ChainMix([("a", 1.0)])


def arrival_times(spec: dict, seconds: float, start_ms: int = START_MS, seed: int = 1) -> list[float]:
    """Seconds after the start of each arrival of a shape, up to `seconds`."""
    shape, even = shape_of(spec, start_ms, lambda: 2.0)
    arrivals = Shaped(shape, MIX, Random(seed), start_ms, even=even)
    times = []
    while (arrival := arrivals.next()) is not None and arrival.at - start_ms < seconds * 1000:
        times.append((arrival.at - start_ms) / 1000)
    return times


def within(observed: int, expected: float, sigmas: float = 4.0) -> bool:
    """A Poisson count within `sigmas` standard deviations of its mean."""
    return abs(observed - expected) <= sigmas * math.sqrt(max(expected, 1.0))


def per_window(times: list[float], window: float) -> collections.Counter[int]:
    return collections.Counter(int(t // window) for t in times)


def test_a_ramp_climbs_linearly_then_holds():
    """ramp 10 -> 100 over 100 s: each 10 s window holds the rate's integral, and then 100/s."""
    times = arrival_times({"ramp": {"from": 10, "to": 100, "over": "100s"}}, 140)
    counts = per_window(times, 10)
    for window in range(10):
        expected = 10 * (10 + 90 * (window + 0.5) / 10)  # the mean rate over the window, times 10 s
        assert within(counts[window], expected), (window, counts[window], expected)
    for window in range(10, 14):
        assert within(counts[window], 1000)


def test_stages_keep_each_rate_for_its_time_then_stop():
    """5/s for 20 s, 50/s for 10 s, 1/s for 30 s, then no arrivals at all."""
    times = arrival_times({"stages": [{"rate": 5, "for": "20s"}, {"rate": 50, "for": "10s"},
                                      {"rate": 1, "for": "30s"}]}, 1000)
    assert within(sum(1 for t in times if t < 20), 100)
    assert within(sum(1 for t in times if 20 <= t < 30), 500)
    assert within(sum(1 for t in times if 30 <= t < 60), 30)
    assert max(times) < 60


def test_bursts_alternate_with_the_base_rate():
    """200/s for 2 s, then 1/s for 8 s, ten times over."""
    times = arrival_times({"bursts": {"rate": 200, "on": "2s", "off": "8s", "base": 1}}, 100)
    on = sum(1 for t in times if t % 10 < 2)
    assert within(on, 200 * 2 * 10)
    assert within(len(times) - on, 1 * 8 * 10)


def test_a_daily_curve_over_a_week_follows_its_hours_and_weekends():
    """A week of the default curve at peak 0.2/s from Monday 2026-01-05: each hour of the day (summed over
    the five weekdays) matches the curve, and a weekend day carries `weekend` times a weekday."""
    monday = int(dt.datetime(2026, 1, 5, tzinfo=dt.UTC).timestamp() * 1000)
    times = arrival_times({"daily": {"peak": 0.2, "weekend": 0.3}}, 7 * 86400, start_ms=monday)
    weekday = [t for t in times if t < 5 * 86400]
    by_hour = collections.Counter(int(t % 86400 // 3600) for t in weekday)
    for hour in range(24):
        level = (DAILY_HOURS[hour] + DAILY_HOURS[(hour + 1) % 24]) / 2  # linear within the hour
        assert within(by_hour[hour], 0.2 * level * 3600 * 5), (hour, by_hour[hour])
    weekend = len(times) - len(weekday)
    assert within(weekend, len(weekday) / 5 * 2 * 0.3)
    assert by_hour[14] > 10 * by_hour[3]  # a busy afternoon, a quiet night


def test_constant_arrivals_are_evenly_spaced():
    """constant: exactly one arrival every 1/rate seconds."""
    times = arrival_times({"constant": {"rate": 4}}, 10)
    assert [round(t, 6) for t in times] == [0.25 * k for k in range(1, 40)]


def test_poisson_arrivals_keep_their_rate():
    """poisson at 30/s over 100 s: 3,000 arrivals within sampling error, and gaps that look exponential."""
    times = arrival_times({"poisson": {"rate": 30}}, 100)
    assert within(len(times), 3000)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert within(sum(1 for g in gaps if g > 1 / 30), len(gaps) * math.exp(-1))


@pytest.mark.parametrize(("text", "chains_per_s"), [(10, 10.0), ("10/s", 10.0), ("600/min", 10.0),
                                                     ("10 chains/s", 10.0), ("500 events/s", 250.0),
                                                     ("7200 events/h", 1.0)])
def test_a_rate_reads_chain_starts_or_events(text, chains_per_s):
    """Numbers are chain starts per second; events per second are divided by the events per chain (2 here)."""
    assert chains_per_s == pytest.approx(parse_rate(text, lambda: 2.0))


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "engine", "--chains", "chains", "--seed", "4", "--start",
                           "2026-01-01T00:00:00Z", *args], cwd=ROOT, capture_output=True, timeout=120)


def test_a_shape_from_the_command_line_gives_the_same_bytes_with_workers_and_on_the_wall_clock():
    """--shape ramp on the virtual clock, with --workers 2, and on the wall clock at a high speed: one stream."""
    flags = ("--shape", "ramp: {from: 5, to: 200, over: 20s}", "--duration", "20s", "-q")
    virtual = _cli(*flags)
    assert 0 == virtual.returncode and virtual.stdout
    assert virtual.stdout == _cli(*flags, "--workers", "2").stdout
    assert virtual.stdout == _cli(*flags, "--realtime", "--speed", "100").stdout


def test_a_rate_in_events_per_second_gives_that_many_events():
    """--rate '400 events/s' over 30 s: about 12,000 events whatever the mix's events per chain."""
    result = _cli("--rate", "400 events/s", "--duration", "30s", "-q")
    events = result.stdout.count(b"\n")
    assert 0.9 * 12_000 < events < 1.1 * 12_000


@pytest.mark.parametrize(
    ("spec", "message"),
    [("ramp: {from: 1, to: 2}", "argument --shape: 'ramp: {from: 1, to: 2}': $.ramp: missing required key 'over' "
                                "(a ramp needs from, to and over, e.g. ramp: {from: 1, to: 50, over: 10m})"),
     ("weekly: {peak: 3}", "argument --shape: 'weekly: {peak: 3}': $.weekly: unknown key 'weekly' "
                           "(known keys here: bursts, constant, daily, poisson, ramp, stages)"),
     ("bursts: {rate: lots, on: 1s, off: 1s}", "$.bursts.rate: the string 'lots' is not a rate")],
)
def test_a_bad_shape_on_the_command_line_says_what_and_where(spec, message):
    """--shape is checked against the scenario schema's shape: exit 2, the path and a hint."""
    result = _cli("--shape", spec, "--count", "1")
    assert 2 == result.returncode
    assert message in result.stderr.decode()


def test_events_follow_the_arrivals_timestamps(tmp_path):
    """The run's first events start at the shape's arrival times (a stages shape ends the run by itself)."""
    result = _cli("--shape", "stages: [{rate: 2, for: 5s}]", "-q")
    starts = [parse_timestamp(line.split(b'"timestamp":"')[1].split(b'"')[0].decode())
              for line in result.stdout.splitlines() if b'"causation_id":null' in line]
    assert 0 == result.returncode
    assert within(len(starts), 10) and max(starts) - parse_timestamp("2026-01-01T00:00:00Z") < 5000
