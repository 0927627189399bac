"""The scenario model: attrs classes built from a schema-valid scenario file by `Scenario.from_dict`, which
checks it against the catalog it will run (every chain, step, branch, var and data list it names must be
there; each problem is reported at its path with a did-you-mean)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..envelope.fields import FIRST_MS, LAST_MS, parse_timestamp
from ..errors import Path
from ..hints import hint, known_or_close
from ..load.catalog import Catalog
from ..load.delays import Delay, DelayProblem, parse_duration
from ..load.model import Chain, Step
from ..run.faults import Fault
from ..run.shapes import RateError, parse_rate

Report = Callable[..., None]  # report(path, message, hint="", key=False)


@attrs.frozen
class DelayChange:
    """A step's delay scaled (`scale`) or replaced (`delay`)."""

    scale: float = 1.0
    delay: Delay | None = None
    path: Path = ()  # where the scenario says it


@attrs.frozen
class ChainChange:
    """What a scenario changes in one chain (already resolved to that chain's steps)."""

    weight: float | None = None
    branches: dict[str, dict[str, float]] = attrs.field(factory=dict)  # step id -> branch id -> weight
    delays: dict[str, DelayChange] = attrs.field(factory=dict)  # step id -> change
    vars: dict[str, tuple[Any, Path]] = attrs.field(factory=dict)  # name -> (value or template, its path)
    envelope: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class ScriptedStart:
    """One scripted chain start (repeated `repeat` times, `every_ms` apart)."""

    at_ms: float
    chain: str
    path: Path
    vars: dict[str, tuple[Any, Path]] = attrs.field(factory=dict)
    force: dict[str, str] = attrs.field(factory=dict)  # step id -> branch id
    repeat: int = 1
    every_ms: float = 0.0


@attrs.frozen
class Scenario:
    """A situation to run a catalog in."""

    name: str
    file: str
    description: str = ""
    only: tuple[str, ...] = ()
    changes: dict[str, ChainChange] = attrs.field(factory=dict)  # chain name -> its changes
    data: dict[str, Any] = attrs.field(factory=dict)
    run: dict[str, Any] = attrs.field(factory=dict)  # schema-valid; read by engine/scenarios/apply.py
    script: tuple[ScriptedStart, ...] = ()
    faults: tuple[Fault, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any], file: str, catalog: Catalog, report: Report) -> Scenario:
        """Build from schema-valid data, checked against `catalog`; problems go to `report`."""
        chains = {chain.name: chain for chain in catalog.chains}
        only = tuple(data.get("only", ()))
        for i, pattern in enumerate(only):
            _matching(pattern, chains, ("only", i), report)
        changes = _changes(data, chains, report)
        for name in data.get("data", {}):
            if name not in catalog.data:
                report(("data", name), f"no data list {name!r} in the catalog", known_or_close(
                    name, sorted(catalog.data), "data lists"), key=True)
        _check_run(data.get("run", {}), report)
        script = tuple(_scripted(item, ("script", i), chains, report) for i, item in enumerate(data.get("script", ())))
        faults = tuple(_fault(item, ("faults", i), chains, report) for i, item in enumerate(data.get("faults", ())))
        return cls(name=data["name"], file=file, description=data.get("description", ""), only=only,
                   changes=changes, data=dict(data.get("data", {})), run=dict(data.get("run", {})),
                   script=script, faults=faults)


def _matching(pattern: str, chains: dict[str, Chain], path: Path, report: Report, key: bool = False) -> list[str]:
    matched = fnmatch.filter(chains, pattern)
    if not matched:
        report(path, f"{pattern!r} names no chain of the catalog", known_or_close(pattern, chains, "chains"), key=key)
    return matched


def _changes(data: dict[str, Any], chains: dict[str, Chain], report: Report) -> dict[str, ChainChange]:
    """Each chain's changes: the top-level envelope, then every entry whose name or glob matches it, in order."""
    collected: dict[str, dict[str, Any]] = {}
    for name in chains:
        if "envelope" in data:
            collected.setdefault(name, {"envelope": {}})["envelope"].update(data["envelope"])
    for pattern, entry in data.get("chains", {}).items():
        for name in _matching(pattern, chains, ("chains", pattern), report, key=True):
            target = collected.setdefault(name, {"envelope": {}})
            where: Path = ("chains", pattern)
            _check_entry(entry, chains[name], where, report)
            for field in ("branches", "delays", "vars"):
                for key, value in entry.get(field, {}).items():
                    target.setdefault(field, {})[key] = (value, (*where, field, key))
            target["envelope"].update(entry.get("envelope", {}))
            if "weight" in entry:
                target["weight"] = entry["weight"]
    result = {}
    for name, change in collected.items():
        delays = {}
        for step, (value, path) in change.get("delays", {}).items():
            delays[step] = _delay_change(value, path, report)
        result[name] = ChainChange(
            weight=change.get("weight"),
            branches={step: weights for step, (weights, _) in change.get("branches", {}).items()},
            delays={step: d for step, d in delays.items() if d is not None},
            vars=dict(change.get("vars", {})), envelope=change["envelope"])
    return result


def _steps(chain: Chain) -> dict[str, Step]:
    return {step.id: step for step in chain.walk()}


def _check_entry(entry: dict[str, Any], chain: Chain, where: Path, report: Report) -> None:
    steps = _steps(chain)
    branching = {step.id: step for step in steps.values() if step.branches}
    for step_id, weights in entry.get("branches", {}).items():
        path = (*where, "branches", step_id)
        step = branching.get(step_id)
        if step is None:
            message = f"step {step_id!r} of chain {chain.name!r} has no branches" if step_id in steps else \
                f"no step {step_id!r} in chain {chain.name!r}"
            report(path, message, known_or_close(step_id, branching, "steps with branches"), key=True)
            continue
        ids = {branch.id: float(branch.weight or 0) for branch in step.branches}
        for branch_id in weights:
            if branch_id not in ids:
                report((*path, branch_id), f"no branch {branch_id!r} of step {step_id!r} in chain {chain.name!r}",
                       known_or_close(branch_id, ids, "its branches"), key=True)
        if all(float(weights.get(b, w)) == 0 for b, w in ids.items()):
            report(path, f"every branch of step {step_id!r} would have weight 0", hint("scenario", "all zero"))
    for step_id in entry.get("delays", {}):
        if step_id != "*" and step_id not in steps:
            report((*where, "delays", step_id), f"no step {step_id!r} in chain {chain.name!r}",
                   known_or_close(step_id, steps, "step ids (or * for all)"), key=True)
    for name in entry.get("vars", {}):
        if name not in chain.vars:
            report((*where, "vars", name), f"no var {name!r} in chain {chain.name!r}",
                   known_or_close(name, chain.vars, "its vars"), key=True)


def _delay_change(value: Any, path: Path, report: Report) -> DelayChange | None:
    if isinstance(value, dict) and set(value) == {"scale"}:
        return DelayChange(scale=float(value["scale"]), path=path)
    try:
        return DelayChange(delay=Delay.from_spec(value), path=path)
    except DelayProblem as problem:
        report((*path, problem.key) if problem.key and isinstance(value, dict) else path, str(problem),
               hint("model", problem.kind))
        return None


def _check_run(run: dict[str, Any], report: Report) -> None:
    if "start" in run:
        try:
            start = parse_timestamp(str(run["start"]))
            if not FIRST_MS <= start <= LAST_MS:
                raise ValueError
        except (ValueError, OverflowError):
            report(("run", "start"), f"{run['start']!r} is not an RFC 3339 time between the years 1000 and 9999",
                   hint("scenario", "start"))
    if "rate" in run and ("interval" in run or "shape" in run):
        report(("run", "rate"), "give rate, interval or shape, not more than one", hint("scenario", "arrivals"))
    elif "interval" in run and "shape" in run:
        report(("run", "interval"), "give rate, interval or shape, not more than one", hint("scenario", "arrivals"))
    for path, value in _rates(run):
        try:
            parse_rate(value, lambda: 1.0)
        except RateError as error:
            report(path, str(error), hint("scenario", "rate"))


def _rates(run: dict[str, Any]) -> Iterable[tuple[Path, Any]]:
    if "rate" in run:
        yield ("run", "rate"), run["rate"]
    for kind, body in run.get("shape", {}).items():
        items = enumerate(body) if isinstance(body, list) else [(None, body)]
        for index, part in items:
            for key in ("rate", "from", "to", "base", "peak"):
                if key in part:
                    yield ("run", "shape", kind, *(() if index is None else (index,)), key), part[key]


def _scripted(item: dict[str, Any], path: Path, chains: dict[str, Chain], report: Report) -> ScriptedStart:
    name = item["chain"]
    chain = chains.get(name)
    if chain is None:
        report((*path, "chain"), f"no chain {name!r} in the catalog", known_or_close(name, chains, "chains"))
    else:
        for var in item.get("vars", {}):
            if var not in chain.vars:
                report((*path, "vars", var), f"no var {var!r} in chain {name!r}",
                       known_or_close(var, chain.vars, "its vars"), key=True)
        branching = {step.id: step for step in chain.walk() if step.branches}
        for step_id, branch_id in item.get("force", {}).items():
            step = branching.get(step_id)
            if step is None:
                report((*path, "force", step_id), f"no step with branches {step_id!r} in chain {name!r}",
                       known_or_close(step_id, branching, "steps with branches"), key=True)
            elif branch_id not in {b.id for b in step.branches}:
                report((*path, "force", step_id), f"no branch {branch_id!r} of step {step_id!r}",
                       known_or_close(branch_id, [b.id for b in step.branches], "its branches"))
    return ScriptedStart(parse_duration(item["at"]), name, path,
                         {var: (value, (*path, "vars", var)) for var, value in item.get("vars", {}).items()},
                         dict(item.get("force", {})), int(item.get("repeat", 1)), parse_duration(item.get("every", 0)))


def _fault(item: dict[str, Any], path: Path, chains: dict[str, Chain], report: Report) -> Fault:
    fault = Fault.from_dict(item)
    for i, pattern in enumerate(fault.chains):
        _matching(pattern, chains, (*path, "chains", i), report)
    types = {step.event_type for chain in chains.values() for step in chain.walk() if step.event_type}
    for i, pattern in enumerate(fault.event_types):
        if not fnmatch.filter(types, pattern):
            report((*path, "event_types", i), f"{pattern!r} names no event type of the catalog",
                   known_or_close(pattern, sorted(types), "event types"))
    if fault.kind == "drift" and fault.field == "" and "field" in item:
        report((*path, "field"), "the field of a drift is a payload key", hint("scenario", "field"))
    return fault
