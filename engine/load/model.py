"""The chain model: attrs classes built from schema-valid YAML by `Chain.from_dict`.

`from_dict` is the filter between YAML and the model: it checks what a schema cannot say (min above
max, duplicate step ids, unknown or unbounded `goto`s) and reports each problem with its path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
from faker.config import AVAILABLE_LOCALES

from ..errors import Path, json_path
from ..hints import did_you_mean, hint, known_or_close
from .delays import Delay, DelayProblem

Report = Callable[..., None]  # report(path, message, hint="", key=False)

DEFAULT_ENVELOPE = {"tenant_id": "default-tenant", "namespace": "development"}
DEFAULT_LOCALE = "en_US"


@attrs.frozen
class Step:
    """One step: emits an event (`event_type`), or chooses one of its weighted `branches`."""

    id: str
    path: Path
    index: int  # position in pre-order: normal flow always moves to a higher index
    delay: Delay | None = None
    event_type: str | None = None
    payload: Any = None
    outcome: str | None = None
    goto: str | None = None
    max_visits: int | None = None
    end: bool = False
    weight: float | None = None  # set on branches only
    branches: tuple[Step, ...] = ()
    steps: tuple[Step, ...] = ()  # a branch's own further steps

    def walk(self) -> Iterator[Step]:
        yield self
        for child in (*self.branches, *self.steps):
            yield from child.walk()


@attrs.frozen
class Chain:
    """One chain file."""

    name: str
    file: str
    steps: tuple[Step, ...]
    description: str = ""
    weight: float = 1.0
    locale: str = DEFAULT_LOCALE
    tenant_id: str = DEFAULT_ENVELOPE["tenant_id"]
    namespace: str = DEFAULT_ENVELOPE["namespace"]
    vars: dict[str, Any] = attrs.field(factory=dict)

    def walk(self) -> Iterator[Step]:
        """Every step, branches included, in pre-order."""
        for step in self.steps:
            yield from step.walk()

    @classmethod
    def from_dict(cls, data: dict[str, Any], file: str, report: Report) -> Chain:
        """Build from schema-valid data; report what the schema cannot catch."""
        counter = iter(range(1_000_000))
        steps = tuple(
            _build_step(item, ("steps", i), counter, report) for i, item in enumerate(data["steps"])
        )
        envelope = {**DEFAULT_ENVELOPE, **data.get("envelope", {})}
        chain = cls(
            name=data["name"],
            file=file,
            steps=steps,
            description=data.get("description", ""),
            weight=float(data.get("weight", 1)),
            locale=data.get("locale", DEFAULT_LOCALE),
            tenant_id=envelope["tenant_id"],
            namespace=envelope["namespace"],
            vars=dict(data.get("vars", {})),
        )
        if chain.locale not in AVAILABLE_LOCALES:
            report(("locale",), f"unknown Faker locale {chain.locale!r}",
                   did_you_mean(chain.locale, AVAILABLE_LOCALES, hint("schema", "pattern", "locale")))
        _check_ids(chain, report)
        return chain


def _build_step(data: dict[str, Any], path: Path, counter: Iterator[int], report: Report) -> Step:
    index = next(counter)
    delay = None
    if "delay" in data:
        try:
            delay = Delay.from_spec(data["delay"])
        except DelayProblem as problem:
            _report_delay(data["delay"], (*path, "delay"), problem, report)
    has_event, has_branches = "event_type" in data, "branches" in data
    if has_event and has_branches:
        report((*path, "branches"), "a step has event_type or branches, not both",
               hint("model", "event_type and branches"))
    elif not has_event and not has_branches:
        report(path, "step has neither event_type nor branches", hint("model", "no event_type"))
    if has_branches and "payload" in data:
        report((*path, "payload"), "a step with branches emits no event, so it has no payload",
               hint("model", "payload on branches"))
    if data.get("end") and "goto" in data:
        report((*path, "goto"), "a step cannot both end the chain and goto another step", hint("model", "end and goto"))
    branches = tuple(
        _build_step(item, (*path, "branches", i), counter, report)
        for i, item in enumerate(data.get("branches", ()))
    )
    steps = tuple(
        _build_step(item, (*path, "steps", i), counter, report)
        for i, item in enumerate(data.get("steps", ()))
    )
    return Step(
        id=data["id"],
        path=path,
        index=index,
        delay=delay,
        event_type=data.get("event_type"),
        payload=data.get("payload"),
        outcome=data.get("outcome"),
        goto=data.get("goto"),
        max_visits=data.get("max_visits"),
        end=bool(data.get("end", False)),
        weight=data.get("weight"),
        branches=branches,
        steps=steps,
    )


def _report_delay(spec: Any, path: Path, problem: DelayProblem, report: Report) -> None:
    """A range [min, max] is reported as a whole; in a distribution, at the key that is off."""
    if isinstance(spec, list):
        report(path, str(problem), hint("model", problem.kind if problem.kind == "delay too long" else "delay range"))
        return
    at = (*path, problem.key) if isinstance(spec, dict) and problem.key in spec else path
    report(at, str(problem), hint("model", problem.kind))


def _check_ids(chain: Chain, report: Report) -> None:
    seen: dict[str, Step] = {}
    for step in chain.walk():
        if step.id in seen:
            first = seen[step.id]
            report((*step.path, "id"), f"duplicate step id {step.id!r}",
                   hint("model", "duplicate id", id=step.id, other=json_path(first.path)))
        else:
            seen[step.id] = step
    for step in chain.walk():
        if step.goto is None:
            continue
        target = seen.get(step.goto)
        if target is None:
            report((*step.path, "goto"), f"goto names unknown step {step.goto!r}",
                   known_or_close(step.goto, seen, "step ids in this chain"))
        elif target.index <= step.index and step.max_visits is None:
            report((*step.path, "goto"), f"goto {step.goto!r} jumps back: an unbounded loop",
                   hint("model", "unbounded loop"))

