"""What a reader asks the store for: filters on events and chain instances, a page of answers, its cursor.

Pages are keyset-based on `seq` (events) or `first_seq` (chains), so walking all pages while events arrive
gives each one exactly once. A cursor is opaque text, url-safe: base64url of `kind:order:seq:check`, where
check is a CRC-32 of the rest, so a cursor that was cut, edited or made for the other kind of page is a
ValueError, never a wrong page.

An `event_type` filter is exact unless it has a glob character (`*`, `?`, `[...]`): `omninode.agent.*`.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from ..envelope.fields import format_timestamp

Order = Literal["desc", "asc"]
Status = Literal["in_flight", "finished"]
ORDERS = ("desc", "asc")
STATUSES = ("in_flight", "finished")
KINDS = ("events", "chains")
DEFAULT_LIMIT = 100
MAX_CURSOR = 200  # characters: a real cursor is about 30
GLOB_CHARS = re.compile(r"[*?\[]")


def _order(_instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ORDERS:
        raise ValueError(f"{attribute.name} is desc or asc, not {value!r}")


def _limit(_instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} is a whole number above 0, not {value!r}")


@attrs.frozen
class EventQuery:
    """Events matching every given filter (None: any); since_ms/until_ms are inclusive bounds on the timestamp."""

    event_type: str | None = None  # exact, or a glob: omninode.agent.*
    chain: str | None = None
    correlation_id: str | None = None
    tenant_id: str | None = None
    namespace: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = attrs.field(default=DEFAULT_LIMIT, validator=_limit)
    order: Order = attrs.field(default="desc", validator=_order)
    after: int | None = None  # the seq a cursor carries: the page starts past it in `order`

    def matches(self, event: dict[str, Any], ts: int) -> bool:
        """Whether one event (its fields, and its timestamp in ms) passes the filters (not `after`)."""
        if self.event_type is not None and not glob_match(self.event_type, event["event_type"]):
            return False
        for name in ("chain", "correlation_id", "tenant_id", "namespace"):
            wanted = getattr(self, name)
            if wanted is not None and event[name] != wanted:
                return False
        if self.since_ms is not None and ts < self.since_ms:
            return False
        return self.until_ms is None or ts <= self.until_ms


@attrs.frozen
class ChainQuery:
    """Chain instances, newest first (desc) or oldest first (asc) by their first event."""

    chain: str | None = None
    outcome: str | None = None
    status: Status | None = attrs.field(default=None)
    limit: int = attrs.field(default=DEFAULT_LIMIT, validator=_limit)
    order: Order = attrs.field(default="desc", validator=_order)
    after: int | None = None  # the first_seq a cursor carries

    @status.validator
    def _status(self, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and value not in STATUSES:
            raise ValueError(f"status is in_flight or finished, not {value!r}")


@attrs.frozen
class Page:
    """One page of answers; next_cursor is None on the last page (nothing more at the time of the query)."""

    items: Sequence[Any]
    next_cursor: str | None


@attrs.frozen
class Cursor:
    kind: str  # events or chains
    order: Order
    seq: int


def encode_cursor(seq: int, order: str, kind: str = "events") -> str:
    """The opaque, url-safe text of a position: the page after it starts past `seq` in `order`."""
    body = f"{kind[0]}:{order[0]}:{seq}"
    text = f"{body}:{zlib.crc32(body.encode()):08x}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(text: str, kind: str = "events") -> Cursor:
    """The position a cursor names; ValueError for anything that is not a cursor of this kind of page."""
    if not isinstance(text, str) or not text or len(text) > MAX_CURSOR or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not a cursor: use the next_cursor of a page as it was given")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a cursor: use the next_cursor of a page as it was given") from None
    if base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=") != text:  # the same bytes, other spare bits
        raise ValueError("not a cursor: use the next_cursor of a page as it was given")
    parts = raw.split(":")
    if len(parts) != 4 or not parts[2].isdigit() or len(parts[2]) > 19 or not re.fullmatch(r"[0-9a-f]{8}", parts[3]):
        raise ValueError("not a cursor: use the next_cursor of a page as it was given")
    body = ":".join(parts[:3])
    if f"{zlib.crc32(body.encode()):08x}" != parts[3]:
        raise ValueError("not a cursor (its check does not match): use the next_cursor of a page as it was given")
    kinds = {k[0]: k for k in KINDS}
    orders = {o[0]: o for o in ORDERS}
    if parts[0] not in kinds or parts[1] not in orders:
        raise ValueError("not a cursor: use the next_cursor of a page as it was given")
    if kinds[parts[0]] != kind:
        raise ValueError(f"a cursor of a {kinds[parts[0]]} page, not of a {kind} page")
    order: Order = "desc" if orders[parts[1]] == "desc" else "asc"
    return Cursor(kind, order, int(parts[2]))


def is_glob(pattern: str) -> bool:
    return GLOB_CHARS.search(pattern) is not None


def glob_regex(pattern: str) -> str:
    """A POSIX/Python regular expression (anchored) matching what SQLite's GLOB matches: `*`, `?`, `[...]`
    with `^` for negation and ranges; an unclosed `[` matches nothing (as in SQLite)."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = i + 1
            if end < n and pattern[end] == "^":
                end += 1
            if end < n and pattern[end] == "]":
                end += 1
            while end < n and pattern[end] != "]":
                end += 1
            if end >= n:  # SQLite: an unclosed [ matches nothing
                out.append("(?!)")
            else:
                inner = pattern[i + 1:end]
                negate = inner.startswith("^")
                if negate:
                    inner = inner[1:]
                escaped = "".join("\\" + c if c in "\\[]^" else c for c in inner)
                out.append(f"[{'^' if negate else ''}{escaped}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    out.append("$")
    return "".join(out)


def glob_match(pattern: str, text: str) -> bool:
    """What `event_type GLOB pattern` (or equality, for a plain name) answers, in Python."""
    if not is_glob(pattern):
        return pattern == text
    return re.fullmatch(glob_regex(pattern), text, re.DOTALL) is not None


def causal_order(events: Sequence[tuple[int, str, str | None, Any]]) -> list[Any]:
    """Items of (seq, event_id, causation_id, item) in causal order: an event after the one that caused it,
    ties (and events whose cause is not stored) by seq. Seq order already is causal when causes arrive
    first; this puts right the events that arrived before their cause (a reordered or late delivery)."""
    import heapq

    ids = {event_id for _, event_id, _, _ in events}
    children: dict[str, list[tuple[int, int]]] = {}
    ready: list[tuple[int, int]] = []
    for index, (seq, _, cause, _) in enumerate(events):
        if cause is not None and cause in ids:
            children.setdefault(cause, []).append((seq, index))
        else:
            ready.append((seq, index))
    heapq.heapify(ready)
    out: list[Any] = []
    done: set[str] = set()
    while ready:
        _, index = heapq.heappop(ready)
        _, event_id, _, item = events[index]
        out.append(item)
        if event_id in done:  # a duplicate id: its children were released by the first
            continue
        done.add(event_id)
        for child in children.pop(event_id, ()):
            heapq.heappush(ready, child)
    for left in sorted(pair for pairs in children.values() for pair in pairs):  # a cycle of causes
        out.append(events[left[1]][3])
    return out


def chain_summary(row: Sequence[Any]) -> dict[str, Any]:
    """A chains row as the API gives it. While in flight, `end` is its latest event's time so far."""
    cid, chain, tenant, first_seq, start, end, count, status, outcome = row
    return {"correlation_id": str(cid), "chain": chain, "tenant_id": tenant, "status": status,
            "outcome": outcome if status == "finished" else None, "start": format_timestamp(int(start)),
            "end": format_timestamp(int(end)), "duration_ms": int(end) - int(start), "event_count": int(count)}


def chains_sql(query: ChainQuery, columns: str, table: str, mark: str) -> tuple[str, list[Any]]:
    """The SELECT of one page of chain instances (one row more than the page, to know if another follows), with
    `mark` as the driver's parameter placeholder (`?` for SQLite, `%s` for psycopg)."""
    where, params = [], []
    for name in ("chain", "outcome", "status"):
        value = getattr(query, name)
        if value is not None:
            where.append(f"{name} = {mark}")
            params.append(value)
    if query.after is not None:
        where.append(f"first_seq {'<' if query.order == 'desc' else '>'} {mark}")
        params.append(query.after)
    sql = f"SELECT {columns} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + f" ORDER BY first_seq {query.order.upper()} LIMIT {mark}", [*params, query.limit + 1]


def chains_page(rows: Sequence[Sequence[Any]], query: ChainQuery) -> Page:
    """The page of chain summaries from chains_sql's rows (column 3 is first_seq, the cursor's position)."""
    more = len(rows) > query.limit
    return Page([chain_summary(row) for row in rows[:query.limit]],
                encode_cursor(rows[query.limit - 1][3], query.order, "chains") if more else None)
