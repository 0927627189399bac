"""Expected events, duration and outcomes of a chain instance, computed from the compiled program."""

from __future__ import annotations

import collections
import math
import random
import statistics

import pytest

from engine import load_catalog
from engine.envelope.fields import parse_timestamp
from engine.load import expect
from engine.load.delay_laws import delay_cdf, delay_mean
from engine.load.delays import Delay
from engine.load.expect import Expectation, duration_text, expect_catalog, expect_chain, summary
from engine.load.overrides import Overrides

from .conftest import CHAINS, run
from .test_interpreter import RETRY  # started, finished 10 ms later: succeeded or failed (1:1), retried twice

CATALOG = load_catalog(CHAINS)

BRANCH_90_10 = """
    name: job
    steps:
      - id: requested
        event_type: job.requested.v1
      - id: finished
        delay: [100, 300]
        branches:
          - id: completed
            weight: 90
            event_type: job.completed.v1
            outcome: completed
          - id: failed
            weight: 10
            delay: 1s
            event_type: job.failed.v1
            outcome: failed
            steps:
              - id: alerted
                delay: 50
                event_type: job.alerted.v1
"""

def _only(catalog):
    (program,) = catalog.programs.values()
    return program


def test_a_90_10_branch_gives_exact_events_duration_and_outcomes(catalog_of):
    """90%: 2 events after 200 ms on average; 10%: 3 events after 1050 ms; the p95 is the uniform's."""
    expected = Expectation("job", 0.9 * 2 + 0.1 * 3, 0.9 * 200 + 0.1 * 1050, 1050.0,
                           {"completed": 0.9, "failed": 0.1})
    actual = expect_chain(_only(catalog_of({"job.yaml": BRANCH_90_10})))
    assert _rounded(expected) == _rounded(actual)


def test_a_bounded_retry_loop_gives_exact_figures(catalog_of):
    """Up to three attempts, each failing half the time: 4.25 events, 21.25 ms, 40 ms for the longest paths."""
    # attempt k is reached with probability 1/2^(k-1); the third failure falls through to the end
    expected = Expectation("retry", 2.5 + 1.25 + 0.5, 12.5 + 6.25 + 2.5, 40.0,
                           {"completed": 0.875, "failed": 0.125})
    assert _rounded(expected) == _rounded(expect_chain(_only(catalog_of({"r.yaml": RETRY}))))


@pytest.mark.parametrize(
    ("delays", "mean", "p95"),
    [
        (["100"], 100.0, 100),
        (["[100, 300]"], 200.0, 290),  # 191 of 201 values are at most 290
        (["100", "[0, 99]"], 149.5, 194),
        (['"1.5s"', "[1, 4]", "[1, 4]"], 1505.0, 1508),  # two uniforms: enumerated, exact
    ],
)
def test_fixed_and_uniform_delays_give_exact_means_and_p95(catalog_of, delays, mean, p95):
    """Fixed and uniform delays add up to exact means, and to exact p95s."""
    steps = "".join(f"  - {{id: s{i}, delay: {d}, event_type: x.s{i}.v1}}\n" for i, d in enumerate(delays))
    chain = f"name: c\nsteps:\n  - {{id: a, event_type: x.a.v1}}\n{steps}"
    actual = expect_chain(_only(catalog_of({"c.yaml": chain})))
    assert (len(delays) + 1.0, mean, float(p95)) == (actual.events, actual.mean_ms, actual.p95_ms)


def test_a_branch_without_its_own_delay_inherits_its_branching_steps_through_nested_branches(catalog_of):
    """Branches wait their branching step's delay unless they have their own, also a branch that branches again."""
    chain = """
        name: nest
        steps:
          - id: start
            event_type: x.start.v1
          - id: outer
            delay: 1000
            branches:
              - id: own
                weight: 1
                delay: 10
                event_type: x.own.v1
              - id: inner
                weight: 1
                branches:
                  - {id: deep, weight: 1, event_type: x.deep.v1}
                  - {id: deeper, weight: 1, delay: 20, event_type: x.deeper.v1}
    """
    actual = expect_chain(_only(catalog_of({"n.yaml": chain})))
    assert (2.0, 0.5 * 10 + 0.25 * 1000 + 0.25 * 20) == (actual.events, actual.mean_ms)


def test_a_used_up_branch_leaves_the_draw_and_a_used_up_step_is_skipped(catalog_of):
    """A branch at max_visits is out of the draw (the others normalised again); a step at max_visits is skipped."""
    chain = """
        name: capped
        steps:
          - id: start
            event_type: x.start.v1
          - id: pick
            max_visits: 2
            goto: start
            branches:
              - {id: once, weight: 3, max_visits: 1, event_type: x.once.v1, outcome: once}
              - {id: often, weight: 1, event_type: x.often.v1, outcome: often}
          - id: last
            event_type: x.last.v1
    """
    # start, pick, start, pick, start, (pick skipped), last; the second pick decides the outcome: `once` only
    # after a first `often` (1/4 * 3/4); after a first `once`, `often` is the only branch left
    actual = expect_chain(_only(catalog_of({"c.yaml": chain})))
    assert (6.0, {"often": 0.8125, "once": 0.1875}) == (actual.events, _rounded(actual).outcomes)


def test_an_outcome_is_the_last_one_passed_else_the_last_step(catalog_of):
    """Outcomes are named as the summary names them: the last `outcome` passed, else the last step's id."""
    chain = """
        name: o
        steps:
          - id: start
            event_type: x.start.v1
            outcome: started
          - id: pick
            branches:
              - {id: quiet, weight: 1, event_type: x.quiet.v1}
              - {id: loud, weight: 3, event_type: x.loud.v1, outcome: loud}
    """
    bare = "name: bare\nsteps: [{id: only, event_type: x.only.v1}]\n"
    found = expect_catalog(catalog_of({"o.yaml": chain, "bare.yaml": bare}))
    assert ({"loud": 0.75, "started": 0.25}, {"only": 1.0}) == (found["o"].outcomes, found["bare"].outcomes)


def test_overrides_replace_weights_and_delays_by_id(catalog_of):
    """A scenario's weights and delays change the figures without touching the chain file."""
    program = _only(catalog_of({"job.yaml": BRANCH_90_10}))
    changed = Overrides(weights={"failed": 90, "completed": 10}, delays={"finished": Delay.fixed(500)})
    actual = expect_chain(program, changed)
    assert ({"completed": 0.1, "failed": 0.9}, 0.1 * 500 + 0.9 * 1050) == (
        _rounded(actual).outcomes, round(actual.mean_ms, 9))


def test_the_catalogs_figures_read_as_list_and_validate_print_them():
    """agent_execution: 4 events, 100 + 100 + 1000 ms on average, and a p95 at 1650 ms (exact)."""
    expected = "4.0 events, 1.20 s mean, 1.65 s p95"
    assert expected == summary(expect_catalog(CATALOG)["agent_execution"])


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0 ms"), (35, "35 ms"), (999.4, "999 ms"), (999.6, "1.00 s"), (13_070, "13.1 s"), (59_960, "60.0 s"),
     (69_168, "1.15 min"), (3_600_000, "1.00 h"), (86_400_000, "1.00 d"), (34_560_000_000, "400 d")],
)
def test_durations_read_to_three_digits_in_their_unit(ms, text):
    """Durations are shown as a person reads them: ms, s, min, h, d, three digits."""
    assert text == duration_text(ms)


BOUNDED = [
    {"distribution": "normal", "mean": 5, "stddev": 3, "max": 20},  # many draws below 0: redrawn
    {"distribution": "normal", "mean": 100.4, "stddev": 0.1, "max": 200},  # a narrow law: rounding matters
    {"distribution": "normal", "mean": "1s", "stddev": "200ms", "max": "2s"},
    {"distribution": "normal", "mean": 50, "stddev": 400, "min": 40, "max": 60},  # most draws miss: clamped
    {"distribution": "lognormal", "median": 3, "sigma": 1, "max": 50},
    {"distribution": "lognormal", "median": 10, "sigma": 3, "max": 5000},  # steep near 0
    {"distribution": "exponential", "mean": 2, "max": 10},
    {"distribution": "exponential", "mean": "1s", "min": 250, "max": "6s"},
]


def _brute_force_law(delay: Delay) -> dict[int, float]:
    """P(draw = k) for every k, from the continuous law (statistics.NormalDist) and the sampler's rule: up to 16
    draws of round(X) until one is within bounds, else the last one clamped."""
    low, high = delay.bounds
    if delay.distribution == "normal":
        cdf = statistics.NormalDist(delay.mean, delay.spread).cdf
    elif delay.distribution == "lognormal":
        law = statistics.NormalDist(math.log(delay.mean), delay.spread)
        cdf = lambda x: law.cdf(math.log(x)) if x > 0 else 0.0  # noqa: E731
    else:
        cdf = lambda x: 1 - math.exp(-x / delay.mean) if x > 0 else 0.0  # noqa: E731
    cell = {k: cdf(k + 0.5) - cdf(k - 0.5) for k in range(low, high + 1)}
    inside = sum(cell.values())
    below, above = cdf(low - 0.5), 1 - cdf(high + 0.5)
    miss = 1 - inside
    law = {k: p / inside * (1 - miss ** 16) for k, p in cell.items()} if inside else dict.fromkeys(cell, 0.0)
    law[low] += miss ** 15 * below
    law[high] += miss ** 15 * above
    return law


@pytest.mark.parametrize("spec", BOUNDED, ids=lambda spec: f"{spec['distribution']}-{spec['max']}")
def test_a_bounded_delays_mean_and_distribution_are_its_samplers_law(spec):
    """The mean and distribution function of a bounded delay are those of its sampler, redraws and clamp included."""
    delay = Delay.from_spec(spec)
    law = _brute_force_law(delay)
    cdf = delay_cdf(delay)
    running = 0.0
    for k in sorted(law):
        running += law[k]
        assert running == pytest.approx(cdf(k), abs=1e-9), k
    assert sum(k * p for k, p in law.items()) == pytest.approx(delay_mean(delay), abs=1e-3)


@pytest.mark.parametrize("spec", BOUNDED, ids=lambda spec: f"{spec['distribution']}-{spec['max']}")
def test_a_bounded_delays_mean_matches_its_samplers_draws(spec):
    """100,000 draws of the real sampler average to delay_mean within sampling error."""
    delay = Delay.from_spec(spec)
    sample, rng = delay.sampler(), random.Random(7)
    draws = [sample(rng) for _ in range(100_000)]
    error = 4 * statistics.pstdev(draws) / math.sqrt(len(draws)) + 1e-9
    assert abs(statistics.fmean(draws) - delay_mean(delay)) <= error


def test_a_chain_with_too_many_states_is_estimated_from_walks(catalog_of, monkeypatch):
    """Beyond MAX_STATES the figures come from seeded walks and say so with `~`."""
    monkeypatch.setattr(expect, "MAX_STATES", 50)
    chain = RETRY.replace("max_visits: 2", "max_visits: 1000")  # 2 attempts of 2.5 events on average
    actual = expect_chain(_only(catalog_of({"r.yaml": chain})))
    assert (False, True) == (actual.exact, abs(actual.events - 5.0) < 0.4)
    assert summary(actual).startswith("~")


def test_a_chain_whose_walks_are_too_long_has_no_estimate(catalog_of, monkeypatch):
    """When not even MIN_WALKS walks fit in MAX_WALK_STEPS, there is no estimate, and the summary says why."""
    monkeypatch.setattr(expect, "MAX_STATES", 50)
    monkeypatch.setattr(expect, "MAX_WALK_STEPS", 5000)
    chain = """
        name: long
        steps:
          - id: tick
            event_type: x.tick.v1
            max_visits: 100
            goto: tick
    """
    assert None is expect_chain(_only(catalog_of({"l.yaml": chain})))
    assert "no estimate: 100 walks of it take more than 5,000 steps" == summary(None)


def test_too_many_groups_of_paths_take_the_p95_from_walks_and_keep_exact_means(catalog_of, monkeypatch):
    """Beyond MAX_GROUPS only the p95 is sampled: events, mean and outcomes stay exact."""
    monkeypatch.setattr(expect, "MAX_GROUPS", 1)
    actual = expect_chain(_only(catalog_of({"job.yaml": BRANCH_90_10})))
    assert (True, 2.1, 1050.0) == (actual.exact, round(actual.events, 9), actual.p95_ms)


@pytest.mark.parametrize("text", [BRANCH_90_10, RETRY], ids=["branch", "retry"])
def test_the_engines_runs_match_the_computed_figures_within_sampling_error(catalog_of, text):
    """5,000 instances run by the engine: events, duration and outcomes within 4 standard errors of the figures,
    and the computed p95 between the runs' 94th and 96th percentiles."""
    catalog = catalog_of({"c.yaml": text})
    assert_runs_match(catalog, _only(catalog).name, 5000)


def assert_runs_match(catalog, name: str, count: int) -> None:
    """The engine's runs of chain `name` (whose first step has no delay) against its expectations."""
    expected = expect_catalog(catalog)[name]
    events = run(catalog.select([name]), count=count, seed=3, rate=50)
    instances: dict[str, list[dict]] = collections.defaultdict(list)
    for event in events:
        instances[event["correlation_id"]].append(event)
    assert count == len(instances)
    counts = [len(found) for found in instances.values()]
    durations = sorted(parse_timestamp(found[-1]["timestamp"]) - parse_timestamp(found[0]["timestamp"])
                       for found in instances.values())
    for observed, mean in ((counts, expected.events), (durations, expected.mean_ms)):
        assert abs(statistics.fmean(observed) - mean) <= 4 * statistics.pstdev(observed) / math.sqrt(count) + 1e-9
    assert durations[int(0.94 * count)] <= expected.p95_ms <= durations[int(0.96 * count)]


def _rounded(expectation: Expectation) -> Expectation:
    """The figures to nine decimals (sums of probabilities are exact only up to floating point)."""
    return Expectation(expectation.chain, round(expectation.events, 9), round(expectation.mean_ms, 9),
                       expectation.p95_ms, {k: round(p, 9) for k, p in expectation.outcomes.items()},
                       expectation.exact)


def test_a_chain_with_computed_delays_gets_measured_durations(catalog_of):
    """Computed delays are no declared law: events and outcomes come from the flow, durations from seeded runs
    of the chain, marked with ~ (a backoff of 1, 2, 4 s after a 100 ms step: 7.1 s for every instance)."""
    from engine.load.expect import expect_catalog, summary

    catalog = catalog_of({"job.yaml": """
        name: job
        steps:
          - id: submitted
            event_type: job.submitted.v1
          - id: checked
            delay: 100
            event_type: job.checked.v1
          - id: attempt
            max_visits: 3
            delay: {template: "{{ 1000 * 2 ** (visit - 1) }}", max: 1m}
            event_type: job.attempt.v1
            goto: attempt
    """})
    figures = expect_catalog(catalog)["job"]
    assert (5.0, 7100.0, 7100.0, True) == (figures.events, figures.mean_ms, figures.p95_ms, figures.measured)
    assert "5.0 events, ~7.10 s mean, ~7.10 s p95" == summary(figures)


def test_a_scenario_s_changes_show_in_the_expected_figures(catalog_of):
    """A scenario's scaled delay and branch weights are what the figures of its derived catalog say."""
    from engine.load.expect import expect_catalog
    from engine.scenarios.load import load_scenario

    catalog = catalog_of({"c.yaml": """
        name: c
        steps:
          - id: a
            event_type: c.a.v1
          - id: b
            delay: 100
            branches:
              - {id: ok, weight: 9, event_type: c.ok.v1}
              - {id: bad, weight: 1, event_type: c.bad.v1}
    """})
    applied = load_scenario({"name": "s", "chains": {"c": {"delays": {"b": {"scale": 3}},
                                                           "branches": {"b": {"ok": 1, "bad": 1}}}}}, catalog)
    figures = expect_catalog(applied.catalog)["c"]
    assert (300.0, {"ok": 0.5, "bad": 0.5}) == (figures.mean_ms, figures.outcomes)
