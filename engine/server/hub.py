"""The hub: hands every event the server generates to each connected stream client, without ever waiting for one.

It lives on the event loop's thread. `publish(seq, event, line)` is called for every event, in order: it decodes
the line once, builds the one WebSocket message every client shares, and appends it to the bounded queue of each
client whose filter matches (clients without a filter skip matching; clients with the same filter share one
match). Each client's sender task (engine/server/stream.py) drains its queue; the senders with something to
send are woken LINGER (1 ms) after the first event since the last wake-up, so that at high rates each wakes
for several events. A queue that is full loses its oldest message: the client is told how many with a control message
`{"control": "dropped", "count": N}` before the next event it gets; a client that has lost more than `drop_limit`
messages in all (default ten times its queue) is closed with code 4008.

The hub also keeps a ring of the last `ring` events (seq, the fields filters look at, the message), so a client
that asks for `since` can go on from the store to the live queue with no gap and no repeat.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..store.query import glob_regex, is_glob

CLIENT_QUEUE, MAX_CLIENTS, RING = 1000, 256, 10_000
TURN = 0.002  # seconds the senders (all together) send before they let timers that fell due run (the generator)
LINGER = 0.001  # seconds between an event and the wake-up of its senders: at high rates each wakes for several
PARK_MAX = 0.005  # seconds the senders wait at most for a generator that is behind, before they get a turn
DROP_LIMIT_TIMES = 10  # a client that lost more than this many times its queue in all is closed
SLOW = 4008  # close code: the client reads too slowly (lost more than drop_limit messages)
TRY_AGAIN_LATER = 1013  # close code: max clients reached
GOING_AWAY = 1001  # close code: the server shuts down
SHUTTING_DOWN = "server shutting down"

FILTERED = ("event_type", "chain", "correlation_id", "tenant_id", "namespace")  # the fields a stream filters on

Message = dict[str, Any]  # an ASGI `websocket.send` message: {"type": "websocket.send", "text": ...}
Fields = tuple[str, str, str, str, str]  # an event's FILTERED values, in that order
Entry = tuple[int, Fields, Message]  # a ring entry: seq, fields, message


def message(text: str) -> Message:
    return {"type": "websocket.send", "text": text}


def dropped_message(count: int) -> Message:
    return message(f'{{"control":"dropped","count":{count}}}')


@attrs.frozen
class Filter:
    """What a client asked for: each field None (any) or a value; `event_type` may be a glob (* ? [...])."""

    event_type: str | None = None
    chain: str | None = None
    correlation_id: str | None = None
    tenant_id: str | None = None
    namespace: str | None = None

    @classmethod
    def of(cls, query: Any) -> Filter:
        """The filter of an EventQuery (or anything with those attributes; missing ones mean any)."""
        return cls(*(getattr(query, name, None) for name in FILTERED))

    @property
    def everything(self) -> bool:
        return all(getattr(self, name) is None for name in FILTERED)

    def matcher(self) -> Callable[[Fields], bool]:
        """A function of an event's fields: True when this filter lets it through. Compiled once per filter."""
        tests: list[Callable[[Fields], bool]] = []
        for index, name in enumerate(FILTERED):
            value = getattr(self, name)
            if value is None:
                continue
            if name == "event_type" and is_glob(value):
                tests.append(_glob_test(index, value))
            else:
                tests.append(_equal_test(index, value))
        if len(tests) == 1:
            return tests[0]
        return lambda fields: all(test(fields) for test in tests)


class HubFull(Exception):
    """No room for another client (max_clients), or the hub is closed."""


class Client:
    """One stream client's side of the hub: its bounded queue, what it lost, its wake-up and close requests."""

    __slots__ = ("filter", "queue", "waiter", "stop", "dropped", "dropped_total", "closing", "catching_up", "done")

    def __init__(self, filter: Filter, size: int) -> None:
        self.filter = filter
        self.queue: collections.deque[tuple[int, Message]] = collections.deque(maxlen=size)
        self.waiter: asyncio.Future[None] | None = None  # the sender's while it waits: resolved by wake()
        self.stop = asyncio.Event()  # set when the client must close (its sender may be waiting on a full socket)
        self.dropped = 0  # lost since the last "dropped" control message
        self.dropped_total = 0
        self.closing: tuple[int, str] | None = None  # (code, reason) once the hub wants this client closed
        self.catching_up = False  # True while it sends its `since` backlog: the ring fills what the queue loses
        self.done = asyncio.Event()  # set by the stream handler when the connection is finished

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)
        self.wake()
        self.stop.set()


class _Group:
    """The clients that share one filter, and that filter's match function."""

    __slots__ = ("matches", "clients")

    def __init__(self, matches: Callable[[Fields], bool]) -> None:
        self.matches = matches
        self.clients: list[Client] = []


class Hub:
    """Every connected stream client, and the ring of recent events; see the module's docstring."""

    def __init__(self, client_queue: int = CLIENT_QUEUE, max_clients: int = MAX_CLIENTS, ring: int = RING,
                 drop_limit: int | None = None) -> None:
        if client_queue < 1 or max_clients < 0 or ring < 0:
            raise ValueError("client_queue must be at least 1, max_clients and ring at least 0")
        self.client_queue, self.max_clients = client_queue, max_clients
        self.drop_limit = DROP_LIMIT_TIMES * client_queue if drop_limit is None else drop_limit
        self.ring: collections.deque[Entry] = collections.deque(maxlen=ring)
        self.last_seq = 0  # the seq of the last event published
        self.published = 0
        self.closed = False
        self._everything: list[Client] = []  # clients without a filter
        self._groups: dict[Filter, _Group] = {}
        self._count = 0
        # The generator comes first (engine/server/stream.py). `due`, set by whoever runs the generator on this
        # loop (and set back to None when the run ends), says when its next step is due (time.monotonic(); inf
        # when nothing is): while a step is due the senders wait (at most PARK_MAX at a time). Without `due`, the
        # senders share turns of the loop: they send until turn_end, then let due timers run first.
        self.due: Callable[[], float] | None = None
        self.turn_end = 0.0
        self.parking = False
        self._parked_at = 0.0
        self._waking = False  # a wake-up of the senders is due (LINGER after an event)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def clients(self) -> int:
        return self._count

    def subscribe(self, filter: Filter) -> Client:
        """A new client, receiving from the next event published on. HubFull when max_clients are connected or
        the hub is closed."""
        if self.closed:
            raise HubFull(SHUTTING_DOWN)
        if self._count >= self.max_clients:
            raise HubFull(f"too many clients: this server takes at most {self.max_clients} (--max-clients)")
        client = Client(filter, self.client_queue)
        if filter.everything:
            self._everything.append(client)
        else:
            group = self._groups.get(filter)
            if group is None:
                group = self._groups[filter] = _Group(filter.matcher())
            group.clients.append(client)
        self._count += 1
        return client

    def unsubscribe(self, client: Client) -> None:
        """Forget the client (its slot is free again); idempotent."""
        filter = client.filter
        clients = self._everything if filter.everything else getattr(self._groups.get(filter), "clients", [])
        if client in clients:
            clients.remove(client)
            self._count -= 1
            if not clients and not filter.everything:
                del self._groups[filter]

    def publish(self, seq: int, event: dict[str, Any], line: bytes) -> None:
        """One event (seq increasing) to every matching client's queue; never waits. `event` is not kept."""
        sent = message(line[:-1].decode() if line.endswith(b"\n") else line.decode())
        fields: Fields = (event["event_type"], event["chain"], event["correlation_id"], event["tenant_id"],
                          event["namespace"])
        self.last_seq = seq
        self.published += 1
        self.ring.append((seq, fields, sent))
        item = (seq, sent)
        if self._everything:
            self._deliver(self._everything, item)
        for group in self._groups.values():
            if group.matches(fields):
                self._deliver(group.clients, item)
        if self._count and not self._waking and not self.parking:  # senders wake LINGER after the first event
            self._waking = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_later(LINGER, self._wake_senders)

    def _wake_senders(self) -> None:
        """Wake every sender that waits with something in its queue (unless the generator goes first: then
        _look wakes them once it is done)."""
        self._waking = False
        if self.parking:
            return
        for client in self._all():
            if client.queue and client.waiter is not None:
                client.wake()

    def _deliver(self, clients: list[Client], item: tuple[int, Message]) -> None:
        for client in clients:
            queue = client.queue
            if len(queue) == queue.maxlen and not client.catching_up:
                client.dropped += 1
                client.dropped_total += 1
                if client.dropped_total > self.drop_limit and client.closing is None:
                    client.close(SLOW, f"too slow: lost more than {self.drop_limit} messages (the queue holds "
                                       f"{queue.maxlen})")
            queue.append(item)

    def recent(self, after: int, filter: Filter) -> tuple[int, list[tuple[int, Message]]]:
        """The ring's events with seq > after that the filter lets through, and the first seq the ring still
        holds (last_seq + 1 when empty): events between `after` and that seq are no longer in the ring."""
        first = self.ring[0][0] if self.ring else self.last_seq + 1
        matches = None if filter.everything else filter.matcher()
        found = [(seq, sent) for seq, fields, sent in _after(self.ring, after)
                 if matches is None or matches(fields)]
        return first, found

    def park(self) -> None:
        """A sender found the generator due: the senders wait (publish wakes none of them) until it has nothing
        due any more, or for PARK_MAX, then every sender with something to send is woken and they have a turn."""
        if not self.parking:
            self.parking = True
            self._parked_at = time.monotonic()
            loop = asyncio.get_running_loop()
            loop.call_later(0, self._look, loop)

    def _look(self, loop: asyncio.AbstractEventLoop) -> None:
        due, now = self.due, time.monotonic()
        if due is not None and due() <= now and now - self._parked_at < PARK_MAX:
            loop.call_later(0, self._look, loop)  # a timer: the generator's, due earlier, runs first
            return
        self.parking = False
        self.turn_end = now + TURN  # the senders have at least a turn, even if the generator is due again
        for client in self._all():
            if client.queue or client.closing is not None:
                client.wake()

    def _all(self) -> list[Client]:
        return [*self._everything, *(client for group in self._groups.values() for client in group.clients)]

    def remove(self, client: Client) -> None:
        """The stream handler is done with this client: free its slot and let close() know."""
        self.unsubscribe(client)
        client.done.set()

    async def close(self, code: int = GOING_AWAY, reason: str = SHUTTING_DOWN, timeout: float = 5.0) -> None:
        """Close every client with `code` (default 1001 "server shutting down") and wait up to `timeout` seconds
        for their handlers to finish; refuse new clients from now on. Call it before uvicorn's own shutdown
        (which would close them with 1012)."""
        self.closed = True
        clients = self._all()
        for client in clients:
            client.close(code, reason)
        if clients:
            await asyncio.wait([asyncio.ensure_future(client.done.wait()) for client in clients], timeout=timeout)


def _glob_test(index: int, pattern: str) -> Callable[[Fields], bool]:
    """What SQLite's GLOB answers (the store's filter), compiled once."""
    match = re.compile(glob_regex(pattern), re.DOTALL).match
    return lambda fields: match(fields[index]) is not None


def _equal_test(index: int, value: str) -> Callable[[Fields], bool]:
    return lambda fields: fields[index] == value


def _after(ring: collections.deque[Entry], after: int) -> Iterable[Entry]:
    """The ring's entries with seq > after: seqs increase, so look from the end."""
    start = len(ring)
    while start > 0 and ring[start - 1][0] > after:
        start -= 1
    for index in range(start, len(ring)):
        yield ring[index]
