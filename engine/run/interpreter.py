"""The interpreter: a chain compiled into a flat program, and chain instances that walk it.

A `Program` is a chain's steps in pre-order with their continuations resolved, delays compiled into
samplers and payloads into renderers. A `ChainInstance` is one run of a program: the scheduler calls
`resume(now)`, the instance emits the event that is due and returns when its next one is.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from random import Random
from typing import Any

import attrs
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..envelope.fields import Clock, new_uuid
from ..load.delays import Delay, parse_duration
from ..load.model import Chain, Step
from ..templates.compiler import SPENDS, Renderer, RenderError, TemplateProblem, TemplateValueError, compile_tree
from ..templates.fakers import FakerFacade, Fakers, set_time
from ..templates.randoms import RandomFacade

Emit = Callable[[dict[str, Any]], "bool | None"]  # True: the instance stops here (a stuck chain)
Chooser = Callable[["Node", Sequence["Node"], Random], "Node"]


@attrs.define(eq=False)
class Node:
    """A step as the interpreter runs it."""

    step: Step
    index: int
    sample_delay: Callable[[Random], int]
    render_payload: Renderer
    next: int | None = None  # where the flow goes when this step is skipped (visited max_visits times)
    following: int | None = None  # where it goes after this step (its goto, its end: None, else its next)
    branches: tuple[Node, ...] = ()
    cumulative: tuple[float, ...] = ()  # running totals of the branches' weights
    max_visits: int | None = None  # the step's, read on every visit
    capped: bool = False  # a branch of this step has max_visits: which branches are open must be looked at
    delay_render: Renderer | None = None  # a computed delay's template (then sample_delay is not used)
    delay: Delay | None = None  # the step's own delay (a scenario may set or scale it); None: inherited
    delay_scale: float = 1.0  # a computed delay's result is multiplied by it (a scenario's scale)
    weight: float = 0.0  # as a branch: its weight among its siblings

    def __attrs_post_init__(self) -> None:
        self.max_visits = self.step.max_visits
        self.delay = self.step.delay
        self.weight = float(self.step.weight or 0)


def _zero(rng: Random) -> int:
    return 0


@attrs.define(eq=False)
class Program:
    """A compiled chain."""

    chain: Chain
    nodes: list[Node]
    vars: list[tuple[str, Renderer]]
    reset_budget: Callable[[], None]  # the sandbox's work budget is per event
    uses: frozenset[str] = frozenset()  # top-level names the chain's templates read
    spends: bool = True  # a template may charge the budget, so it is reset before each event
    name: str = ""
    tenant_id: str = ""
    namespace: str = ""

    def __attrs_post_init__(self) -> None:
        # Envelope fields, read for every event: one attribute away instead of two.
        self.name, self.tenant_id, self.namespace = self.chain.name, self.chain.tenant_id, self.chain.namespace

    @classmethod
    def compile(cls, chain: Chain, env: ImmutableSandboxedEnvironment, problems: list[TemplateProblem],
                fast: bool = True) -> Program:
        """Compile every delay and template once; template problems are appended to `problems`.

        fast=False renders every template through Jinja itself (the tests hold the fast path to it).
        """
        nodes: dict[int, Node] = {}
        uses: set[str] = set()
        for step in chain.walk():
            delay = step.delay.sampler() if step.delay else _zero
            payload = compile_tree(env, step.payload, (*step.path, "payload"), problems, uses, fast)
            nodes[step.index] = node = Node(step, step.index, delay, payload)
            if step.delay is not None and step.delay.template:
                node.delay_render = compile_tree(env, step.delay.template, (*step.path, "delay", "template"),
                                                 problems, uses, fast)
        ordered = [nodes[i] for i in sorted(nodes)]
        ids = {node.step.id: node.index for node in ordered}
        _link(chain.steps, None, nodes, ids)
        for node in ordered:
            if node.step.branches:
                node.branches = tuple(nodes[b.index] for b in node.step.branches)
                node.cumulative = tuple(itertools.accumulate(float(b.weight or 0) for b in node.step.branches))
                node.capped = any(b.max_visits is not None for b in node.step.branches)
        variables = []
        for name, value in chain.vars.items():
            variables.append((name, compile_tree(env, value, ("vars", name), problems, uses, fast)))
        return cls(chain, ordered, variables, env.budget.reset, frozenset(uses),  # type: ignore[attr-defined]
                   SPENDS in uses)


def unbounded_loop(program: Program) -> list[Node] | None:
    """A loop of the flow that no max_visits bounds (the steps of one pass, in order), or None.

    A step's visit counts towards its max_visits when the flow goes on through it (to its branches, or after
    it); once capped, the flow skips it to its next step without counting. So the flow ends for certain when
    the graph of the moves that count nothing (every move of a step without max_visits, and the skips of the
    steps with one) has no cycle: every pass round any other loop uses up a visit.
    """
    def moves(node: Node) -> list[int]:
        if node.max_visits is not None:
            return [node.next] if node.next is not None else []
        if node.branches:
            return [branch.index for branch in node.branches]
        return [node.following] if node.following is not None else []

    state: dict[int, int] = {}  # 1: on the current path, 2: done
    path: list[int] = []
    for root in range(len(program.nodes)):
        if root in state:
            continue
        stack = [(root, iter(moves(program.nodes[root])))]
        state[root], path = 1, [root]
        while stack:
            index, following = stack[-1]
            step = next(following, None)
            if step is None:
                state[index] = 2
                stack.pop()
                path.pop()
            elif state.get(step) == 1:
                return [program.nodes[i] for i in path[path.index(step):]]
            elif step not in state:
                state[step] = 1
                path.append(step)
                stack.append((step, iter(moves(program.nodes[step]))))
    return None


def _link(sequence: tuple[Step, ...], after: int | None, nodes: dict[int, Node], ids: dict[str, int]) -> None:
    """Resolve where the flow goes after each step of a sequence: the next sibling, else `after`."""
    for position, step in enumerate(sequence):
        _link_step(step, sequence[position + 1].index if position + 1 < len(sequence) else after, nodes, ids)


def _link_step(step: Step, next_index: int | None, nodes: dict[int, Node], ids: dict[str, int]) -> None:
    node = nodes[step.index]
    node.next = next_index
    node.following = ids[step.goto] if step.goto is not None else None if step.end else next_index
    # A step with branches emits nothing: what comes after it (its goto, its end) comes after the branch
    # taken, once that branch's own steps are done. Branches may branch again.
    for branch in step.branches:
        if branch.steps:
            _link(branch.steps, node.following, nodes, ids)
            _link_step(branch, branch.steps[0].index, nodes, ids)
        else:
            _link_step(branch, node.following, nodes, ids)


class NotADelayError(TemplateValueError):
    """A computed delay's template gave something that is not a duration."""


@attrs.frozen
class Start:
    """What a scripted arrival sets for its instance: vars (renderers by name, drawn instead of the chain's)
    and branches forced (the index of a branching step's node -> the index of the branch to take)."""

    vars: dict[str, Renderer] = attrs.field(factory=dict)
    force: dict[int, int] = attrs.field(factory=dict)


def forcing(force: dict[int, int], otherwise: Chooser) -> Chooser:
    """A chooser that takes the forced branch of a step when it is open, and asks `otherwise` elsewhere."""

    def choose(node: Node, open_branches: Sequence[Node], rng: Random) -> Node:
        wanted = force.get(node.index)
        for branch in open_branches:
            if branch.index == wanted:
                return branch
        return otherwise(node, open_branches, rng)

    return choose


def choose_by_weight(node: Node, open_branches: Sequence[Node], rng: Random) -> Node:
    """The default chooser: a branch drawn with the declared weights, among those still open."""
    if len(open_branches) == len(node.branches):
        point = rng.random() * node.cumulative[-1]
        return node.branches[bisect.bisect_right(node.cumulative, point)]
    point = rng.random() * sum(b.weight for b in open_branches)
    for branch in open_branches:
        point -= branch.weight
        if point < 0:
            return branch
    return open_branches[-1]


class ChainInstance:
    """One run of a chain. Its randomness comes only from its own `rng`."""

    __slots__ = (
        "program", "number", "rng", "start_ms", "correlation_id", "last_event_id", "visits", "pending",
        "delay_ms", "steps", "context", "outcome", "last_step", "emit", "clock", "choose", "on_end",
        "faker", "overrides",
    )

    def __init__(
        self,
        program: Program,
        number: int,
        rng: Random,
        shared: dict[str, Any],
        emit: Emit,
        clock: Clock,
        fakers: Fakers,
        choose: Chooser = choose_by_weight,
        on_end: Callable[[ChainInstance], None] | None = None,
        start: Start | None = None,
    ) -> None:
        self.program, self.number, self.rng, self.emit, self.clock = program, number, rng, emit, clock
        self.choose, self.on_end = choose, on_end
        self.overrides = start.vars if start is not None else None
        if start is not None and start.force:
            self.choose = forcing(start.force, choose)
        self.correlation_id = new_uuid(rng)
        self.last_event_id: str | None = None
        self.visits: dict[int, int] = {}
        self.pending: Node | None = None
        self.delay_ms = 0
        self.start_ms = 0
        self.outcome: str | None = None
        self.last_step: str | None = None
        self.steps: dict[str, dict[str, Any]] = {}
        chain, uses = program.chain, program.uses
        # Facades only for chains whose templates use them: building them is most of a light chain's start.
        self.faker = FakerFacade(chain.locale, rng, fakers) if "faker" in uses else None
        self.context: dict[str, Any] = {
            **shared,
            "chain": {"name": chain.name, "instance": number, "correlation_id": self.correlation_id},
            "steps": self.steps,
            "vars": {},
        }
        if self.faker is not None:
            self.context["faker"] = self.faker
        if "random" in uses:
            self.context["random"] = RandomFacade(rng)

    @property
    def result(self) -> str:
        """The instance's outcome: the last `outcome` met, else the id of its last step."""
        return self.outcome or self.last_step or "none"

    def start(self, now: int) -> int | None:
        """Begin at `now`: draw the vars; the time of the first event, or None if there is nothing to emit."""
        self.start_ms = now
        self.render_vars(now)
        return self._advance(0, now)

    def render_vars(self, now: int) -> None:
        """Draw the instance's vars, in order, at its start time."""
        if self.faker is not None:
            set_time(self.faker, now)
        if self.program.spends:
            self.program.reset_budget()
        variables, overrides = self.context["vars"], self.overrides
        try:
            for name, render in self.program.vars:
                if overrides is not None:
                    render = overrides.get(name, render)
                variables[name] = render(self.context)
        except RenderError as error:
            error.file = self.program.chain.file
            raise

    def resume(self, now: int) -> int | None:
        """Emit the event due at `now`; the time of the next one, or None when the chain has ended."""
        node = self.pending
        assert node is not None
        step, program, context = node.step, self.program, self.context
        event: dict[str, Any] = {
            "event_id": new_uuid(self.rng),
            "event_type": step.event_type,
            "correlation_id": self.correlation_id,
            "causation_id": self.last_event_id,
            "tenant_id": program.tenant_id,
            "namespace": program.namespace,
            "timestamp": self.clock.format(now),
            "chain": program.name,
            "step": step.id,
        }
        context["event"] = event
        context["elapsed_ms"] = now - self.start_ms
        context["delay_ms"] = self.delay_ms
        context["visit"] = self.visits[node.index]
        if self.faker is not None:
            self.faker._now = now  # what set_time() does, on the hot path
        if program.spends:
            program.reset_budget()
        try:
            event["payload"] = node.render_payload(context)
        except RenderError as error:
            error.file = program.chain.file
            raise
        self.steps[step.id] = event
        self.last_event_id = event["event_id"]
        self.last_step = step.id
        if step.outcome:
            self.outcome = step.outcome
        if self.emit(event):  # stuck here: the instance never goes on, and never finishes
            self.pending = None
            return None
        return self._advance(node.following, now)

    def _advance(self, index: int | None, now: int) -> int | None:
        nodes, visits = self.program.nodes, self.visits
        inherited = None  # a branching step, whose delay the branch taken has when it has none of its own
        while index is not None:
            node = nodes[index]
            seen = visits.get(index, 0)
            if node.max_visits is not None and seen >= node.max_visits:
                index, inherited = node.next, None
                continue
            visits[index] = seen + 1
            step = node.step
            timing = inherited if node.delay is None and inherited is not None else node
            if node.branches:
                if step.outcome:
                    self.outcome = step.outcome
                open_branches = [b for b in node.branches if self._may_visit(b)] if node.capped else node.branches
                if not open_branches:
                    index, inherited = node.next, None
                    continue
                index, inherited = self.choose(node, open_branches, self.rng).index, timing
                continue
            self.pending = node
            if timing.delay_render is None:
                self.delay_ms = timing.sample_delay(self.rng)
            else:
                self.delay_ms = self._computed_delay(timing, node, now)
            return now + self.delay_ms
        self.pending = None
        if self.on_end is not None:
            self.on_end(self)
        return None

    def _computed_delay(self, timing: Node, node: Node, now: int) -> int:
        """Render a computed delay's template for the step about to be scheduled, and keep it within bounds."""
        context, program = self.context, self.program
        context["visit"] = self.visits[node.index]
        context["elapsed_ms"] = now - self.start_ms
        if self.faker is not None:
            self.faker._now = now
        if program.spends:
            program.reset_budget()
        render, delay = timing.delay_render, timing.delay
        assert render is not None and delay is not None
        try:
            value = render(context)
            if not isinstance(value, int | float | str) or isinstance(value, bool):
                raise NotADelayError(f"the delay template gave {value!r}, which is not a duration")
            try:
                ms = parse_duration(value)
            except ValueError:
                raise NotADelayError(f"the delay template gave {value!r}, which is not a duration") from None
        except RenderError as error:
            error.file = program.chain.file
            raise
        except NotADelayError as error:
            failure = RenderError((*timing.step.path, "delay", "template"), error)
            failure.file = program.chain.file
            raise failure from None
        return delay.clamp(ms) if timing.delay_scale == 1.0 else round(delay.clamp(ms) * timing.delay_scale)

    def _may_visit(self, node: Node) -> bool:
        cap = node.max_visits
        return cap is None or self.visits.get(node.index, 0) < cap
