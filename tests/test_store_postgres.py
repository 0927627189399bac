"""The PostgreSQL store against the local server: the SQLite store's queries on the PostgreSQL sink's table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import orjson
import psycopg
import pytest
from psycopg import sql

from engine.envelope import NATIVE
from engine.envelope.fields import format_timestamp, parse_timestamp
from engine.errors import UsageError
from engine.sinks.postgres import open_postgres
from engine.store import ChainQuery, EventQuery, StoreError, decode_cursor, open_store
from engine.store.postgres import PostgresStore
from engine.store.writer import StoreWriter
from tests.services import unique_table
from tests.test_store import FILTERS, Item, catalog_items, events_of, feed, independent_statistics

pytest_plugins = ["tests.conftest_services"]  # the service fixtures


@pytest.fixture
def table(postgres: str) -> Iterator[str]:
    """A table name no other test uses; the table and the store's two tables are dropped after the test."""
    name = unique_table("chainsim_store")
    yield name
    with psycopg.connect(postgres) as connection:
        for suffix in ("", "_chains", "_meta"):
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name + suffix)))


def spec(postgres: str, table: str) -> str:
    return f"{postgres}?table={table}"


def stored(postgres: str, table: str, items: list[Item]) -> PostgresStore:
    store = open_store(spec(postgres, table))
    assert isinstance(store, PostgresStore)
    writer = StoreWriter(store, batch_rows=211)
    feed(writer, items)
    writer.close()
    return store


def walk(store: PostgresStore, query: EventQuery) -> list[dict[str, Any]]:
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
    return catalog_items(400)


def test_every_filter_and_order_on_postgresql(postgres: str, table: str, items: list[Item]) -> None:
    """Each filter and glob, desc and asc, walked by cursor, gives the matching events; lines are the run's."""
    store = stored(postgres, table, items)
    cid = events_of(items)[50]["correlation_id"]
    for filters in [*FILTERS, {"correlation_id": cid}, {"correlation_id": "not-a-uuid"}]:
        for order in ("desc", "asc"):
            query = EventQuery(**filters, limit=41, order=order)  # type: ignore[arg-type]
            expected = [e for e in events_of(items) if query.matches(e, parse_timestamp(e["timestamp"]))]
            assert (expected if order == "asc" else expected[::-1]) == walk(store, query), (filters, order)
    first = store.events(EventQuery(limit=3, order="asc"))
    assert [NATIVE.encode(event)[:-1] for event in events_of(items)[:3]] == list(first.items)
    store.close()


def test_chain_detail_chains_and_statistics_on_postgresql(postgres: str, table: str, items: list[Item]) -> None:
    """chain(id) in causal order with outcome and duration, chains() pages, statistics equal independent counts."""
    store = stored(postgres, table, items)
    ends = {item[1]: item for item in items if item[0] == "end"}
    cid = list(ends)[7]
    events = [event for event in events_of(items) if event["correlation_id"] == cid]
    _, _, chain, outcome, at = ends[cid]

    detail = store.chain(cid)

    assert detail is not None
    assert ("finished", outcome, chain, format_timestamp(at), at - parse_timestamp(events[0]["timestamp"]),
            events) == (detail["status"], detail["outcome"], detail["chain"], detail["end"], detail["duration_ms"],
                        detail["events"])
    assert store.chain("00000000-0000-4000-8000-000000000000") is None
    assert store.chain("nope") is None
    firsts = list(dict.fromkeys(event["correlation_id"] for event in events_of(items)))
    found: list[str] = []
    after = None
    while True:
        page = store.chains(ChainQuery(limit=13, order="asc", after=after))
        found.extend(item["correlation_id"] for item in page.items)
        if page.next_cursor is None:
            break
        after = decode_cursor(page.next_cursor, "chains").seq
    assert firsts == found
    assert independent_statistics(items) == store.statistics()
    store.close()
    again = open_store(spec(postgres, table))
    assert independent_statistics(items) == again.statistics()
    again.close()


def test_rows_of_the_postgresql_sink_are_numbered_when_the_store_opens(postgres: str, table: str,
                                                                        items: list[Item]) -> None:
    """Rows written by `--sink postgresql://` get seqs in timestamp order at open, are served as the same JSON
    (rebuilt), count as in-flight chains, and a writer goes on after them."""
    events = events_of(items)
    sink = open_postgres(spec(postgres, table).removeprefix("postgresql:"), NATIVE)
    for event in events[:300]:
        sink.write(event, NATIVE.encode(event))
    sink.close()

    store = open_store(spec(postgres, table))
    by_time = sorted(events[:300], key=lambda event: (event["timestamp"], event["event_id"]))

    assert 300 == store.last_seq()
    assert by_time == [orjson.loads(text) for _, text in store.events_after(0, limit=1000)]
    figures = store.statistics()
    chains = len({event["correlation_id"] for event in events[:300]})
    assert (300, chains, chains) == (figures["events"], figures["chains"], figures["in_flight"])
    writer = StoreWriter(store)
    for event in events[300:]:
        writer.write(event, NATIVE.encode(event))
    writer.close()
    assert [orjson.loads(text) for _, text in store.events_after(300, limit=1000)] == events[300:]
    assert len(events) == store.statistics()["events"]
    store.close()


def test_retention_on_postgresql(postgres: str, table: str, items: list[Item]) -> None:
    """retain by count then by age on PostgreSQL: the oldest go, the figures equal those loaded afresh."""
    store = stored(postgres, table, items)
    top = store.last_seq()

    assert store.statistics()["events"] - 500 == store.retain(max_events=500)
    assert list(range(top - 499, top + 1)) == [seq for seq, _ in store.events_after(0, limit=1000)]
    newest = parse_timestamp(store.statistics()["newest"])
    left = [orjson.loads(text) for _, text in store.events_after(0, limit=1000)]
    keep = [event for event in left if parse_timestamp(event["timestamp"]) >= newest - 5_000]
    assert len(left) - len(keep) == store.retain(max_age_ms=5_000)
    figures = store.statistics()
    store.close()
    again = open_store(spec(postgres, table))
    assert (len(keep), figures) == (figures["events"], again.statistics())
    again.close()


def test_a_duplicate_event_is_stored_once(postgres: str, table: str) -> None:
    """The sink's table keys on event_id: an event given twice is stored (and counted) once."""
    store = open_store(spec(postgres, table))
    writer = StoreWriter(store)
    event = events_of(catalog_items(1))[0]
    writer.write(event, NATIVE.encode(event))
    writer.write(event, NATIVE.encode(event))
    writer.close()

    assert (1, [1]) == (store.statistics()["events"], [seq for seq, _ in store.events_after(0)])
    store.close()


def test_an_unreachable_server_is_a_store_error() -> None:
    """A PostgreSQL that does not answer: StoreError naming the table, not a traceback."""
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL for store table 'events'"):
        open_store("postgresql://nobody@127.0.0.1:1/test?connect_timeout=2")


def test_a_bad_table_name_is_a_usage_error(postgres: str) -> None:
    """table= takes a table name only."""
    with pytest.raises(UsageError, match="is not a table name"):
        open_store(f"{postgres}?table=x;drop")
