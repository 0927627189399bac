"""The WebSocket stream (engine/server/stream.py over engine/server/hub.py) served by a real uvicorn server on a
free port, fed by a real run of the catalog on the wall clock, read by real `websockets` clients (and raw sockets
for the clients that misbehave) over loopback.

A wall-clock run gives the same events as the virtual run of the same options, so each test knows beforehand
exactly which lines every client must receive.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from engine.load.catalog import Catalog, load_catalog
from engine.run.options import RunOptions
from engine.run.simulation import Simulation
from engine.server.hub import Hub
from engine.server.stream import StreamEndpoint
from engine.sinks import SinkBase
from engine.store import Store, open_store
from engine.store.query import encode_cursor
from engine.store.writer import StoreWriter

PATH = "/api/event-bus/stream"
CHAINS = Path(__file__).resolve().parent.parent / "chains"
START_MS = 1767225600000
WAIT = 60.0  # seconds: only so that a broken test ends instead of hanging


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CHAINS)


def options(count: int, seed: int = 3, realtime: bool = True, speed: float = 20.0) -> RunOptions:
    return RunOptions(seed=seed, start_ms=START_MS, count=count, rate=10.0, realtime=realtime, speed=speed)


class Lines(SinkBase):
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, event: dict[str, Any], line: bytes) -> None:
        self.lines.append(line)


def expected_lines(catalog: Catalog, count: int, seed: int = 3) -> list[str]:
    """What the wall-clock run of these options will publish, from the virtual run of the same options."""
    sink = Lines()
    Simulation(catalog, options(count, seed, realtime=False), sink).run()
    return [line[:-1].decode() for line in sink.lines]


class Publish(SinkBase):
    """The server's sink: each event gets its seq from the store's writer (or the next number without one) and
    goes to the hub."""

    def __init__(self, hub: Hub, writer: StoreWriter | None, first_seq: int = 1) -> None:
        self.hub, self.writer, self.seq = hub, writer, first_seq - 1

    def write(self, event: dict[str, Any], line: bytes) -> None:
        if self.writer is not None:
            self.seq = self.writer.assign(event, line)
        else:
            self.seq += 1
        self.hub.publish(self.seq, event, line)  # the writer commits on its own, every_s (as the server's bus)


@pytest.fixture
def store() -> Iterator[tuple[Store, StoreWriter]]:
    """The real store, in memory, and its writer committing in batches on a thread of its own."""
    opened = open_store("memory")
    writer = StoreWriter(opened)
    yield opened, writer
    writer.close()
    opened.close()


class HubServer(uvicorn.Server):
    """uvicorn closing the stream's clients with 1001 first (its own shutdown would close them with 1012)."""

    def __init__(self, config: uvicorn.Config, hub: Hub) -> None:
        super().__init__(config)
        self.hub = hub

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.hub.close()
        await super().shutdown(sockets)


class Served:
    """A real uvicorn server in a thread of its own, serving the stream of `hub`; `generate` runs the catalog
    on the server's event loop, publishing to the hub."""

    def __init__(self, hub: Hub, store: tuple[Store, StoreWriter] | None = None, send_buffer: int | None = None,
                 **config: Any) -> None:
        self.hub, self.seq = hub, 1
        self.store: Store | None = store[0] if store is not None else None
        self.writer: StoreWriter | None = store[1] if store is not None else None
        self.loop: asyncio.AbstractEventLoop | None = None
        ready = threading.Event()

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self.loop = asyncio.get_running_loop()
            ready.set()
            yield

        app = Starlette(routes=[WebSocketRoute(PATH, StreamEndpoint(hub, self.store))], lifespan=lifespan)
        self.socket = socket.socket()
        if send_buffer is not None:  # accepted connections inherit it: a client that reads nothing fills it soon
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config.setdefault("ws_ping_interval", None)
        config.setdefault("timeout_graceful_shutdown", 5)
        self.server = HubServer(uvicorn.Config(app, log_level="warning", **config), hub)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        assert ready.wait(WAIT)
        deadline = time.monotonic() + WAIT
        while not self.server.started and time.monotonic() < deadline:  # the lifespan starts before it listens
            time.sleep(0.01)
        assert self.server.started

    def url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}{PATH}{'?' + query if query else ''}"

    async def generate(self, catalog: Catalog, run: RunOptions) -> None:
        """Run the catalog on the server's loop (the wall clock) and wait for the end of the run."""
        sink = Publish(self.hub, self.writer, self.seq)
        assert self.loop is not None
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._run(Simulation(catalog, run, sink)),
                                                                   self.loop))
        self.seq = sink.seq + 1

    async def _run(self, simulation: Simulation) -> None:
        """The run, with the hub told when its next step is due (the senders let it go first)."""
        wall, peek = simulation.wall, simulation.scheduler.peek
        assert wall is not None
        self.hub.due = lambda: float("inf") if (at := peek()) is None else wall.due(at)
        try:
            await simulation.run_async()
        finally:
            self.hub.due = None

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Served] = []

    def start(hub: Hub, store: tuple[Store, StoreWriter] | None = None, **config: Any) -> Served:
        started.append(Served(hub, store, **config))
        return started[-1]

    yield start
    for served in started:
        if served.thread.is_alive():
            served.stop()


async def receive(client: ClientConnection, count: int) -> list[str]:
    got: list[str] = []
    while len(got) < count:
        got.append(str(await client.recv()))
    return got


async def closed_code(client: ClientConnection) -> tuple[int, str]:
    """The close frame a client gets next, after any message still on its way (they would be extra)."""
    extra = []
    try:
        while True:
            extra.append(await client.recv())
    except ConnectionClosed as closed:
        assert [] == extra
        assert closed.rcvd is not None
        return closed.rcvd.code, closed.rcvd.reason


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, WAIT))


# A raw client: the handshake by hand over a plain socket, so a test decides when (and whether) it reads.

def raw_client(port: int, query: str = "", receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    target = PATH + ("?" + query if query else "")
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: nothing of the first frames is read with the answer
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the server closed the connection without a close frame"
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """(opcode, payload) of the next frame from the server (unmasked, not fragmented)."""
    first, second = read_exactly(sock, 2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", read_exactly(sock, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", read_exactly(sock, 8))[0]
    return first & 0x0F, read_exactly(sock, size)


def test_every_client_receives_every_event_in_order(catalog: Catalog, serve: Any) -> None:
    """100 clients connected at once each receive every event of the run, in order, each exactly once."""
    expected = expected_lines(catalog, 60)
    served = serve(Hub())

    async def main() -> list[list[str]]:
        clients = [await connect(served.url()) for _ in range(100)]
        readers = [asyncio.create_task(receive(client, len(expected))) for client in clients]
        await served.generate(catalog, options(60))
        got = await asyncio.gather(*readers)
        for client in clients:
            await client.close()
        return got

    for got in run(main()):
        assert expected == got


def test_a_slow_client_loses_its_oldest_events_and_is_told(catalog: Catalog, serve: Any) -> None:
    """A client that reads nothing while the run goes on loses its oldest events, is told how many with a control
    message, and gets the rest in order; the other clients get every event."""
    expected = expected_lines(catalog, 400)
    served = serve(Hub(client_queue=200, drop_limit=10**9), send_buffer=4096)

    async def main() -> tuple[list[list[str]], socket.socket]:
        slow = raw_client(served.port, receive_buffer=4096)
        clients = [await connect(served.url()) for _ in range(10)]
        readers = [asyncio.create_task(receive(client, len(expected))) for client in clients]
        await served.generate(catalog, options(400))
        got = await asyncio.gather(*readers)
        for client in clients:
            await client.close()
        return got, slow

    got, slow = run(main())
    for each in got:
        assert expected == each
    events: list[str] = []
    dropped = 0
    while len(events) + dropped < len(expected):
        opcode, payload = read_frame(slow)
        assert 1 == opcode
        message = orjson.loads(payload)
        if "control" in message:
            assert "dropped" == message["control"]
            dropped += message["count"]
        else:
            events.append(payload.decode())
    slow.close()
    assert dropped > 0
    assert len(expected) == len(events) + dropped
    assert expected[-1] == events[-1]
    positions = [expected.index(event) for event in events]
    assert sorted(positions) == positions


def test_a_client_that_loses_too_much_is_closed_with_4008(catalog: Catalog, serve: Any) -> None:
    """Past its drop limit a client that reads nothing is closed with 4008 and a reason; its slot is freed and
    the other clients still get every event."""
    expected = expected_lines(catalog, 400)
    hub = Hub(client_queue=100, drop_limit=200)
    served = serve(hub, send_buffer=4096)

    async def main() -> tuple[list[str], socket.socket]:
        slow = raw_client(served.port, receive_buffer=4096)
        client = await connect(served.url())
        reader = asyncio.create_task(receive(client, len(expected)))
        await served.generate(catalog, options(400))
        got = await reader
        await client.close()
        return got, slow

    got, slow = run(main())
    assert expected == got
    opcode, payload = read_frame(slow)
    while opcode != 8:
        opcode, payload = read_frame(slow)
    slow.close()
    assert 4008 == struct.unpack("!H", payload[:2])[0]
    assert "too slow: lost more than 200 messages (the queue holds 100)" == payload[2:].decode()


def test_filters_event_type_glob_chain_and_tenant(catalog: Catalog, serve: Any) -> None:
    """Each client gets exactly the events its filters let through, in order: an event_type glob, an exact
    event_type, a chain, a tenant with a chain, and a tenant no event has."""
    expected = expected_lines(catalog, 60)
    events = [orjson.loads(line) for line in expected]
    queries = {"event_type=omninode.agent.*": lambda e: e["event_type"].startswith("omninode.agent."),
               "event_type=omninode.database.query.completed.v1":
                   lambda e: e["event_type"] == "omninode.database.query.completed.v1",
               "chain=vault_secret": lambda e: e["chain"] == "vault_secret",
               "tenant_id=default-tenant&chain=code_generation": lambda e: e["chain"] == "code_generation",
               "tenant_id=nobody": lambda e: False}
    wanted = {query: [line for line, event in zip(expected, events, strict=True) if test(event)]
              for query, test in queries.items()}
    assert all(wanted[query] for query in list(queries)[:-1])
    served = serve(Hub())

    async def main() -> dict[str, list[str]]:
        clients = {query: await connect(served.url(query)) for query in queries}
        readers = {query: asyncio.create_task(receive(client, len(wanted[query])))
                   for query, client in clients.items()}
        await served.generate(catalog, options(60))
        got = {query: await reader for query, reader in readers.items()}
        await asyncio.to_thread(served.stop)
        for client in clients.values():
            assert (1001, "server shutting down") == await closed_code(client)
        return got

    assert wanted == run(main())


def test_a_bad_filter_is_refused_with_400_and_the_parameter(serve: Any, store: tuple[Store, StoreWriter]) -> None:
    """An unknown parameter, a value too long, a since that is no cursor or no stored event's id: a 400 before
    the handshake, naming the parameter."""
    served = serve(Hub(), store)

    async def refused(query: str) -> dict[str, Any]:
        with pytest.raises(InvalidStatus) as caught:
            await connect(served.url(query))
        assert 400 == caught.value.response.status_code
        body: dict[str, Any] = orjson.loads(caught.value.response.body)
        return body["error"]

    assert "limit" == run(refused("limit=5"))["parameter"]
    assert "event_type" == run(refused("event_type=" + "x" * 300))["parameter"]
    assert "since" == run(refused("since=not-a-cursor"))["parameter"]
    assert "since" == run(refused("since=00000000-0000-4000-8000-000000000000"))["parameter"]


@pytest.mark.parametrize("position", ["event_id", "cursor"])
def test_since_then_live_without_gap_or_repeat(catalog: Catalog, serve: Any, store: tuple[Store, StoreWriter],
                                               position: str) -> None:
    """A client asking for the events since one of a first run (by event_id, or by a cursor of its seq) gets
    the stored ones after it (the real store, in memory), then those of a second run that is already
    publishing, each once, in order; the hub's ring is small, so the store really is read."""
    first, both = expected_lines(catalog, 60), expected_lines(catalog, 60) + expected_lines(catalog, 60, seed=4)
    served = serve(Hub(ring=30), store)
    k = 10  # the client has seen the first run's events up to this one (seq k + 1)
    since = orjson.loads(first[k])["event_id"] if position == "event_id" else encode_cursor(k + 1, "asc")

    async def main() -> list[str]:
        await served.generate(catalog, options(60))
        await asyncio.to_thread(store[1].flush)  # the first run is stored (else since= would not know its ids)
        live = asyncio.create_task(served.generate(catalog, options(60, seed=4)))
        client = await connect(served.url(f"since={since}"))
        got = await receive(client, len(both) - k - 1)
        await live
        await asyncio.to_thread(served.stop)
        assert (1001, "server shutting down") == await closed_code(client)
        return got

    assert both[k + 1:] == run(main())


def test_since_while_the_store_lags_behind_a_tiny_ring(catalog: Catalog, serve: Any) -> None:
    """With a ring of one event and a store that commits only every 0.3 s, a client catching up while a run
    publishes finds the ring past what the store has: it asks the store again until it has caught up, and
    still gets every event once, in order, with no control message."""
    store = open_store("memory")
    writer = StoreWriter(store, every_s=0.3)
    try:
        first, both = expected_lines(catalog, 60), expected_lines(catalog, 60) + expected_lines(catalog, 60, seed=4)
        served = serve(Hub(ring=1), (store, writer))
        k = 5
        since = orjson.loads(first[k])["event_id"]

        async def main() -> list[str]:
            await served.generate(catalog, options(60))
            await asyncio.to_thread(writer.flush)
            live = asyncio.create_task(served.generate(catalog, options(60, seed=4)))
            while served.hub.last_seq < len(first) + 10:  # the second run is publishing, not yet stored
                await asyncio.sleep(0.005)
            client = await connect(served.url(f"since={since}"))
            got = await receive(client, len(both) - k - 1)
            await live
            await asyncio.to_thread(served.stop)
            assert (1001, "server shutting down") == await closed_code(client)
            return got

        assert both[k + 1:] == run(main())
    finally:
        writer.close()
        store.close()


def test_beyond_max_clients_a_client_is_closed_with_1013(serve: Any) -> None:
    """With max_clients connected, one more is accepted and closed at once with 1013, the reason naming the
    limit; once one leaves, a new client is taken."""
    hub = Hub(max_clients=3)
    served = serve(hub)

    async def main() -> tuple[int, str]:
        clients = [await connect(served.url()) for _ in range(3)]
        refused = await connect(served.url())
        code = await closed_code(refused)
        await clients.pop().close()
        clients.append(await connect(served.url()))
        for client in clients:
            await client.close()
        return code

    assert (1013, "too many clients: this server takes at most 3 (--max-clients)") == run(main())


def test_a_dead_client_is_dropped_after_the_ping_timeout(catalog: Catalog, serve: Any) -> None:
    """A connection that stops answering (no reads, no pongs) is closed by uvicorn's ping timeout and its slot
    is freed: with max_clients 1, a new client is then taken and gets the events."""
    hub = Hub(max_clients=1)
    served = serve(hub, ws_ping_interval=0.2, ws_ping_timeout=0.2)
    dead = raw_client(served.port)
    deadline = time.monotonic() + WAIT
    while hub.clients and time.monotonic() < deadline:
        time.sleep(0.05)
    dead.close()
    assert 0 == hub.clients
    expected = expected_lines(catalog, 5)

    async def main() -> list[str]:
        client = await connect(served.url())
        reader = asyncio.create_task(receive(client, len(expected)))
        await served.generate(catalog, options(5))
        got = await reader
        await client.close()
        return got

    assert expected == run(main())


def test_shutdown_closes_every_client_with_1001(serve: Any) -> None:
    """When the server stops, each connected client gets the close frame 1001 "server shutting down"."""
    hub = Hub()
    served = serve(hub)

    async def main() -> list[tuple[int, str]]:
        clients = [await connect(served.url()) for _ in range(5)]
        await asyncio.to_thread(served.stop)
        return [await closed_code(client) for client in clients]

    assert [(1001, "server shutting down")] * 5 == run(main())
    assert 0 == hub.clients
