"""The store's figures kept in memory: what `statistics()` answers without reading the table.

Loaded once when a store opens (a few GROUP BY queries on indexes), then moved by each commit and each
retention delete. Both backends get a batch's chain rows and figure changes from here (`plan`), write the
events and chain rows in one transaction, and only then `apply` the changes, so a failed commit changes no
figure.

    events per second   whole seconds of event time: the newest event's second and the 59 (299) before it
    durations           end (the end_chain time) - start (the first event's time) of the last 1,000 finished
                        instances of each chain still stored, in the order they finished (after a reopen: in
                        the order they started); percentiles by nearest rank
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import math
import operator
import threading
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ..envelope.fields import format_timestamp, parse_timestamp
from .query import glob_match

WINDOWS_S = (60, 300)
DURATIONS_KEPT = 1_000
RECENTLY_FINISHED = 100_000  # finished instances remembered, so a late or duplicate event is not a new chain
IN_FLIGHT, FINISHED = "in_flight", "finished"

# A stored event as the writer queues it, and the events table's row: seq, then the envelope fields but the
# payload in FIELDS order (event_id, event_type, correlation_id, causation_id, tenant_id, namespace, timestamp
# as the run wrote it, chain, step), then the line with its newline. The table keeps the timestamp as ms.
StoredEvent = tuple[Any, ...]
_SEQ, _ID, _TYPE, _CID, _CAUSE, _TENANT, _NAMESPACE, _TIMESTAMP, _CHAIN, _STEP, _LINE = map(
    operator.itemgetter, range(11))
_PREFIX, _MILLIS = operator.itemgetter(slice(0, 19)), operator.itemgetter(slice(20, 23))
_DOT, _ZULU = operator.itemgetter(19), operator.itemgetter(23)
_SECOND = (1000).__rfloordiv__  # ts // 1000
_ROW_CID, _ROW_CHAIN, _ROW_START = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(4)


def _pick(values: list[Any], indexes: list[int]) -> list[Any]:
    """values[i] for each i, in C."""
    if len(indexes) == 1:
        return [values[indexes[0]]]
    return list(operator.itemgetter(*indexes)(values)) if indexes else []


class ChainEnd(NamedTuple):
    """A chain instance finished: its outcome and when (ms)."""

    correlation_id: str
    chain: str
    outcome: str
    at: int


class Timestamps:
    """RFC 3339 text to epoch ms, fast for the run's own form (2026-01-01T00:00:00.150Z): seconds cached."""

    __slots__ = ("_seconds",)
    KEPT = 4096  # seconds cached; a batch's timestamps lie within a few seconds of each other

    def __init__(self) -> None:
        self._seconds: dict[str, int] = {}

    def ms(self, text: str) -> int:
        if len(text) == 24 and text[19] == "." and text[23] == "Z":
            prefix = text[:19]
            second = self._seconds.get(prefix)
            if second is None:
                self._make_room(1)
                second = self._seconds[prefix] = _second_of(prefix)
            return second * 1000 + int(text[20:23])
        return parse_timestamp(text)

    def many(self, texts: list[str]) -> list[int]:
        """ms of texts all in the run's own form (checked by the caller): each distinct second parsed once, the
        rest in C."""
        prefixes = list(map(_PREFIX, texts))
        known = self._seconds
        missing = set(prefixes).difference(known)
        if missing:
            if len(known) + len(missing) > self.KEPT:
                known.clear()
                missing = set(prefixes)
            known.update((prefix, _second_of(prefix)) for prefix in missing)
        seconds = map(known.__getitem__, prefixes)
        return list(map(operator.add, map((1000).__mul__, seconds), map(int, map(_MILLIS, texts))))

    def _make_room(self, count: int) -> None:
        if len(self._seconds) + count > self.KEPT:
            self._seconds.clear()


def _second_of(prefix: str) -> int:
    return int(dt.datetime.fromisoformat(prefix).replace(tzinfo=dt.UTC).timestamp())


class Plan(NamedTuple):
    """One batch, ready to write and then to count."""

    rows: Sequence[StoredEvent]  # the batch's events: the rows to insert
    chains: list[list[Any]]  # upserts: correlation_id, chain, tenant_id, first_seq, start, end, count, status, outcome
    ends: list[tuple[int, str, str]]  # updates of chains not in this batch: (end_ms, outcome, correlation_id)
    by_type: collections.Counter[str]
    by_tenant: collections.Counter[str]
    seconds: collections.Counter[int]
    new: list[list[Any]]  # the rows of `chains` that are new instances
    finished: list[tuple[str, str, str, int]]  # correlation_id, chain, outcome, duration
    newest: int | None
    oldest: int | None


class Aggregates:
    """Figures of one store, thread-safe: the writer's thread moves them, any thread reads them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events = 0
        self.chains = 0
        self.by_type: collections.Counter[str] = collections.Counter()
        self.by_tenant: collections.Counter[str] = collections.Counter()
        self.by_chain: collections.Counter[str] = collections.Counter()  # instances
        self.by_outcome: dict[str, collections.Counter[str]] = {}
        self.open: dict[str, int] = {}  # in-flight instances: correlation_id -> start (ms)
        self.recent: dict[str, None] = {}  # recently finished instances, oldest first
        self.durations: dict[str, collections.deque[tuple[str, int]]] = {}  # chain -> (correlation_id, ms)
        self.seconds: collections.Counter[int] = collections.Counter()  # second of event time -> events
        self.newest: int | None = None
        self.oldest: int | None = None
        self.types: set[str] = set()  # every event type seen (a superset: added before commit)
        self.timestamps = Timestamps()

    # ---- a batch
    def plan(self, events: Sequence[StoredEvent], ends: Sequence[ChainEnd]) -> Plan:
        """Changes for one batch (nothing changes until `apply`); called by one thread at a time.

        Column by column with map/zip/Counter, so the per-event work runs in C: this is on the commit thread,
        and every bytecode it runs holds the interpreter lock the generator's thread needs too. Timestamps
        in the run's own form (2026-01-01T00:00:00.150Z) sort as text in time order, so they are compared as
        text and only one per chain instance and per second becomes a number."""
        seqs = list(map(_SEQ, events))
        cids = list(map(_CID, events))
        tenants = list(map(_TENANT, events))
        types = list(map(_TYPE, events))
        texts = list(map(_TIMESTAMP, events))
        ms = self.timestamps.ms
        uniform = bool(texts) and set(map(len, texts)) == {24} and set(map(_ZULU, texts)) == {"Z"} and \
            set(map(_DOT, texts)) == {"."}
        keys: list[Any] = texts if uniform else list(map(ms, texts))
        to_ms: Any = ms if uniform else int
        first_index = dict(zip(reversed(cids), range(len(cids) - 1, -1, -1), strict=True))
        order = sorted(first_index.values())  # each instance's first event in the batch, in arrival order
        ucids = _pick(cids, order)
        if all(map(operator.le, keys, keys[1:])):  # in time order (no late or reordered event): first, last
            start_keys = _pick(keys, order)
            end_keys = list(map(dict(zip(cids, keys, strict=True)).__getitem__, ucids))
        else:
            starts: dict[str, Any] = {}
            ends_at: dict[str, Any] = {}
            for cid, key in zip(cids, keys, strict=True):
                starts[cid] = min(starts.get(cid, key), key)
                ends_at[cid] = max(ends_at.get(cid, key), key)
            start_keys = list(map(starts.__getitem__, ucids))
            end_keys = list(map(ends_at.__getitem__, ucids))
        if uniform:
            start_keys, end_keys = self.timestamps.many(start_keys), self.timestamps.many(end_keys)
        counts = collections.Counter(cids)
        rows = list(map(list, zip(ucids, _pick(list(map(_CHAIN, events)), order), _pick(tenants, order),
                                  _pick(seqs, order), start_keys, end_keys, map(counts.__getitem__, ucids),
                                  itertools.repeat(IN_FLIGHT), itertools.repeat(None))))
        chains = dict(zip(ucids, rows, strict=True))
        open_, recent = self.open, self.recent
        fresh = set(itertools.filterfalse(recent.__contains__, itertools.filterfalse(open_.__contains__, ucids)))
        finished: list[tuple[str, str, str, int]] = []
        updates: list[tuple[int, str, str]] = []
        for end in ends:
            cid = end.correlation_id
            row = chains.get(cid)
            if cid in fresh:
                start = row[4]  # type: ignore[index]
            elif cid in open_:
                start = open_[cid]
            else:
                continue  # finished already, or its events are gone
            if row is not None:
                row[5], row[7], row[8] = end.at, FINISHED, end.outcome
            else:
                updates.append((end.at, end.outcome, cid))
            finished.append((cid, end.chain, end.outcome, end.at - start))
        if uniform:
            seconds = collections.Counter({ms(prefix + ".000Z") // 1000: n
                                           for prefix, n in collections.Counter(map(_PREFIX, texts)).items()})
        else:
            seconds = collections.Counter(map(_SECOND, keys))
        by_type = collections.Counter(types)
        with self.lock:
            self.types.update(by_type)
        return Plan(events, rows, updates, by_type, collections.Counter(tenants), seconds,
                    [row for row in rows if row[0] in fresh], finished, to_ms(max(keys)) if keys else None,
                    to_ms(min(keys)) if keys else None)

    def apply(self, plan: Plan) -> None:
        with self.lock:
            self.events += len(plan.rows)
            self.by_type.update(plan.by_type)
            self.by_tenant.update(plan.by_tenant)
            self.seconds.update(plan.seconds)
            if plan.newest is not None:
                self.newest = plan.newest if self.newest is None else max(self.newest, plan.newest)
                self._prune_seconds()
            if plan.oldest is not None:
                self.oldest = plan.oldest if self.oldest is None else min(self.oldest, plan.oldest)
            self.chains += len(plan.new)
            self.by_chain.update(map(_ROW_CHAIN, plan.new))
            self.open.update(zip(map(_ROW_CID, plan.new), map(_ROW_START, plan.new), strict=True))
            for cid, chain, outcome, duration in plan.finished:
                self.open.pop(cid, None)
                outcomes = self.by_outcome.get(chain)
                if outcomes is None:
                    outcomes = self.by_outcome[chain] = collections.Counter()
                outcomes[outcome] += 1
                self._durations(chain).append((cid, duration))
                self._finished(cid)

    def _durations(self, chain: str) -> collections.deque[tuple[str, int]]:
        kept = self.durations.get(chain)
        if kept is None:
            kept = self.durations[chain] = collections.deque(maxlen=DURATIONS_KEPT)
        return kept

    def _finished(self, cid: str) -> None:
        recent = self.recent
        recent[cid] = None
        if len(recent) > RECENTLY_FINISHED:
            del recent[next(iter(recent))]

    def _prune_seconds(self) -> None:
        assert self.newest is not None
        first = self.newest // 1000 - max(WINDOWS_S) + 1
        if len(self.seconds) > 2 * max(WINDOWS_S):
            for second in [s for s in self.seconds if s < first]:
                del self.seconds[second]

    # ---- loading and retention
    def load(self, events: int, by_type: Iterable[tuple[str, int]], by_tenant: Iterable[tuple[str, int]],
             by_chain: Iterable[tuple[str, int]], by_outcome: Iterable[tuple[str, str, int]],
             open_chains: Iterable[tuple[str, int]], durations: Iterable[tuple[str, str, int]],
             seconds: Iterable[tuple[int, int]], oldest: int | None, newest: int | None) -> None:
        """The figures of a store as its tables have them (durations oldest first)."""
        with self.lock:
            self.events = events
            self.by_type = collections.Counter(dict(by_type))
            self.types = set(self.by_type)
            self.by_tenant = collections.Counter(dict(by_tenant))
            self.by_chain = collections.Counter(dict(by_chain))
            self.chains = sum(self.by_chain.values())
            self.by_outcome = {}
            for chain, outcome, count in by_outcome:
                self.by_outcome.setdefault(chain, collections.Counter())[outcome] = count
            self.open = dict(open_chains)
            self.durations = {}
            for chain, cid, duration in durations:
                self._durations(chain).append((cid, duration))
            self.seconds = collections.Counter(dict(seconds))
            self.oldest, self.newest = oldest, newest

    def remove_events(self, removed: Sequence[tuple[str, str, int]], oldest: int | None, newest: int | None) -> None:
        """Events deleted by retention: (event_type, tenant_id, ts) each; oldest/newest as the table has them now."""
        with self.lock:
            self.events -= len(removed)
            for event_type, tenant, ts in removed:
                _down(self.by_type, event_type)
                _down(self.by_tenant, tenant)
                second = ts // 1000
                if second in self.seconds:
                    _down(self.seconds, second)
            self.oldest, self.newest = oldest, newest

    def remove_chains(self, removed: Sequence[tuple[str, str, str, str | None]]) -> None:
        """Chain instances deleted with their last event: (correlation_id, chain, status, outcome) each."""
        with self.lock:
            gone = {item[0] for item in removed if item[2] == FINISHED}
            for chain, kept in list(self.durations.items()):
                if any(cid in gone for cid, _ in kept):
                    self.durations[chain] = collections.deque(
                        [(cid, ms) for cid, ms in kept if cid not in gone], maxlen=DURATIONS_KEPT)
            for cid, chain, status, outcome in removed:
                self.chains -= 1
                _down(self.by_chain, chain)
                self.open.pop(cid, None)
                if status == FINISHED and outcome is not None and chain in self.by_outcome:
                    _down(self.by_outcome[chain], outcome)
                    if not self.by_outcome[chain]:
                        del self.by_outcome[chain]

    # ---- the answer
    def types_matching(self, pattern: str) -> tuple[list[str], int, int]:
        """The event types a glob matches (sorted), how many stored events have them, how many events in all."""
        with self.lock:
            types = sorted(t for t in self.types if glob_match(pattern, t))
            return types, sum(self.by_type.get(t, 0) for t in types), self.events

    def statistics(self) -> dict[str, Any]:
        with self.lock:
            newest, oldest = self.newest, self.oldest
            rates = {}
            for window in WINDOWS_S:
                if newest is None:
                    rates[f"{window}s"] = 0.0
                    continue
                first = newest // 1000 - window + 1
                rates[f"{window}s"] = sum(n for s, n in self.seconds.items() if s >= first) / window
            durations = {chain: _percentiles([ms for _, ms in kept])
                         for chain, kept in sorted(self.durations.items()) if kept}
            return {
                "events": self.events,
                "chains": self.chains,
                "in_flight": len(self.open),
                "by_event_type": dict(sorted(self.by_type.items())),
                "by_chain": dict(sorted(self.by_chain.items())),
                "by_outcome": {chain: dict(sorted(c.items())) for chain, c in sorted(self.by_outcome.items())},
                "by_tenant": dict(sorted(self.by_tenant.items())),
                "events_per_second": rates,
                "durations_ms": durations,
                "since": None if oldest is None else format_timestamp(oldest),
                "newest": None if newest is None else format_timestamp(newest),
            }


def _down(counter: collections.Counter[Any], key: Any, by: int = 1) -> None:
    left = counter.get(key, 0) - by
    if left > 0:
        counter[key] = left
    else:
        counter.pop(key, None)


def percentile(ordered: Sequence[int], p: float) -> int:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _percentiles(values: list[int]) -> dict[str, int]:
    values.sort()
    return {"count": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99)}
