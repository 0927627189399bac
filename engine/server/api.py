"""The HTTP API's handlers, under /api/event-bus: events, chain instances, statistics, the catalog, the generator's
manual control and health. Each reads its parameters through engine/server/params.py (a RequestError is a 400),
asks the store in a worker thread (the event loop keeps generating and streaming), and answers JSON.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..envelope.fields import format_timestamp
from ..errors import RequestError, UsageError
from ..store.query import ChainQuery, EventQuery, Page
from .bus import EventBus
from .params import MAX_VALUE, chain_filters, event_filters, single_values

MAX_BODY = 4096  # bytes of a POST body
START_KEYS = ("continuous", "interval_ms", "initial_chains", "rate", "shape", "count", "duration_ms", "speed")
MAX_INITIAL = 100_000


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def error_response(error: RequestError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return json_response(error.body(), error.status, headers)


def _bus(request: Request) -> EventBus:
    bus: EventBus = request.app.state.bus
    return bus


def _page(page: Page, key: str) -> Response:
    """A page of stored events (their JSON texts, joined as they are) or of chain summaries."""
    if key == "events":
        items = [item.encode() if isinstance(item, str) else item for item in page.items]
        body = b'{"events":[' + b",".join(items) + b'],"next_cursor":' + orjson.dumps(page.next_cursor) + b"}"
        return Response(body, media_type="application/json")
    return json_response({key: list(page.items), "next_cursor": page.next_cursor})


async def events(request: Request) -> Response:
    query: EventQuery = event_filters(request.query_params)
    return _page(await asyncio.to_thread(_bus(request).store.events, query), "events")


async def chains(request: Request) -> Response:
    query: ChainQuery = chain_filters(request.query_params)
    return _page(await asyncio.to_thread(_bus(request).store.chains, query), "chains")


async def chain(request: Request) -> Response:
    single_values(request.query_params, ())
    correlation_id = request.path_params["correlation_id"]
    if len(correlation_id) > MAX_VALUE:
        raise RequestError("correlation_id", f"{len(correlation_id):,} characters long", f"at most {MAX_VALUE}")
    detail = await asyncio.to_thread(_bus(request).store.chain, correlation_id)
    if detail is None:
        raise RequestError("correlation_id", f"no chain instance {correlation_id!r} is stored",
                           "a correlation_id of a stored event", status=404)
    return json_response(detail)


async def statistics(request: Request) -> Response:
    single_values(request.query_params, ())
    return json_response(await asyncio.to_thread(_bus(request).store.statistics))


async def catalog(request: Request) -> Response:
    single_values(request.query_params, ())
    bus = _bus(request)
    if bus.catalog_json is None:
        from ..load.describe import catalog_data

        bus.catalog_json = orjson.dumps(catalog_data(bus.catalog))
    return Response(bus.catalog_json, media_type="application/json")


async def healthz(request: Request) -> Response:
    single_values(request.query_params, ())
    bus = _bus(request)
    return json_response({"status": "ok", "store": bus.store_spec.split(":", 1)[0],
                          "generating": bus.generator.running})


def generator_state(bus: EventBus) -> dict[str, Any]:
    generator = bus.generator
    options = generator.options
    return {
        "running": generator.running,
        "since": format_timestamp(round(generator.since * 1000)) if generator.since is not None else None,
        "generated": generator.generated(),
        "run": None if options is None else {
            "seed": options.seed, "initial": options.initial, "interval_ms": options.interval_ms,
            "rate": options.rate, "shape": options.shape, "count": options.count,
            "duration_ms": options.duration_ms, "speed": options.speed},
        "token_required": bus.token is not None,
        "error": None if generator.error is None else str(generator.error),  # what ended the last run, if it failed
    }


async def generator(request: Request) -> Response:
    single_values(request.query_params, ())
    return json_response(generator_state(_bus(request)))


async def generator_start(request: Request) -> Response:
    bus = _bus(request)
    _authorize(request, bus)
    single_values(request.query_params, ())
    settings = _start_settings(await _json_body(request))
    if bus.generator.running:
        raise RequestError(None, "the generator is already running", "POST /api/event-bus/generator/stop first",
                           status=409)
    try:
        await bus.generator.start(**settings)
    except UsageError as error:
        raise RequestError(None, error.message, "see GET /openapi.json: GeneratorStart") from None
    return json_response(generator_state(bus))


async def generator_stop(request: Request) -> Response:
    bus = _bus(request)
    _authorize(request, bus)
    single_values(request.query_params, ())
    await _json_body(request)
    try:
        await bus.generator.stop()
    except Exception as error:  # the run had failed (a template): it is over; say why
        return json_response({**generator_state(bus), "error": str(error)})
    return json_response(generator_state(bus))


def _authorize(request: Request, bus: EventBus) -> None:
    if bus.token is None:
        return
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), bus.token.encode()):
        raise RequestError("Authorization", "this server's control endpoints need its token",
                           "Authorization: Bearer <the --token or CHAINSIM_TOKEN of the server>", status=401)


async def _json_body(request: Request) -> dict[str, Any]:
    """The POST body: nothing, or a JSON object of at most MAX_BODY bytes."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise RequestError("body", "the body is too large", f"at most {MAX_BODY} bytes", status=413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise RequestError("body", "the body is too large", f"at most {MAX_BODY} bytes", status=413)
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError("body", "the body is not JSON", "a JSON object, e.g. {\"continuous\": true}") from None
    if not isinstance(data, dict):
        raise RequestError("body", "the body is not a JSON object", "a JSON object, e.g. {\"continuous\": true}")
    return data


def _start_settings(body: dict[str, Any]) -> dict[str, Any]:
    """POST /generator/start's body as LiveGenerator.start()'s arguments; a RequestError for any bad key."""
    settings: dict[str, Any] = {}
    for key, value in body.items():
        if key not in START_KEYS:
            raise RequestError(str(key)[:MAX_VALUE], "unknown key", ", ".join(START_KEYS))
        if value is None:
            continue
        if key == "continuous":
            if not isinstance(value, bool):
                raise RequestError(key, "not true or false", "true or false")
        elif key in ("initial_chains", "count"):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INITIAL:
                raise RequestError(key, f"{value!r} is not a whole number from 0 to {MAX_INITIAL:,}",
                                   f"0 to {MAX_INITIAL:,}")
        elif key in ("interval_ms", "duration_ms", "speed"):
            if not _positive(value):
                raise RequestError(key, f"{value!r} is not a number above 0", "a finite number above 0")
        elif key == "rate":
            _check_rate(value)
        elif key == "shape":
            _check_shape(value)
        settings[key] = value
    return settings


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _check_rate(value: Any) -> None:
    if _positive(value):
        if value > 1_000_000:
            raise RequestError("rate", f"{value!r} is too high", "at most 1,000,000 chain starts per second")
        return
    if isinstance(value, str) and len(value) <= 64:
        from ..run.shapes import RateError, parse_rate

        try:
            parse_rate(value, lambda: 1.0)
            return
        except RateError:
            pass
    raise RequestError("rate", f"{str(value)[:64]!r} is not a rate", "a number above 0, or text: '600/min', "
                       "'500 events/s'")


def _check_shape(value: Any) -> None:
    from ..errors import json_path
    from ..load import schema

    problems = schema.check_value(value, "shape", "shape")
    if problems:
        first = problems[0]
        raise RequestError("shape", f"{json_path(first.path)}: {first.message}",
                           first.hint or "a traffic shape as in a scenario's run.shape")
