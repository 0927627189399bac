"""Chain instances: steps, delays, branches, loops, vars, payload templates and the envelope."""

from __future__ import annotations

import collections
import uuid

import pytest

from engine.envelope.fields import parse_timestamp as parse_ms
from engine.sinks import SinkBase

from .conftest import START_MS, run

TWO_STEPS = """
    name: two
    steps:
      - id: requested
        event_type: x.requested.v1
        payload: {n: "{{ random.randint(1, 9) }}", text: "n={{ random.randint(1, 9) }}", fixed: [1, "a"]}
      - id: completed
        delay: [100, 300]
        event_type: x.completed.v1
        payload:
          echo: "{{ steps.requested.payload.n }}"
          duration_ms: "{{ elapsed_ms }}"
          delay: "{{ delay_ms }}"
"""

RETRY = """
    name: retry
    steps:
      - id: started
        event_type: job.started.v1
        payload: {attempt: "{{ visit }}"}
      - id: finished
        delay: 10
        branches:
          - id: succeeded
            weight: 1
            outcome: completed
            event_type: job.succeeded.v1
            end: true
          - id: failed
            weight: 1
            outcome: failed
            event_type: job.failed.v1
            steps:
              - id: retried
                delay: 5
                event_type: job.retried.v1
                max_visits: 2
                goto: started
"""


def steps_by_instance(events: list[dict]) -> dict[str, list[str]]:
    """The step ids of each chain instance, in the order emitted."""
    paths: dict[str, list[str]] = collections.defaultdict(list)
    for event in events:
        paths[event["correlation_id"]].append(event["step"])
    return paths


def test_a_chain_emits_its_steps_in_order_with_one_correlation_id(catalog_of):
    """Each instance emits its steps in order, sharing one correlation id, each caused by the one before."""
    events = run(catalog_of({"two.yaml": TWO_STEPS}), count=1)
    assert ["requested", "completed"] == [e["step"] for e in events]
    first, second = events
    assert first["correlation_id"] == second["correlation_id"]
    assert first["causation_id"] is None
    assert first["event_id"] == second["causation_id"]
    assert str(uuid.UUID(first["event_id"])) == first["event_id"]
    assert 4 == uuid.UUID(first["correlation_id"]).version


def test_the_envelope_has_every_field_in_order(catalog_of):
    """Every event carries the documented envelope fields, in the documented order."""
    event = run(catalog_of({"two.yaml": TWO_STEPS}), count=1)[0]
    expected = ["event_id", "event_type", "correlation_id", "causation_id", "tenant_id", "namespace",
                "timestamp", "chain", "step", "payload"]
    assert expected == list(event)
    assert ("default-tenant", "development") == (event["tenant_id"], event["namespace"])
    assert "2026-01-01T00:00:00.000Z" == event["timestamp"]
    assert "two" == event["chain"]


def test_the_envelope_can_be_overridden_per_chain(catalog_of):
    """tenant_id and namespace come from the chain's envelope when it sets them."""
    text = "name: e\nenvelope: {tenant_id: acme, namespace: staging}\nsteps: [{id: a, event_type: t}]\n"
    event = run(catalog_of({"e.yaml": text}), count=1)[0]
    assert ("acme", "staging") == (event["tenant_id"], event["namespace"])


def test_a_lone_expression_keeps_its_type_and_text_stays_text(catalog_of):
    """"{{ expr }}" alone gives the native value; text around an expression gives a string."""
    payload = run(catalog_of({"two.yaml": TWO_STEPS}), count=1)[0]["payload"]
    assert isinstance(payload["n"], int)
    assert payload["text"].startswith("n=")
    assert [1, "a"] == payload["fixed"]


def test_templates_see_earlier_events_elapsed_time_and_the_delay(catalog_of):
    """steps.<id> holds earlier events; elapsed_ms and delay_ms are the time since start and the delay drawn."""
    first, second = run(catalog_of({"two.yaml": TWO_STEPS}), count=1)
    assert first["payload"]["n"] == second["payload"]["echo"]
    assert second["payload"]["duration_ms"] == second["payload"]["delay"]
    assert 100 <= second["payload"]["delay"] <= 300
    gap = int(second["timestamp"][20:23]) - int(first["timestamp"][20:23])
    assert second["payload"]["delay"] == gap


def test_vars_are_drawn_once_per_instance_and_visible_in_every_step(catalog_of):
    """A var keeps one value across the steps of an instance, and later vars can use earlier ones."""
    text = """
        name: v
        vars:
          agent: "{{ random.choice(['a', 'b', 'c', 'd', 'e', 'f']) }}"
          label: "agent-{{ vars.agent }}"
        steps:
          - {id: one, event_type: t1, payload: {agent: "{{ vars.agent }}", label: "{{ vars.label }}"}}
          - {id: two, event_type: t2, delay: 5, payload: {agent: "{{ vars.agent }}"}}
    """
    events = run(catalog_of({"v.yaml": text}), count=20)
    by_instance = collections.defaultdict(set)
    for event in events:
        by_instance[event["correlation_id"]].add(event["payload"]["agent"])
        if event["step"] == "one":
            assert f"agent-{event['payload']['agent']}" == event["payload"]["label"]
    assert all(1 == len(agents) for agents in by_instance.values())
    assert 1 < len({next(iter(a)) for a in by_instance.values()})


def test_shared_data_lists_are_visible_as_data(catalog_of):
    """chains/data/<name>.yaml is data.<name> in templates."""
    folder = {
        "c.yaml": "name: c\nsteps: [{id: a, event_type: t, payload: {x: '{{ random.choice(data.colors) }}'}}]\n",
        "data/colors.yaml": "- red\n- green\n",
    }
    events = run(catalog_of(folder), count=10)
    assert {"red", "green"} >= {e["payload"]["x"] for e in events}


def test_a_bounded_retry_loop_ends_and_records_the_outcome(catalog_of):
    """failed -> retried -> started again, at most max_visits times; then the chain ends as failed."""
    from engine import RunOptions, Simulation

    catalog = catalog_of({"retry.yaml": RETRY})
    sink = _Collect()
    simulation = Simulation(catalog, RunOptions(seed=3, start_ms=START_MS, count=400, rate=5), sink)
    stats = simulation.run()
    per_instance = steps_by_instance(sink.events)
    for steps in per_instance.values():
        assert steps.count("retried") <= 2
        assert steps.count("started") == steps.count("retried") + 1
        assert steps[-1] in ("succeeded", "failed")
    attempts = collections.Counter(steps.count("started") for steps in per_instance.values())
    assert {1, 2, 3} == set(attempts)
    assert {"completed", "failed"} == {outcome for (_, outcome) in stats.by_outcome}
    failed = stats.by_outcome[("retry", "failed")]
    expected, sd = 400 / 8, (400 * 1 / 8 * 7 / 8) ** 0.5  # three failures in a row: (1/2)^3
    assert abs(failed - expected) < 4 * sd


def test_visit_counts_attempts(catalog_of):
    """`visit` is how many times this instance has reached the step, 1 on the first visit."""
    events = run(catalog_of({"retry.yaml": RETRY}), count=200, seed=5)
    attempts = collections.defaultdict(list)
    for event in events:
        if event["step"] == "started":
            attempts[event["correlation_id"]].append(event["payload"]["attempt"])
    assert all(list(range(1, len(a) + 1)) == a for a in attempts.values())


def test_a_branch_continues_after_the_branching_step(catalog_of):
    """After a branch (and its own steps) the flow goes on with the step after the branching step."""
    text = """
        name: b
        steps:
          - id: pick
            branches:
              - {id: left, weight: 1, event_type: l, steps: [{id: left_more, event_type: lm}]}
              - {id: right, weight: 1, event_type: r}
          - {id: after, event_type: after}
    """
    events = run(catalog_of({"b.yaml": text}), count=50)
    paths = steps_by_instance(events)
    assert {("left", "left_more", "after"), ("right", "after")} == {tuple(p) for p in paths.values()}


def test_default_outcome_is_the_last_step(catalog_of):
    """Without an outcome key, a finished instance's outcome is the id of its last step."""
    from engine import RunOptions, Simulation

    text = "name: plain\nsteps: [{id: a, event_type: t}, {id: done, event_type: u}]\n"
    sink = _Collect()
    stats = Simulation(catalog_of({"p.yaml": text}), RunOptions(seed=1, start_ms=0, count=3), sink).run()
    assert {("plain", "done"): 3} == dict(stats.by_outcome)


class _Collect(SinkBase):
    def __init__(self) -> None:
        self.events: list[dict] = []

    def write(self, event: dict, line: bytes) -> None:
        self.events.append(event)


def test_faker_dates_follow_the_simulated_clock(catalog_of):
    """faker's "now" is the simulated time, so dates are reproducible and never after the event."""
    from engine import RunOptions, run_to_list
    from engine.envelope.fields import parse_timestamp

    text = "name: d\nsteps: [{id: a, event_type: t, payload: {when: '{{ faker.date_time() }}', " \
           "day: '{{ faker.date_this_year() }}'}}]\n"
    catalog = catalog_of({"d.yaml": text})
    start = parse_timestamp("2001-06-01T00:00:00Z")
    first = run_to_list(catalog, RunOptions(seed=4, start_ms=start, count=20, rate=1))
    again = run_to_list(catalog, RunOptions(seed=4, start_ms=start, count=20, rate=1))
    assert first == again
    for event in first:
        assert event["payload"]["when"] <= event["timestamp"][:19]
        assert event["payload"]["day"].startswith("2001-")


def test_branches_can_branch_again(catalog_of):
    """A branch with branches of its own chooses again; its delay passes down to the branch taken."""
    text = """
        name: nested
        steps:
          - id: pick
            delay: 7
            branches:
              - id: outer_a
                weight: 1
                branches:
                  - {id: inner_x, weight: 1, event_type: x, payload: {d: "{{ elapsed_ms }}"}}
                  - {id: inner_y, weight: 1, event_type: y, delay: 3, payload: {d: "{{ elapsed_ms }}"}}
              - {id: outer_b, weight: 1, event_type: b, payload: {d: "{{ elapsed_ms }}"}}
          - {id: after, event_type: after}
    """
    events = run(catalog_of({"n.yaml": text}), count=60)
    assert all(event["event_type"] is not None for event in events)
    paths = steps_by_instance(events)
    assert {("inner_x", "after"), ("inner_y", "after"), ("outer_b", "after")} == {tuple(p) for p in paths.values()}
    delays = {(e["step"], e["payload"]["d"]) for e in events if e["causation_id"] is None}
    assert {("inner_x", 7), ("inner_y", 3), ("outer_b", 7)} == delays


def test_end_goto_and_outcome_on_a_branching_step_apply_after_the_branch(catalog_of):
    """end on a step with branches ends the chain after the branch taken; its outcome is the default."""
    from engine import RunOptions, Simulation

    text = """
        name: ends
        steps:
          - id: pick
            end: true
            outcome: picked
            branches:
              - {id: a, weight: 1, event_type: a}
              - {id: b, weight: 1, event_type: b, outcome: b_done}
          - {id: never, event_type: never}
    """
    sink = _Collect()
    stats = Simulation(catalog_of({"e.yaml": text}), RunOptions(seed=2, start_ms=0, count=40), sink).run()
    assert "never" not in {e["step"] for e in sink.events}
    assert {("ends", "picked"), ("ends", "b_done")} == set(stats.by_outcome)


def test_goto_on_a_branching_step_is_followed_after_the_branch(catalog_of):
    """goto on a step with branches jumps after the branch taken, bounded by its max_visits."""
    text = """
        name: loops
        steps:
          - {id: start, event_type: start}
          - id: pick
            goto: start
            max_visits: 2
            branches:
              - {id: a, weight: 1, event_type: a}
              - {id: b, weight: 1, event_type: b}
          - {id: done, event_type: done}
    """
    events = run(catalog_of({"l.yaml": text}), count=10)
    for steps in steps_by_instance(events).values():
        assert ["start", steps[1], "start", steps[3], "start", "done"] == steps


def test_a_computed_delay_backs_off_by_visit_without_unrolling_the_loop(catalog_of):
    """`{{ 1000 * 2 ** (visit - 1) }}` on a retry step gives gaps of 1 s, 2 s, 4 s, 8 s."""
    catalog = catalog_of({"job.yaml": """
        name: job
        steps:
          - id: submitted
            event_type: job.submitted.v1
          - id: attempt
            max_visits: 4
            delay: {template: "{{ 1000 * 2 ** (visit - 1) }}", max: 1m}
            event_type: job.attempt.v1
            goto: attempt
    """})
    events = run(catalog, count=1)
    times = [parse_ms(e["timestamp"]) for e in events]
    assert [1000, 2000, 4000, 8000] == [b - a for a, b in zip(times, times[1:], strict=False)]


def test_a_computed_delay_follows_the_instance_and_stays_within_its_bounds(catalog_of):
    """A delay from vars (rows / 1000 ms), clamped to [min, max]: 200k rows take 200 ms, 125M rows the max."""
    catalog = catalog_of({"job.yaml": """
        name: job
        vars:
          rows: "{{ [200000, 125000000][chain.instance % 2] }}"
        steps:
          - id: submitted
            event_type: job.submitted.v1
          - id: finished
            delay: {template: "{{ vars.rows / 1000 }}", min: 100ms, max: 1m}
            event_type: job.finished.v1
            payload: {took_ms: "{{ delay_ms }}"}
    """})
    finished = [e["payload"]["took_ms"] for e in run(catalog, count=4) if e["step"] == "finished"]
    assert [200, 200, 60000, 60000] == finished  # in time order: the two short jobs end first


def test_a_computed_delay_that_fails_at_run_time_is_located(catalog_of):
    """A result that is no duration, met after the dry run, stops the run with the template's place."""
    from engine import TemplateRunError

    catalog = catalog_of({"job.yaml": """
        name: job
        steps:
          - id: submitted
            event_type: job.submitted.v1
          - id: finished
            delay: {template: "{{ 'soon' if chain.instance == 2 else 5 }}", max: 1m}
            event_type: job.finished.v1
    """})
    with pytest.raises(TemplateRunError) as caught:
        run(catalog, count=5)
    assert (6, "finished", "delay.template") == (caught.value.line, caught.value.step, caught.value.key)
    assert "the delay template gave 'soon', which is not a duration" in str(caught.value)
