"""The SQLite event store (engine/store) and its writer, on real files, fed with the real catalog's events."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

from engine.api import stream
from engine.envelope import NATIVE
from engine.envelope.fields import format_timestamp, parse_timestamp
from engine.errors import UsageError
from engine.sinks.sqlite import open_sqlite
from engine.store import ChainQuery, EventQuery, StoreError, decode_cursor, encode_cursor, open_store
from engine.store.aggregates import Timestamps, percentile
from engine.store.query import causal_order, glob_match
from engine.store.sqlite import SQLiteStore
from engine.store.writer import StoreWriter
from tests.conftest import CHAINS, ROOT, START, START_MS

Item = tuple[Any, ...]  # ("event", event, line) or ("end", correlation_id, chain, outcome, at)


def catalog_items(count: int, seed: int = 1, mixed: bool = True, scenario: Path | None = None) -> list[Item]:
    """The events of a run of the real catalog, each chain's end right after its last event. With `mixed`, a
    third of the chain instances get tenant acme and namespace staging, so those filters have work."""
    outcomes: dict[str, str] = {}
    events = list(stream(CHAINS, scenario, count=count, seed=seed, start=START, outcomes=outcomes))
    last = {event["correlation_id"]: index for index, event in enumerate(events)}
    items: list[Item] = []
    for index, event in enumerate(events):
        cid = event["correlation_id"]
        if mixed and zlib.crc32(cid.encode()) % 3 == 0:
            event = {**event, "tenant_id": "acme", "namespace": "staging"}
        items.append(("event", event, NATIVE.encode(event)))
        if last[cid] == index and cid in outcomes:
            items.append(("end", cid, event["chain"], outcomes[cid], parse_timestamp(event["timestamp"])))
    return items


def feed(writer: StoreWriter, items: list[Item]) -> None:
    for item in items:
        if item[0] == "event":
            writer.write(item[1], item[2])
        else:
            writer.end_chain(*item[1:])


def stored(path: Path, items: list[Item], **writer_options: Any) -> SQLiteStore:
    store = SQLiteStore(path)
    writer = StoreWriter(store, **writer_options)
    feed(writer, items)
    writer.close()
    return store


def events_of(items: list[Item]) -> list[dict[str, Any]]:
    return [item[1] for item in items if item[0] == "event"]


def walk(store: SQLiteStore, query: EventQuery) -> list[dict[str, Any]]:
    """Every page of a query, followed by its cursors, as events."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = store.events(attrs.evolve(query, after=after))
        found.extend(orjson.loads(line) for line in page.items)
        if page.next_cursor is None:
            return found
        after = decode_cursor(page.next_cursor).seq


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return catalog_items(600)


@pytest.fixture(scope="module")
def store(items: list[Item], tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    store = stored(tmp_path_factory.mktemp("store") / "events.db", items, batch_rows=97)
    yield store
    store.close()


FILTERS: list[dict[str, Any]] = [
    {"event_type": "omninode.agent.routing.requested.v1"},
    {"event_type": "omninode.agent.*"},  # common: GLOB on a scan in seq order
    {"event_type": "omninode.compliance.remediation.*"},  # rare: the types it matches, through the index
    {"event_type": "omninode.*.completed.v?"},
    {"event_type": "omninode.[ac]*.requested.v1"},
    {"event_type": "omninode.[^a]*.requested.v1"},
    {"event_type": "nothing.*"},
    {"chain": "database_query"},
    {"tenant_id": "acme"},
    {"namespace": "staging"},
    {"since_ms": parse_timestamp("2026-01-01T00:00:30Z")},
    {"until_ms": parse_timestamp("2026-01-01T00:00:20.000Z")},
    {"since_ms": parse_timestamp("2026-01-01T00:00:10Z"), "until_ms": parse_timestamp("2026-01-01T00:00:12.500Z")},
    {"chain": "agent_execution", "tenant_id": "acme", "event_type": "*.completed.v1"},
]


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_every_filter_gives_the_matching_events_in_seq_order(store: SQLiteStore, items: list[Item],
                                                             filters: dict[str, Any], order: str) -> None:
    """Each filter (and globs with * ? [..] [^..]), walked page by page, gives exactly the events that match."""
    query = EventQuery(**filters, limit=37, order=order)  # type: ignore[arg-type]
    expected = [event for event in events_of(items) if query.matches(event, parse_timestamp(event["timestamp"]))]
    if order == "desc":
        expected.reverse()

    assert expected == walk(store, query)


def test_correlation_id_filter_gives_one_chain_instance(store: SQLiteStore, items: list[Item]) -> None:
    """correlation_id= gives that instance's events, newest first."""
    cid = events_of(items)[100]["correlation_id"]
    expected = [event for event in events_of(items) if event["correlation_id"] == cid][::-1]

    assert expected == walk(store, EventQuery(correlation_id=cid, limit=2))


def test_sqlite_glob_and_the_python_glob_agree() -> None:
    """The glob the store evaluates in Python (to pick an index) matches what SQLite's GLOB matches."""
    texts = ["omninode.agent.started.v1", "omninode.code.x", "a", "", "a*b", "a[b", "x.y.z", "A.b", "a]b", "a^b"]
    patterns = ["*", "a*", "?", "omninode.*", "*.v1", "[ao]*", "[^a]*", "a[b", "a[*]b", "[a-c]", "[]]b", "a[]]b",
                "a[^]]b", "A.*", "a.*", "*[.]*", "[!a]*", "a^b"]
    connection = sqlite3.connect(":memory:")
    for pattern in patterns:
        for text in texts:
            expected = bool(connection.execute("SELECT ? GLOB ?", (text, pattern)).fetchone()[0])
            assert expected == glob_match(pattern, text), (pattern, text)


def test_pages_use_the_indexes(store: SQLiteStore) -> None:
    """Every filter is answered through an index (or the seq order), never a full sort of the table."""
    plans = {
        "all": store.explain(EventQuery()),
        "event_type": store.explain(EventQuery(event_type="omninode.agent.routing.requested.v1")),
        "chain": store.explain(EventQuery(chain="database_query")),
        "correlation_id": store.explain(EventQuery(correlation_id="x")),
        "tenant_id": store.explain(EventQuery(tenant_id="acme", order="asc")),
        "namespace": store.explain(EventQuery(namespace="staging")),
        "rare glob": store.explain(EventQuery(event_type="omninode.compliance.remediation.*")),
    }

    narrow = store.explain(EventQuery(since_ms=parse_timestamp("2026-01-01T00:00:30Z"),
                                      until_ms=parse_timestamp("2026-01-01T00:00:31Z")))
    store.time_probe = 100
    wide = store.explain(EventQuery(since_ms=0))
    store.time_probe = 10_000

    assert ["SEARCH events USING INDEX events_ts (ts>? AND ts<?)", "USE TEMP B-TREE FOR ORDER BY"] == narrow
    assert ["SCAN events"] == wide
    assert ["SCAN events"] == plans["all"]
    for name in ("event_type", "chain", "correlation_id", "tenant_id", "namespace"):
        assert [f"SEARCH events USING INDEX events_{name} ({name}=?)"] == plans[name], name
    assert plans["rare glob"][0] == "SEARCH events USING INDEX events_event_type (event_type=?)"


def test_a_page_past_the_end_is_empty_and_has_no_cursor(store: SQLiteStore) -> None:
    """The last page has next_cursor None; a cursor at the very end gives an empty page."""
    last = store.events(EventQuery(limit=1, order="asc", after=store.last_seq()))

    assert ([], None) == (list(last.items), last.next_cursor)


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_walking_pages_while_a_writer_inserts_gives_every_event_once(tmp_path: Path, order: str) -> None:
    """Pages walked while the writer commits more events between (and during) pages: every event once, in order,
    with no gap; in asc order, the walk then reaches events stored after it began."""
    items = catalog_items(300)
    store = SQLiteStore(tmp_path / "events.db")
    writer = StoreWriter(store, batch_rows=13, every_s=0.001)
    feed(writer, items[:200])
    writer.flush()
    rest = iter(items[200:])
    seqs: list[int] = []
    top = store.last_seq()
    after = None

    def keep_writing() -> None:  # a second producer of commits, during the walk
        for number, item in enumerate(rest):
            if item[0] == "event":
                writer.write(item[1], item[2])
            else:
                writer.end_chain(*item[1:])
            if number % 5 == 0:
                writer.flush()

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        while True:
            page = store.events(EventQuery(limit=7, order=order, after=after))  # type: ignore[arg-type]
            seqs.extend(_seq_of(store, line) for line in page.items)
            if page.next_cursor is None:
                break
            after = decode_cursor(page.next_cursor).seq
    finally:
        thread.join()
        writer.close()

    if order == "desc":
        assert seqs[0] >= top
        assert list(range(seqs[0], 0, -1)) == seqs
    else:
        assert list(range(1, len(seqs) + 1)) == seqs
        assert len(seqs) >= top
        rest_seqs = [seq for seq, _ in store.events_after(seqs[-1], limit=10_000)]
        assert list(range(1, store.last_seq() + 1)) == seqs + rest_seqs
    store.close()


def _seq_of(store: SQLiteStore, line: bytes) -> int:
    seq = store.seq_of(orjson.loads(line)["event_id"])
    assert seq is not None
    return seq


BAD_CURSORS = ["", "x", "abc", "not a cursor", "ZTpkOjUyNDc6NmE0MzA5NTQ=", "é", "a" * 300, "ZTpkOjUyNDc6NmE0MzA5NTR",
               "ZTpkOi0xOjAwMDAwMDAw", "ZTp4OjE6MTIzNDU2Nzg", "Ly8vLw", "AAAA", "ZTpkOjE"]


@pytest.mark.parametrize("text", BAD_CURSORS)
def test_a_malformed_cursor_is_a_value_error(text: str) -> None:
    """Anything that is not a cursor this store gave (cut, edited, padded, made up) raises ValueError."""
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor(text)


def test_a_cursor_of_another_kind_of_page_is_a_value_error() -> None:
    """A chains page's cursor is not an events page's cursor."""
    with pytest.raises(ValueError, match="a cursor of a chains page, not of a events page"):
        decode_cursor(encode_cursor(5, "desc", "chains"))


def test_a_cursor_carries_its_seq_and_order() -> None:
    """encode then decode gives back the seq and the order; the text is url-safe."""
    text = encode_cursor(1_234_567_890_123, "asc")

    assert (1_234_567_890_123, "asc", "events") == (decode_cursor(text).seq, decode_cursor(text).order,
                                                     decode_cursor(text).kind)
    assert text.replace("-", "").replace("_", "").isalnum()


def test_chain_detail_has_events_in_causal_order_and_its_outcome(store: SQLiteStore, items: list[Item]) -> None:
    """chain(id) gives the instance's events in causal order, status finished, the outcome, start, end, duration."""
    ends = {item[1]: item for item in items if item[0] == "end"}
    for cid in list(ends)[::50]:
        events = [event for event in events_of(items) if event["correlation_id"] == cid]
        _, _, chain, outcome, at = ends[cid]

        detail = store.chain(cid)

        assert detail is not None
        assert {"correlation_id": cid, "chain": chain, "tenant_id": events[0]["tenant_id"], "status": "finished",
                "outcome": outcome, "start": events[0]["timestamp"], "end": format_timestamp(at),
                "duration_ms": at - parse_timestamp(events[0]["timestamp"]), "event_count": len(events),
                "events": events} == detail
        for earlier, later in zip(detail["events"], detail["events"][1:], strict=False):
            assert later["causation_id"] == earlier["event_id"] or later["causation_id"] in {
                e["event_id"] for e in detail["events"][:detail["events"].index(later)]}


def test_a_chain_without_its_end_is_in_flight(tmp_path: Path) -> None:
    """An instance whose end has not come is in flight, without outcome; end is its latest event so far."""
    items = [item for item in catalog_items(30) if item[0] == "event"]
    store = stored(tmp_path / "events.db", items)
    cid = items[0][1]["correlation_id"]
    events = [item[1] for item in items if item[1]["correlation_id"] == cid]

    detail = store.chain(cid)

    assert detail is not None
    assert ("in_flight", None, events[-1]["timestamp"], len(events)) == (
        detail["status"], detail["outcome"], detail["end"], detail["event_count"])
    assert store.chain("no-such-id") is None
    assert 30 == store.statistics()["in_flight"]


def test_causal_order_puts_an_event_after_its_cause_even_when_it_arrived_first() -> None:
    """An event delivered before its cause (a reorder fault) comes after it; ties and orphans by seq."""
    events = [(1, "a", None, "a"), (2, "c", "b", "c"), (3, "b", "a", "b"), (4, "d", "a", "d"), (5, "x", "gone", "x")]

    assert ["a", "b", "c", "d", "x"] == causal_order(events)


def test_chain_summaries_filter_and_page(store: SQLiteStore, items: list[Item]) -> None:
    """chains() by chain, outcome and status, newest first or oldest first, walked by cursor."""
    ends = {item[1]: item[3] for item in items if item[0] == "end"}
    firsts: dict[str, dict[str, Any]] = {}
    for event in events_of(items):
        firsts.setdefault(event["correlation_id"], event)
    order = list(firsts)  # by first seq
    for query, keep in [
        (ChainQuery(limit=9), lambda cid: True),
        (ChainQuery(chain="agent_execution", limit=4, order="asc"),
         lambda cid: firsts[cid]["chain"] == "agent_execution"),
        (ChainQuery(outcome="completed", limit=50), lambda cid: ends.get(cid) == "completed"),
        (ChainQuery(status="in_flight"), lambda cid: cid not in ends),
        (ChainQuery(status="finished", chain="vault_secret", limit=3),
         lambda cid: cid in ends and firsts[cid]["chain"] == "vault_secret"),
    ]:
        expected = [cid for cid in order if keep(cid)]
        if query.order == "desc":
            expected.reverse()
        found: list[str] = []
        after = None
        while True:
            page = store.chains(ChainQuery(query.chain, query.outcome, query.status, query.limit, query.order, after))
            found.extend(item["correlation_id"] for item in page.items)
            if page.next_cursor is None:
                break
            after = decode_cursor(page.next_cursor, "chains").seq
        assert expected == found, query


def independent_statistics(items: list[Item]) -> dict[str, Any]:
    """The statistics recomputed from the events and ends themselves, without the store."""
    events = events_of(items)
    ends = [item for item in items if item[0] == "end"]
    stamps = [parse_timestamp(event["timestamp"]) for event in events]
    starts: dict[str, int] = {}
    chain_of: dict[str, str] = {}
    for event, ts in zip(events, stamps, strict=True):
        starts[event["correlation_id"]] = min(starts.get(event["correlation_id"], ts), ts)
        chain_of[event["correlation_id"]] = event["chain"]
    newest_second = max(stamps) // 1000
    durations: dict[str, list[int]] = collections.defaultdict(list)
    by_outcome: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for _, cid, chain, outcome, at in ends:
        durations[chain].append(at - starts[cid])
        by_outcome[chain][outcome] += 1

    def figures(values: list[int]) -> dict[str, int]:
        last = sorted(values[-1000:])
        return {"count": len(last), "p50": percentile(last, 50), "p95": percentile(last, 95),
                "p99": percentile(last, 99)}

    return {
        "events": len(events),
        "chains": len(starts),
        "in_flight": len(starts) - len(ends),
        "by_event_type": dict(sorted(collections.Counter(e["event_type"] for e in events).items())),
        "by_chain": dict(sorted(collections.Counter(chain_of.values()).items())),
        "by_outcome": {chain: dict(sorted(c.items())) for chain, c in sorted(by_outcome.items())},
        "by_tenant": dict(sorted(collections.Counter(e["tenant_id"] for e in events).items())),
        "events_per_second": {f"{w}s": sum(1 for ts in stamps if ts // 1000 > newest_second - w) / w
                              for w in (60, 300)},
        "durations_ms": {chain: figures(values) for chain, values in sorted(durations.items())},
        "since": format_timestamp(min(stamps)),
        "newest": format_timestamp(max(stamps)),
    }


def test_statistics_match_counts_computed_from_the_events(tmp_path: Path) -> None:
    """Totals, counts by type/chain/outcome/tenant, rates over 60 s and 300 s, in flight, percentiles, since."""
    items = catalog_items(2500)
    ends = [index for index, item in enumerate(items) if item[0] == "end"]
    items = [item for index, item in enumerate(items) if index not in set(ends[::7])]  # some never end
    store = stored(tmp_path / "events.db", items, batch_rows=501)

    assert independent_statistics(items) == store.statistics()
    store.close()


def test_a_run_with_delivery_faults_is_stored_and_counted(tmp_path: Path) -> None:
    """Duplicates (stored twice), reordered and late events (out of time order), stuck chains: the figures still
    equal independent counts, and each chain's detail has all its deliveries."""
    items = catalog_items(1500, scenario=ROOT / "scenarios" / "unreliable_delivery.yaml")
    events = events_of(items)
    assert len({e["event_id"] for e in events}) < len(events)  # the run has duplicates
    stamps = [e["timestamp"] for e in events]
    assert stamps != sorted(stamps)  # and events out of time order
    store = stored(tmp_path / "events.db", items, batch_rows=300)

    assert independent_statistics(items) == store.statistics()
    duplicated = collections.Counter(e["event_id"] for e in events).most_common(1)[0][0]
    cid = next(e["correlation_id"] for e in events if e["event_id"] == duplicated)
    detail = store.chain(cid)
    assert detail is not None
    assert sorted(e["event_id"] for e in events if e["correlation_id"] == cid) == sorted(
        e["event_id"] for e in detail["events"])
    assert store.seq_of(duplicated) == 1 + next(i for i, e in enumerate(events) if e["event_id"] == duplicated)


def test_timestamps_with_offsets_are_stored_as_the_same_moments(tmp_path: Path) -> None:
    """Events whose timestamps are RFC 3339 with an offset (not the run's own form) get the right ms and figures."""
    items = [item for item in catalog_items(20) if item[0] == "event"]
    shifted = []
    for _, event, _ in items:
        moment = parse_timestamp(event["timestamp"])
        text = format_timestamp(moment + 3_600_000)[:-1] + "+01:00"  # the same moment, an hour east
        event = {**event, "timestamp": text}
        shifted.append(("event", event, NATIVE.encode(event)))
    store = stored(tmp_path / "events.db", shifted)
    first = parse_timestamp(items[0][1]["timestamp"])

    assert format_timestamp(first) == store.statistics()["since"]
    page = store.events(EventQuery(since_ms=first, until_ms=first, order="asc"))
    assert [orjson.loads(line)["event_id"] for line in page.items] == [
        item[1]["event_id"] for item in items if parse_timestamp(item[1]["timestamp"]) == first]


def test_statistics_are_loaded_again_when_the_store_opens(tmp_path: Path) -> None:
    """A store opened again has the same figures (from its tables), and goes on counting from them."""
    items = catalog_items(400)
    stored(tmp_path / "events.db", items[:500]).close()
    again = stored(tmp_path / "events.db", items[500:])

    assert independent_statistics(items) == again.statistics()
    assert independent_statistics(items) == SQLiteStore(tmp_path / "events.db").statistics()


def test_retention_by_count_keeps_the_newest_and_adjusts_the_figures(tmp_path: Path) -> None:
    """retain(max_events=N) deletes the oldest by seq down to N; chains left without events go; figures follow."""
    items = catalog_items(1500)
    store = stored(tmp_path / "events.db", items)
    total = store.statistics()["events"]
    top = store.last_seq()

    deleted = store.retain(max_events=1000)

    assert (total - 1000, 1000) == (deleted, store.statistics()["events"])
    assert [seq for seq, _ in store.events_after(0, limit=5000)] == list(range(top - 999, top + 1))
    assert store.statistics() == SQLiteStore(tmp_path / "events.db").statistics()
    kept = {orjson.loads(line)["correlation_id"] for _, line in store.events_after(0, limit=5000)}
    assert len(kept) == store.statistics()["chains"]
    assert store.chains(ChainQuery(limit=1000, order="asc")).items[0]["correlation_id"] in kept
    assert top == store.last_seq()


def test_retention_by_age_deletes_what_is_older_than_the_newest_minus_the_age(tmp_path: Path) -> None:
    """retain(max_age_ms=A) deletes events older than newest - A, in chunks; figures equal a fresh count."""
    items = catalog_items(1500)
    store = stored(tmp_path / "events.db", items)
    events = events_of(items)
    newest = max(parse_timestamp(event["timestamp"]) for event in events)
    keep = [event for event in events if parse_timestamp(event["timestamp"]) >= newest - 30_000]

    deleted = store.retain(max_events=None, max_age_ms=30_000)

    assert (len(events) - len(keep), len(keep)) == (deleted, store.statistics()["events"])
    figures = store.statistics()
    assert figures == SQLiteStore(tmp_path / "events.db").statistics()
    assert format_timestamp(min(parse_timestamp(e["timestamp"]) for e in keep)) == figures["since"]
    assert dict(sorted(collections.Counter(e["event_type"] for e in keep).items())) == figures["by_event_type"]
    assert 0 == store.retain(max_events=None, max_age_ms=30_000)


def test_retention_of_everything_keeps_the_seq_going(tmp_path: Path) -> None:
    """With every event deleted, a new writer still goes on past the highest seq ever written."""
    items = catalog_items(20)
    store = stored(tmp_path / "events.db", items)
    top = store.last_seq()
    store.retain(max_events=0)
    store.close()
    store = SQLiteStore(tmp_path / "events.db")
    writer = StoreWriter(store)

    assert (0, 0, top) == (store.statistics()["events"], store.statistics()["chains"], store.last_seq())
    assert top + 1 == writer.assign(items[0][1], items[0][2])
    writer.close()


CHILD = """\
import sys
from engine.api import stream
from engine.envelope import NATIVE
from engine.store.sqlite import SQLiteStore
from engine.store.writer import StoreWriter

writer = StoreWriter(SQLiteStore(sys.argv[1]), batch_rows=300, every_s=0.005)
reported = writer.committed
for event in stream("chains/", count=1_000_000, seed=int(sys.argv[2]), start="2026-01-01T00:00:00Z"):
    writer.write(event, NATIVE.encode(event))
    if writer.committed != reported:
        reported = writer.committed
        print(reported, flush=True)
"""


def kill_while_writing(path: Path, seed: int, reports: int) -> int:
    """A child writing through StoreWriter, killed with SIGKILL after `reports` commits; the last it reported."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(seed)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None
    committed = 0
    try:
        for _ in range(reports):
            line = child.stdout.readline()
            assert line, "the child ended before it was killed"
            committed = int(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert -signal.SIGKILL == child.returncode
    return committed


def test_sigkill_loses_no_committed_event_and_a_new_writer_goes_on(tmp_path: Path) -> None:
    """Killed with SIGKILL mid-run (twice), the file opens again with every event whose commit was reported,
    numbered 1..n without a gap, and a new writer goes on from max(seq) + 1."""
    path = tmp_path / "events.db"
    first = kill_while_writing(path, seed=1, reports=20)
    store = SQLiteStore(path)
    top = store.last_seq()
    assert top >= first
    assert list(range(1, top + 1)) == [seq for seq, _ in store.events_after(0, limit=10**7)]
    store.close()

    second = kill_while_writing(path, seed=2, reports=10)
    store = SQLiteStore(path)
    assert second > top
    assert list(range(1, store.last_seq() + 1)) == [seq for seq, _ in store.events_after(0, limit=10**7)]
    assert store.statistics()["events"] == store.last_seq()
    writer = StoreWriter(store)
    event = {"event_id": "e", "event_type": "t", "correlation_id": "c", "causation_id": None, "tenant_id": "x",
             "namespace": "n", "timestamp": "2026-01-02T00:00:00.000Z", "chain": "ch", "step": "s", "payload": None}
    assert store.last_seq() + 1 == writer.assign(event, NATIVE.encode(event))
    writer.close()
    store.close()


def test_a_file_of_random_bytes_is_not_a_store(tmp_path: Path) -> None:
    """Random bytes: StoreError saying the file is not an SQLite database, with a hint."""
    path = tmp_path / "random.db"
    path.write_bytes(os.urandom(8192))

    with pytest.raises(StoreError) as caught:
        SQLiteStore(path)

    assert (f"store {str(path)!r} is not a chainsim store: the file is not an SQLite database\n"
            "  hint: give --store a new file (sqlite:PATH creates it), or move this file away") == str(caught.value)


def test_another_sqlite_database_is_not_a_store(tmp_path: Path) -> None:
    """An SQLite database of something else: StoreError naming its tables, and the file is left alone."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    before = path.read_bytes()

    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:{path}")

    assert f"store {str(path)!r} is an SQLite database but not a chainsim store (its tables: customers)" == \
        caught.value.message
    assert before == path.read_bytes()


def test_a_store_of_another_layout_is_refused(tmp_path: Path) -> None:
    """A chainsim store whose layout version this chainsim does not read: StoreError naming both versions."""
    path = tmp_path / "events.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 99")

    with pytest.raises(StoreError, match="is a chainsim store of layout 99; this chainsim reads layout 1"):
        SQLiteStore(path)


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    """A path that is a folder: StoreError, not a traceback."""
    with pytest.raises(StoreError, match="cannot open store"):
        SQLiteStore(tmp_path)


def test_store_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """memory, sqlite:PATH (folders created) and a bad spec (UsageError with the forms)."""
    memory = open_store("memory")
    writer = StoreWriter(memory)
    feed(writer, catalog_items(5))
    writer.close()
    assert memory.statistics()["chains"] == 5
    nested = open_store(f"sqlite:{tmp_path}/a/b/events.db")
    nested.close()
    assert (tmp_path / "a" / "b" / "events.db").exists()
    with pytest.raises(UsageError, match="unknown store 'mysql://x'"):
        open_store("mysql://x")
    with pytest.raises(UsageError, match="names no file"):
        open_store("sqlite:")


def test_memory_stores_are_separate() -> None:
    """Two memory stores do not share their events."""
    one, two = open_store("memory"), open_store("memory")
    writer = StoreWriter(one)
    feed(writer, catalog_items(3))
    writer.close()

    assert (0, 0) == (two.last_seq(), two.statistics()["events"])
    assert one.last_seq() > 0


def test_a_failed_commit_is_raised_from_the_next_write_and_close(tmp_path: Path) -> None:
    """When the store cannot commit (here: closed under the writer), the next flush raises StoreError."""
    store = SQLiteStore(tmp_path / "events.db")
    writer = StoreWriter(store)
    items = catalog_items(5)
    feed(writer, items)
    store.close()

    with pytest.raises(StoreError, match="is closed"):
        writer.flush()
    with pytest.raises(StoreError, match="is closed"):
        writer.write(items[0][1], items[0][2])
    with pytest.raises(StoreError, match="is closed"):
        writer.close()


def test_assign_numbers_events_in_arrival_order(tmp_path: Path) -> None:
    """assign returns 1, 2, ...; last_assigned follows; committed reaches it after flush."""
    writer = StoreWriter(SQLiteStore(tmp_path / "events.db"), close_store=True)
    events = events_of(catalog_items(3))

    seqs = [writer.assign(event, NATIVE.encode(event)) for event in events]
    writer.flush()

    assert (list(range(1, len(events) + 1)), len(events), len(events)) == (seqs, writer.last_assigned,
                                                                           writer.committed)
    writer.close()


def test_the_sqlite_sink_stores_a_run_line_for_line(tmp_path: Path) -> None:
    """open_sqlite (the sink of --sink sqlite:PATH) stores every event with its exact line."""
    events = list(stream(CHAINS, count=200, seed=1, start=START))
    sink = open_sqlite(str(tmp_path / "run.db"), NATIVE)
    for event in events:
        sink.write(event, NATIVE.encode(event))
    sink.close()
    store = SQLiteStore(tmp_path / "run.db")

    assert [NATIVE.encode(event)[:-1].decode() for event in events] == [
        line for _, line in store.events_after(0, limit=10**6)]


def test_the_sqlite_sink_refuses_another_encoding() -> None:
    """A store keeps native JSON lines: any other encoding is a UsageError."""
    class Other:
        name = "cloudevents"

    with pytest.raises(UsageError, match="not the 'cloudevents' encoding"):
        open_sqlite("x.db", Other())  # type: ignore[arg-type]


def test_the_cli_runs_into_an_sqlite_file(tmp_path: Path) -> None:
    """`python -m engine ... --sink sqlite:PATH` stores the same lines as --output writes (needs the REGISTRY
    entry "sqlite": "engine.sinks.sqlite:open_sqlite")."""
    run = [sys.executable, "-m", "engine", "--chains", "chains/", "--count", "200", "--seed", "1", "--start", START]
    jsonl = subprocess.run([*run, "--output", str(tmp_path / "run.jsonl")], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    result = subprocess.run([*run, "--sink", f"sqlite:{tmp_path / 'run.db'}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)

    assert (0, 0) == (jsonl.returncode, result.returncode), result.stderr
    store = SQLiteStore(tmp_path / "run.db")
    assert (tmp_path / "run.jsonl").read_text().splitlines() == [
        line for _, line in store.events_after(0, limit=10**6)]
    assert store.statistics()["in_flight"] < store.statistics()["chains"]  # the run's chain ends are stored


def test_a_corrupt_store_is_a_store_error(tmp_path: Path) -> None:
    """A store whose pages were overwritten: StoreError saying it is corrupt, not a traceback."""
    path = tmp_path / "events.db"
    stored(path, catalog_items(300)).close()
    data = bytearray(path.read_bytes())
    data[4096:] = os.urandom(len(data) - 4096)  # every page but the first (the header and the schema)
    path.write_bytes(bytes(data))

    with pytest.raises(StoreError, match=f"store {str(path)!r} is corrupt"):
        SQLiteStore(path)


def test_a_writer_ahead_of_its_commits_waits_and_loses_nothing(tmp_path: Path) -> None:
    """With max_pending small, write waits for the commit thread; every event is stored, in order."""
    items = catalog_items(200)
    store = SQLiteStore(tmp_path / "events.db")
    writer = StoreWriter(store, batch_rows=10, max_pending=20)
    feed(writer, items)
    writer.close()

    assert [NATIVE.encode(e)[:-1].decode() for e in events_of(items)] == [
        line for _, line in store.events_after(0, limit=10**6)]


def test_chain_queries_use_the_indexes(store: SQLiteStore) -> None:
    """chain(id) reads its rows through the correlation_id indexes; chains() pages through first_seq indexes."""
    with store._reading() as conn:
        detail = [row[3] for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT seq, event_id, causation_id, line FROM events WHERE correlation_id = ? "
            "ORDER BY seq", ("x",))]
        by_status = [row[3] for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM chains WHERE status = ? AND first_seq < ? ORDER BY first_seq DESC "
            "LIMIT 101", ("in_flight", 10))]

    assert ["SEARCH events USING INDEX events_correlation_id (correlation_id=?)"] == detail
    assert ["SEARCH chains USING INDEX chains_status (status=? AND first_seq<?)"] == by_status


def test_a_wide_time_range_walks_the_seq_order_with_the_same_answer(store: SQLiteStore, items: list[Item]) -> None:
    """Time filters give the same pages whether the range is read through the ts index or along seq."""
    store.time_probe = 10
    try:
        for filters in [f for f in FILTERS if set(f) <= {"since_ms", "until_ms"}]:
            for order in ("desc", "asc"):
                query = EventQuery(**filters, limit=23, order=order)  # type: ignore[arg-type]
                expected = [e for e in events_of(items) if query.matches(e, parse_timestamp(e["timestamp"]))]
                assert (expected if order == "asc" else expected[::-1]) == walk(store, query)
                assert "SCAN events" == store.explain(query)[0]
    finally:
        store.time_probe = 10_000


def test_a_closed_writer_refuses_events(tmp_path: Path) -> None:
    """write after close raises StoreError instead of queueing an event nobody will commit."""
    writer = StoreWriter(SQLiteStore(tmp_path / "events.db"), close_store=True)
    event = events_of(catalog_items(1))[0]
    writer.close()

    with pytest.raises(StoreError, match="the store writer is closed"):
        writer.write(event, NATIVE.encode(event))


def test_two_writers_on_one_file_are_told_apart(tmp_path: Path) -> None:
    """A second store on the same file writing the same seqs: StoreError naming the cause, with a hint."""
    items = catalog_items(3)
    one, two = SQLiteStore(tmp_path / "events.db"), SQLiteStore(tmp_path / "events.db")
    first, second = StoreWriter(one), StoreWriter(two)
    feed(first, items)
    first.close()
    feed(second, items)

    with pytest.raises(StoreError, match="another writer has written the same seqs") as caught:
        second.close()
    assert "one process writes to a store file at a time" in str(caught.value)


def test_timestamps_over_more_seconds_than_the_cache_keeps() -> None:
    """A batch whose timestamps span more distinct seconds than the cache keeps still converts every one."""
    stamps = [START_MS + 1_000 * n + n % 1000 for n in range(3 * Timestamps.KEPT)]
    timestamps = Timestamps()

    assert stamps == timestamps.many([format_timestamp(ms) for ms in stamps])
    assert stamps == [timestamps.ms(format_timestamp(ms)) for ms in stamps]


def test_timestamps_when_the_cache_fills_between_batches() -> None:
    """Seconds cached by an earlier batch, then a batch that fills the cache: its known seconds still convert."""
    timestamps = Timestamps()
    early = [START_MS + 1_000 * n for n in range(10)]
    timestamps.many([format_timestamp(ms) for ms in early])
    later = early + [START_MS + 1_000 * n for n in range(10, Timestamps.KEPT + 5)]

    assert later == timestamps.many([format_timestamp(ms) for ms in later])
