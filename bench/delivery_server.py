"""bench/delivery.py's servers, each in a process of its own.

    python bench/delivery_server.py chainsim PORT     the stream (engine/server/stream.py and hub.py) under uvicorn,
                                                      fed by a wall-clock run of the catalog (chains/)
    python bench/delivery_server.py floor PORT        a minimal broadcast written directly with `websockets`,
                                                      sending pre-encoded lines at the times of their timestamps

Each prints `listening` once it accepts connections, then takes commands on stdin, one per line, and answers
each with one JSON line when its run is over:

    go ORIGIN RATE SECONDS     chainsim: run the catalog at RATE events/s for SECONDS, its start at epoch ORIGIN;
                               answers the events published and the generator's lateness (how late the wall
                               clock ran each event: now - when it was due), p50/p99/max in ms
    go ORIGIN FILE             floor: send FILE's lines (JSON lines of a run that starts at START) on time;
                               chainsim: publish them to the hub on time (the delivery alone, no generator)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

START_MS = 1767225600000  # 2026-01-01T00:00:00Z, as bench/_common.py
PATH = "/api/event-bus/stream"
BEHIND_YIELD = 0.002  # seconds: the floor hands the loop back this often when it runs behind (as the engine does)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    return {"p50": ordered[len(ordered) // 2], "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "max": ordered[-1]}


def read_lines(path: str) -> list[tuple[float, str]]:
    """A run's JSON lines, each with its time in seconds from the run's start (a run of less than a day)."""
    lines = []
    for text in Path(path).read_text().splitlines():
        at = text.index('"timestamp":"') + 13
        stamp = text[at:at + 24]  # 2026-01-01THH:MM:SS.mmmZ
        seconds = int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19]) + int(stamp[20:23]) / 1000
        lines.append((seconds, text))
    return lines


async def paced(origin: float, lines: list[tuple[float, str]]) -> AsyncIterator[int]:
    """The index of each line when its time comes (the run's start at epoch `origin`), awaiting in between and
    handing the loop back every BEHIND_YIELD when behind (as the engine's asyncio clock does)."""
    start = time.monotonic() + (origin - time.time())
    monotonic, held = time.monotonic, time.monotonic()
    for index, (seconds, _) in enumerate(lines):
        now = monotonic()
        delay = start + seconds - now
        if delay > 0:
            await asyncio.sleep(delay)
            held = monotonic()
        elif now - held >= BEHIND_YIELD:
            await asyncio.sleep(0)
            held = monotonic()
        yield index


async def commands(handle: Any) -> None:
    """Each command of stdin in turn, each answer a JSON line on stdout; the end of stdin ends the process."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        answer = await handle(line.split())
        print(json.dumps(answer), flush=True)


def chainsim(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    from engine.load.catalog import load_catalog
    from engine.process import settle_memory
    from engine.run.options import RunOptions
    from engine.run.simulation import Simulation, mean_events_per_chain
    from engine.server.hub import Hub
    from engine.server.stream import StreamEndpoint
    from engine.sinks import SinkBase

    catalog = load_catalog(ROOT / "chains")
    per_chain = mean_events_per_chain(catalog)  # once, here: a rate in events/s would compute it at each start
    hub = Hub()
    settle_memory()  # what the engine's commands do before a run: fewer and shorter pauses of the collector

    class Publish(SinkBase):
        needs_event = True

        def __init__(self) -> None:
            self.seq = hub.last_seq
            self.simulation: Simulation | None = None
            self.lateness: list[float] = []

        def write(self, event: dict[str, Any], line: bytes) -> None:
            self.seq += 1
            hub.publish(self.seq, event, line)
            assert self.simulation is not None and self.simulation.wall is not None
            self.lateness.append((time.monotonic() - self.simulation.wall.due(self.simulation.scheduler.now)) * 1000)

    async def handle(command: list[str]) -> dict[str, Any]:
        if len(command) == 3:
            return await from_lines(command)
        origin, rate, seconds = float(command[1]), float(command[2]), float(command[3])
        options = RunOptions(seed=1, start_ms=START_MS, rate=rate / per_chain, duration_ms=round(seconds * 1000),
                             realtime=True, wall_origin=origin)
        sink = Publish()
        simulation = sink.simulation = Simulation(catalog, options, sink)
        cpu = time.process_time()
        hub.due = due_of(simulation)
        try:
            await simulation.run_async()
        finally:
            hub.due = None
        await drained()
        return {"events": len(sink.lateness), "lateness": percentiles(sink.lateness), "clients": hub.clients,
                "cpu_s": time.process_time() - cpu}

    def due_of(simulation: Simulation) -> Any:
        """When the run's next step is due (the generator first: engine/server/hub.py Hub.due)."""
        wall, peek = simulation.wall, simulation.scheduler.peek
        assert wall is not None

        def due() -> float:
            at = peek()
            return float("inf") if at is None else wall.due(at)
        return due

    async def from_lines(command: list[str]) -> dict[str, Any]:
        """The floor's part, through the hub and the stream: FILE's lines on time, no generator."""
        import orjson

        origin, lines = float(command[1]), read_lines(command[2])
        events = [orjson.loads(text) for _, text in lines]
        encoded = [text.encode() + b"\n" for _, text in lines]
        cpu = time.process_time()
        seq = hub.last_seq
        async for index in paced(origin, lines):
            seq += 1
            hub.publish(seq, events[index], encoded[index])
        await drained()
        return {"events": len(lines), "clients": hub.clients, "cpu_s": time.process_time() - cpu}

    async def drained() -> None:
        """Until every client's queue is empty (or a few seconds): the sending is part of the CPU figure."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(c.queue for c in hub._everything):
            await asyncio.sleep(0.005)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(announce_then(handle))
        yield
        task.cancel()

    async def announce_then(handle: Any) -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        print("listening", flush=True)
        await commands(handle)
        server.should_exit = True

    app = Starlette(routes=[WebSocketRoute(PATH, StreamEndpoint(hub))], lifespan=lifespan)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    server.run()


def floor(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    clients: set[ServerConnection] = set()

    async def handler(connection: ServerConnection) -> None:
        clients.add(connection)
        try:
            await connection.wait_closed()
        finally:
            clients.discard(connection)

    async def handle(command: list[str]) -> dict[str, Any]:
        origin, lines = float(command[1]), read_lines(command[2])
        cpu = time.process_time()
        async for index in paced(origin, lines):
            broadcast(clients, lines[index][1])
        deadline = time.monotonic() + 5  # until the transports' buffers are empty: sending is part of the CPU
        while time.monotonic() < deadline and any(c.transport.get_write_buffer_size() for c in clients):
            await asyncio.sleep(0.005)
        return {"events": len(lines), "clients": len(clients), "cpu_s": time.process_time() - cpu}

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, compression=None):
            print("listening", flush=True)
            await commands(handle)

    asyncio.run(main())


if __name__ == "__main__":
    logging.getLogger("asyncio").setLevel(logging.ERROR)  # "socket.send() raised exception." once clients leave
    kind, port_text = sys.argv[1:3]
    {"chainsim": chainsim, "floor": floor}[kind](int(port_text))
