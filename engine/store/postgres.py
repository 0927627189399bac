"""The PostgreSQL store: the same queries on the table the PostgreSQL sink writes (engine/sinks/postgres.py).

    --store postgresql://USER@HOST:PORT/DBNAME?table=events

What it adds to the sink's table (all `IF NOT EXISTS`, so the sink keeps writing it): a `seq bigint` column
(unique index) and a `line text` column (the run's exact JSON line, for the events the store writes itself),
indexes (event_type, seq), (chain, seq), (correlation_id, seq), (tenant_id, seq), (namespace, seq),
("timestamp"); tables `<table>_chains` (as in SQLite) and `<table>_meta` (the highest seq written).

Rows without seq (written by `run --sink postgresql://`) are numbered when the store opens, in timestamp
order, and counted into `<table>_chains` as in flight (the sink does not record chain ends). Such rows are
served as JSON rebuilt in SQL (json_build_object, fields in envelope order, the payload as jsonb prints it:
the same values, keys in jsonb's order). The sink's event_id is a primary key: an event delivered twice (the
`duplicate` fault) is stored once.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from ..envelope import NATIVE
from ..errors import StoreError, UsageError
from ..sinks.postgres import CONNECT_TIMEOUT_S, DEFAULT_TABLE, INSTALL, SCHEMA, TABLE_NAME
from .aggregates import Aggregates, ChainEnd, StoredEvent
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

CHUNK = 10_000
USAGE = "a PostgreSQL store is postgresql://USER@HOST:PORT/DBNAME[?table=events]"
UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
MS = """(extract(epoch from "timestamp") * 1000)::bigint"""
REBUILT = """json_build_object('event_id', event_id, 'event_type', event_type, 'correlation_id', correlation_id,
    'causation_id', causation_id, 'tenant_id', tenant_id, 'namespace', namespace,
    'timestamp', to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'chain', chain,
    'step', step, 'payload', payload)::text"""
TEXT = f"coalesce(line, {REBUILT})"

ADDITIONS = """\
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS seq bigint;
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS line text;
CREATE UNIQUE INDEX IF NOT EXISTS {i_seq} ON {table} (seq);
CREATE INDEX IF NOT EXISTS {i_event_type} ON {table} (event_type, seq);
CREATE INDEX IF NOT EXISTS {i_chain} ON {table} (chain, seq);
CREATE INDEX IF NOT EXISTS {i_correlation_id} ON {table} (correlation_id, seq);
CREATE INDEX IF NOT EXISTS {i_tenant_id} ON {table} (tenant_id, seq);
CREATE INDEX IF NOT EXISTS {i_namespace} ON {table} (namespace, seq);
CREATE INDEX IF NOT EXISTS {i_ts} ON {table} ("timestamp");
CREATE TABLE IF NOT EXISTS {chains} (
    correlation_id uuid PRIMARY KEY, chain text NOT NULL, tenant_id text NOT NULL, first_seq bigint NOT NULL,
    start_ms bigint NOT NULL, end_ms bigint NOT NULL, event_count integer NOT NULL, status text NOT NULL,
    outcome text);
CREATE UNIQUE INDEX IF NOT EXISTS {c_first_seq} ON {chains} (first_seq);
CREATE INDEX IF NOT EXISTS {c_chain} ON {chains} (chain, first_seq);
CREATE INDEX IF NOT EXISTS {c_status} ON {chains} (status, first_seq);
CREATE INDEX IF NOT EXISTS {c_outcome} ON {chains} (outcome, first_seq);
CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value bigint NOT NULL)"""

UPSERT_CHAIN = """\
INSERT INTO {chains} AS c VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (correlation_id) DO UPDATE SET
    start_ms = least(c.start_ms, excluded.start_ms),
    end_ms = CASE WHEN excluded.status = 'finished' THEN excluded.end_ms
                  WHEN c.status = 'finished' THEN c.end_ms ELSE greatest(c.end_ms, excluded.end_ms) END,
    status = CASE WHEN excluded.status = 'finished' THEN 'finished' ELSE c.status END,
    outcome = coalesce(excluded.outcome, c.outcome),
    event_count = c.event_count + excluded.event_count"""
CHAIN_COLUMNS = "correlation_id, chain, tenant_id, first_seq, start_ms, end_ms, event_count, status, outcome"
COPY_COLUMNS = ("seq", "event_id", "event_type", "correlation_id", "causation_id", "tenant_id", "namespace",
                "timestamp", "chain", "step", "payload", "line")


class PostgresStore:
    """A store on a PostgreSQL table. See engine/store/__init__.py for the API."""

    def __init__(self, conninfo: str, table: str = DEFAULT_TABLE) -> None:
        try:
            import psycopg
            from psycopg import sql
        except ImportError:
            raise UsageError(f"the postgresql store needs psycopg: {INSTALL}") from None
        self._psycopg, self._sql = psycopg, sql
        self.conninfo, self.table = conninfo, table
        self.where = f"store table {table!r}"
        names = table.split(".")
        base = names[-1]
        schema = names[:-1]
        self._names: dict[str, Any] = {
            "table": sql.Identifier(*names), "chains": sql.Identifier(*schema, f"{base}_chains"),
            "meta": sql.Identifier(*schema, f"{base}_meta"), "batch": sql.Identifier(f"chainsim_batch_{base}"[:63]),
            "index": sql.Identifier(f"{base}_correlation_id_idx"[:63]),
        }
        for name in ("seq", "event_type", "chain", "correlation_id", "tenant_id", "namespace", "ts"):
            self._names[f"i_{name}"] = sql.Identifier(f"{base}_{name}_seq_idx"[:63] if name != "seq" else
                                                      f"{base}_seq_key"[:63])
        for name in ("first_seq", "chain", "status", "outcome"):
            self._names[f"c_{name}"] = sql.Identifier(f"{base}_chains_{name}_idx"[:63])
        self._lock = threading.RLock()
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._readers: list[Any] = []
        self._closed = False
        self.aggregates = Aggregates()
        self._conn = self._connect()
        try:
            self._prepare()
            self._last_seq = self._load()
        except psycopg.Error as error:
            self._conn.close()
            raise StoreError(f"cannot open {self.where}: {_first_line(error)}") from None

    def _q(self, text: str) -> Any:
        return self._sql.SQL(text).format(**self._names)

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self.conninfo)
        except self._psycopg.Error as error:
            raise StoreError(f"cannot connect to PostgreSQL for {self.where}: {_first_line(error)}") from None

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except self._psycopg.Error as error:
            raise StoreError(f"{self.where}: cannot {doing}: {_first_line(error)}") from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Any]:
        if self._closed:
            raise StoreError(f"{self.where} is closed")
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
            conn.autocommit = True
            with self._lock:
                self._readers.append(conn)
        try:
            with self._guard("read"):
                yield conn
        finally:
            self._idle.put(conn)

    @contextlib.contextmanager
    def _transaction(self, doing: str) -> Iterator[Any]:
        with self._lock, self._guard(doing):
            if self._closed:
                raise StoreError(f"{self.where} is closed")
            try:
                with self._conn.cursor() as cursor:
                    yield cursor
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.commit()

    # ---- opening
    def _prepare(self) -> None:
        """The sink's table, the store's columns, indexes and tables; rows without seq numbered."""
        with self._transaction("create the tables") as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"chainsim store {self.table}",))
            for statement in SCHEMA.split(";\n") + ADDITIONS.split(";\n"):
                cursor.execute(self._q(statement))
            base = self._base_seq(cursor)
            cursor.execute(self._q(
                'WITH n AS (SELECT event_id, %s + row_number() OVER (ORDER BY "timestamp", event_id) AS seq '
                "FROM {table} WHERE seq IS NULL) "
                "UPDATE {table} t SET seq = n.seq FROM n WHERE t.event_id = n.event_id"),
                (base,))
            if cursor.rowcount:
                cursor.execute(self._q(
                    "INSERT INTO {chains} AS c SELECT correlation_id, min(chain), min(tenant_id), min(seq), "
                    f"min({MS}), max({MS}), count(*), 'in_flight', NULL FROM {{table}} WHERE seq > %s "
                    "GROUP BY correlation_id "
                    "ON CONFLICT (correlation_id) DO UPDATE SET event_count = c.event_count + excluded.event_count, "
                    "start_ms = least(c.start_ms, excluded.start_ms), end_ms = greatest(c.end_ms, excluded.end_ms)"),
                    (base,))
                cursor.execute(self._q("INSERT INTO {meta} VALUES ('last_seq', (SELECT max(seq) FROM {table})) "
                                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value"))
            cursor.execute(self._q(
                "CREATE TEMP TABLE IF NOT EXISTS {batch} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"))

    def _base_seq(self, cursor: Any) -> int:
        cursor.execute(self._q("SELECT greatest(coalesce((SELECT max(seq) FROM {table}), 0), "
                               "coalesce((SELECT value FROM {meta} WHERE key = 'last_seq'), 0))"))
        return int(cursor.fetchone()[0])

    def _load(self) -> int:
        with self._transaction("load the figures") as cursor:
            def rows(text: str, *params: Any) -> list[Any]:
                cursor.execute(self._q(text), params)
                return list(cursor.fetchall())

            newest, oldest, events = rows(f"SELECT max({MS}), min({MS}), count(*) FROM {{table}} "
                                          "WHERE seq IS NOT NULL")[0]
            seconds: list[Any] = []
            if newest is not None:
                seconds = rows(f"SELECT floor({MS} / 1000.0)::bigint AS s, count(*) FROM {{table}} "
                               f"WHERE seq IS NOT NULL AND {MS} >= %s GROUP BY s", (newest // 1000 - 300) * 1000)
            by_chain = rows("SELECT chain, count(*) FROM {chains} GROUP BY chain")
            durations: list[tuple[str, str, int]] = []
            for chain, _ in by_chain:
                kept = rows("SELECT correlation_id::text, end_ms - start_ms FROM {chains} WHERE chain = %s AND "
                            "status = 'finished' ORDER BY first_seq DESC LIMIT 1000", chain)
                durations.extend((chain, cid, int(ms)) for cid, ms in reversed(kept))
            self.aggregates.load(
                events=int(events),
                by_type=rows("SELECT event_type, count(*) FROM {table} WHERE seq IS NOT NULL GROUP BY event_type"),
                by_tenant=rows("SELECT tenant_id, count(*) FROM {table} WHERE seq IS NOT NULL GROUP BY tenant_id"),
                by_chain=by_chain,
                by_outcome=rows("SELECT chain, outcome, count(*) FROM {chains} WHERE status = 'finished' "
                                "GROUP BY chain, outcome"),
                open_chains=rows("SELECT correlation_id::text, start_ms FROM {chains} WHERE status = 'in_flight'"),
                durations=durations, seconds=seconds, oldest=oldest, newest=newest)
            return self._base_seq(cursor)

    # ---- writing
    def commit(self, events: Sequence[StoredEvent], ends: Sequence[ChainEnd] = ()) -> None:
        if not events and not ends:
            return
        payload = NATIVE.payload_json
        with self._lock:
            with self._transaction("commit") as cursor:
                if events:
                    with cursor.copy(self._q(f"COPY {{batch}} ({', '.join(COPY_COLUMNS)}) FROM STDIN")) as copy:
                        for event in events:
                            line = event[10]
                            copy.write_row((*event[:10], payload(line), line[:-1].decode()))
                    cursor.execute(self._q("INSERT INTO {table} SELECT * FROM {batch} ON CONFLICT DO NOTHING "
                                           "RETURNING seq"))
                    inserted = {row[0] for row in cursor.fetchall()}
                    if len(inserted) < len(events):  # duplicates of stored event_ids: not stored, not counted
                        events = [event for event in events if event[0] in inserted]
                plan = self.aggregates.plan(events, ends)
                if plan.chains:
                    cursor.executemany(self._q(UPSERT_CHAIN), plan.chains)
                if plan.ends:
                    cursor.executemany(self._q("UPDATE {chains} SET end_ms = %s, outcome = %s, status = 'finished' "
                                               "WHERE correlation_id = %s"), plan.ends)
                last = self._last_seq
                if plan.rows:
                    last = max(last, max(row[0] for row in plan.rows))
                    cursor.execute(self._q("INSERT INTO {meta} VALUES ('last_seq', %s) "
                                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value"), (last,))
            self._last_seq = last
            self.aggregates.apply(plan)

    def retain(self, max_events: int | None = None, max_age_ms: int | None = None) -> int:
        deleted = 0
        while True:
            with self._lock:
                victims = self._victims(max_events, max_age_ms)
                if not victims:
                    return deleted
                self._delete(victims)
            deleted += len(victims)

    def _victims(self, max_events: int | None, max_age_ms: int | None) -> list[Any]:
        columns = f"SELECT seq, event_type, tenant_id, correlation_id::text, {MS} FROM {{table}} WHERE seq IS NOT NULL"
        excess = 0 if max_events is None else self.aggregates.events - max_events
        newest = self.aggregates.newest
        with self._transaction("retain") as cursor:
            if excess > 0:
                cursor.execute(self._q(f"{columns} ORDER BY seq LIMIT %s"), (min(excess, CHUNK),))
                return list(cursor.fetchall())
            if max_age_ms is not None and newest is not None:
                cursor.execute(self._q(f'{columns} AND "timestamp" < %s ORDER BY "timestamp" LIMIT %s'),
                               (_moment(newest - max_age_ms), CHUNK))
                return list(cursor.fetchall())
        return []

    def _delete(self, victims: list[Any]) -> None:
        per_chain = collections.Counter(victim[3] for victim in victims)
        ids = list(per_chain)
        with self._transaction("retain") as cursor:
            cursor.execute(self._q("DELETE FROM {table} WHERE seq = ANY(%s)"), ([v[0] for v in victims],))
            cursor.execute(self._q(
                "UPDATE {chains} c SET event_count = c.event_count - d.n "
                "FROM unnest(%s::uuid[], %s::int[]) AS d(id, n) WHERE c.correlation_id = d.id"),
                (ids, [per_chain[cid] for cid in ids]))
            cursor.execute(self._q("DELETE FROM {chains} WHERE event_count <= 0 AND correlation_id = ANY(%s::uuid[]) "
                                   "RETURNING correlation_id::text, chain, status, outcome"), (ids,))
            gone = list(cursor.fetchall())
            cursor.execute(self._q(f"SELECT min({MS}), max({MS}) FROM {{table}} WHERE seq IS NOT NULL"))
            oldest, newest = cursor.fetchone()
        self.aggregates.remove_events([(v[1], v[2], int(v[4])) for v in victims], oldest, newest)
        self.aggregates.remove_chains(gone)

    # ---- reading
    def last_seq(self) -> int:
        return self._last_seq

    def seq_of(self, event_id: str) -> int | None:
        if not UUID.fullmatch(event_id):
            return None
        with self._reading() as conn:
            row = conn.execute(self._q("SELECT seq FROM {table} WHERE event_id = %s"), (event_id,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def events(self, query: EventQuery) -> Page:
        rows = self._select_events(query, query.after, query.order, query.limit + 1)
        more = len(rows) > query.limit
        items = [row[1].encode() for row in rows[:query.limit]]
        return Page(items, encode_cursor(rows[query.limit - 1][0], query.order, "events") if more else None)

    def events_after(self, seq: int, query: EventQuery | None = None, limit: int = 1000) -> list[tuple[int, str]]:
        return [(int(s), text) for s, text in self._select_events(query or EventQuery(), seq, "asc", limit)]

    def _select_events(self, query: EventQuery, after: int | None, order: str, limit: int) -> list[Any]:
        where: list[str] = ["seq IS NOT NULL"]
        params: list[Any] = []
        if query.event_type is not None:
            if is_glob(query.event_type):
                types, _, _ = self.aggregates.types_matching(query.event_type)
                where.append("event_type = ANY(%s)")
                params.append(types)
            else:
                where.append("event_type = %s")
                params.append(query.event_type)
        for name in ("chain", "tenant_id", "namespace"):
            value = getattr(query, name)
            if value is not None:
                where.append(f"{name} = %s")
                params.append(value)
        if query.correlation_id is not None:
            if not UUID.fullmatch(query.correlation_id):
                return []
            where.append("correlation_id = %s")
            params.append(query.correlation_id)
        if query.since_ms is not None:
            where.append('"timestamp" >= %s')
            params.append(_moment(query.since_ms))
        if query.until_ms is not None:
            where.append('"timestamp" <= %s')
            params.append(_moment(query.until_ms))
        if after is not None:
            where.append("seq < %s" if order == "desc" else "seq > %s")
            params.append(after)
        text = (f"SELECT seq, {TEXT} FROM {{table}} WHERE {' AND '.join(where)} "
                f"ORDER BY seq {'DESC' if order == 'desc' else 'ASC'} LIMIT %s")
        with self._reading() as conn:
            return list(conn.execute(self._q(text), (*params, limit)).fetchall())

    def chain(self, correlation_id: str) -> dict[str, Any] | None:
        if not UUID.fullmatch(correlation_id):
            return None
        with self._reading() as conn, conn.transaction():
            row = conn.execute(self._q(f"SELECT {CHAIN_COLUMNS} FROM {{chains}} WHERE correlation_id = %s"),
                               (correlation_id,)).fetchone()
            if row is None:
                return None
            events = conn.execute(self._q(
                f"SELECT seq, event_id::text, causation_id::text, {TEXT} FROM {{table}} "
                "WHERE correlation_id = %s AND seq IS NOT NULL ORDER BY seq"), (correlation_id,)).fetchall()
        detail = chain_summary(row)
        detail["events"] = [orjson.loads(text) for text in causal_order(events)]
        return detail

    def chains(self, query: ChainQuery) -> Page:
        sql, params = chains_sql(query, CHAIN_COLUMNS, "{chains}", "%s")
        with self._reading() as conn:
            rows = conn.execute(self._q(sql), params).fetchall()
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


def _moment(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def open_postgres_store(spec: str) -> PostgresStore:
    """A store from `postgresql://USER@HOST:PORT/DBNAME[?table=events]` (other options go to libpq)."""
    parts = urlsplit(spec)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    table = options.pop("table", DEFAULT_TABLE)
    if not TABLE_NAME.fullmatch(table):
        raise UsageError(f"postgresql store: table={table!r} is not a table name (letters, digits, _; optionally "
                         "schema.table)", USAGE)
    options.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(options), ""))
    return PostgresStore(conninfo, table)
