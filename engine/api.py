"""Runs from Python: a catalog folder (or a loaded Catalog), an optional scenario and overrides given as
Python values, run in virtual time, its events streamed one by one (`stream`) or as a list (`simulate`).

    from engine import stream
    for event in stream("chains/", "scenarios/failure_storm.yaml", count=100, seed=7):
        ...

Settings given here win over the scenario's `run:` settings, as flags do on the command line; without a
scenario or settings, the run is deterministic: seed 1, start 2026-01-01T00:00:00Z.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import UsageError
from .load.catalog import Catalog, load_catalog
from .load.delays import parse_duration
from .load.yaml_marks import load as load_yaml
from .run.settings import Settings, resolve
from .run.simulation import Simulation
from .scenarios.apply import Applied
from .scenarios.load import load_scenario
from .scenarios.run import simulation as scenario_simulation
from .sinks import SinkBase
from .templates.compiler import RenderError

DEFAULT_SEED, DEFAULT_START = 1, "2026-01-01T00:00:00Z"


class _Queue(SinkBase):
    """Events as the run writes them, until the stream hands them on."""

    def __init__(self) -> None:
        self.events: collections.deque[dict[str, Any]] = collections.deque()

    def write(self, event: dict[str, Any], line: bytes) -> None:
        import orjson

        self.events.append(orjson.loads(line))  # a copy: the engine shares constant parts between events


def stream(chains: str | Path | Catalog = "chains", scenario: str | Path | dict[str, Any] | None = None,
           overrides: dict[str, Any] | None = None, *, seed: int | None = None, start: str | int | None = None,
           count: int | None = None, duration: str | float | None = None, rate: float | str | None = None,
           interval: str | float | None = None, shape: dict[str, Any] | None = None, initial: int | None = None,
           only: tuple[str, ...] | list[str] = (), outcomes: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """The events of a finite virtual run, in order, one at a time (nothing is held but the events due now).

    `scenario` is a scenario file or a mapping with a scenario's keys; `overrides` a mapping with a scenario's
    keys laid over it (`{"chains": {"agent_execution": {"branches": {...}}}}`). Durations are milliseconds or
    text such as "10m". `outcomes`, if given, is filled with each instance that finishes: correlation_id ->
    outcome. LoadError for invalid files or overrides, UsageError for settings, TemplateRunError for a
    template that fails on the way.
    """
    catalog = chains if isinstance(chains, Catalog) else load_catalog(chains)
    applied = _scenario(scenario, overrides, catalog)
    given = Settings(seed=seed, start=start, count=count, duration_ms=_ms(duration), rate=rate,
                     interval_ms=_ms(interval), shape=shape, initial=initial, only=tuple(only))
    run = dict(applied.run) if applied is not None else {}
    run.setdefault("seed", DEFAULT_SEED)
    run.setdefault("start", DEFAULT_START)
    options = resolve(given, run, bool(applied and applied.starts), development=False, prefix="")
    sink = _Queue()
    simulation = scenario_simulation(applied, options, sink) if applied is not None else \
        Simulation(catalog, options, sink)
    if outcomes is not None:
        simulation.finish = _noting(simulation.finish, outcomes)  # type: ignore[method-assign]
    queue, scheduler, until = sink.events, simulation.scheduler, simulation.until
    try:
        at = scheduler.peek()
        while at is not None and at <= until:
            at = scheduler.step()
            while queue:
                yield queue.popleft()
    except RenderError as error:
        raise simulation.template_error(error) from error.error


def simulate(chains: str | Path | Catalog = "chains", scenario: str | Path | dict[str, Any] | None = None,
             overrides: dict[str, Any] | None = None, **settings: Any) -> list[dict[str, Any]]:
    """`stream`'s events as a list (for small runs)."""
    return list(stream(chains, scenario, overrides, **settings))


def _noting(finish: Any, outcomes: dict[str, str]) -> Any:
    def noted(instance: Any) -> None:
        finish(instance)
        outcomes[instance.correlation_id] = instance.result

    return noted


def _ms(value: str | float | None) -> float | None:
    return None if value is None else parse_duration(value)


def _scenario(scenario: str | Path | dict[str, Any] | None, overrides: dict[str, Any] | None,
              catalog: Catalog) -> Applied | None:
    if scenario is None and overrides is None:
        return None
    if scenario is None:
        return load_scenario({"name": "overrides", **(overrides or {})}, catalog)
    if overrides is None:
        return load_scenario(scenario, catalog)
    if not isinstance(scenario, dict):
        load_scenario(scenario, catalog)  # the file's own problems, located in the file
        data = load_yaml(Path(scenario).read_text(encoding="utf-8")).data
    else:
        data = scenario
    if not isinstance(overrides, dict):
        raise UsageError("overrides is a mapping with a scenario's keys, e.g. {'chains': {...}}")
    return load_scenario(_laid_over(data, overrides), catalog)


def _laid_over(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` laid over `base`: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in top.items():
        merged[key] = _laid_over(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged
