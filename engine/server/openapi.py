"""The OpenAPI 3.1 description of the HTTP API, served at /openapi.json. tests/test_server_schemathesis.py
checks the real server against it (no 5xx, statuses, content types and bodies as described)."""

from __future__ import annotations

from typing import Any

from .params import DEFAULT_LIMIT, MAX_LIMIT, MAX_VALUE

P = "/api/event-bus"
TEXT = {"type": "string", "maxLength": MAX_VALUE}
JSON = "application/json"

ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["status", "message"],
        "properties": {"status": {"type": "integer"}, "parameter": {"type": ["string", "null"]},
                       "message": {"type": "string"}, "allowed": {"type": ["string", "null"]}}}},
}
EVENT = {
    "type": "object",
    "required": ["event_id", "event_type", "correlation_id", "causation_id", "tenant_id", "namespace", "timestamp",
                 "chain", "step", "payload"],
    "properties": {
        "event_id": {"type": "string"}, "event_type": {"type": "string"}, "correlation_id": {"type": "string"},
        "causation_id": {"type": ["string", "null"]}, "tenant_id": {"type": "string"},
        "namespace": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"},
        "chain": {"type": "string"}, "step": {"type": "string"}, "payload": {}},
}
CHAIN_SUMMARY = {
    "type": "object", "required": ["correlation_id", "chain", "status"],
    "properties": {"correlation_id": {"type": "string"}, "chain": {"type": "string"},
                   "status": {"enum": ["in_flight", "finished"]}, "outcome": {"type": ["string", "null"]},
                   "start": {"type": ["string", "null"]}, "end": {"type": ["string", "null"]},
                   "duration_ms": {"type": ["integer", "null"]}, "event_count": {"type": "integer"}},
}
GENERATOR = {
    "type": "object", "required": ["running", "since", "generated", "token_required"],
    "properties": {"running": {"type": "boolean"}, "since": {"type": ["string", "null"]},
                   "generated": {"type": "object", "properties": {"events": {"type": "integer"},
                                                                   "chains": {"type": "integer"}}},
                   "run": {"type": ["object", "null"]}, "token_required": {"type": "boolean"},
                   "error": {"type": ["string", "null"]}},
}
START = {
    "type": "object", "additionalProperties": False,
    "description": "What the seed's eventBusMockGenerator.start() took, and chainsim's rate flags. Empty: the "
                   "seed's development mode (20 chains at once, then one every 5 s).",
    "properties": {
        "continuous": {"type": "boolean", "description": "false: only the initial chains"},
        "interval_ms": {"type": "number", "exclusiveMinimum": 0, "description": "one chain start every interval"},
        "initial_chains": {"type": "integer", "minimum": 0, "maximum": 100000},
        "rate": {"description": "chain starts per second, or text such as '600/min' or '500 events/s'",
                 "oneOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1000000},
                           {"type": "string", "maxLength": 64}]},
        "shape": {"type": "object", "description": "a traffic shape as in a scenario's run.shape"},
        "count": {"type": "integer", "minimum": 0, "maximum": 100000},
        "duration_ms": {"type": "number", "exclusiveMinimum": 0},
        "speed": {"type": "number", "exclusiveMinimum": 0},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema or TEXT}


FILTERS = [
    _query("event_type", "exact, or a glob with * ? [...], e.g. omninode.agent.*"),
    _query("chain", "chain name"),
    _query("correlation_id", "one chain instance"),
    _query("tenant_id", "tenant"),
    _query("namespace", "namespace"),
]
PAGING = [
    _query("limit", f"page size (default {DEFAULT_LIMIT})",
           {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    _query("order", "desc: newest first (the default); asc: oldest first", {"enum": ["desc", "asc"]}),
    _query("cursor", "the next_cursor of the previous page", TEXT),
]
BAD = {"400": _error("a parameter is unknown, repeated, too long or malformed"),
       "414": _error("the query string or path is too long")}


def openapi() -> dict[str, Any]:
    """The description, as data."""
    ref = {"$ref": "#/components/schemas/Event"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "chainsim event bus", "version": "1",
                 "description": "Events generated by chainsim, stored and served like the seed's event bus. The "
                                "WebSocket stream is at /api/event-bus/stream (same filters as /events, plus since)."},
        "paths": {
            f"{P}/events": {"get": {
                "summary": "Stored events, newest first, filtered, keyset-paginated",
                "parameters": [*FILTERS,
                               _query("since", "RFC 3339: at or after", {"type": "string", "format": "date-time",
                                                                         "maxLength": MAX_VALUE}),
                               _query("until", "RFC 3339: at or before", {"type": "string", "format": "date-time",
                                                                          "maxLength": MAX_VALUE}),
                               *PAGING],
                "responses": {"200": _ok("a page of events", {
                    "type": "object", "required": ["events", "next_cursor"],
                    "properties": {"events": {"type": "array", "items": ref},
                                   "next_cursor": {"type": ["string", "null"]}}}), **BAD}}},
            f"{P}/chains": {"get": {
                "summary": "Recent chain instances",
                "parameters": [_query("chain", "chain name"), _query("outcome", "outcome (or last step)"),
                               _query("status", "in flight or finished", {"enum": ["in_flight", "finished"]}),
                               *PAGING],
                "responses": {"200": _ok("a page of chain instances", {
                    "type": "object", "required": ["chains", "next_cursor"],
                    "properties": {"chains": {"type": "array", "items": CHAIN_SUMMARY},
                                   "next_cursor": {"type": ["string", "null"]}}}), **BAD}}},
            f"{P}/chains/{{correlation_id}}": {"get": {
                "summary": "One chain instance and its events in causal order",
                "parameters": [{"name": "correlation_id", "in": "path", "required": True,
                                "schema": {"type": "string", "maxLength": MAX_VALUE}}],
                "responses": {"200": _ok("the chain instance", {
                    **CHAIN_SUMMARY, "properties": {**CHAIN_SUMMARY["properties"],  # type: ignore[dict-item]
                                                    "events": {"type": "array", "items": ref}}}),
                    "404": _error("no such chain instance is stored"), **BAD}}},
            f"{P}/statistics": {"get": {
                "summary": "Totals, counts, rates, chains in flight, duration percentiles",
                "responses": {"200": _ok("statistics", {"type": "object"}), **BAD}}},
            f"{P}/catalog": {"get": {
                "summary": "The loaded chains: share, steps, event types, expected figures",
                "responses": {"200": _ok("the catalog", {"type": "object", "required": ["chains"]}), **BAD}}},
            f"{P}/generator": {"get": {
                "summary": "Whether the generator runs, since when, what it generated",
                "responses": {"200": _ok("the generator", GENERATOR), **BAD}}},
            f"{P}/generator/start": {"post": {
                "summary": "Start generating (needs the token when the server has one)",
                "security": [{}, {"bearer": []}],
                "requestBody": {"required": False, "content": {JSON: {"schema": START}}},
                "responses": {"200": _ok("started", GENERATOR), **BAD,
                              "401": _error("the server has a token and the request does not carry it"),
                              "409": _error("already running"), "413": _error("the body is too large")}}},
            f"{P}/generator/stop": {"post": {
                "summary": "Stop generating (needs the token when the server has one)",
                "security": [{}, {"bearer": []}],
                "responses": {"200": _ok("stopped", GENERATOR), **BAD,
                              "401": _error("the server has a token and the request does not carry it"),
                              "413": _error("the body is too large")}}},
            f"{P}/healthz": {"get": {
                "summary": "Liveness",
                "responses": {"200": _ok("alive", {"type": "object", "required": ["status"]}), **BAD}}},
        },
        "components": {
            "schemas": {"Error": ERROR, "Event": EVENT},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
