"""Runs from Python: the events of a finite run as a list of dicts, for tests and notebooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..sinks.memory import ListSink
from .options import RunOptions
from .simulation import Simulation

if TYPE_CHECKING:
    from ..load.catalog import Catalog


def run_to_list(catalog: Catalog, options: RunOptions) -> list[dict[str, Any]]:
    """Run and return the events, in order (for tests and notebooks); needs a count or a duration."""
    if options.count is None and options.duration_ms is None:
        raise ValueError("run_to_list needs RunOptions with count or duration_ms: the run would never end")
    sink = ListSink()
    Simulation(catalog, options, sink).run()
    return sink.events
