"""Scenario files: checked against the catalog with every problem located, and run as they say: chain
weights, branch weights, delays, vars, data and envelope changed without copying a chain file; exact
scripted starts; run settings that flags override; the same bytes with --workers."""

# ruff: noqa: E501  (the expected messages are spelled out in full, one line of output per line)

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import pytest

from engine import LoadError, RunOptions, load_catalog
from engine.scenarios.load import load_scenario
from engine.scenarios.run import simulation
from engine.sinks.memory import ListSink

from .conftest import CHAINS, ROOT, START_MS

SCENARIOS = ROOT / "scenarios"
INVALID = Path(__file__).resolve().parent / "data" / "invalid_scenarios"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CHAINS)


def events_of(catalog, scenario, **options) -> list[dict]:
    """The events of a virtual run of a scenario (a file or a mapping) with these options."""
    applied = load_scenario(scenario, catalog)
    options.setdefault("seed", 1)
    options.setdefault("start_ms", START_MS)
    sink = ListSink()
    simulation(applied, RunOptions(**options), sink).run()
    return sink.events


def test_every_example_scenario_is_valid_and_runs_the_same_twice():
    """validate checks ./scenarios/ with the chains; each example gives the same bytes run after run."""
    result = cli("validate", "--chains", "chains")
    assert (0, True) == (result.returncode, result.stderr.splitlines()[0].endswith("; scenarios: 6 scenarios valid"))
    for path in sorted(SCENARIOS.glob("*.yaml")):
        first = cli("--chains", "chains", "--scenario", str(path), "-q")
        assert 0 == first.returncode, first.stderr
        assert first.stdout == cli("--chains", "chains", "--scenario", str(path), "-q").stdout != ""


def test_branch_weights_make_every_execution_fail_for_one_tenant(catalog):
    """failure_storm: every agent execution fails, its events carry tenant acme, other chains are unchanged."""
    events = events_of(catalog, SCENARIOS / "failure_storm.yaml", count=300, rate=20.0)
    agent = [e for e in events if e["chain"] == "agent_execution"]
    ends = collections.Counter(e["step"] for e in agent if e["step"].startswith("execution_") and
                               e["step"] != "execution_started")
    assert {"execution_failed"} == set(ends)
    assert {"acme"} == {e["tenant_id"] for e in agent}
    assert {"default-tenant"} == {e["tenant_id"] for e in events if e["chain"] != "agent_execution"}


def test_a_scaled_delay_is_that_many_times_longer(catalog):
    """{scale: 10} on database_query's completion: every gap is 10 times a draw of 10-60 ms."""
    events = events_of(catalog, {"name": "slow", "only": ["database_query"],
                                 "chains": {"database_query": {"delays": {"query_completed": {"scale": 10}}}}},
                       count=200, rate=5.0)
    by_instance: dict[str, list[int]] = collections.defaultdict(list)
    for event in events:
        by_instance[event["correlation_id"]].append(_ms(event["timestamp"]))
    gaps = [b - a for a, b in by_instance.values()]
    assert all(100 <= gap <= 600 and gap % 10 == 0 for gap in gaps)
    assert 250 < sum(gaps) / len(gaps) < 450  # 10 x the mean of 10-60 ms


def test_a_replaced_delay_and_vars_and_data_apply(catalog):
    """A delay written as in a chain file replaces the step's; a var set to a value; a data list replaced."""
    events = events_of(catalog, {
        "name": "set", "only": ["agent_execution"], "data": {"agents": ["a1", "a2", "a3"]},
        "chains": {"agent_execution": {"delays": {"routing_completed": 250}, "vars": {"task": "fixed task"}}},
    }, count=50, rate=5.0)
    routed = {e["correlation_id"]: e for e in events if e["step"] == "routing_completed"}
    requested = {e["correlation_id"]: e for e in events if e["step"] == "routing_requested"}
    assert all(_ms(routed[c]["timestamp"]) - _ms(requested[c]["timestamp"]) == 250 for c in routed)
    assert {"fixed task"} == {e["payload"]["task"] for e in requested.values()}
    assert {e["payload"]["selected_agent"] for e in routed.values()} <= {"a1", "a2", "a3"}


def test_chain_weights_and_only_change_the_mix(catalog):
    """only picks the chains; weights in the scenario replace theirs (0 takes a chain out of the mix)."""
    events = events_of(catalog, {"name": "mix", "only": ["agent_*", "vault_secret", "consul_service"],
                                 "chains": {"vault_secret": {"weight": 0}, "consul_service": {"weight": 20}}},
                       count=400, rate=20.0)
    first = collections.Counter(e["chain"] for e in events if e["causation_id"] is None)
    assert {"agent_execution", "consul_service"} == set(first)
    assert 150 < first["consul_service"] < 250  # 20 : 20


def test_a_script_starts_exactly_what_it_says_and_forces_branches(catalog):
    """exact_failure: an execution by agent-debug-intelligence that fails at +0 s, a query at +2 s, three
    completing executions a second apart from +3 s; nothing else."""
    events = events_of(catalog, SCENARIOS / "exact_failure.yaml")
    starts = [(e["timestamp"], e["chain"]) for e in events if e["causation_id"] is None]
    assert [("2026-01-01T00:00:00.000Z", "agent_execution"), ("2026-01-01T00:00:02.000Z", "intelligence_query"),
            ("2026-01-01T00:00:03.000Z", "agent_execution"), ("2026-01-01T00:00:04.000Z", "agent_execution"),
            ("2026-01-01T00:00:05.000Z", "agent_execution")] == starts
    ends = [e for e in events if e["step"] in ("execution_completed", "execution_failed")]
    assert ["execution_failed", "execution_completed", "execution_completed", "execution_completed"] == [
        e["step"] for e in sorted(ends, key=lambda e: e["timestamp"])]
    assert "agent-debug-intelligence" == next(e for e in events if e["step"] == "execution_failed")["payload"]["agent"]


def test_a_script_runs_beside_background_traffic_when_the_run_asks_for_a_rate(catalog):
    """With a rate as well, the scripted starts come on top of Poisson arrivals."""
    events = events_of(catalog, {"name": "both", "script": [{"at": "1s", "chain": "vault_secret"}],
                                 "run": {"rate": 5}}, duration_ms=10_000, rate=5.0)
    starts = [e for e in events if e["causation_id"] is None]
    assert 20 < len(starts) < 90
    assert any(e["timestamp"] == "2026-01-01T00:00:01.000Z" and e["chain"] == "vault_secret" for e in starts)


def test_command_line_flags_override_the_scenario_run(tmp_path):
    """The scenario says seed 7, count 500, rate 20; --count 10 --seed 8 wins, and its output differs."""
    flagged = cli("--chains", "chains", "--scenario", "scenarios/failure_storm.yaml", "--count", "10", "--seed", "8")
    assert 0 == flagged.returncode
    assert "from 10 chains" in flagged.stderr and "seed 8" in flagged.stderr


def test_a_scenario_with_workers_gives_the_bytes_of_one_process():
    """Each worker loads the same scenario: the merged stream is one process's, faults and script included."""
    flags = ("--chains", "chains", "--scenario", "scenarios/unreliable_delivery.yaml", "--count", "600", "-q")
    assert cli(*flags).stdout == cli(*flags, "--workers", "2").stdout


def test_a_scenario_leaves_its_catalog_unchanged(catalog):
    """After a scenario ran on a catalog, a plain run of it gives what it gave before."""
    from engine import run_to_list

    options = RunOptions(seed=2, start_ms=START_MS, count=100, rate=10.0)
    before = run_to_list(catalog, options)
    events_of(catalog, SCENARIOS / "failure_storm.yaml", count=100, rate=10.0)
    assert before == run_to_list(catalog, options)


def test_a_scenario_given_as_a_mapping_is_checked_like_a_file(catalog):
    """Overrides given from Python go through the same schema and checks: a misspelt step gets a hint."""
    with pytest.raises(LoadError) as caught:
        load_scenario({"name": "x", "chains": {"agent_execution": {"delays": {"execution_startd": 5}}}}, catalog)
    [problem] = caught.value.problems
    assert ("no step 'execution_startd' in chain 'agent_execution'", "did you mean 'execution_started'?") == (
        problem.message, problem.hint)


def _ms(timestamp: str) -> int:
    from engine.envelope.fields import parse_timestamp

    return parse_timestamp(timestamp)


INVALID_SCENARIOS = [
    ("bad_template", """\
tests/data/invalid_scenarios/bad_template.yaml:5:14: $.chains.agent_execution.vars.agent: template error: faker has no generator 'nme'; did you mean 'name'?
  at scenario 'bad_template' > key 'chains.agent_execution.vars.agent'
  hint: see https://faker.readthedocs.io/en/stable/providers.html for generator names
tests/data/invalid_scenarios/bad_template.yaml:9:19: $.script[0].vars.query: template error: data.querys is undefined
  at scenario 'bad_template' > key 'script[0].vars.query'
  hint: did you mean 'queries'?
2 problems in 1 file
"""),
    ("bad_values", """\
tests/data/invalid_scenarios/bad_values.yaml:3:9: $.run.rate: the string 'fast' is not a rate
  at scenario 'bad_values' > key 'run.rate'
  hint: a rate is chain starts per second (10, '600/min', '10 chains/s') or events: '500 events/s'
tests/data/invalid_scenarios/bad_values.yaml:4:17: $.run.shape.ramp: missing required key 'over'
  at scenario 'bad_values' > key 'run.shape.ramp'
  hint: a ramp needs from, to and over, e.g. ramp: {from: 1, to: 50, over: 10m}
tests/data/invalid_scenarios/bad_values.yaml:6:12: $.faults[0].kind: the string 'dupe' is not one of duplicate, reorder, drop, late, stuck, orphan, drift
  at scenario 'bad_values' > key 'faults[0].kind'
  hint: a fault is one of duplicate, reorder, drop, late, stuck, orphan, drift
tests/data/invalid_scenarios/bad_values.yaml:6:24: $.faults[0].rate: must be at most 1, found 2
  at scenario 'bad_values' > key 'faults[0].rate'
  hint: a fault's rate is a share of the events, from 0 to 1 (e.g. 0.05); a rate of chain starts is at most 1,000,000 per second
tests/data/invalid_scenarios/bad_values.yaml:7:37: $.faults[1].window: the string 'soon' is not a duration
  at scenario 'bad_values' > key 'faults[1].window'
  hint: a duration is a number of milliseconds (150) or a string with a unit: "150ms", "1.5s", "2m", "1h", "1d"
5 problems in 1 file
"""),
    ("breaks_a_chain", """\
chains/agent_execution.yaml:13:19: $.steps[0].payload.candidates: template error: ValueError: Sample larger than population or is negative (with the changes of scenario 'breaks_a_chain')
  at chain 'agent_execution' > step 'routing_requested' > key 'payload.candidates'
1 problem in 1 file
"""),
    ("not_a_mapping", """\
tests/data/invalid_scenarios/not_a_mapping.yaml:1:1: $: expected a mapping, found a list
  hint: a scenario file is a mapping with at least a name, e.g. name: failure_storm
1 problem in 1 file
"""),
    ("unknown_names", """\
tests/data/invalid_scenarios/unknown_names.yaml:2:8: $.only[0]: 'agnt_execution' names no chain of the catalog
  at scenario 'unknown_names' > key 'only[0]'
  hint: did you mean 'agent_execution'?
tests/data/invalid_scenarios/unknown_names.yaml:6:7: $.chains.agent_execution.branches.execution_finishd: no step 'execution_finishd' in chain 'agent_execution'
  at scenario 'unknown_names' > key 'chains.agent_execution.branches.execution_finishd'
  hint: did you mean 'execution_finished'?
tests/data/invalid_scenarios/unknown_names.yaml:8:7: $.chains.agent_execution.delays.execution_startd: no step 'execution_startd' in chain 'agent_execution'
  at scenario 'unknown_names' > key 'chains.agent_execution.delays.execution_startd'
  hint: did you mean 'execution_started'?
tests/data/invalid_scenarios/unknown_names.yaml:10:7: $.chains.agent_execution.vars.agnt: no var 'agnt' in chain 'agent_execution'
  at scenario 'unknown_names' > key 'chains.agent_execution.vars.agnt'
  hint: did you mean 'agent'?
tests/data/invalid_scenarios/unknown_names.yaml:12:3: $.data.agentz: no data list 'agentz' in the catalog
  at scenario 'unknown_names' > key 'data.agentz'
  hint: did you mean 'agents'?
tests/data/invalid_scenarios/unknown_names.yaml:15:12: $.script[0].chain: no chain 'agent_executon' in the catalog
  at scenario 'unknown_names' > key 'script[0].chain'
  hint: did you mean 'agent_execution'?
6 problems in 1 file
"""),
    ("wrong_branches", """\
tests/data/invalid_scenarios/wrong_branches.yaml:5:7: $.chains.agent_execution.branches.routing_requested: step 'routing_requested' of chain 'agent_execution' has no branches
  at scenario 'wrong_branches' > key 'chains.agent_execution.branches.routing_requested'
  hint: steps with branches: execution_finished
tests/data/invalid_scenarios/wrong_branches.yaml:6:27: $.chains.agent_execution.branches.execution_finished: every branch of step 'execution_finished' would have weight 0
  at scenario 'wrong_branches' > key 'chains.agent_execution.branches.execution_finished'
  hint: keep at least one branch above 0: a branch with weight 1 and the others 0 always wins
tests/data/invalid_scenarios/wrong_branches.yaml:6:73: $.chains.agent_execution.branches.execution_finished.execution_timeout: no branch 'execution_timeout' of step 'execution_finished' in chain 'agent_execution'
  at scenario 'wrong_branches' > key 'chains.agent_execution.branches.execution_finished.execution_timeout'
  hint: did you mean 'execution_failed'?
tests/data/invalid_scenarios/wrong_branches.yaml:10:33: $.script[0].force.execution_finished: no branch 'execution_faild' of step 'execution_finished'
  at scenario 'wrong_branches' > key 'script[0].force.execution_finished'
  hint: did you mean 'execution_failed'?
4 problems in 1 file
"""),
]


@pytest.mark.parametrize(("case", "expected"), INVALID_SCENARIOS, ids=[case for case, _ in INVALID_SCENARIOS])
def test_a_bad_scenario_gets_every_problem_at_its_place_with_a_hint(case: str, expected: str) -> None:
    """validate --scenario: the whole of stderr, exit 2, no traceback."""
    result = cli("validate", "--chains", "chains", "--scenario", f"tests/data/invalid_scenarios/{case}.yaml")
    assert (2, "", expected) == (result.returncode, result.stdout, result.stderr)


def test_a_scripted_chain_outside_only_still_runs_its_scripted_starts(catalog):
    """only: [vault_secret] with a scripted agent_execution: the script starts it, the mix never picks it."""
    events = events_of(catalog, {"name": "mixed", "only": ["vault_secret"], "run": {"rate": 5},
                                 "script": [{"at": "1s", "chain": "agent_execution"}]}, duration_ms=20_000, rate=5.0)
    firsts = collections.Counter(e["chain"] for e in events if e["causation_id"] is None)
    assert 1 == firsts["agent_execution"] and firsts["vault_secret"] > 50


def test_graph_and_list_show_the_chains_as_a_scenario_runs_them():
    """--scenario on graph and list: the scenario's branch weights and scaled delays, not the file's."""
    listing = cli("list", "--chains", "chains", "--only", "agent_execution", "--scenario",
                  "scenarios/failure_storm.yaml").stdout
    assert "execution_completed (0%)" in listing and "execution_failed (100%)" in listing
    drawn = cli("graph", "--chains", "chains", "--chain", "database_query", "--scenario",
                "scenarios/slow_dependency.yaml").stdout
    assert "s1 : after 100ms-600ms" in drawn  # 10-60 ms, ten times slower
