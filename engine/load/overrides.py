"""What a chain's diagram and expectations read of its branch weights and delays: its compiled `Program`'s
nodes, through `Overrides` that may replace some of them by step or branch id.

Empty (`AS_WRITTEN`), they give the chain as its file says. A scenario that changes weights or delays
without copying the chain file hands `graph` and `expect` its own `Overrides`, so both show what that
scenario will run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from random import Random

import attrs

from ..run.interpreter import Node
from .delays import Delay


def _no_delay(rng: Random) -> int:
    return 0


@attrs.frozen
class Overrides:
    """Branch weights and delays that replace a chain's own, by step or branch id."""

    weights: Mapping[str, float] = attrs.field(factory=dict)  # branch id -> weight
    delays: Mapping[str, Delay | None] = attrs.field(factory=dict)  # step or branch id -> delay (None: none)

    def weight(self, node: Node) -> float:
        """The weight of a branch (as the compiled node has it: a scenario's weight, else the file's)."""
        return float(self.weights.get(node.step.id, node.weight))

    def delay(self, node: Node) -> Delay | None:
        """A step's own delay (None: it has none, and a branch inherits its branching step's). A computed delay
        counts as its minimum here: its figures are measured on runs instead (expect.py)."""
        delay = self.delays[node.step.id] if node.step.id in self.delays else node.delay
        if delay is not None and delay.distribution == "computed":
            return Delay.fixed(delay.bounds[0])
        return delay

    def sampler(self, node: Node) -> Callable[[Random], int]:
        """What draws the step's own delay: the compiled sampler, unless the delay is replaced."""
        if node.step.id not in self.delays:
            return node.sample_delay
        delay = self.delays[node.step.id]
        return delay.sampler() if delay is not None else _no_delay


AS_WRITTEN = Overrides()
