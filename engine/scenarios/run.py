"""A scenario's run: its arrivals (the scripted starts, beside steady or shaped traffic when the run asks for
it) and a Simulation of its catalog, options and faults."""

from __future__ import annotations

from typing import Any

from ..run.arrivals import Arrivals
from ..run.options import RunOptions
from ..run.simulation import Simulation, default_arrivals
from ..sinks import Sink
from .apply import Applied, Merged


def background(applied: Applied, options: RunOptions) -> bool:
    """Steady or shaped arrivals run: unless the scenario scripts its starts and nothing asks for a rate,
    an interval or a shape."""
    asked = options.rate is not None or options.interval_ms is not None or options.shape is not None
    return asked or not applied.starts


def arrivals_of(applied: Applied, options: RunOptions) -> Arrivals | None:
    """The scenario's arrival process (None: the options' own)."""
    if not applied.starts:
        return None
    script = applied.script(options.start_ms)
    if not background(applied, options):
        return script
    return Merged([script, default_arrivals(applied.catalog, options)])


def simulation(applied: Applied, options: RunOptions, sink: Sink, **kwargs: Any) -> Simulation:
    """A Simulation of the scenario: its catalog, its arrivals and its faults."""
    return Simulation(applied.catalog, options, sink, arrivals=arrivals_of(applied, options), faults=applied.faults,
                      **kwargs)
