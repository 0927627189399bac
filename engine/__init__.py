"""chainsim: declarative, YAML-driven event-chain simulation.

The public surface, for programs and tests that drive the engine directly:

    from engine import RunOptions, load_catalog, run_to_list
    catalog = load_catalog("chains/")
    events = run_to_list(catalog, RunOptions(seed=7, start_ms=0, count=10, rate=5))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from .errors import ChainError, Problem, RunError, UsageError

if TYPE_CHECKING:
    from .loader import Catalog, load_catalog
    from .options import RunOptions, Stats
    from .simulation import Simulation

__all__ = [
    "Catalog",
    "ChainError",
    "Problem",
    "RunError",
    "RunOptions",
    "Simulation",
    "Stats",
    "UsageError",
    "load_catalog",
    "run_to_list",
]


_LAZY = {"Catalog": "loader", "load_catalog": "loader", "Simulation": "simulation", "RunOptions": "options",
         "Stats": "options"}


def __getattr__(name: str) -> Any:
    """The loader, the simulation and the options are imported on first use: `python -m engine` starts
    with this package (the less it imports, the sooner the command can catch Ctrl-C), and the parent of
    `--workers` needs neither loader nor simulation (nor the libraries they import)."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ListSink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def write(self, event: dict[str, Any], line: bytes) -> None:
        # A copy of the event as written: the engine shares constant payload parts between events.
        self.events.append(orjson.loads(line))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def run_to_list(catalog: Catalog, options: RunOptions) -> list[dict[str, Any]]:
    """Run and return the events, in order (for tests and notebooks); needs a count or a duration."""
    if options.count is None and options.duration_ms is None:
        raise ValueError("run_to_list needs RunOptions with count or duration_ms: the run would never end")
    from .simulation import Simulation

    sink = _ListSink()
    Simulation(catalog, options, sink).run()
    return sink.events
