"""The pytest plugin as a user's project meets it: a test file of theirs, run by pytest (pytester), with the
fixtures, the helpers, the options and the seed in the header."""

from __future__ import annotations

import shutil

import pytest

from .conftest import CHAINS, ROOT

pytest_plugins = ["pytester"]

def users_tests(document: str = "README.md", heading: str = "### The pytest plugin") -> str:
    """The test file of a user's project that a document shows (the first Python block under the heading):
    the documents' example is what runs here."""
    text = (ROOT / document).read_text(encoding="utf-8")
    section = text[text.index(heading):]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_and_contributing_show_the_same_test_file() -> None:
    """CONTRIBUTING.md shows the file README.md shows, so the one that runs here is the one both teach."""
    assert users_tests() == users_tests("CONTRIBUTING.md", "## Testing a consumer with chainsim")


CONSUMER = '''
"""The user's code under test: a consumer that alerts on failed executions and counts each event once."""


class Consumer:
    def __init__(self):
        self.alerts, self.seen = [], set()

    def handle(self, event):
        if event["event_id"] in self.seen:
            return
        self.seen.add(event["event_id"])
        if event["event_type"] == "omninode.agent.execution.failed.v1":
            self.alerts.append(event)

    @property
    def events_seen(self):
        return len(self.seen)
'''

STREAMING = '''
def test_a_long_run_streams(chainsim):
    """stream() hands events on one by one."""
    assert sum(1 for _ in chainsim.stream(duration="10m")) > 10_000
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project: their chains and scenarios folders and a test file of theirs."""
    shutil.copytree(CHAINS, pytester.path / "chains")
    shutil.copytree(ROOT / "scenarios", pytester.path / "scenarios")
    pytester.makepyfile(test_consumer=users_tests(), consumer=CONSUMER, test_streaming=STREAMING)
    return pytester


def test_a_users_test_file_runs_with_the_fixtures_and_helpers(project: pytest.Pytester) -> None:
    """Every test of the user's file passes, and the header says which chains and seed."""
    result = project.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)  # the README's five tests and one that streams
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
