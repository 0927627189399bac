"""PostgreSQL: one row per event in a table, written with COPY in batches, through psycopg 3.

    --sink postgresql://USER@HOST:PORT/DBNAME?table=events&batch_size=5000

The table is created when missing (see SCHEMA), with an index on (correlation_id, timestamp). Any other
query option goes to libpq as a connection parameter (`connect_timeout`, `sslmode`, ...).
"""

from __future__ import annotations

import operator
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..envelope import NATIVE, Encoding
from ..errors import SinkError, UsageError
from ..hints import hint
from . import SinkBase

INSTALL = "pip install 'chainsim[postgres]'"
USAGE = "a PostgreSQL sink is postgresql://USER@HOST:PORT/DBNAME[?table=events&batch_size=5000]"
DEFAULT_TABLE = "events"
DEFAULT_BATCH = 5_000
COMMIT_EVERY_S = 0.1  # on the wall clock: at most this often, and no row waits longer for its commit
CONNECT_TIMEOUT_S = "10"  # unless the URL gives connect_timeout
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")

# {table} and {index} are filled in as quoted identifiers.
SCHEMA = """\
CREATE TABLE IF NOT EXISTS {table} (
    event_id       uuid PRIMARY KEY,
    event_type     text NOT NULL,
    correlation_id uuid NOT NULL,
    causation_id   uuid,
    tenant_id      text NOT NULL,
    namespace      text NOT NULL,
    "timestamp"    timestamptz NOT NULL,
    chain          text NOT NULL,
    step           text NOT NULL,
    payload        jsonb
);
CREATE INDEX IF NOT EXISTS {index} ON {table} (correlation_id, "timestamp")"""
COLUMNS = ("event_id", "event_type", "correlation_id", "causation_id", "tenant_id", "namespace", "timestamp",
           "chain", "step", "payload")
_ENVELOPE = operator.itemgetter(*COLUMNS[:-1])


class PostgresSink(SinkBase):
    """Streams rows into a COPY, one transaction per batch (every `batch_size` events, and on flush).

    On the wall clock it is flushed at most every `flush_every` seconds: a transaction per wait would be
    one per event at moderate rates.
    """

    flush_every = COMMIT_EVERY_S

    def __init__(self, conninfo: str, table: str, batch_size: int, encoding: Encoding = NATIVE) -> None:
        try:
            import psycopg
            from psycopg import sql
        except ImportError:
            raise UsageError(f"the postgresql sink needs psycopg: {INSTALL}") from None
        self._psycopg = psycopg
        self._payload_json = encoding.payload_json
        self.table, self.batch_size = table, batch_size
        self.written = 0
        self._pending = 0  # rows in the open COPY
        self._write_row: Any = None  # the open COPY's write_row, between the first row of a batch and flush()
        self._copying: Any = None
        self._cursor: Any = None
        names = table.split(".")
        table_id = sql.Identifier(*names)
        index_id = sql.Identifier(f"{names[-1]}_correlation_id_idx"[:63])
        try:
            self.connection = psycopg.connect(conninfo)
        except psycopg.Error as error:
            raise OSError(f"cannot connect to PostgreSQL: {_first_line(error)}") from None
        try:
            with self.connection.cursor() as cursor:
                for statement in SCHEMA.split(";\n"):
                    cursor.execute(sql.SQL(statement).format(table=table_id, index=index_id))
            self.connection.commit()
        except psycopg.Error as error:
            self.connection.close()
            raise OSError(f"cannot create PostgreSQL table {table!r}: {_first_line(error)}") from None
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in COLUMNS)
        self._copy = sql.SQL("COPY {} ({}) FROM STDIN").format(table_id, columns)

    def write(self, event: dict[str, Any], line: bytes) -> None:
        """Stream the row into the open COPY (opened by the first row of a batch).

        Rows go to the server as they come, so it parses and indexes one batch while the engine makes
        the next events: on two cores the work overlaps instead of taking turns.
        """
        if self._write_row is None:
            self._begin()
        try:
            self._write_row(_ENVELOPE(event) + (self._payload_json(line),))  # type: ignore[misc]
        except self._psycopg.Error as error:
            self._abort(error)
        self._pending += 1
        if self._pending >= self.batch_size:
            self.flush()

    def _begin(self) -> None:
        try:
            self._cursor = self.connection.cursor()
            self._copying = self._cursor.copy(self._copy)
            self._write_row = self._copying.__enter__().write_row
        except self._psycopg.Error as error:
            self._abort(error)

    def flush(self) -> None:
        """End the COPY of the rows written so far and commit them."""
        if self._write_row is None:
            return
        copying, cursor, self._write_row = self._copying, self._cursor, None
        try:
            self._copying = None
            copying.__exit__(None, None, None)  # the server checks the batch here
            cursor.close()
            self.connection.commit()
        except self._psycopg.Error as error:
            self._abort(error)
        self.written += self._pending
        self._pending = 0

    def _abort(self, error: Exception) -> None:
        """Roll the batch back and say why (a RunError); batches committed before it stay."""
        copying, self._copying, self._write_row, self._pending = self._copying, None, None, 0
        try:
            if copying is not None:
                copying.__exit__(type(error), error, error.__traceback__)  # tells the server the COPY failed
        except self._psycopg.Error:
            pass  # the COPY had ended already (the error came from its end)
        try:
            self.connection.rollback()
        except self._psycopg.Error:
            pass  # the connection is gone: the batch is lost with it
        if isinstance(error, self._psycopg.errors.UniqueViolation):
            detail = error.diag.message_detail or _first_line(error)
            raise SinkError(f"postgresql sink: an event_id is already in table {self.table!r}: {detail}",
                            hint("sink", "postgres duplicate")) from None
        raise SinkError(f"postgresql sink: cannot write to table {self.table!r}: {_first_line(error)}",
                        hint("sink", "postgres")) from None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.connection.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def open_postgres(target: str, encoding: Encoding = NATIVE) -> PostgresSink:
    """A PostgreSQL sink from `//USER@HOST:PORT/DBNAME[?table=...&batch_size=...]` (after `postgresql:`)."""
    if not target.startswith("//"):
        raise UsageError(f"postgresql sink: {('postgresql:' + target)!r} is not a URL; {USAGE}")
    parts = urlsplit("postgresql:" + target)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    table = options.pop("table", DEFAULT_TABLE)
    if not TABLE_NAME.fullmatch(table):
        raise UsageError(f"postgresql sink: table={table!r} is not a table name (letters, digits, _; "
                         f"optionally schema.table); {USAGE}")
    batch = options.pop("batch_size", str(DEFAULT_BATCH))
    if not batch.isdigit() or int(batch) < 1:
        raise UsageError(f"postgresql sink: batch_size={batch!r} is not a whole number above 0; {USAGE}")
    options.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(options), ""))
    return PostgresSink(conninfo, table, int(batch), encoding)
