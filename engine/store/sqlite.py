"""The SQLite store: events and chain instances in one file (or in memory), WAL, one writer, many readers.

    events(seq INTEGER PRIMARY KEY, event_id, event_type, correlation_id, causation_id, tenant_id, namespace,
           ts (ms), chain, step, line)       line: the run's JSON line as written (served without its newline)
    chains(correlation_id PRIMARY KEY, chain, tenant_id, first_seq, start_ms, end_ms, event_count, status, outcome)
    meta(key PRIMARY KEY, value)             last_seq: the highest seq ever written (retention cannot lower it)

A file is a chainsim store when its `PRAGMA application_id` is APPLICATION_ID; `user_version` is the layout.
Writes go through one connection under a lock (the writer's commits, retention); each reading thread takes
a connection of its own from a pool (WAL: readers never wait for the writer). In memory there is one
connection, shared under the lock. synchronous=NORMAL: a committed batch survives the process being killed
(SIGKILL); only a power cut can take the last batches back.

event_id is indexed, not unique: a run's `duplicate` fault delivers the same event twice, and both are stored.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from ..errors import StoreError
from .aggregates import FINISHED, IN_FLIGHT, Aggregates, ChainEnd, StoredEvent
from .query import (
    ChainQuery,
    EventQuery,
    Page,
    causal_order,
    chain_summary,
    chains_page,
    chains_sql,
    encode_cursor,
    is_glob,
)

LAYOUT = 1
APPLICATION_ID = 0x63736D31  # "csm1"
CHUNK = 10_000  # rows per retention transaction
TIME_PROBE = 10_000  # events in a time range read through the ts index at most (then sorted by seq)
RARE = 100  # event types matched by a glob are rare when fewer than 1 in RARE events have them
NEW_FILE_HINT = "give --store a new file (sqlite:PATH creates it), or move this file away"

SCHEMA = """\
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, event_type TEXT NOT NULL, correlation_id TEXT NOT NULL,
    causation_id TEXT, tenant_id TEXT NOT NULL, namespace TEXT NOT NULL, ts INTEGER NOT NULL, chain TEXT NOT NULL,
    step TEXT NOT NULL, line BLOB NOT NULL);
CREATE INDEX events_event_id ON events (event_id);
CREATE INDEX events_event_type ON events (event_type, seq);
CREATE INDEX events_chain ON events (chain, seq);
CREATE INDEX events_correlation_id ON events (correlation_id, seq);
CREATE INDEX events_tenant_id ON events (tenant_id, seq);
CREATE INDEX events_namespace ON events (namespace, seq);
CREATE INDEX events_ts ON events (ts);
CREATE TABLE chains (
    correlation_id TEXT PRIMARY KEY, chain TEXT NOT NULL, tenant_id TEXT NOT NULL, first_seq INTEGER NOT NULL,
    start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, event_count INTEGER NOT NULL, status TEXT NOT NULL,
    outcome TEXT);
CREATE UNIQUE INDEX chains_first_seq ON chains (first_seq);
CREATE INDEX chains_chain ON chains (chain, first_seq);
CREATE INDEX chains_status ON chains (status, first_seq);
CREATE INDEX chains_outcome ON chains (outcome, first_seq);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"""
TABLES = ("events", "chains", "meta")

# The writer's tuples as they are; SQLite turns the timestamp text into ms (exact for years 1000-9999).
INSERT_EVENT = ("INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                "CAST(round((julianday(?8) - 2440587.5) * 86400000.0) AS INTEGER), ?9, ?10, ?11)")
UPSERT_CHAIN = """\
INSERT INTO chains VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (correlation_id) DO UPDATE SET
    start_ms = min(start_ms, excluded.start_ms),
    end_ms = CASE WHEN excluded.status = 'finished' THEN excluded.end_ms
                  WHEN status = 'finished' THEN end_ms ELSE max(end_ms, excluded.end_ms) END,
    status = CASE WHEN excluded.status = 'finished' THEN 'finished' ELSE status END,
    outcome = coalesce(excluded.outcome, outcome),
    event_count = event_count + excluded.event_count"""
END_CHAIN = "UPDATE chains SET end_ms = ?, outcome = ?, status = 'finished' WHERE correlation_id = ?"
SET_LAST_SEQ = "INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)"
CHAIN_COLUMNS = "correlation_id, chain, tenant_id, first_seq, start_ms, end_ms, event_count, status, outcome"


class SQLiteStore:
    """A store in an SQLite file (`path`), or in memory (`path` None). See engine/store/__init__.py for the API."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self.where = "the memory store" if path is None else f"store {str(path)!r}"
        self._memory_uri = f"file:chainsim-{uuid.uuid4()}?mode=memory&cache=shared"
        self._lock = threading.RLock()  # the write connection (and, in memory, every connection)
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self.aggregates = Aggregates()
        self.time_probe = TIME_PROBE
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(f"cannot open {self.where}: {error.strerror or error}") from None
        self._conn = self._connect()
        try:
            self._check_layout()
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._last_seq = self._load()
        except sqlite3.Error as error:
            self._conn.close()
            raise self._error(error) from None
        except StoreError:
            self._conn.close()
            raise

    # ---- connections
    def _connect(self) -> sqlite3.Connection:
        try:
            if self.path is None:
                conn = sqlite3.connect(self._memory_uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            conn.execute("PRAGMA busy_timeout = 10000")
        except sqlite3.Error as error:
            raise self._error(error) from None
        return conn

    def _error(self, error: sqlite3.Error, doing: str = "open") -> StoreError:
        text = str(error)
        if "not a database" in text:
            return StoreError(f"{self.where} is not a chainsim store: the file is not an SQLite database",
                              NEW_FILE_HINT)
        if "malformed" in text or "corrupt" in text:
            return StoreError(f"{self.where} is corrupt: {text}", NEW_FILE_HINT)
        if "UNIQUE constraint failed: events.seq" in text:
            return StoreError(f"{self.where}: cannot {doing}: another writer has written the same seqs to this file",
                              "one process writes to a store file at a time (serve, or a run's --sink sqlite:)")
        if doing == "open":
            return StoreError(f"cannot open {self.where}: {text}")
        return StoreError(f"{self.where}: cannot {doing}: {text}")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise StoreError(f"{self.where} is closed")
        if self.path is None:
            with self._lock:
                try:
                    with self._guard("read"):
                        yield self._conn
                finally:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
            return
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
            conn.execute("PRAGMA query_only = 1")
            with self._lock:
                self._readers.append(conn)
        try:
            with self._guard("read"):
                yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._idle.put(conn)

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise self._error(error, doing) from None

    @contextlib.contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """The write connection in one IMMEDIATE transaction, under the lock; rolled back on any error."""
        with self._lock, self._guard(doing):
            if self._closed:
                raise StoreError(f"{self.where} is closed")
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ---- opening
    def _check_layout(self) -> None:
        conn = self._conn
        application = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        if application == 0 and version == 0 and not tables:
            with self._transaction("create the tables") as writing:
                for statement in SCHEMA.split(";\n"):
                    writing.execute(statement)
                writing.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                writing.execute(f"PRAGMA user_version = {LAYOUT}")
            return
        if application != APPLICATION_ID:
            listed = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "") if tables else "none"
            raise StoreError(f"{self.where} is an SQLite database but not a chainsim store (its tables: {listed})",
                             NEW_FILE_HINT)
        if version != LAYOUT:
            raise StoreError(f"{self.where} is a chainsim store of layout {version}; this chainsim reads layout "
                             f"{LAYOUT}", "open it with the chainsim that wrote it, or give a new file")
        missing = [name for name in TABLES if name not in tables]
        if missing:
            raise StoreError(f"{self.where} is corrupt: table {missing[0]!r} is missing", NEW_FILE_HINT)

    def _load(self) -> int:
        """The figures from the tables (GROUP BY on indexes), once; the highest seq written."""
        conn = self._conn
        one = lambda sql, *params: conn.execute(sql, params).fetchone()[0]  # noqa: E731
        newest = one("SELECT max(ts) FROM events")
        seconds: list[tuple[int, int]] = []
        if newest is not None:
            first = (newest // 1000 - 300) * 1000
            seconds = conn.execute("SELECT (ts - ((ts % 1000) + 1000) % 1000) / 1000 AS s, count(*) FROM events "
                                   "WHERE ts >= ? GROUP BY s", (first,)).fetchall()
        by_chain = conn.execute("SELECT chain, count(*) FROM chains GROUP BY chain").fetchall()
        durations: list[tuple[str, str, int]] = []
        for chain, _ in by_chain:
            kept = conn.execute("SELECT correlation_id, end_ms - start_ms FROM chains INDEXED BY chains_chain "
                                "WHERE chain = ? AND status = 'finished' ORDER BY first_seq DESC LIMIT 1000",
                                (chain,)).fetchall()
            durations.extend((chain, cid, ms) for cid, ms in reversed(kept))
        self.aggregates.load(
            events=one("SELECT count(*) FROM events"),
            by_type=conn.execute("SELECT event_type, count(*) FROM events GROUP BY event_type").fetchall(),
            by_tenant=conn.execute("SELECT tenant_id, count(*) FROM events GROUP BY tenant_id").fetchall(),
            by_chain=by_chain,
            by_outcome=conn.execute("SELECT chain, outcome, count(*) FROM chains WHERE status = 'finished' "
                                    "GROUP BY chain, outcome").fetchall(),
            open_chains=conn.execute("SELECT correlation_id, start_ms FROM chains WHERE status = 'in_flight'"),
            durations=durations, seconds=seconds, oldest=one("SELECT min(ts) FROM events"), newest=newest)
        return int(max(one("SELECT coalesce(max(seq), 0) FROM events"),
                       one("SELECT coalesce(max(value), 0) FROM meta WHERE key = 'last_seq'")))

    # ---- writing
    def commit(self, events: Sequence[StoredEvent], ends: Sequence[ChainEnd] = ()) -> None:
        """Store a batch of events and chain ends in one transaction (the writer's thread calls this)."""
        if not events and not ends:
            return
        with self._lock:
            plan = self.aggregates.plan(events, ends)
            with self._transaction("commit") as conn:
                conn.executemany(INSERT_EVENT, plan.rows)
                conn.executemany(UPSERT_CHAIN, plan.chains)
                if plan.ends:
                    conn.executemany(END_CHAIN, plan.ends)
                if plan.rows:
                    last = max(self._last_seq, plan.rows[-1][0])
                    conn.execute(SET_LAST_SEQ, (last,))
            if plan.rows:
                self._last_seq = last
            self.aggregates.apply(plan)

    def retain(self, max_events: int | None = None, max_age_ms: int | None = None) -> int:
        """Delete the oldest events (by seq) beyond `max_events`, and those older than the newest event's time
        minus `max_age_ms`, CHUNK rows per transaction; chain rows left without events go too. How many."""
        deleted = 0
        while True:
            with self._lock:
                victims = self._victims(max_events, max_age_ms)
                if not victims:
                    return deleted
                self._delete(victims)
            deleted += len(victims)

    def _victims(self, max_events: int | None, max_age_ms: int | None) -> list[tuple[Any, ...]]:
        columns = "SELECT seq, event_type, tenant_id, correlation_id, ts FROM events"
        with self._guard("retain"):
            excess = 0 if max_events is None else self.aggregates.events - max_events
            if excess > 0:
                return self._conn.execute(f"{columns} ORDER BY seq LIMIT ?", (min(excess, CHUNK),)).fetchall()
            newest = self.aggregates.newest
            if max_age_ms is not None and newest is not None:
                return self._conn.execute(f"{columns} WHERE ts < ? ORDER BY ts LIMIT ?",
                                          (newest - max_age_ms, CHUNK)).fetchall()
        return []

    def _delete(self, victims: list[tuple[Any, ...]]) -> None:
        per_chain = collections.Counter(victim[3] for victim in victims)
        ids = orjson.dumps(list(per_chain)).decode()
        with self._transaction("retain") as conn:
            conn.executemany("DELETE FROM events WHERE seq = ?", [(victim[0],) for victim in victims])
            conn.executemany("UPDATE chains SET event_count = event_count - ? WHERE correlation_id = ?",
                             [(count, cid) for cid, count in per_chain.items()])
            empty = "event_count <= 0 AND correlation_id IN (SELECT value FROM json_each(?))"
            gone = conn.execute(f"SELECT correlation_id, chain, status, outcome FROM chains WHERE {empty}",
                                (ids,)).fetchall()
            conn.execute(f"DELETE FROM chains WHERE {empty}", (ids,))
            oldest, newest = conn.execute("SELECT min(ts), max(ts) FROM events").fetchone()
        self.aggregates.remove_events([(v[1], v[2], v[4]) for v in victims], oldest, newest)
        self.aggregates.remove_chains(gone)

    # ---- reading
    def last_seq(self) -> int:
        return self._last_seq

    def seq_of(self, event_id: str) -> int | None:
        with self._reading() as conn:
            found = conn.execute("SELECT min(seq) FROM events WHERE event_id = ?", (event_id,)).fetchone()[0]
        return None if found is None else int(found)

    def events(self, query: EventQuery) -> Page:
        rows = self._select_events(query, query.after, query.order, query.limit + 1)
        items = [row[1][:-1] for row in rows[:query.limit]]
        more = len(rows) > query.limit
        return Page(items, encode_cursor(rows[query.limit - 1][0], query.order, "events") if more else None)

    def events_after(self, seq: int, query: EventQuery | None = None, limit: int = 1000) -> list[tuple[int, str]]:
        return [(s, line[:-1].decode()) for s, line in self._select_events(query or EventQuery(), seq, "asc", limit)]

    def _select_events(self, query: EventQuery, after: int | None, order: str, limit: int) -> list[Any]:
        with self._reading() as conn:
            sql, params = self._events_sql(conn, query, after, order)
            return conn.execute(sql, (*params, limit)).fetchall()

    def _events_sql(self, conn: sqlite3.Connection, query: EventQuery, after: int | None,
                    order: str) -> tuple[str, list[Any]]:
        where, params = _event_filters(query, self.aggregates)
        source = "events"
        if (query.since_ms is not None or query.until_ms is not None) and all(
                getattr(query, name) is None for name in ("event_type", "chain", "correlation_id", "tenant_id",
                                                          "namespace")):
            # Time alone: a narrow range through the ts index (then a sort of at most time_probe rows), a
            # wide one on the seq order, reading the ts of each row until the page is full.
            time_where = [clause for clause in where if clause.startswith("ts ")]
            probe = (f"SELECT count(*) FROM (SELECT 1 FROM events WHERE {' AND '.join(time_where)} "
                     f"LIMIT {self.time_probe + 1})")
            if conn.execute(probe, params).fetchone()[0] <= self.time_probe:
                source = "events INDEXED BY events_ts"
            else:
                where = ["+" + clause if clause.startswith("ts ") else clause for clause in where]
        if after is not None:
            where.append("seq < ?" if order == "desc" else "seq > ?")
            params.append(after)
        sql = f"SELECT seq, line FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return sql + f" ORDER BY seq {'DESC' if order == 'desc' else 'ASC'} LIMIT ?", params

    def explain(self, query: EventQuery) -> list[str]:
        """SQLite's query plan for a page of `query` (tests check that each filter uses an index)."""
        with self._reading() as conn:
            sql, params = self._events_sql(conn, query, query.after, query.order)
            return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, (*params, query.limit))]

    def chain(self, correlation_id: str) -> dict[str, Any] | None:
        with self._reading() as conn:
            conn.execute("BEGIN")
            row = conn.execute(f"SELECT {CHAIN_COLUMNS} FROM chains WHERE correlation_id = ?",
                               (correlation_id,)).fetchone()
            if row is None:
                return None
            events = conn.execute("SELECT seq, event_id, causation_id, line FROM events WHERE correlation_id = ? "
                                  "ORDER BY seq", (correlation_id,)).fetchall()
        detail = chain_summary(row)
        detail["events"] = [orjson.loads(line) for line in causal_order(events)]
        return detail

    def chains(self, query: ChainQuery) -> Page:
        sql, params = chains_sql(query, CHAIN_COLUMNS, "chains", "?")
        with self._reading() as conn:
            rows = conn.execute(sql, params).fetchall()
        return chains_page(rows, query)

    def statistics(self) -> dict[str, Any]:
        return self.aggregates.statistics()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._conn.close()


def _event_filters(query: EventQuery, aggregates: Aggregates) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.event_type is not None and is_glob(query.event_type):
        where_type, type_params = _glob_filter(query.event_type, aggregates)
        where.append(where_type)
        params.extend(type_params)
    elif query.event_type is not None:
        where.append("event_type = ?")
        params.append(query.event_type)
    for name in ("chain", "correlation_id", "tenant_id", "namespace"):
        value = getattr(query, name)
        if value is not None:
            where.append(f"{name} = ?")
            params.append(value)
    if query.since_ms is not None:
        where.append("ts >= ?")
        params.append(query.since_ms)
    if query.until_ms is not None:
        where.append("ts <= ?")
        params.append(query.until_ms)
    return where, params


def _glob_filter(pattern: str, aggregates: Aggregates) -> tuple[str, list[Any]]:
    """A glob as SQL that keeps a page's cost bounded: the event types it matches (every type the store has
    seen is known) through the (event_type, seq) index when they are rare (then a sort of at most 1% of
    the table), or GLOB on a scan in seq order when they are common (at most ~100 rows read per match)."""
    types, matching, total = aggregates.types_matching(pattern)
    if not types:
        return "0", []
    if matching * RARE > total:
        return "+event_type GLOB ?", [pattern]
    return f"event_type IN ({', '.join('?' * len(types))})", types


__all__ = ["SQLiteStore", "IN_FLIGHT", "FINISHED", "LAYOUT", "APPLICATION_ID"]
