"""The PostgreSQL sink against the local server (the `postgres` fixture finds the test database)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from psycopg import sql

from engine.envelope import NATIVE
from engine.sinks.postgres import open_postgres
from tests.conftest import CHAINS, ROOT, START
from tests.services import free_port

encode = NATIVE.encode

pytest_plugins = ["tests.conftest_services"]  # the service fixtures

RUN = ["--chains", str(CHAINS), "--count", "200", "--start", START, "-q"]


def engine(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def jsonl_events(tmp_path: Path, seed: int) -> list[dict[str, Any]]:
    output = tmp_path / f"events-{seed}.jsonl"
    result = engine(*RUN, "--seed", str(seed), "--output", str(output))
    assert 0 == result.returncode, result.stderr
    return [orjson.loads(line) for line in output.read_bytes().splitlines()]


def rows(url: str, table: str) -> list[dict[str, Any]]:
    """The table's rows as events: the columns in envelope order, ids and timestamps as the JSON has them."""
    with psycopg.connect(url) as connection:
        cursor = connection.execute(sql.SQL(
            "SELECT event_id, event_type, correlation_id, causation_id, tenant_id, namespace, \"timestamp\", "
            "chain, step, payload FROM {} ORDER BY \"timestamp\", event_id").format(sql.Identifier(table)))
        names = [column.name for column in cursor.description]
        found = [dict(zip(names, row, strict=True)) for row in cursor]
    for row in found:
        for name in ("event_id", "correlation_id", "causation_id"):
            row[name] = None if row[name] is None else str(row[name])
        stamp = row["timestamp"].astimezone(dt.UTC)
        row["timestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    return found


def by_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda event: (event["timestamp"], event["event_id"]))


def sink(url: str, table: str) -> str:
    return f"{url}?table={table}"


def test_postgres_sink_writes_every_event_as_a_row(postgres: str, pg_table: str, tmp_path: Path) -> None:
    """A run into a new table gives one row per event, equal to the JSON lines field by field."""
    events = jsonl_events(tmp_path, seed=3)

    result = engine(*RUN, "--seed", "3", "--sink", sink(postgres, pg_table))

    assert 0 == result.returncode, result.stderr
    assert by_order(events) == rows(postgres, pg_table)


def test_postgres_sink_creates_the_table_with_an_index_on_correlation_id(
        postgres: str, pg_table: str) -> None:
    """A missing table is created with the documented columns, event_id as primary key and a correlation index."""
    result = engine(*RUN, "--count", "1", "--seed", "3", "--sink", sink(postgres, pg_table))

    assert 0 == result.returncode, result.stderr
    with psycopg.connect(postgres) as connection:
        columns = connection.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position", (pg_table,)).fetchall()
        indexes = connection.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
                                     (pg_table,)).fetchall()
    assert [
        ("event_id", "uuid", "NO"), ("event_type", "text", "NO"), ("correlation_id", "uuid", "NO"),
        ("causation_id", "uuid", "YES"), ("tenant_id", "text", "NO"), ("namespace", "text", "NO"),
        ("timestamp", "timestamp with time zone", "NO"), ("chain", "text", "NO"), ("step", "text", "NO"),
        ("payload", "jsonb", "YES"),
    ] == columns
    assert [
        (f"CREATE INDEX {pg_table}_correlation_id_idx ON public.{pg_table} USING btree (correlation_id, "
         '"timestamp")',),
        (f"CREATE UNIQUE INDEX {pg_table}_pkey ON public.{pg_table} USING btree (event_id)",),
    ] == indexes


def test_a_run_with_another_seed_appends(postgres: str, pg_table: str, tmp_path: Path) -> None:
    """A second run into the same table (another seed) adds its rows to the first run's."""
    first = engine(*RUN, "--seed", "3", "--sink", sink(postgres, pg_table))
    second = engine(*RUN, "--seed", "4", "--sink", sink(postgres, pg_table))

    assert (0, 0) == (first.returncode, second.returncode), first.stderr + second.stderr
    assert by_order(jsonl_events(tmp_path, 3) + jsonl_events(tmp_path, 4)) == rows(postgres, pg_table)


def test_the_same_run_twice_is_a_duplicate_event_id_error(postgres: str, pg_table: str) -> None:
    """The same seed and start give the same event ids: the second run stops with exit 2 and rolls back."""
    first = engine(*RUN, "--seed", "3", "--sink", sink(postgres, pg_table))
    assert 0 == first.returncode, first.stderr
    before = rows(postgres, pg_table)

    second = engine(*RUN, "--seed", "3", "--sink", sink(postgres, pg_table))

    assert 2 == second.returncode
    last = second.stderr.splitlines()[-2:]
    assert last[0].startswith(f"chainsim: error: postgresql sink: an event_id is already in table '{pg_table}': "
                              "Key (event_id)=(")
    assert last[0].endswith(") already exists.")
    assert ("  hint: a run with the same chains, --seed and --start writes the same event ids; use another --seed "
            "or table, or delete the earlier rows (batches written before this one were kept)") == last[1]
    assert before == rows(postgres, pg_table)


def test_a_connection_failure_is_a_clear_error() -> None:
    """Nothing listening on the port: exit 2 with one line saying the connection failed, no traceback."""
    port = free_port()

    result = engine(*RUN, "--seed", "3", "--sink", f"postgresql://postgres@127.0.0.1:{port}/test?table=events")

    assert (2, f'chainsim: error: cannot open sink: cannot connect to PostgreSQL: connection failed: connection '
               f'to server at "127.0.0.1", port {port} failed: Connection refused\n') == \
        (result.returncode, result.stderr)


@pytest.mark.parametrize(("spec", "message"), [
    ("postgresql:test", "postgresql sink: 'postgresql:test' is not a URL; a PostgreSQL sink is "
                        "postgresql://USER@HOST:PORT/DBNAME[?table=events&batch_size=5000]"),
    ("postgresql://h/db?table=drop;table", "postgresql sink: table='drop;table' is not a table name (letters, "
                                           "digits, _; optionally schema.table); a PostgreSQL sink is "
                                           "postgresql://USER@HOST:PORT/DBNAME[?table=events&batch_size=5000]"),
    ("postgresql://h/db?batch_size=0", "postgresql sink: batch_size='0' is not a whole number above 0; a "
                                       "PostgreSQL sink is postgresql://USER@HOST:PORT/DBNAME"
                                       "[?table=events&batch_size=5000]"),
])
def test_a_bad_target_is_a_usage_error(spec: str, message: str) -> None:
    """A malformed PostgreSQL target exits 2 with what is wrong and the URL form."""
    result = engine(*RUN, "--seed", "3", "--sink", spec)

    assert (2, f"chainsim: error: {message}\n") == (result.returncode, result.stderr)


def test_small_batches_commit_as_they_go(postgres: str, pg_table: str, tmp_path: Path) -> None:
    """With batch_size=7 the run is written in many COPY batches and still equals the JSON lines."""
    result = engine(*RUN, "--seed", "5", "--sink", f"{sink(postgres, pg_table)}&batch_size=7")

    assert 0 == result.returncode, result.stderr
    assert by_order(jsonl_events(tmp_path, 5)) == rows(postgres, pg_table)



def test_on_the_wall_clock_commits_come_at_most_every_tenth_of_a_second(postgres: str, pg_table: str) -> None:
    """A paced run does not commit before every wait (one transaction per event at moderate rates): the rows
    share few transactions (distinct xmin), at most one per 0.1 s of the run, and all of them are there."""
    began = time.monotonic()
    result = engine("--chains", str(CHAINS), "--count", "300", "--rate", "500", "--realtime", "--seed", "8", "-q",
                    "--sink", sink(postgres, pg_table))
    elapsed = time.monotonic() - began
    assert 0 == result.returncode, result.stderr
    with psycopg.connect(postgres) as connection:
        count, transactions = connection.execute(sql.SQL("SELECT count(*), count(DISTINCT xmin::text) FROM {}").format(
            sql.Identifier(pg_table))).fetchone()
    assert count > 600  # 300 chains, 2.4 events each on average
    assert 1 <= transactions <= elapsed / 0.1 + 2


TRICKY = [
    {"note": 'a ,"payload": inside, "quotes", back\\slash', "tab": "a\tb", "newline": "a\nb\r\n", "nul": "x\\0"},
    {"unicode": "zürich ✓ 🚀", "nested": {"list": [1, 2.5, None, True], "empty": {}}},
    "just text",
    None,
    [],
]


def test_payloads_survive_copy_whatever_their_characters(postgres: str, pg_table: str) -> None:
    """Payloads (and names) with quotes, backslashes, tabs, newlines and non-ASCII text come back equal."""
    events = [{"event_id": str(uuid.UUID(int=number + 1)), "event_type": "x.v1",
               "correlation_id": str(uuid.UUID(int=100)), "causation_id": None, "tenant_id": 'tenant "q"\tx',
               "namespace": "ns\\x\r\nnext \\N", "timestamp": f"2026-01-01T00:00:00.00{number}Z", "chain": "c",
               "step": "s",
               "payload": payload} for number, payload in enumerate(TRICKY)]
    sink_ = open_postgres(f"{postgres.removeprefix('postgresql:')}?table={pg_table}")
    for event in events:
        sink_.write(event, encode(event))
    sink_.close()

    assert events == rows(postgres, pg_table)


def test_a_row_the_server_refuses_fails_its_batch_and_keeps_the_ones_before(postgres: str, pg_table: str) -> None:
    """jsonb cannot hold U+0000: the batch with it is rolled back with one clear error; earlier batches stay,
    and the sink still closes."""
    from engine.errors import RunError

    events = [{"event_id": str(uuid.UUID(int=number + 1)), "event_type": "x.v1",
               "correlation_id": str(uuid.UUID(int=100)), "causation_id": None, "tenant_id": "t", "namespace": "n",
               "timestamp": f"2026-01-01T00:00:00.00{number}Z", "chain": "c", "step": "s",
               "payload": {"text": "nul \u0000 here" if number == 3 else "fine"}} for number in range(6)]
    sink_ = open_postgres(f"{postgres.removeprefix('postgresql:')}?table={pg_table}&batch_size=2")
    with pytest.raises(RunError, match="cannot write to table"):
        for event in events:
            sink_.write(event, encode(event))
        sink_.flush()
    sink_.close()
    assert events[:2] == rows(postgres, pg_table)
