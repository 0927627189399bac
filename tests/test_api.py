"""The Python API: stream a finite virtual run from a folder, with a scenario and overrides as Python values,
without holding the events."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest

from engine import LoadError, UsageError, run_to_list, simulate, stream
from engine.envelope.fields import parse_timestamp

from .conftest import CHAINS, ROOT


def test_stream_gives_the_events_of_the_command_line_run_in_order():
    """stream() is run_to_list's events, in the same order, for the same seed and start."""
    from engine import RunOptions, load_catalog

    expected = run_to_list(load_catalog(CHAINS), RunOptions(seed=4, start_ms=parse_timestamp("2026-01-01T00:00:00Z"),
                                                           count=200))
    assert expected == list(stream(CHAINS, count=200, seed=4, start="2026-01-01T00:00:00Z"))


def test_stream_does_not_hold_the_run():
    """Taking the first events of a run of a million chains is quick and small: nothing is run ahead."""
    tracemalloc.start()
    first = list(itertools.islice(stream(CHAINS, count=1_000_000), 100))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert 100 == len(first) and peak < 30 * 1024 * 1024


def test_a_scenario_and_overrides_given_as_python_values():
    """A scenario file with an override laid over it: the file's change stays, the override adds its own."""
    events = simulate(CHAINS, ROOT / "scenarios" / "failure_storm.yaml",
                      {"chains": {"agent_execution": {"envelope": {"namespace": "ci"}}}}, count=100)
    agent = [e for e in events if e["chain"] == "agent_execution"]
    assert {("acme", "ci")} == {(e["tenant_id"], e["namespace"]) for e in agent}
    assert not any(e["step"] == "execution_completed" for e in agent)


def test_the_api_defaults_are_deterministic():
    """Without a seed or a start: seed 1 and 2026-01-01T00:00:00Z, every time."""
    first = simulate(CHAINS, count=30)
    assert first == simulate(CHAINS, count=30) and first[0]["timestamp"].startswith("2026-01-01T00:00:00")


def test_a_run_without_an_end_is_refused():
    """No count, no duration, no finite script: UsageError, not a run that never stops."""
    with pytest.raises(UsageError, match="give count or duration: the run would never end"):
        simulate(CHAINS)


def test_bad_overrides_are_located_like_a_file():
    """An override naming an unknown chain gets a did-you-mean."""
    with pytest.raises(LoadError) as caught:
        simulate(CHAINS, overrides={"chains": {"agent_executon": {"weight": 2}}}, count=1)
    assert "did you mean 'agent_execution'?" == caught.value.problems[0].hint
