"""chainsim: declarative, YAML-driven event-chain simulation.

The public surface, for programs and tests that drive the engine directly:

    from engine import RunOptions, load_catalog, run_to_list
    catalog = load_catalog("chains/")
    events = run_to_list(catalog, RunOptions(seed=7, start_ms=0, count=10, rate=5))

Names are handed on from the modules that define them, on first use: `python -m engine` starts with this
package, so the less it imports the sooner the command can catch Ctrl-C, and the parent of `--workers`
needs neither loader nor simulation (nor the libraries they import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ChainError,
    ChainsimError,
    LoadError,
    Problem,
    RunError,
    SinkError,
    StoreError,
    TemplateRunError,
    UsageError,
)

if TYPE_CHECKING:
    from .api import simulate, stream
    from .envelope import NATIVE, Encoding
    from .load.catalog import Catalog, load_catalog
    from .run.arrivals import Arrival, Arrivals
    from .run.collect import run_to_list
    from .run.live import LiveGenerator
    from .run.options import RunOptions, Stats
    from .run.simulation import Simulation
    from .sinks import Sink, SinkBase

__all__ = [
    "NATIVE",
    "Arrival",
    "Arrivals",
    "Catalog",
    "ChainError",
    "ChainsimError",
    "Encoding",
    "LiveGenerator",
    "LoadError",
    "Problem",
    "RunError",
    "RunOptions",
    "Simulation",
    "Sink",
    "SinkBase",
    "SinkError",
    "StoreError",
    "Stats",
    "TemplateRunError",
    "UsageError",
    "load_catalog",
    "run_to_list",
    "simulate",
    "stream",
]

_FROM = {
    "Catalog": "load.catalog", "load_catalog": "load.catalog", "Simulation": "run.simulation",
    "RunOptions": "run.options", "Stats": "run.options", "run_to_list": "run.collect", "Arrival": "run.arrivals",
    "Arrivals": "run.arrivals", "Sink": "sinks", "SinkBase": "sinks", "Encoding": "envelope", "NATIVE": "envelope",
    "stream": "api", "simulate": "api", "LiveGenerator": "run.live",
}


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_FROM[name]}", __name__), name)
    globals()[name] = value
    return value
