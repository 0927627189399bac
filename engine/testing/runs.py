"""The events of a run as a test reads them: grouped by chain instance, with what the run knew (which
instances finished, and with what outcome), and assertions that say what went wrong in a sentence.

    events = chainsim.run(count=500)
    assert_every_chain_finished(events)
    assert_causation_chains(events)
    assert_outcome_mix(events, "agent_execution", {"completed": 0.9, "failed": 0.1})
    assert_followed_by(events, "omninode.agent.execution.started.v1", "omninode.agent.execution.*", within_ms=2000)
"""

from __future__ import annotations

import collections
import fnmatch
import math
from collections.abc import Iterable
from typing import Any

import attrs

from ..envelope.fields import parse_timestamp


@attrs.frozen
class ChainRun:
    """One chain instance: its events in the order they were written, and how it ended (if it did)."""

    correlation_id: str
    chain: str
    events: tuple[dict[str, Any], ...]
    outcome: str | None  # None: the instance did not finish in the run

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def duration_ms(self) -> int:
        """From the instance's first event to its last."""
        return parse_timestamp(self.events[-1]["timestamp"]) - parse_timestamp(self.events[0]["timestamp"])


class Events(list[dict[str, Any]]):
    """A run's events (a list of dicts), with the outcome of each instance that finished."""

    def __init__(self, events: Iterable[dict[str, Any]] = (), outcomes: dict[str, str] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(events)
        self.outcomes = dict(outcomes or {})  # correlation_id -> outcome, for the instances that finished
        self.seed = seed

    def instances(self, chain: str | None = None) -> list[ChainRun]:
        """Each chain instance (of `chain`, a name or glob), in the order their first events came."""
        grouped: dict[str, list[dict[str, Any]]] = collections.OrderedDict()
        for event in self:
            if chain is None or fnmatch.fnmatchcase(event["chain"], chain):
                grouped.setdefault(event["correlation_id"], []).append(event)
        return [ChainRun(cid, events[0]["chain"], tuple(events), self.outcomes.get(cid))
                for cid, events in grouped.items()]

    def of_type(self, pattern: str) -> Events:
        """The events whose type matches `pattern` (a glob such as omninode.agent.*)."""
        return Events((e for e in self if fnmatch.fnmatchcase(e["event_type"], pattern)), self.outcomes, self.seed)

    def of_chain(self, pattern: str) -> Events:
        return Events((e for e in self if fnmatch.fnmatchcase(e["chain"], pattern)), self.outcomes, self.seed)

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        return Events(item, self.outcomes, self.seed) if isinstance(index, slice) else item


def _seeded(events: Events, message: str) -> str:
    return message + (f" (seed {events.seed}: run it again with --chainsim-seed {events.seed})" if events.seed
                      is not None else "")


def assert_every_chain_finished(events: Events) -> None:
    """Every chain instance that started in the run also finished in it."""
    unfinished = [run for run in events.instances() if not run.finished]
    if unfinished:
        names = collections.Counter(run.chain for run in unfinished)
        raise AssertionError(_seeded(events, f"{len(unfinished)} chain instance(s) did not finish: "
                                             + ", ".join(f"{n} {c}" for c, n in sorted(names.items()))
                                             + f"; the first: {unfinished[0].correlation_id}"))


def assert_causation_chains(events: Events) -> None:
    """In each instance, the first event has no causation_id and each later one names the one before it."""
    for run in events.instances():
        expected = None
        for event in run.events:
            if event["causation_id"] != expected:
                raise AssertionError(_seeded(events, f"{run.chain} {run.correlation_id}: event {event['event_id']} "
                                                     f"({event['step']}) names causation_id {event['causation_id']}, "
                                                     f"not {expected}"))
            expected = event["event_id"]


def assert_outcome_mix(events: Events, chain: str, expected: dict[str, float], sigmas: float = 4.0) -> None:
    """The finished instances of `chain` end in each outcome with its expected share, within `sigmas` standard
    deviations of sampling error (shares are normalised: {completed: 9, failed: 1} is 90% / 10%)."""
    outcomes = [run.outcome for run in events.instances(chain) if run.finished]
    if not outcomes:
        raise AssertionError(_seeded(events, f"no instance of {chain} finished in the run"))
    total, n = sum(expected.values()), len(outcomes)
    counted = collections.Counter(outcomes)
    for outcome in set(counted) - set(expected):
        raise AssertionError(_seeded(events, f"{chain}: {counted[outcome]} of {n} ended in {outcome!r}, which is "
                                             f"not among {sorted(expected)}"))
    for outcome, weight in expected.items():
        p = weight / total
        spread = sigmas * math.sqrt(n * p * (1 - p)) + 1
        if abs(counted[outcome] - n * p) > spread:
            raise AssertionError(_seeded(events, f"{chain}: {counted[outcome]} of {n} ended in {outcome!r}, "
                                                 f"expected {n * p:.0f} ± {spread:.0f} ({p:.0%})"))


def assert_followed_by(events: Events, first: str, then: str, within_ms: float) -> None:
    """Every event of type `first` (a glob) is followed, in its instance, by an event of type `then` (a glob)
    within `within_ms` of simulated time."""
    for run in events.instances():
        for position, event in enumerate(run.events):
            if not fnmatch.fnmatchcase(event["event_type"], first):
                continue
            at = parse_timestamp(event["timestamp"])
            if not any(fnmatch.fnmatchcase(later["event_type"], then) and
                       parse_timestamp(later["timestamp"]) - at <= within_ms for later in run.events[position + 1:]):
                raise AssertionError(_seeded(events, f"{run.chain} {run.correlation_id}: {event['event_type']} at "
                                                     f"{event['timestamp']} is not followed by {then} within "
                                                     f"{within_ms:g} ms"))
