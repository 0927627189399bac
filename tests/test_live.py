"""Start and stop from Python: LiveGenerator inside a running event loop, and the server's app mounted in a
user's own Starlette app, served by a real uvicorn on a free port and asked over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from engine import LiveGenerator, SinkBase, UsageError
from engine.load.catalog import load_catalog
from engine.server import EventBus, create_app
from engine.store import open_store

from .conftest import CHAINS


class Lines(SinkBase):
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.ends: list[str] = []

    def write(self, event, line):
        self.lines.append(line)

    def end_chain(self, correlation_id, chain, outcome, at):
        self.ends.append(correlation_id)


def test_start_iterate_stop_inside_a_running_loop_that_stays_responsive():
    sink, seen = Lines(), []

    async def main() -> None:
        generator = LiveGenerator(CHAINS, sink=sink, callback=seen.append, seed=3)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        await generator.start(continuous=True, interval_ms=20, initial_chains=20, speed=5)
        assert generator.running
        got = []
        async for event in generator.events():
            got.append(event)
            if len(got) == 60:
                break
        stats = await generator.stop()
        ticking.cancel()
        assert not generator.running and stats is not None and stats.events >= 60
        assert ticks > 0  # the loop ran other tasks while the generator generated
        assert [e["event_id"] for e in got] == [e["event_id"] for e in seen[:60]]
        assert len(sink.lines) == len(seen) == stats.events
        assert generator.generated()["events"] == stats.events

    asyncio.run(main())


def test_a_second_start_while_running_is_refused_and_restarts_do_not_repeat_ids():
    async def main() -> None:
        sink = Lines()
        generator = LiveGenerator(CHAINS, sink=sink, seed=1)
        await generator.start(continuous=False, initial_chains=5, speed=50)
        with pytest.raises(UsageError):
            await generator.start()
        await generator.wait()
        first = {json.loads(line)["event_id"] for line in sink.lines}
        await generator.start(continuous=False, initial_chains=5, speed=50)
        await generator.wait()
        assert generator.starts == 2 and generator.totals.started == 10
        second = {json.loads(line)["event_id"] for line in sink.lines} - first
        assert second and not second & first
        assert len(sink.ends) == 10  # every chain finished, and the sink heard it

    asyncio.run(main())


def test_the_same_seed_gives_the_same_events_as_the_virtual_clock():
    from engine.api import simulate

    async def main() -> list[bytes]:
        sink = Lines()
        generator = LiveGenerator(CHAINS, sink=sink, seed=11)
        await generator.start(count=30, initial_chains=1, rate=50, speed=1000, start="2026-01-01T00:00:00Z")
        await generator.wait()
        return sink.lines

    lines = asyncio.run(main())
    expected = simulate(CHAINS, count=30, initial=1, rate=50, seed=11, start="2026-01-01T00:00:00Z")
    assert [json.loads(line) for line in lines] == expected


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_app_mounts_inside_a_users_starlette_app():
    bus = EventBus(load_catalog(CHAINS), open_store("memory"), seed=2,
                   generator_settings={"interval_ms": 20, "initial_chains": 10})

    async def hello(request):
        return PlainTextResponse("the user's own route")

    app = Starlette(routes=[Route("/", hello), Mount("/bus", create_app(bus, lifespan=False))],
                    lifespan=lambda app: bus.running())
    port = _free_port()

    async def main() -> None:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               ws="websockets-sansio"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(base + "/")).text == "the user's own route"
            async with websockets.connect(f"ws://127.0.0.1:{port}/bus/api/event-bus/stream") as stream:
                live = json.loads(await asyncio.wait_for(stream.recv(), 10))
            for _ in range(200):
                stats = (await client.get(base + "/bus/api/event-bus/statistics")).json()
                if stats["events"] > 20:
                    break
                await asyncio.sleep(0.05)
            assert stats["events"] > 20
            page = (await client.get(base + "/bus/api/event-bus/events", params={"limit": "1000"})).json()
            assert live["event_id"] in {e["event_id"] for e in page["events"]}
        server.should_exit = True
        await serving

    asyncio.run(main())
    assert not bus.generator.running
