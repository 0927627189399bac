"""The event store: what a run (or the server's generator) wrote, numbered, queried by page, counted.

    store = open_store("sqlite:.chainsim/events.db")     # or "memory", or "postgresql://USER@HOST/DB?table=events"
    writer = StoreWriter(store)                          # engine/store/writer.py: a run sink, batched commits
    ...
    store.events(EventQuery(event_type="omninode.agent.*", limit=100))   # Page(items=[line, ...], next_cursor)

Every stored event has a `seq`, given by the writer in arrival order (1, 2, ...; after a restart it goes on
from the highest seq ever written + 1). Pages are keyset-based on seq, so walking them while events arrive
gives each event once. Sync and thread-safe: the server calls reads through `asyncio.to_thread`; one writer
thread commits.

The `Store` protocol (SQLiteStore in sqlite.py, PostgresStore in postgres.py):

    commit(events, ends)           one batch in one transaction: StoredEvent tuples (seq, the envelope fields but
                                   payload in FIELDS order, line)
                                   and ChainEnd(correlation_id, chain, outcome, at) (the writer calls this)
    events(EventQuery) -> Page     items: each event's JSON text (bytes), the run's line without its newline
    events_after(seq, query=None, limit=1000) -> [(seq, text)]   ascending, past seq (a stream's backlog): the
                                   same JSON texts as str, for WebSocket text messages
    seq_of(event_id) -> int|None   the seq of an event (the first, if a duplicate fault delivered it twice)
    last_seq() -> int              the highest seq written (0 for a new store)
    chain(correlation_id) -> dict|None
                                   {correlation_id, chain, tenant_id, status (in_flight|finished), outcome (None
                                   while in flight), start, end (RFC 3339; while in flight: the latest event so
                                   far), duration_ms, event_count, events: [event dicts in causal order]}
    chains(ChainQuery) -> Page     items: the same dicts without events, newest first (or oldest, asc)
    statistics() -> dict           from memory, never a table scan: events, chains, in_flight, by_event_type,
                                   by_chain (instances), by_outcome {chain: {outcome: n}}, by_tenant (events),
                                   events_per_second {60s, 300s}, durations_ms {chain: {count, p50, p95, p99}},
                                   since (oldest event's time), newest (see aggregates.py for the definitions)
    retain(max_events, max_age_ms) -> int   delete the oldest (by seq) beyond a count, and those older than
                                   the newest event's time minus an age; returns how many
    close()

Retention's default (for the server): keep DEFAULT_MAX_EVENTS events, no age limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import StoreError, UsageError
from .aggregates import ChainEnd, StoredEvent
from .query import (
    ChainQuery,
    Cursor,
    EventQuery,
    Page,
    decode_cursor,
    encode_cursor,
)

DEFAULT_STORE = "sqlite:.chainsim/events.db"  # relative to the working directory; the folder is created
DEFAULT_MAX_EVENTS = 1_000_000
USAGE = "a store is memory, sqlite:PATH (default sqlite:.chainsim/events.db) or postgresql://USER@HOST:PORT/DB"


class Store(Protocol):
    """What the server and the writer use; see the module docstring for each method."""

    def commit(self, events: Sequence[StoredEvent], ends: Sequence[ChainEnd] = ()) -> None: ...

    def events(self, query: EventQuery) -> Page: ...

    def events_after(self, seq: int, query: EventQuery | None = None,
                     limit: int = 1000) -> list[tuple[int, str]]: ...

    def seq_of(self, event_id: str) -> int | None: ...

    def last_seq(self) -> int: ...

    def chain(self, correlation_id: str) -> dict[str, Any] | None: ...

    def chains(self, query: ChainQuery) -> Page: ...

    def statistics(self) -> dict[str, Any]: ...

    def retain(self, max_events: int | None = None, max_age_ms: int | None = None) -> int: ...

    def close(self) -> None: ...


def open_store(spec: str = DEFAULT_STORE) -> Store:
    """A store from its spec: `memory`, `sqlite:PATH` or `postgresql://...`. UsageError for a spec that is none
    of these, StoreError when it cannot be opened."""
    if spec == "memory":
        from .sqlite import SQLiteStore

        return SQLiteStore(None)
    scheme, colon, target = spec.partition(":")
    if scheme == "sqlite" and colon:
        if not target:
            raise UsageError(f"store {spec!r} names no file", USAGE)
        from .sqlite import SQLiteStore

        return SQLiteStore(Path(target))
    if scheme in ("postgresql", "postgres") and target.startswith("//"):
        from .postgres import open_postgres_store

        return open_postgres_store(spec)
    raise UsageError(f"unknown store {spec!r}", USAGE)


__all__ = ["DEFAULT_MAX_EVENTS", "DEFAULT_STORE", "ChainEnd", "ChainQuery", "Cursor", "EventQuery", "Page", "Store",
           "StoreError", "StoredEvent", "decode_cursor", "encode_cursor", "open_store"]
