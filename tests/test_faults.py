"""Faults: each happens at its rate, to the events it is meant for, deterministically, and nothing else
changes: the events a fault does not touch are those of the same run without faults."""

from __future__ import annotations

import collections
import math

import pytest

from engine import RunOptions, load_catalog, run_to_list
from engine.envelope import NATIVE
from engine.scenarios.load import load_scenario
from engine.scenarios.run import simulation
from engine.sinks.memory import ListSink

from .conftest import CHAINS, START_MS

OPTIONS = {"seed": 21, "start_ms": START_MS, "count": 3000, "rate": 20.0}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CHAINS)


@pytest.fixture(scope="module")
def clean(catalog):
    """The run without faults: the events every faulty run is held to."""
    return run_to_list(catalog, RunOptions(**OPTIONS))


def faulty(catalog, *faults: dict) -> tuple[list[dict], collections.Counter[str]]:
    applied = load_scenario({"name": "faulty", "faults": list(faults)}, catalog)
    sink = ListSink()
    sim = simulation(applied, RunOptions(**OPTIONS), sink)
    stats = sim.run()
    return sink.events, stats.faults


def near(observed: int, n: int, p: float) -> bool:
    """A binomial count within 4 standard deviations of n * p."""
    return abs(observed - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1


def key(event: dict) -> bytes:
    return NATIVE.encode(event)


def test_duplicates_are_the_same_event_again_within_the_window(catalog, clean):
    """5% duplicated: the same event_id twice, the copy at most 2 s of simulated time later in the stream."""
    events, counts = faulty(catalog, {"kind": "duplicate", "rate": 0.05, "window": "2s"})
    seen = collections.Counter(e["event_id"] for e in events)
    twice = [i for i, n in seen.items() if n == 2]
    assert near(len(twice), len(clean), 0.05) and counts["duplicate"] == len(twice)
    assert sorted(map(key, clean)) == sorted({key(e) for e in events})  # nothing else added or changed


def test_reordered_events_are_overtaken_but_all_arrive(catalog, clean):
    """10% held back up to 300 ms: later events come first, and the same events arrive in all."""
    events, counts = faulty(catalog, {"kind": "reorder", "rate": 0.1, "window": "300ms"})
    assert sorted(map(key, clean)) == sorted(map(key, events))
    times = [e["timestamp"] for e in events]
    overtaken = sum(1 for a, b in zip(times, times[1:], strict=False) if b < a)
    assert near(counts["reorder"], len(clean), 0.1) and 0 < overtaken <= counts["reorder"]


def test_drops_lose_events_and_the_chains_go_on(catalog, clean):
    """20% of events of one type never arrive; everything else is the clean run's, chains included."""
    events, counts = faulty(catalog, {"kind": "drop", "rate": 0.2,
                                      "event_types": ["omninode.agent.execution.started.v1"]})
    lost = set(map(key, clean)) - set(map(key, events))
    started = [e for e in clean if e["event_type"] == "omninode.agent.execution.started.v1"]
    assert near(len(lost), len(started), 0.2) and counts["drop"] == len(lost)
    assert all(b'"omninode.agent.execution.started.v1"' in line for line in lost)
    assert set(map(key, events)) <= set(map(key, clean))  # the chains went on: their later events are there


def test_late_events_come_after_events_with_later_timestamps(catalog, clean):
    """1% delivered 30 s after their time: behind events 30 s newer, none lost."""
    events, counts = faulty(catalog, {"kind": "late", "rate": 0.01, "window": "30s"})
    assert sorted(map(key, clean)) == sorted(map(key, events))
    position = {e["event_id"]: i for i, e in enumerate(events)}
    late = [e for e in clean if position[e["event_id"]] > 0 and
            events[position[e["event_id"]] - 1]["timestamp"] > e["timestamp"]]
    assert near(counts["late"], len(clean), 0.01) and len(late) >= counts["late"] // 2


def test_stuck_chains_stop_and_never_finish(catalog, clean):
    """30% of agent executions stop after their execution_started event: no end event, still in flight."""
    events, counts = faulty(catalog, {"kind": "stuck", "rate": 0.3,
                                      "event_types": ["omninode.agent.execution.started.v1"]})
    started = {e["correlation_id"] for e in events if e["step"] == "execution_started"}
    ended = {e["correlation_id"] for e in events if e["step"] in ("execution_completed", "execution_failed")}
    assert near(len(started - ended), len(started), 0.3) and counts["stuck"] == len(started - ended)
    assert set(map(key, events)) <= set(map(key, clean))


def test_orphans_name_a_cause_that_was_never_emitted(catalog, clean):
    """3% of intelligence_query events name a causation_id no event has; the rest is unchanged."""
    events, counts = faulty(catalog, {"kind": "orphan", "rate": 0.03, "chains": ["intelligence_query"]})
    ids = {e["event_id"] for e in events}
    orphans = [e for e in events if e["causation_id"] and e["causation_id"] not in ids]
    queries = sum(1 for e in clean if e["chain"] == "intelligence_query")
    assert near(len(orphans), queries, 0.03) and counts["orphan"] >= len(orphans) > 0
    assert {e["chain"] for e in orphans} == {"intelligence_query"}
    assert len(set(map(key, clean)) - set(map(key, events))) == counts["orphan"]


@pytest.mark.parametrize("drift", ["missing", "renamed", "wrong_type"])
def test_schema_drift_changes_one_payload_field(catalog, clean, drift):
    """A field missing, renamed to name_v2, or of another type, in 5% of code_generation events."""
    events, counts = faulty(catalog, {"kind": "drift", "rate": 0.05, "chains": ["code_generation"], "drift": drift,
                                      "field": "language"})
    by_id = {e["event_id"]: e for e in clean}
    changed = [e for e in events if e != by_id[e["event_id"]]]
    touched = [e for e in clean if e["chain"] == "code_generation" and "language" in (e["payload"] or {})]
    assert near(len(changed), len(touched), 0.05) and len(changed) == counts["drift"]
    for event in changed:
        payload = event["payload"]
        if drift == "missing":
            assert "language" not in payload
        elif drift == "renamed":
            assert "language" not in payload and "language_v2" in payload
        else:
            assert not isinstance(payload["language"], type(by_id[event["event_id"]]["payload"]["language"]))


def test_faults_are_the_same_run_after_run(catalog):
    """Every fault at once, twice: the same bytes and the same counts."""
    every = [{"kind": kind, "rate": 0.02} for kind in ("duplicate", "reorder", "drop", "late", "stuck", "orphan",
                                                         "drift")]
    first, second = faulty(catalog, *every), faulty(catalog, *every)
    assert list(map(key, first[0])) == list(map(key, second[0])) and first[1] == second[1]
    assert set(first[1]) == {"duplicate", "reorder", "drop", "late", "stuck", "orphan", "drift"}
