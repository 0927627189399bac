"""A scenario applied to a catalog: a derived catalog (the chains' programs with the scenario's weights, branch
weights, delays, vars and envelope; its data lists), the scripted starts with their vars and forced branches,
and the faults. The catalog itself is left as it was: several scenarios can run one catalog at once.
"""

from __future__ import annotations

import copy
import heapq
import itertools
from collections.abc import Callable, Iterable
from random import Random
from typing import Any

import attrs

from ..errors import Path
from ..load.catalog import Catalog
from ..run.arrivals import Arrival, Arrivals
from ..run.faults import Fault
from ..run.interpreter import Node, Program, Start
from ..templates.compiler import SPENDS, Renderer, TemplateProblem, compile_tree
from .model import ChainChange, DelayChange, Scenario


@attrs.frozen
class Applied:
    """What a run of a scenario needs: its catalog, scripted starts (ms after the start), faults and run."""

    scenario: Scenario
    catalog: Catalog
    starts: tuple[tuple[float, str, Start], ...]
    faults: tuple[Fault, ...]

    @property
    def run(self) -> dict[str, Any]:
        return self.scenario.run

    def script(self, start_ms: int) -> Arrivals:
        """The scripted starts as an arrival process, from the run's start."""
        return Script([Arrival(start_ms + at, chain, start) for at, chain, start in self.starts])


class Script:
    """Arrivals given in advance, in time order (stable for equal times)."""

    def __init__(self, arrivals: Iterable[Arrival]) -> None:
        self.arrivals = sorted(arrivals, key=lambda a: a.at)
        self.position = 0

    def next(self) -> Arrival | None:
        if self.position >= len(self.arrivals):
            return None
        self.position += 1
        return self.arrivals[self.position - 1]


class Merged:
    """Several arrival processes as one, in time order (on equal times, the earlier process first)."""

    def __init__(self, sources: Iterable[Arrivals]) -> None:
        self.sources = list(sources)
        self.heap: list[tuple[float, int, Arrival]] = []
        for index in range(len(self.sources)):
            self._pull(index)

    def _pull(self, index: int) -> None:
        arrival = self.sources[index].next()
        if arrival is not None:
            heapq.heappush(self.heap, (arrival.at, index, arrival))

    def next(self) -> Arrival | None:
        if not self.heap:
            return None
        _, index, arrival = heapq.heappop(self.heap)
        self._pull(index)
        return arrival


def apply(scenario: Scenario, catalog: Catalog, problems: list[TemplateProblem]) -> Applied:
    """The scenario on the catalog; a template of the scenario that does not compile goes to `problems`."""
    env = catalog.env
    chains, programs = [], dict(catalog.programs)
    for chain in catalog.chains:
        change = scenario.changes.get(chain.name)
        if change is None:
            chains.append(chain)
            continue
        chains.append(chain if change.weight is None else attrs.evolve(chain, weight=float(change.weight)))
        programs[chain.name] = _changed(programs[chain.name], change, env, problems)
    derived = attrs.evolve(catalog, chains=tuple(chains), programs=programs, data={**catalog.data, **scenario.data})
    if scenario.only:
        scripted = {item.chain for item in scenario.script}
        selected = derived.select(scenario.only)
        kept = {chain.name for chain in selected.chains}
        # A scripted chain outside `only` still runs its scripted starts: in the catalog, out of the mix.
        extra = tuple(attrs.evolve(chain, weight=0.0) for chain in derived.chains
                      if chain.name in scripted and chain.name not in kept)
        derived = attrs.evolve(selected, chains=selected.chains + extra,
                               programs={**selected.programs, **{c.name: programs[c.name] for c in extra}})
    starts = []
    for item in scenario.script:
        program = derived.programs[item.chain]
        uses: set[str] = set()
        rendered = {name: compile_tree(env, value, path, problems, uses) for name, (value, path) in item.vars.items()}
        if not uses <= program.uses:  # a scripted var reads what the chain's own templates do not
            derived = _with_program(derived, _using(program, uses))
            program = derived.programs[item.chain]
        force = _forced(program, item.force)
        for k in range(item.repeat):
            starts.append((item.at_ms + k * item.every_ms, item.chain, Start(rendered, force)))
    return Applied(scenario, derived, tuple(starts), scenario.faults)


def _with_program(catalog: Catalog, program: Program) -> Catalog:
    return attrs.evolve(catalog, programs={**catalog.programs, program.name: program})


def _using(program: Program, uses: set[str]) -> Program:
    every = program.uses | uses
    return attrs.evolve(program, uses=frozenset(every), spends=program.spends or SPENDS in every)


def _forced(program: Program, force: dict[str, str]) -> dict[int, int]:
    by_id = {node.step.id: node for node in program.nodes}
    return {by_id[step].index: by_id[branch].index for step, branch in force.items()
            if step in by_id and branch in by_id}


def _changed(program: Program, change: ChainChange, env: Any, problems: list[TemplateProblem]) -> Program:
    """A copy of the program with the chain's changes; the original's nodes are not touched."""
    nodes = [copy.copy(node) for node in program.nodes]
    for node in nodes:
        node.branches = tuple(nodes[branch.index] for branch in node.branches)
    by_id = {node.step.id: node for node in nodes}
    for step_id, weights in change.branches.items():
        parent = by_id[step_id]
        for branch in parent.branches:
            branch.weight = float(weights.get(branch.step.id, branch.weight))
        parent.cumulative = tuple(itertools.accumulate(branch.weight for branch in parent.branches))
    uses: set[str] = set()
    for step_id, delay in change.delays.items():
        targets = [node for node in nodes if node.delay is not None] if step_id == "*" else [by_id[step_id]]
        for node in targets:
            _change_delay(node, delay, env, problems, uses)
    variables: list[tuple[str, Renderer]] = []
    for name, render in program.vars:
        if name in change.vars:
            value, path = change.vars[name]
            render = compile_tree(env, value, path, problems, uses)
        variables.append((name, render))
    every = program.uses | uses
    changed = attrs.evolve(program, nodes=nodes, vars=variables, uses=frozenset(every),
                           spends=program.spends or SPENDS in every)
    changed.tenant_id = change.envelope.get("tenant_id", changed.tenant_id)
    changed.namespace = change.envelope.get("namespace", changed.namespace)
    return changed


def _change_delay(node: Node, change: DelayChange, env: Any, problems: list[TemplateProblem], uses: set[str]) -> None:
    if change.delay is None:  # scaled
        if node.delay_render is not None:
            node.delay_scale *= change.scale
        else:
            node.sample_delay = _scaled(node.sample_delay, change.scale)
            if node.delay is not None:  # what graph, list and the expected figures show
                node.delay = node.delay.scaled(change.scale)
        return
    node.delay, node.delay_scale = change.delay, 1.0
    node.sample_delay = change.delay.sampler()
    path: Path = (*change.path, "template")
    node.delay_render = compile_tree(env, change.delay.template, path, problems, uses) if change.delay.template \
        else None


def _scaled(sample: Callable[[Random], int], scale: float) -> Callable[[Random], int]:
    return lambda rng: round(sample(rng) * scale)
