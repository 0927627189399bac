"""The server's ASGI app: the routes of the HTTP API, the WebSocket stream and the page, over one EventBus.

    bus = EventBus(catalog, open_store("memory"), generator_settings={})
    app = create_app(bus)                 # a Starlette app whose lifespan starts and stops the bus

Inside an app of your own (Starlette or FastAPI), mount it and run the bus in your lifespan (a mounted app's
own lifespan is not run by Starlette):

    app = Starlette(routes=[Mount("/bus", create_app(bus, lifespan=False))],
                    lifespan=lambda app: bus.running())

Every answer that is not a success is JSON: `{"error": {"status", "parameter", "message", "allowed"}}`, for bad
parameters (400), a missing token (401), an unknown path (404), a wrong method (405), a body too large (413),
a query string too long (414), a conflict (409). Nothing a request holds is read as a path or evaluated.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from ..errors import RequestError
from . import api
from .bus import EventBus
from .openapi import openapi
from .stream import StreamEndpoint

PREFIX = "/api/event-bus"
PAGE = Path(__file__).parent / "page"
PAGE_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
              "style.css": "text/css; charset=utf-8"}  # the page: these files and nothing else
# The page loads its own script and style and talks to this server only; nothing it shows can run.
PAGE_POLICY = ("default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")
MAX_QUERY = 8192  # bytes of a query string
MAX_PATH = 2048  # bytes of a path


class _Bounds:
    """Refuses a path or query string too long before any route looks at it (ASGI middleware)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            error = None
            if len(scope.get("query_string", b"")) > MAX_QUERY:
                error = RequestError("query", "the query string is too long", f"at most {MAX_QUERY} bytes", 414)
            elif len(scope.get("raw_path") or scope["path"].encode()) > MAX_PATH:
                error = RequestError("path", "the path is too long", f"at most {MAX_PATH} bytes", 414)
            if error is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008, "reason": error.message})
                    return
                await api.error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _request_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestError)
    return api.error_response(error)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    message = {404: "no such path", 405: "method not allowed"}.get(error.status_code, str(error.detail))
    allowed = f"see {PREFIX}/openapi.json" if error.status_code == 404 else (error.headers or {}).get("Allow", "")
    return api.error_response(RequestError("path" if error.status_code == 404 else "method", message, allowed,
                                           error.status_code))


async def _openapi(request: Request) -> Response:
    return api.json_response(openapi())


def _page_routes() -> list[Route]:
    """The page's files, read once: a request names one of them, never a path to read."""
    routes = []
    for name, media_type in PAGE_FILES.items():
        body = (PAGE / name).read_bytes()

        async def serve(request: Request, body: bytes = body, media_type: str = media_type) -> Response:
            return Response(body, media_type=media_type,
                            headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY,
                                     "X-Content-Type-Options": "nosniff"})

        routes.append(Route("/" if name == "index.html" else f"/{name}", serve))
    return routes


def create_app(bus: EventBus, *, lifespan: bool = True) -> Starlette:
    """The server's app over `bus`; with `lifespan`, starting the app starts the bus (and stopping stops it)."""
    routes = [
        Route(f"{PREFIX}/events", api.events),
        Route(f"{PREFIX}/chains", api.chains),
        Route(f"{PREFIX}/chains/{{correlation_id:str}}", api.chain),
        Route(f"{PREFIX}/statistics", api.statistics),
        Route(f"{PREFIX}/catalog", api.catalog),
        Route(f"{PREFIX}/generator", api.generator),
        Route(f"{PREFIX}/generator/start", api.generator_start, methods=["POST"]),
        Route(f"{PREFIX}/generator/stop", api.generator_stop, methods=["POST"]),
        Route(f"{PREFIX}/healthz", api.healthz),
        Route("/healthz", api.healthz),
        Route("/openapi.json", _openapi),
        Route(f"{PREFIX}/openapi.json", _openapi),
        WebSocketRoute(f"{PREFIX}/stream", StreamEndpoint(bus.hub, bus.store)),
        *_page_routes(),
    ]
    middleware = [Middleware(_Bounds)]
    if bus.cors:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(bus.cors), allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type"]))

    @contextlib.asynccontextmanager
    async def running(app: Starlette) -> AsyncIterator[None]:
        async with bus.running():
            yield

    app = Starlette(routes=routes, middleware=middleware, lifespan=running if lifespan else None,
                    exception_handlers={RequestError: _request_error, HTTPException: _http_error})
    app.state.bus = bus
    return app
