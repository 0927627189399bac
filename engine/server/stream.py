"""The WebSocket stream, `/api/event-bus/stream`: one JSON event per text message, as the server generates them.

    WebSocketRoute("/api/event-bus/stream", StreamEndpoint(hub, store))

Filters are those of `/events` (event_type exact or a glob, chain, correlation_id, tenant_id, namespace); a bad
one is refused before the handshake with a 400 and the API's JSON error body. `?since=CURSOR` (a cursor from
/events' next_cursor, or an event_id) first sends the stored events after it (from the store, in pages), then
the hub's ring past the last one sent, then live events: the client is subscribed to the hub before the store is
read and every message is deduplicated by seq, so there is no gap and no repeat.

Each connection has two tasks: a sender that drains the client's queue (engine/server/hub.py) each time it is
woken, and a listener that reads what the client sends (ignored) so pongs are read and a disconnect is seen.
The generator comes first. The senders take turns of the event loop (TURN, all of them together); when a
turn is over and the hub knows the generator has a step due (`Hub.due`), they all wait (publish wakes none
of them) until it has caught up, or for at most PARK_MAX, then get the next turn; otherwise they hand the
loop back through a timer, so timers that fell due meanwhile run first. So clients never make a run late by
much more than a turn, however many there are and however fast events come.
Control messages have a top-level "control" key, which events never have. Close codes: 1013 when the server
has max_clients already (the reason names the limit), 4008 for a client that lost too many messages, 1001 when
the server shuts down (`await hub.close()` before uvicorn's own shutdown). Ping/pong is uvicorn's
(ws_ping_interval / ws_ping_timeout): a client that stops answering is closed by uvicorn and its slot freed here.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from starlette.datastructures import QueryParams

from ..errors import RequestError
from ..store.query import decode_cursor
from .hub import GOING_AWAY, TRY_AGAIN_LATER, TURN, Client, Filter, Hub, HubFull, dropped_message, message
from .params import event_filters, stream_since

PAGE = 500  # stored events asked for at a time while catching up
CATCH_UP_ROUNDS = 20  # store + ring rounds before a client that cannot catch up is sent live (told what it lost)
COMMIT_WAIT = 0.05  # seconds between two rounds: the store's writer commits this often (engine/store/writer.py)
CLOSE_WAIT = 10.0  # seconds a close frame may wait behind a client that reads nothing (uvicorn's close timeout)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class EventSource(Protocol):
    """What the stream needs of the store (engine/store): sync calls, run in a thread."""

    def events_after(self, seq: int, query: Any, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` stored events with seq > `seq` that `query` lets through, ascending: (seq, line text
        without the newline)."""
        ...

    def seq_of(self, event_id: str) -> int | None:
        """The seq of a stored event, None if it is not stored."""
        ...

    def last_seq(self) -> int:
        """The highest committed seq (0 when empty)."""
        ...


class StreamEndpoint:
    """The ASGI app of one WebSocket route (engine/server/params.py reads its parameters). `store` may be None:
    then `since` is refused."""

    def __init__(self, hub: Hub, store: EventSource | None = None) -> None:
        self.hub, self.store = hub, store

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        if (await receive())["type"] != "websocket.connect":
            return
        params = QueryParams(scope.get("query_string", b""))
        try:
            query = event_filters(params, stream=True)
            since = stream_since(params)
            after = None if since is None else await self._since_seq(since)
        except RequestError as error:
            await _refuse(scope, send, error)
            return
        try:
            client = self.hub.subscribe(Filter.of(query))
        except HubFull as full:
            await send({"type": "websocket.accept"})
            code = GOING_AWAY if self.hub.closed else TRY_AGAIN_LATER
            await send({"type": "websocket.close", "code": code, "reason": str(full)[:120]})
            return
        try:
            await send({"type": "websocket.accept"})
            await self._serve(client, query, after, receive, send)
        except OSError:  # uvicorn's ClientDisconnected: the client went away while we sent
            pass
        finally:
            self.hub.remove(client)

    async def _since_seq(self, since: str) -> int:
        if self.store is None:
            raise RequestError("since", "this server keeps no store to replay from", "no since")
        if _UUID.fullmatch(since):
            seq = await asyncio.to_thread(self.store.seq_of, since.lower())
            if seq is None:
                raise RequestError("since", "no stored event has this event_id", "a cursor or a stored event_id")
            return seq
        try:
            return decode_cursor(since).seq
        except ValueError:
            raise RequestError("since", "not a cursor or an event_id",
                               "the next_cursor of an /events page, or an event_id") from None

    async def _serve(self, client: Client, query: Any, after: int | None, receive: Receive, send: Send) -> None:
        sender = asyncio.create_task(self._send(client, query, after, send))
        listener = asyncio.create_task(_listen(receive))
        stop = asyncio.create_task(client.stop.wait())
        try:
            done, _ = await asyncio.wait({sender, listener, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, stop):
                task.cancel()
        if listener in done:
            return  # the client is gone
        if sender in done and not sender.cancelled() and sender.exception() is not None:
            listener.cancel()
            raise sender.exception()  # type: ignore[misc]
        code, reason = client.closing or (1000, "")
        try:
            await asyncio.wait_for(send({"type": "websocket.close", "code": code, "reason": reason}), CLOSE_WAIT)
        except TimeoutError:
            pass  # it reads nothing: uvicorn closes the transport when this handler returns
        finally:
            listener.cancel()

    async def _send(self, client: Client, query: Any, after: int | None, send: Send) -> None:
        last = 0 if after is None else await self._catch_up(client, query, after, send)
        queue, hub = client.queue, self.hub
        monotonic, loop = time.monotonic, asyncio.get_running_loop()
        while client.closing is None:
            if not queue or hub.parking:  # nothing to send, or the generator goes first: until woken
                client.waiter = waiter = loop.create_future()
                await waiter
                continue
            now = monotonic()
            if now > hub.turn_end:  # the senders' turn is over (see Hub.due and Hub.turn_end)
                due = hub.due
                if due is not None and due() <= now:
                    hub.park()  # the generator has a step due: it goes first
                    continue
                if now > hub.turn_end + TURN:  # the senders were idle meanwhile: others had the loop
                    hub.turn_end = now + TURN
                else:
                    await _after_due_timers(loop)
                    now = monotonic()
                    if now > hub.turn_end:
                        hub.turn_end = now + TURN
                    continue
            if client.dropped:
                count, client.dropped = client.dropped, 0
                await send(dropped_message(count))
            seq, item = queue.popleft()
            if seq > last:
                last = seq
                await send(item)

    async def _catch_up(self, client: Client, query: Any, after: int, send: Send) -> int:
        """Send the stored events after `after`, then the ring's, until what is left is in the queue; the seq of
        the last one sent. While it runs, what the queue loses is not counted: the ring and the store have it.
        When the ring has moved past what the store had committed (or past what this client had looked at),
        the store is asked again; after CATCH_UP_ROUNDS the client goes live, told how many it may have lost."""
        assert self.store is not None
        store, hub, last, examined = self.store, self.hub, after, after
        client.catching_up = True
        try:
            for _ in range(CATCH_UP_ROUNDS):
                covered = await asyncio.to_thread(store.last_seq)
                while True:
                    page = await asyncio.to_thread(store.events_after, last, query, PAGE)
                    for seq, text in page:
                        if seq > last:
                            await send(message(text))
                            last = seq
                    if len(page) < PAGE:
                        break
                examined = max(covered, last)  # every seq up to here was looked at (the store's, then the ring's)
                while True:
                    first, recent = hub.recent(last, client.filter)
                    if first > examined + 1:
                        break  # a hole between what was looked at and the ring: the store has it (or will)
                    if not recent:
                        return last  # no await since this look at the ring: the queue holds all that follows
                    examined = hub.last_seq
                    for seq, item in recent:
                        await send(item)
                        last = seq
                await asyncio.sleep(COMMIT_WAIT)
            first, recent = hub.recent(last, client.filter)
            if first > examined + 1:
                await send(dropped_message(first - examined - 1))  # at most that many: some may not match
            while recent:
                for seq, item in recent:
                    await send(item)
                    last = seq
                first, recent = hub.recent(last, client.filter)
            return last
        finally:
            client.catching_up = False
            client.dropped = 0


async def _after_due_timers(loop: asyncio.AbstractEventLoop) -> None:
    """Hand the loop back through a timer, not sleep(0): the loop runs timers in the order they fell due, so the
    generator's, due earlier, runs before this one (sleep(0) would run again before any timer)."""
    waiter = loop.create_future()
    handle = loop.call_later(0, _resolve, waiter)
    try:
        await waiter
    finally:
        handle.cancel()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _listen(receive: Receive) -> None:
    """Read until the client disconnects: what it sends is ignored (reading keeps pongs and closes flowing)."""
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def _refuse(scope: dict[str, Any], send: Send, error: RequestError) -> None:
    """A bad request: its status (400) with the API's error body before the handshake (or a 1008 close
    without the denial-response extension)."""
    body = orjson.dumps(error.body())
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": error.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1008, "reason": body.decode()[:120]})
