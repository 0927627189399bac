"""StoreWriter: a run sink that numbers events and commits them to a store in batches, on a thread of its own.

`write` (or `assign`, which also returns the event's seq) runs on the generator's thread for every event,
so it only takes the envelope fields out of the dict (one C call) into a tuple with the next seq and the
line, and appends it to a deque: no JSON parsing, no lock. The commit thread wakes every `every_s` seconds,
or when `batch_rows` events wait, and commits what is queued in transactions of at most `batch_rows` events
(the store inserts the tuples as they are and moves its figures). When more than `max_pending` events wait,
`write` waits for the commit thread (a run in virtual time is faster than any disk).

A commit that fails is kept and raised as StoreError from the next write, flush or close, never lost.
Killed, the writer loses what was queued and not committed; committed batches stay (see sqlite.py).
"""

from __future__ import annotations

import collections
import operator
import threading
from typing import Any

from ..envelope.fields import FIELDS
from ..errors import StoreError
from ..sinks import SinkBase
from . import Store
from .aggregates import ChainEnd

DEFAULT_BATCH_ROWS = 10_000
DEFAULT_EVERY_S = 0.05


class StoreWriter(SinkBase):
    """Writes every event it is given to `store`; `last_assigned` is the seq of the latest one."""

    needs_event = True

    def __init__(self, store: Store, batch_rows: int = DEFAULT_BATCH_ROWS, every_s: float = DEFAULT_EVERY_S,
                 max_pending: int | None = None, close_store: bool = False) -> None:
        if batch_rows < 1 or every_s <= 0:
            raise ValueError("batch_rows is at least 1 and every_s above 0")
        self.store = store
        self.batch_rows, self.every_s = batch_rows, every_s
        self.max_pending = max_pending if max_pending is not None else 20 * batch_rows
        self.close_store = close_store
        self.flush_every = every_s  # the run flushes at most this often; flush_until only wakes the thread
        self.last_assigned = store.last_seq()
        self.committed = self.last_assigned  # the highest seq committed so far
        self._queue: collections.deque[Any] = collections.deque()
        self._append = self._queue.append
        self._fields = operator.itemgetter(*FIELDS[:-1])
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._error: StoreError | None = None
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="chainsim-store-writer", daemon=True)
        self._thread.start()

    # ---- the generator's thread
    def write(self, event: dict[str, Any], line: bytes) -> None:
        self.assign(event, line)

    def assign(self, event: dict[str, Any], line: bytes) -> int:
        """`write`, returning the seq given to the event (what the server broadcasts it with)."""
        if self._error is not None:
            self._raise()
        seq = self.last_assigned = self.last_assigned + 1
        self._append((seq, *self._fields(event), line))
        if not seq % self.batch_rows:
            self._full()
        return seq

    def end_chain(self, correlation_id: str, chain: str, outcome: str, at: int) -> None:
        """A chain instance finished at `at` (ms) with `outcome`: committed after its events."""
        if self._error is not None:
            self._raise()
        self._append(ChainEnd(correlation_id, chain, outcome, at))

    def _full(self) -> None:
        self._wake.set()
        if len(self._queue) > self.max_pending:
            with self._progress:
                while len(self._queue) > self.max_pending and self._error is None and self._thread.is_alive():
                    self._progress.wait(0.1)

    def flush_until(self, at: int) -> None:
        if self._error is not None:
            self._raise()
        self._wake.set()

    def flush(self) -> None:
        """Wait until everything written so far is committed."""
        if self._closed:
            return
        if self._error is not None:
            self._raise()
        done = threading.Event()
        self._append(done)
        self._wake.set()
        while not done.wait(0.5):
            if not self._thread.is_alive():
                break
        if self._error is not None:
            self._raise()

    def close(self) -> None:
        """Commit everything, stop the thread (and close the store if this writer owns it)."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._wake.set()
        self._thread.join()
        try:
            if self._error is not None:
                self._raise()
        finally:
            if self._error is None:
                self._error = StoreError("the store writer is closed: it takes no more events")
            if self.close_store:
                self.store.close()

    def _raise(self) -> None:
        assert self._error is not None
        raise StoreError(self._error.message, self._error.hint)

    # ---- the commit thread
    def _run(self) -> None:
        while True:
            self._wake.wait(self.every_s)
            self._wake.clear()
            closing = self._closing
            self._commit_queued()
            with self._progress:
                self._progress.notify_all()
            if closing and not self._queue:
                return

    def _commit_queued(self) -> None:
        queue, take = self._queue, self._queue.popleft
        events: list[Any] = []
        ends: list[ChainEnd] = []
        for _ in range(len(queue)):
            item = take()
            kind = type(item)
            if kind is tuple:
                events.append(item)
                if len(events) >= self.batch_rows:
                    self._commit(events, ends)
                    events, ends = [], []
            elif kind is ChainEnd:
                ends.append(item)
            else:  # a flush's event: everything before it is committed first
                self._commit(events, ends)
                events, ends = [], []
                item.set()
        self._commit(events, ends)

    def _commit(self, events: list[Any], ends: list[ChainEnd]) -> None:
        if self._error is not None or (not events and not ends):
            return
        try:
            self.store.commit(events, ends)
        except StoreError as error:
            self._error = error
        except Exception as error:  # a bug or a driver's own error: kept, raised on the generator's thread
            self._error = StoreError(f"cannot commit to the store: {type(error).__name__}: {error}")
        else:
            if events:
                self.committed = events[-1][0]
