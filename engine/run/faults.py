"""Faults that real consumers see, between a run's events and its sink: duplicates, reordering, drops, late
events, stuck chains, orphans and schema drift.

Each fault applies to the events of some chains and event types (globs) at a rate. Whether it hits an event
is decided by a hash of the run's seed, the fault's place in the list and the event's id, so it is the same
in every run of the same files, seed and start, whatever else runs, and in every `--workers` worker. What a
hit does (how late, which field) draws from a random stream seeded by the same hash. A held event is
delivered by the scheduler at its later time, at its chain instance's rank, so the stream stays the same
byte for byte across workers.

    duplicate   the event, same event_id, delivered again within `window` (default 1s)
    reorder     held back within `window` (default 100ms), so later events overtake it
    drop        never delivered; the chain goes on
    late        delivered `window` (default 30s) after its time, after events with later timestamps
    stuck       the chain stops after this event and never finishes (it stays in flight)
    orphan      its causation_id names an event that was never emitted
    drift       a payload field missing, renamed (name_v2) or of the wrong type
"""

from __future__ import annotations

import collections
import fnmatch
import hashlib
import json
from collections.abc import Callable, Sequence
from random import Random
from typing import Any

import attrs

from ..envelope.fields import new_uuid
from ..load.delays import parse_duration
from .scheduler import Scheduler

KINDS = ("duplicate", "reorder", "drop", "late", "stuck", "orphan", "drift")
DEFAULT_WINDOW_MS = {"duplicate": 1000.0, "reorder": 100.0, "late": 30_000.0}
DRIFTS = ("missing", "renamed", "wrong_type")
_SCALE = float(2**64)


@attrs.frozen
class Fault:
    """One kind of fault, at a rate, for the events it applies to."""

    kind: str
    rate: float
    chains: tuple[str, ...] = ()  # globs; empty: every chain
    event_types: tuple[str, ...] = ()  # globs; empty: every type
    window_ms: float = 0.0
    drift: str = ""  # drift: missing | renamed | wrong_type; "": any of them
    field: str = ""  # drift: the payload field; "": one of the payload's

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """From a schema-valid `faults:` item."""
        kind = data["kind"]
        window = parse_duration(data["window"]) if "window" in data else DEFAULT_WINDOW_MS.get(kind, 0.0)
        return cls(kind, float(data["rate"]), tuple(data.get("chains", ())), tuple(data.get("event_types", ())),
                   window, data.get("drift", ""), data.get("field", ""))

    def applies(self, chain: str, event_type: str) -> bool:
        return (not self.chains or any(fnmatch.fnmatchcase(chain, g) for g in self.chains)) and \
            (not self.event_types or any(fnmatch.fnmatchcase(event_type, g) for g in self.event_types))


class Delivery:
    """A held event, written when the scheduler reaches its time."""

    __slots__ = ("event", "line", "write")

    def __init__(self, event: dict[str, Any], line: bytes, write: Callable[[dict[str, Any], bytes], None]) -> None:
        self.event, self.line, self.write = event, line, write

    def resume(self, now: int) -> int | None:
        self.write(self.event, self.line)
        return None


class Faults:
    """The faults of one run, between its emit and its sink; counts what it injected in `counts`."""

    def __init__(self, faults: Sequence[Fault], seed: int, scheduler: Scheduler,
                 write: Callable[[dict[str, Any], bytes], None], encode: Callable[[dict[str, Any]], bytes]) -> None:
        self.faults = list(faults)
        self.seed, self.scheduler, self.write, self.encode = seed, scheduler, write, encode
        self.counts: collections.Counter[str] = collections.Counter()
        self._applicable: dict[tuple[str, str], list[tuple[int, Fault]]] = {}

    def deliver(self, event: dict[str, Any], line: bytes) -> bool:
        """Write the event (or not, or later, or twice) as the faults say; True if its chain is stuck here."""
        key = (event["chain"], event["event_type"])
        applicable = self._applicable.get(key)
        if applicable is None:
            applicable = self._applicable[key] = [(i, f) for i, f in enumerate(self.faults) if f.applies(*key)]
        hits = [(fault, digest) for index, fault in applicable
                if fault.rate > 0 and (digest := self._digest(index, event["event_id"]))[0] < fault.rate]
        if not hits:
            self.write(event, line)
            return False
        return self._inject(event, line, hits)

    def _digest(self, index: int, event_id: str) -> tuple[float, bytes]:
        raw = hashlib.blake2b(f"{self.seed}:{index}:{event_id}".encode(), digest_size=16).digest()
        return int.from_bytes(raw[:8], "little") / _SCALE, raw

    def _inject(self, event: dict[str, Any], line: bytes, hits: list[tuple[Fault, tuple[float, bytes]]]) -> bool:
        changed, stuck, held_ms, dropped, duplicate_ms = False, False, 0.0, False, -1.0
        for fault, (_, raw) in hits:
            rng = Random(raw)
            kind = fault.kind
            self.counts[kind] += 1
            if kind == "drop":
                dropped = True
            elif kind == "stuck":
                stuck = True
            elif kind == "orphan":
                event = {**event, "causation_id": new_uuid(rng)}
                changed = True
            elif kind == "drift":
                drifted = _drift(event, fault, rng)
                changed = changed or drifted is not event
                event = drifted
            elif kind == "duplicate":
                duplicate_ms = max(1.0, rng.random() * fault.window_ms)
            elif kind == "reorder":
                held_ms = max(held_ms, 1.0, rng.random() * fault.window_ms)
            else:  # late
                held_ms = max(held_ms, fault.window_ms)
        if dropped:
            return stuck
        if changed:
            line = self.encode(event)
        now, rank = self.scheduler.now, self.scheduler.rank
        if held_ms:
            self.scheduler.schedule(now + round(held_ms), Delivery(event, line, self.write), rank=rank)
        else:
            self.write(event, line)
        if duplicate_ms >= 0:
            self.scheduler.schedule(now + round(held_ms + duplicate_ms), Delivery(event, line, self.write), rank=rank)
        return stuck


def _drift(event: dict[str, Any], fault: Fault, rng: Random) -> dict[str, Any]:
    """The event with one payload field missing, renamed or of another type (the event itself if it has none)."""
    payload = event.get("payload")
    if not isinstance(payload, dict) or not payload:
        return event
    field = fault.field if fault.field else rng.choice(sorted(payload))
    if field not in payload:
        return event
    drift = fault.drift or rng.choice(DRIFTS)
    changed = dict(payload)
    value = changed.pop(field)
    if drift == "renamed":
        changed[f"{field}_v2"] = value
    elif drift == "wrong_type":
        changed[field] = _other_type(value)
    return {**event, "payload": changed}


def _other_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return [value]
    if value is None:
        return 0
    return json.dumps(value, sort_keys=True)
