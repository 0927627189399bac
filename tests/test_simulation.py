"""Runs of the catalog: determinism, independence of random streams, and the statistics of its chains."""

from __future__ import annotations

import collections
import datetime as dt
import math
from typing import NamedTuple

import pytest

from engine import RunOptions, Simulation, SinkBase, load_catalog, run_to_list
from engine.envelope import NATIVE
from engine.envelope.fields import parse_timestamp

from .conftest import CHAINS, FAILS_AT_INSTANCE_3, START_MS, LagProbe, run
from .test_expect import assert_runs_match

encode = NATIVE.encode

SEED_WEIGHTS = {
    "intelligence_query": 30, "agent_execution": 20, "code_generation": 15, "metadata_stamping": 10,
    "database_query": 10, "consul_service": 7, "vault_secret": 8,
}
WEIGHTS = {**SEED_WEIGHTS, "pattern_discovery": 6, "compliance_validation": 4}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CHAINS)


@pytest.fixture(scope="module")
def big_run(catalog):
    """10,000 chains of the catalog, with their stats."""
    events: list[dict] = []

    class Sink(SinkBase):
        write = staticmethod(lambda event, line: events.append(event))

    stats = Simulation(catalog, RunOptions(seed=42, start_ms=START_MS, count=10_000, rate=50), Sink()).run()
    return events, stats


def _within(observed: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(observed - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_the_same_seed_and_start_give_the_same_bytes(catalog):
    """Two runs with the same files, seed and start produce byte-identical JSON lines."""
    options = RunOptions(seed=9, start_ms=START_MS, count=300, rate=20)
    first = b"".join(encode(e) for e in run_to_list(catalog, options))
    second = b"".join(encode(e) for e in run_to_list(catalog, options))
    assert first == second


def test_another_seed_gives_other_events(catalog):
    """A different seed changes the stream."""
    assert run(catalog, count=20, seed=1) != run(catalog, count=20, seed=2)


def test_an_instance_draws_the_same_whatever_else_runs(catalog_of):
    """Adding a chain file changes neither the ids nor the payloads of another chain's k-th instance."""
    a = "name: a\nsteps: [{id: s, event_type: a, payload: {v: '{{ random.randint(1, 10**6) }}'}}]\n"
    b = "name: b\nsteps: [{id: s, event_type: b, payload: {v: '{{ faker.name() }}'}}]\n"
    alone = [e for e in run(catalog_of({"a.yaml": a}), count=30) if e["chain"] == "a"]
    mixed = [e for e in run(catalog_of({"a.yaml": a, "b.yaml": b}), count=60) if e["chain"] == "a"]
    n = min(len(alone), len(mixed))
    assert n >= 10
    strip = lambda e: (e["event_id"], e["correlation_id"], e["payload"])  # noqa: E731
    assert [strip(e) for e in alone[:n]] == [strip(e) for e in mixed[:n]]


def test_timestamps_never_go_backwards(big_run):
    """Events of concurrent chains interleave in timestamp order."""
    events, _ = big_run
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)


def test_timestamps_are_rfc3339_utc_milliseconds(big_run):
    """Every timestamp is RFC 3339, UTC, with milliseconds, ending in Z."""
    events, _ = big_run
    for event in events[:500]:
        text = event["timestamp"]
        assert 24 == len(text) and text.endswith("Z")
        assert dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def test_the_chain_mix_matches_the_declared_weights(big_run):
    """Over 10,000 chains each chain's share is its weight within sampling error."""
    events, stats = big_run
    starts = collections.Counter(e["chain"] for e in events if e["causation_id"] is None)
    assert 10_000 == sum(starts.values()) == stats.started
    assert set(WEIGHTS) == set(starts)
    total = sum(WEIGHTS.values())
    for name, weight in WEIGHTS.items():
        assert _within(starts[name], 10_000, weight / total), (name, starts[name])


def test_branch_outcomes_match_their_weights(big_run):
    """agent_execution completes 90% and fails 10% of the time, within sampling error."""
    _, stats = big_run
    completed = stats.by_outcome[("agent_execution", "completed")]
    failed = stats.by_outcome[("agent_execution", "failed")]
    assert _within(failed, completed + failed, 0.10)


# The next chains of the seed: each run alone, 4,000 instances. Outcome shares come from the declared weights:
# pattern_discovery tries its scan at most 4 times (3 retries), each deferred 20% of the time.
SCANNED = 1 - 0.2 ** 4
OUTCOMES = {
    "pattern_discovery": {"abandoned": 0.2 ** 4, "approved": SCANNED * 0.65 * 0.7, "reviewed": SCANNED * 0.65 * 0.3,
                          "no_patterns": SCANNED * 0.25, "failed": SCANNED * 0.1},
    "compliance_validation": {"compliant": 0.7, "warnings": 0.2, "remediated": 0.1 * 0.75,
                              "escalated": 0.1 * 0.25},
}


CITED = ("discovery_id", "deferred_event", "discovery_event", "validation_id", "violation_event")


class Seen(NamedTuple):
    """What these tests read of an event. Tuples of text and numbers only: the garbage collector stops looking
    at them, so keeping 38,000 for the module does not slow a later test's collections (the event loop test)."""

    step: str
    event_id: str
    causation_id: str | None
    attempt: int | None
    cited: tuple[tuple[str, str], ...]  # (payload key, event id) for the keys of CITED


@pytest.fixture(scope="module")
def next_chains(catalog):
    """Each of the seed's next chains run alone: its events by instance, and the run's stats."""
    from engine.sinks.memory import ListSink

    runs = {}
    for name in OUTCOMES:
        sink = ListSink()
        stats = Simulation(catalog, RunOptions(seed=8, start_ms=START_MS, count=4000, rate=50, only=(name,)),
                           sink).run()
        instances: dict[str, list[Seen]] = collections.defaultdict(list)
        for event in sink.events:
            payload = event["payload"] if isinstance(event["payload"], dict) else {}
            instances[event["correlation_id"]].append(Seen(
                event["step"], event["event_id"], event["causation_id"], payload.get("attempt"),
                tuple((key, payload[key]) for key in CITED if key in payload)))
        runs[name] = (instances, stats)
    return runs


@pytest.mark.parametrize("name", list(OUTCOMES))
def test_the_next_chains_outcomes_match_their_weights(next_chains, name):
    """Every outcome's share is the one its branch weights give, within sampling error; none other occurs."""
    _, stats = next_chains[name]
    found = {outcome: count for (chain, outcome), count in stats.by_outcome.items() if chain == name}
    assert set(OUTCOMES[name]) >= set(found)
    for outcome, share in OUTCOMES[name].items():
        assert _within(found.get(outcome, 0), 4000, share), (outcome, found.get(outcome, 0))


def test_pattern_discovery_retries_are_bounded_and_numbered(next_chains):
    """A scan is tried at most 4 times; each try is numbered by its visit, each retry follows a deferral and
    names it; only a fourth deferral is abandoned."""
    instances, _ = next_chains["pattern_discovery"]
    tries: collections.Counter[int] = collections.Counter()
    for events in instances.values():
        steps = [event.step for event in events]
        started = [event for event in events if event.step == "scan_started"]
        tries[len(started)] += 1
        assert list(range(1, len(started) + 1)) == [event.attempt for event in started]
        assert steps.count("scan_deferred") - (steps[-1] == "abandoned") == steps.count("scan_retried") <= 3
        for before, event in zip(events, events[1:], strict=False):
            if event.step == "scan_retried":
                assert (("deferred_event", before.event_id),) == event.cited and "scan_deferred" == before.step
        assert (steps[-1] == "abandoned") == (steps.count("scan_deferred") == 4)
    assert {1, 2, 3, 4} >= set(tries) and tries[2] > tries[3] > 0


@pytest.mark.parametrize("name", list(OUTCOMES))
def test_the_next_chains_causation_ids_chain_and_payloads_name_earlier_events(next_chains, name):
    """Each event's causation_id is the instance's previous event_id; ids that payloads cite are events of the
    same instance, emitted earlier."""
    instances, _ = next_chains[name]
    for events in instances.values():
        assert [None] + [event.event_id for event in events[:-1]] == [event.causation_id for event in events]
        seen: set[str] = set()
        for event in events:
            assert all(cited in seen for _, cited in event.cited), event
            seen.add(event.event_id)
    assert any(event.cited for events in instances.values() for event in events)


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_every_catalog_chains_runs_match_its_expected_figures(catalog, name):
    """4,000 instances of each chain: events, duration and p95 as `list` and `validate` print them."""
    assert_runs_match(catalog, name, 4000)


def test_every_gap_lies_in_its_declared_delay_range(big_run, catalog):
    """The time between two events of an instance is within the delay declared for the later step."""
    events, _ = big_run
    bounds = {}
    for chain in catalog.chains:
        for step in chain.walk():
            for branch in step.branches:
                bounds[branch.id, chain.name] = (branch.delay or step.delay).bounds
            if step.delay and not step.branches:
                bounds.setdefault((step.id, chain.name), step.delay.bounds)
    last: dict[str, int] = {}
    checked = 0
    for event in events:
        at = parse_timestamp(event["timestamp"])
        key = event["correlation_id"]
        if key in last and (event["step"], event["chain"]) in bounds:
            low, high = bounds[event["step"], event["chain"]]
            assert low <= at - last[key] <= high, event
            checked += 1
        last[key] = at
    assert checked > 10_000


def test_every_chain_finishes_and_every_event_is_strict_json(big_run):
    """All 10,000 chains finish; every event encodes as strict JSON with the envelope fields."""
    events, stats = big_run
    assert 0 == stats.in_flight
    assert stats.events == len(events)
    for event in events[:2000]:
        line = encode(event)
        assert b"NaN" not in line and line.endswith(b"\n")


@pytest.mark.parametrize("rate", [0.5, 10, 5000])
def test_arrivals_keep_their_rate_even_above_one_per_millisecond(catalog_of, rate):
    """Poisson gaps add up unrounded, so N chains span about N / rate seconds at any rate."""
    text = "name: one\nsteps: [{id: a, event_type: t}]\n"
    events = run(catalog_of({"one.yaml": text}), count=4000, rate=rate)
    span_s = (parse_timestamp(events[-1]["timestamp"]) - parse_timestamp(events[0]["timestamp"])) / 1000
    assert 0.9 < span_s * rate / 3999 < 1.1


def _lines(catalog, options) -> bytes:
    return b"".join(encode(e) for e in run_to_list(catalog, options))


def test_two_runs_in_two_threads_give_the_bytes_each_gives_alone(catalog):
    """Each run owns its Faker generators, its simulated time and its budget: two runs of one catalog in two
    threads at once give exactly what each gives alone."""
    import threading

    first = RunOptions(seed=3, start_ms=START_MS, count=1500, rate=20)
    second = RunOptions(seed=4, start_ms=START_MS + 86_400_000 * 400, count=1500, rate=20)
    alone = [_lines(catalog, first), _lines(catalog, second)]
    together: list[bytes] = [b"", b""]
    started = threading.Barrier(2)

    def work(index: int, options: RunOptions) -> None:
        started.wait()
        together[index] = _lines(catalog, options)

    threads = [threading.Thread(target=work, args=(i, o)) for i, o in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert alone == together


def test_the_asyncio_clock_gives_the_bytes_of_the_virtual_clock(catalog):
    """A wall-clock run inside an event loop (at a high speed) writes exactly the virtual run's lines."""
    import asyncio

    from engine.sinks.memory import ListSink

    virtual = RunOptions(seed=5, start_ms=START_MS, count=300, rate=50)
    sink = ListSink()
    paced = Simulation(catalog, RunOptions(seed=5, start_ms=START_MS, count=300, rate=50, realtime=True,
                                           speed=500.0), sink)
    asyncio.run(paced.run_async())
    assert _lines(catalog, virtual) == b"".join(encode(e) for e in sink.events)


def test_the_event_loop_stays_responsive_while_a_run_generates(catalog):
    """While a run generates as fast as it can inside the loop, a task sleeping 1 ms at a time is never held
    up for long: the clock hands the loop back every few milliseconds (tolerance for a shared machine)."""
    import asyncio

    from engine.sinks import SinkBase

    class Null(SinkBase):
        def write(self, event: dict, line: bytes) -> None:
            pass

    probe = LagProbe()

    async def main() -> None:
        simulation = Simulation(catalog, RunOptions(seed=6, start_ms=START_MS, count=3000, rate=1000,
                                                    realtime=True, speed=1e6), Null())
        task = asyncio.create_task(probe.run())
        await simulation.run_async()
        task.cancel()

    asyncio.run(main())
    # A loop that was not handed back would wake the probe once, at the end. The median, not the maximum:
    # a shared machine can stall any process for tens of milliseconds (bench/ measures the lag's p99).
    assert len(probe.lags) >= 10
    assert sorted(probe.lags)[len(probe.lags) // 2] < 0.01


def test_a_template_failing_at_run_time_reaches_a_library_user_located(catalog_of):
    """Simulation.run raises TemplateRunError with the file, line, chain, step and key of the template."""
    from engine import ChainsimError, TemplateRunError

    catalog = catalog_of({"div.yaml": FAILS_AT_INSTANCE_3})
    with pytest.raises(TemplateRunError) as caught:
        run_to_list(catalog, RunOptions(seed=1, start_ms=START_MS, count=10, rate=1))
    error = caught.value
    assert isinstance(error, ChainsimError)
    assert (error.file.endswith("div.yaml"), 6, 14, "div", "one", "payload.ratio") == (
        True, error.line, error.column, error.chain, error.step, error.key)
    assert isinstance(error.cause, ZeroDivisionError)
    assert "hint: the events before this one were written; fix the template and run again" in str(error)


def test_a_run_leaves_the_process_as_it_found_it(catalog):
    """After a run: a user's Faker() reads today, and no Faker module or class was changed."""
    import faker
    import faker.providers.date_time as date_time
    from faker.providers import BaseProvider

    before = (date_time.datetime, date_time._get_local_timezone, BaseProvider.random_elements)
    run_to_list(catalog, RunOptions(seed=1, start_ms=0, count=50, rate=10))  # simulated 1970
    assert before == (date_time.datetime, date_time._get_local_timezone, BaseProvider.random_elements)
    assert dt.date.today().year == faker.Faker().date_this_year().year


def test_a_timestamp_one_millisecond_before_1970_is_formatted_as_such():
    """The timestamp cache starts empty: the second before the epoch (-1) is formatted, not taken as cached."""
    from engine.envelope.fields import Clock, format_timestamp

    assert format_timestamp(-1) == "1969-12-31T23:59:59.999Z"
    clock = Clock()
    assert [clock.format(ms) for ms in (-1000, -1, 0)] == [
        "1969-12-31T23:59:59.000Z", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00.000Z"]
