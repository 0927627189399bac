"""Properties that hold for any chain and any seed (Hypothesis): order, determinism, delays, weights."""

from __future__ import annotations

import collections
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import RunOptions, load_catalog, run_to_list
from engine.envelope.fields import parse_timestamp

delays = st.tuples(st.integers(0, 500), st.integers(0, 500)).map(lambda t: [min(t), max(t)])
distributions = st.one_of(
    delays,
    st.integers(0, 1000),
    st.builds(lambda mean, spread, top: {"distribution": "normal", "mean": mean, "stddev": spread,
                                         "max": mean + top}, st.integers(50, 300), st.integers(1, 50),
              st.integers(0, 200)),
    st.builds(lambda median, top: {"distribution": "lognormal", "median": median, "sigma": 0.5,
                                   "max": median * 3 + top}, st.integers(10, 300), st.integers(0, 100)),
    st.builds(lambda mean: {"distribution": "exponential", "mean": mean, "max": mean * 5},
              st.integers(1, 300)),
)


@st.composite
def chains(draw: st.DrawFn) -> dict:
    steps = []
    for i in range(draw(st.integers(1, 4))):
        step = {"id": f"s{i}", "event_type": f"t.s{i}", "delay": draw(distributions)}
        if draw(st.booleans()):
            del step["event_type"]
            step["branches"] = [
                {"id": f"s{i}b{j}", "event_type": f"t.s{i}b{j}", "weight": draw(st.integers(1, 9))}
                for j in range(draw(st.integers(2, 3)))
            ]
        steps.append(step)
    return {"name": "generated", "steps": steps}


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _load(tmp_path_factory, chain: dict):
    folder = tmp_path_factory.mktemp("chains")
    (folder / "generated.yaml").write_text(yaml.safe_dump(chain), encoding="utf-8")
    return load_catalog(folder)


@SETTINGS
@given(chain=chains(), seed=st.integers(0, 2**32 - 1), rate=st.floats(0.5, 200))
def test_timestamps_never_go_backwards_and_the_same_seed_repeats(tmp_path_factory, chain, seed, rate):
    """For any chain, seed and rate: events come out in timestamp order, and a second run is identical."""
    catalog = _load(tmp_path_factory, chain)
    options = RunOptions(seed=seed, start_ms=0, count=30, rate=rate)
    events = run_to_list(catalog, options)
    stamps = [parse_timestamp(e["timestamp"]) for e in events]
    assert stamps == sorted(stamps)
    assert events == run_to_list(catalog, options)


@SETTINGS
@given(chain=chains(), seed=st.integers(0, 2**32 - 1))
def test_every_gap_is_within_its_declared_delay(tmp_path_factory, chain, seed):
    """The gap before each event lies within the bounds of the delay declared for its step."""
    catalog = _load(tmp_path_factory, chain)
    bounds = {}
    for step in catalog.chains[0].walk():
        for branch in step.branches:
            bounds[branch.id] = (branch.delay or step.delay).bounds
        if step.delay and not step.branches:
            bounds[step.id] = step.delay.bounds
    last: dict[str, int] = {}
    for event in run_to_list(catalog, RunOptions(seed=seed, start_ms=0, count=20, rate=50)):
        at = parse_timestamp(event["timestamp"])
        if event["correlation_id"] in last:
            low, high = bounds[event["step"]]
            assert low <= at - last[event["correlation_id"]] <= high
        last[event["correlation_id"]] = at


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(weights=st.lists(st.integers(1, 20), min_size=2, max_size=4), seed=st.integers(0, 2**32 - 1))
def test_branch_frequencies_match_their_weights(tmp_path_factory, weights, seed):
    """Each branch is taken with probability weight / sum of weights, within 4.5 standard deviations."""
    branches = [{"id": f"b{i}", "event_type": f"t{i}", "weight": w} for i, w in enumerate(weights)]
    catalog = _load(tmp_path_factory, {"name": "generated", "steps": [{"id": "pick", "branches": branches}]})
    n = 2000
    taken = collections.Counter(e["step"] for e in run_to_list(catalog, RunOptions(seed=seed, start_ms=0, count=n)))
    total = sum(weights)
    for i, weight in enumerate(weights):
        p = weight / total
        assert abs(taken[f"b{i}"] - n * p) <= 4.5 * math.sqrt(n * p * (1 - p))
