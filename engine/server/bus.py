"""`EventBus`: what one server holds, wired together: the catalog, the store and its writer, the hub of stream
clients, the generator, the extra sinks and the retention task. `engine/server/app.py` serves it over HTTP.

Every event the generator makes goes, on the event loop's thread, to the writer (which numbers it and commits it
in batches on its own thread) and to the hub (which queues it for each stream client); then to the extra sinks
(Kafka in automatic mode). Nothing here is process-wide: two buses can run in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs

from ..errors import RunError
from ..load.catalog import Catalog
from ..run.live import LiveGenerator
from ..sinks import Sink, SinkBase
from ..store import Store
from ..store.writer import StoreWriter
from .hub import Hub

log = logging.getLogger("chainsim.server")

DEFAULT_RETAIN = 1_000_000  # events kept by default; the oldest beyond are deleted in the background
RETAIN_EVERY_S = 5.0  # how often retention looks


@attrs.frozen
class Retention:
    """What the store keeps: at most `events` events (None: no bound) and none older than `for_ms` before the
    newest one (None: no bound)."""

    events: int | None = DEFAULT_RETAIN
    for_ms: int | None = None
    every_s: float = RETAIN_EVERY_S


class _BusSink(SinkBase):
    """The generator's events into the writer (which gives each its seq) and the hub."""

    def __init__(self, writer: StoreWriter, hub: Hub) -> None:
        self._assign, self._publish = writer.assign, hub.publish
        self._end = writer.end_chain

    def write(self, event: dict[str, Any], line: bytes) -> None:
        self._publish(self._assign(event, line), event, line)

    def end_chain(self, correlation_id: str, chain: str, outcome: str, at: int) -> None:
        self._end(correlation_id, chain, outcome, at)


class Guarded(SinkBase):
    """An extra sink (Kafka in automatic mode) whose failures are counted and logged, never fatal: the server
    goes on serving and storing when a broker goes away."""

    def __init__(self, sink: Sink, name: str) -> None:
        self.sink, self.name = sink, name
        self.needs_event, self.flush_every = sink.needs_event, sink.flush_every
        self.failures = 0

    def _guard(self, call: Any, *args: Any) -> None:
        try:
            call(*args)
        except (RunError, OSError) as error:
            self.failures += 1
            if self.failures == 1 or self.failures % 10_000 == 0:
                log.warning("%s: %s (%d failures so far; the server goes on)", self.name, error, self.failures)

    def write(self, event: dict[str, Any], line: bytes) -> None:
        self._guard(self.sink.write, event, line)

    def flush(self) -> None:
        self._guard(self.sink.flush)

    def flush_until(self, at: int) -> None:
        self._guard(self.sink.flush_until, at)

    def close(self) -> None:
        self._guard(self.sink.close)


class EventBus:
    """A catalog generated into a store and a hub. `generator_settings` are start()'s keyword arguments for the
    run begun when the bus starts (None: generate nothing, serve what is stored)."""

    def __init__(self, catalog: Catalog, store: Store, *, store_spec: str = "memory", hub: Hub | None = None,
                 extra_sinks: Sequence[Sink] = (), scenario: str | None = None, seed: int | None = None,
                 speed: float | None = None, only: tuple[str, ...] = (),
                 generator_settings: dict[str, Any] | None = None, retention: Retention = Retention(),
                 token: str | None = None, cors: Sequence[str] = ()) -> None:
        self.catalog, self.store, self.store_spec = catalog, store, store_spec
        self.hub = hub or Hub()
        self.writer = StoreWriter(store)
        self.extra_sinks = [Guarded(sink, f"sink {index + 1}") for index, sink in enumerate(extra_sinks)]
        bus_sink = _BusSink(self.writer, self.hub)
        from ..sinks.fanout import fan_out

        self.generator = LiveGenerator(catalog, sink=fan_out([bus_sink, *self.extra_sinks]), scenario=scenario,
                                       seed=seed, speed=speed, only=only)
        self.hub.due = self.generator.next_due  # the stream's senders let the generator's due steps go first
        self.generator_settings = generator_settings
        self.retention, self.token, self.cors = retention, token, tuple(cors)
        self._retaining: asyncio.Task[None] | None = None
        self.catalog_json: bytes | None = None  # GET /catalog's answer, made on first use
        self.started = False

    async def start(self) -> None:
        """Begin serving: the retention task, and the generator if it has settings."""
        if self.started:
            return
        self.started = True
        if self.retention.events is not None or self.retention.for_ms is not None:
            self._retaining = asyncio.get_running_loop().create_task(self._retain())
        if self.generator_settings is not None:
            await self.generator.start(**self.generator_settings)

    async def stop(self) -> None:
        """Stop generating, close every stream client, commit what is queued and close the store and sinks."""
        if not self.started:
            return
        self.started = False
        failure: BaseException | None = None
        try:
            await self.generator.stop()
        except Exception as error:  # a template that failed on the way: reported, after everything is closed
            failure = error
        if self._retaining is not None:
            self._retaining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retaining
        await self.hub.close()
        for sink in self.extra_sinks:
            sink.close()
        await asyncio.to_thread(self.writer.close)
        self.store.close()
        if failure is not None:
            raise failure

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """`async with bus.running():` in the lifespan of an app that mounts `bus` (see engine/server/app.py); it
        yields nothing, so that `lifespan=lambda app: bus.running()` gives Starlette no state."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def _retain(self) -> None:
        retention = self.retention
        while True:
            await asyncio.sleep(retention.every_s)
            try:
                await asyncio.to_thread(self.store.retain, retention.events, retention.for_ms)
            except RunError as error:
                print(f"chainsim: retention: {error}", file=sys.stderr)
