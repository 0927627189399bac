"""Query parameters of the HTTP API and the WebSocket stream, read into store queries.

Every value is untrusted: a parameter that is unknown, given twice, too long or malformed is a RequestError
naming it and what is allowed (the server answers 400 with it). Nothing here touches the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..envelope.fields import parse_timestamp
from ..errors import RequestError
from ..store.query import ChainQuery, EventQuery, Order, decode_cursor

MAX_VALUE = 256  # characters in one parameter's value (a filter of 10 kB is refused, not searched for)
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
FILTERS = ("event_type", "chain", "correlation_id", "tenant_id", "namespace")
EVENT_PARAMS = (*FILTERS, "since", "until", "limit", "order", "cursor")
STREAM_PARAMS = (*FILTERS, "since")
CHAIN_PARAMS = ("chain", "outcome", "status", "limit", "order", "cursor")
STATUSES = ("in_flight", "finished")
ORDERS = ("desc", "asc")


def single_values(params: Any, allowed: tuple[str, ...]) -> dict[str, str]:
    """The parameters as one value each: RequestError for an unknown one, a repeated one or a value too long.
    `params` is a Starlette QueryParams (a multi-dict) or a plain mapping."""
    items = params.multi_items() if hasattr(params, "multi_items") else list(params.items())
    values: dict[str, str] = {}
    for name, value in items:
        if name not in allowed:
            raise RequestError(name[:MAX_VALUE], "unknown parameter", ", ".join(allowed))
        if name in values:
            raise RequestError(name, "given more than once", "one value")
        if len(value) > MAX_VALUE:
            raise RequestError(name, f"the value is {len(value):,} characters long", f"at most {MAX_VALUE}")
        if "\x00" in value:
            raise RequestError(name, "the value holds a NUL character", "text without NUL")
        values[name] = value
    return values


def event_filters(params: Any, *, stream: bool = False) -> EventQuery:
    """/events' parameters (or, with `stream`, the WebSocket stream's: the filters and `since` as a cursor or
    an event_id, which the stream resolves) as an EventQuery."""
    values = single_values(params, STREAM_PARAMS if stream else EVENT_PARAMS)
    filters: dict[str, Any] = {name: values[name] for name in FILTERS if name in values and values[name] != ""}
    if stream:
        return EventQuery(**filters, limit=MAX_LIMIT, order="asc")
    order, after = _position(values, "events")
    return EventQuery(**filters, since_ms=_time(values, "since"), until_ms=_time(values, "until"),
                      limit=_limit(values), order=order, after=after)


def stream_since(params: Any) -> str | None:
    """The stream's `since`: a cursor of /events or an event_id (checked against the store by the stream)."""
    value = single_values(params, STREAM_PARAMS).get("since")
    return value or None


def chain_filters(params: Mapping[str, str] | Any) -> ChainQuery:
    """/chains' parameters as a ChainQuery."""
    values = single_values(params, CHAIN_PARAMS)
    status: Any = values.get("status") or None
    if status is not None and status not in STATUSES:
        raise RequestError("status", f"{status!r} is not a status", " or ".join(STATUSES))
    order, after = _position(values, "chains")
    return ChainQuery(chain=values.get("chain") or None, outcome=values.get("outcome") or None, status=status,
                      limit=_limit(values), order=order, after=after)


def _limit(values: dict[str, str]) -> int:
    text = values.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit():
        raise RequestError("limit", f"{text!r} is not a whole number", f"1 to {MAX_LIMIT}")
    limit = int(text)
    if not 1 <= limit <= MAX_LIMIT:
        raise RequestError("limit", f"{limit} is out of range", f"1 to {MAX_LIMIT}")
    return limit


def _choice(values: dict[str, str], name: str, choices: tuple[str, ...]) -> str:
    text = values.get(name) or choices[0]
    if text not in choices:
        raise RequestError(name, f"{text!r} is not allowed", " or ".join(choices))
    return text


def _time(values: dict[str, str], name: str) -> int | None:
    text = values.get(name)
    if not text:
        return None
    try:
        return parse_timestamp(text)
    except (ValueError, OverflowError):
        raise RequestError(name, f"{text!r} is not an RFC 3339 time",
                           "e.g. 2026-01-01T00:00:00Z or 2026-01-01T00:00:00.150+01:00") from None


def _position(values: dict[str, str], kind: str) -> tuple[Order, int | None]:
    """The page's order and where it starts: a cursor carries both (`order`, if given too, must agree)."""
    text = values.get("cursor")
    order: Order = "asc" if _choice(values, "order", ORDERS) == "asc" else "desc"
    if not text:
        return order, None
    try:
        cursor = decode_cursor(text, kind)
    except ValueError as error:
        raise RequestError("cursor", str(error), f"the next_cursor of an earlier {kind} page") from None
    if values.get("order") and cursor.order != order:
        raise RequestError("order", f"the cursor walks {cursor.order}, not {order}",
                           f"order={cursor.order} or no order with this cursor")
    return cursor.order, cursor.seq
