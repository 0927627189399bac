"""The pytest plugin as a user's project meets it: a test file of theirs, run by pytest (pytester), with the
fixtures, the helpers, the options and the seed in the header."""

from __future__ import annotations

import shutil

import pytest

from .conftest import CHAINS, ROOT

pytest_plugins = ["pytester"]

USERS_TESTS = '''
"""A consumer's tests, written against the chains of its repository."""

from engine.testing import (assert_causation_chains, assert_every_chain_finished, assert_followed_by,
                            assert_outcome_mix)


def test_every_chain_finishes_and_links_its_causes(chainsim):
    """500 chains of the catalog: all finish, and each event names the one before it."""
    events = chainsim.run(count=500)
    assert_every_chain_finished(events)
    assert_causation_chains(events)


def test_agent_executions_end_as_declared(chainsim):
    """The outcome mix of agent_execution is 90% completed, 10% failed, within sampling error."""
    events = chainsim.run(count=2000, only=["agent_execution"])
    assert_outcome_mix(events, "agent_execution", {"completed": 90, "failed": 10})


def test_a_started_execution_is_answered_within_two_seconds(chainsim):
    """Every execution.started is followed by a completed or failed event within 2 s."""
    events = chainsim.run(count=300)
    assert_followed_by(events, "omninode.agent.execution.started.v1", "omninode.agent.execution.[cf]*", 2000)


def test_the_failure_storm_scenario_fails_every_execution(chainsim):
    """With the scenario, every agent execution fails."""
    events = chainsim.run("scenarios/failure_storm.yaml", count=200)
    outcomes = {run.outcome for run in events.instances("agent_execution")}
    assert {"failed"} == outcomes


def test_overrides_given_in_python(chainsim):
    """Overrides as Python values: a tenant for one chain."""
    events = chainsim.run(overrides={"only": ["vault_secret"], "envelope": {"tenant_id": "acme"}}, count=20)
    assert {"acme"} == {e["tenant_id"] for e in events}


def test_a_long_run_streams(chainsim):
    """stream() hands events on one by one."""
    count = sum(1 for _ in chainsim.stream(duration="10m"))
    assert count > 10_000
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project: their chains and scenarios folders and a test file of theirs."""
    shutil.copytree(CHAINS, pytester.path / "chains")
    shutil.copytree(ROOT / "scenarios", pytester.path / "scenarios")
    pytester.makepyfile(test_consumer=USERS_TESTS)
    return pytester


def test_a_users_test_file_runs_with_the_fixtures_and_helpers(project: pytest.Pytester) -> None:
    """Every test of the user's file passes, and the header says which chains and seed."""
    result = project.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    assert any(line.startswith("chainsim: chains ") and line.endswith("seed 1 (--chainsim-seed to change it)")
               for line in project.runpytest("--co", "-p", "no:cacheprovider").outlines)


def test_the_seed_and_the_chains_come_from_options_or_ini(project: pytest.Pytester) -> None:
    """--chainsim-seed and ini chainsim_seed change the runs; the header shows the seed in use."""
    project.makeini("[pytest]\nchainsim_seed = 5\n")
    assert any("seed 5 " in line for line in project.runpytest("--co").outlines)
    assert any("seed 9 " in line for line in project.runpytest("--co", "--chainsim-seed", "9").outlines)
    project.makepyfile(test_seed='''
def test_the_seed_is_the_sessions(chainsim, chainsim_seed):
    """The fixture's runs use the session's seed."""
    assert 9 == chainsim_seed == chainsim.run(count=1).seed
''')
    project.runpytest("test_seed.py", "--chainsim-seed", "9").assert_outcomes(passed=1)


def test_a_failing_assertion_says_what_and_how_to_run_it_again(project: pytest.Pytester) -> None:
    """A helper's failure names the chain, the instance or the counts, and the seed to reproduce it."""
    project.makepyfile(test_fails='''
from engine.testing import assert_outcome_mix


def test_wrong_mix(chainsim):
    """The mix is 90/10, not 50/50."""
    events = chainsim.run(count=1000, only=["agent_execution"])
    assert_outcome_mix(events, "agent_execution", {"completed": 50, "failed": 50})
''')
    result = project.runpytest("test_fails.py", "--chainsim-seed", "3")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: agent_execution: * of 1000 ended in 'completed', expected 500 *"
                                 "(seed 3: run it again with --chainsim-seed 3)"])


def test_invalid_chains_fail_the_tests_that_use_them_with_the_report(pytester: pytest.Pytester) -> None:
    """A broken chain file: the tests using the fixtures error with the validate report, not a traceback maze."""
    (pytester.path / "chains").mkdir()
    (pytester.path / "chains" / "bad.yaml").write_text("name: bad\nsteps: [{id: a, event_type: x, dely: 5}]\n")
    pytester.makepyfile(test_x='''
def test_uses_it(chainsim):
    """Uses the catalog."""
    chainsim.run(count=1)
''')
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert ("the chainsim catalog is not valid:\nchains/bad.yaml:2:32: $.steps[0].dely: unknown key 'dely'\n"
            "  at chain 'bad' > step 'a' > key 'dely'\n  hint: did you mean 'delay'?\n1 problem in 1 file") in output
    assert "Traceback" not in output and "load_catalog" not in output
