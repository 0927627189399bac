"""The event-bus server (`chainsim serve`, the `server` extra): the seed's HTTP API, a WebSocket stream and a page,
over an embedded store that the generator fills.

    bus.py      EventBus: the catalog, the store and its writer, the hub, the generator, retention
    app.py      create_app(bus): the ASGI app (routes, JSON errors, bounds), to serve or to mount
    api.py      the HTTP handlers under /api/event-bus
    params.py   query parameters read into store queries (RequestError: a 400 that names the parameter)
    openapi.py  the OpenAPI description served at /openapi.json
    stream.py   the WebSocket endpoint /api/event-bus/stream (since-then-live)
    hub.py      hands each event to every stream client's bounded queue
    auto.py     automatic mode: Kafka too when a broker answers
    page/       the page served at /
"""

from __future__ import annotations

from .app import create_app
from .bus import EventBus, Retention

__all__ = ["EventBus", "Retention", "create_app"]
