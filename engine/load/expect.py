"""What one instance of a chain is expected to do, computed from its compiled program, not from runs: how many
events it emits, how long it takes from its start to its last event (mean and p95), how often it ends in each
outcome.

An instance's flow is an absorbing Markov chain. A state is where the flow stands (a node of the `Program`;
the delay a branch inherits when a draw brought it there) with how often each node that has `max_visits` was
visited. Every jump back carries `max_visits`, so no state comes twice: the states form a finite acyclic graph,
and the expectations are sums over it, each state's computed once from the states after it. Delays enter by
their exact means (`delay_mean` in delay_laws.py: the bounded samplers' redraws and clamp included), weights
as the interpreter normalises them (a branch that reached its `max_visits` leaves the draw).

The p95 has no closed form in general. The duration is a mixture over the instance's paths, grouped by their
fixed time and the random delays they add up, each group with its exact probability. A group is exact in its
widest random delay (`delay_cdf`). The sum of its other random delays is enumerated when it takes at most
`OFFSETS` values, else drawn by the real samplers (seeded, about `OFFSETS` draws shared by probability); the
group's chance to have ended by t is the mean, over those sums, of the widest delay's exact chance to fit in
what is left (conditional Monte Carlo). So the p95 is exact where the others take few values, and within a
fraction of a percent for the catalog's chains. A chain with too many states or groups is estimated as a whole
from `WALKS` seeded walks of its program; its figures say so.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Mapping
from random import Random
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from .delay_laws import delay_cdf, delay_mean, fixed_value, pmf
from .delays import Delay
from .overrides import AS_WRITTEN, Overrides

if TYPE_CHECKING:
    from ..run.interpreter import Program
    from .catalog import Catalog

OFFSETS, OFFSETS_MIN = 128, 8  # draws of a group's other random delays for the p95: by probability, at least
WALKS = 1000  # seeded walks of a chain too large to compute exactly
MIN_WALKS = 100  # fewer walks within MAX_WALK_STEPS: no estimate
MAX_STATES = 20_000  # states of one chain's flow computed exactly; beyond, walks
MAX_GROUPS = 256  # groups of paths (fixed time, random delays) one state may lead to; beyond, the p95 from walks
MAX_WALK_STEPS = 200_000  # steps of all walks of one chain; the walks that end within them are used
P95 = 0.95

State = tuple[int | None, int | None, tuple[int, ...]]  # node index (None: ended), inherited delay's node, visits
Group = tuple[int, tuple[int, ...]]  # fixed milliseconds, the nodes whose random delays are added
# (probability, emitting node or None, node whose delay it waits, outcome set, next state)
Transition = tuple[float, int | None, int | None, str | None, State]
END: State = (None, None, ())


@attrs.frozen
class Expectation:
    """One chain's expected figures per instance."""

    chain: str
    events: float  # expected number of events
    mean_ms: float  # expected time from the instance's start to its last event
    p95_ms: float  # 95% of instances have emitted their last event by then
    outcomes: dict[str, float]  # each outcome (or last step, where none is set) and its probability
    exact: bool = True  # False: events, mean and outcomes are estimates from seeded walks
    measured: bool = False  # True: mean and p95 were measured on seeded runs (the chain computes delays)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def expect_catalog(catalog: Catalog, overrides: Mapping[str, Overrides] | None = None) -> dict[str, Expectation | None]:
    """Each chain's expectations, by name, in the catalog's order (None: a chain too long to estimate)."""
    changes = overrides or {}
    figures = {}
    for chain in catalog.chains:
        program = catalog.programs[chain.name]
        expectation = expect_chain(program, changes.get(chain.name, AS_WRITTEN))
        if expectation is not None and any(node.delay_render is not None for node in program.nodes):
            expectation = _measured(expectation, program, catalog.data)
        figures[chain.name] = expectation
    return figures


MEASURED_RUNS = 400  # instances run for the durations of a chain with computed delays


def _measured(expectation: Expectation, program: Program, data: dict[str, Any]) -> Expectation:
    """A chain whose delays are computed by templates: its events and outcomes come from the flow, as for any
    chain (delays do not change where it goes), its durations from seeded runs of the chain itself."""
    from ..envelope.fields import Clock
    from ..run.interpreter import ChainInstance
    from ..templates.compiler import RenderError
    from ..templates.fakers import Fakers

    fakers, clock, durations = Fakers(), Clock(), []
    try:
        for number in range(MEASURED_RUNS):
            instance = ChainInstance(program, number, Random(f"expect:{program.name}:{number}"), {"data": data},
                                     lambda event: None, clock, fakers)
            at, last = instance.start(0), 0
            while at is not None:
                last = at
                at = instance.resume(at)
            durations.append(last)
    except RenderError:  # a draw the dry run did not meet: the run will say where; the durations stay the flow's
        return attrs.evolve(expectation, measured=True)
    ordered = sorted(durations)
    return attrs.evolve(expectation, mean_ms=sum(ordered) / len(ordered), p95_ms=_quantile(ordered), measured=True)


def expect_chain(program: Program, overrides: Overrides = AS_WRITTEN) -> Expectation | None:
    """The expectations of one instance of a compiled chain; None when fewer than MIN_WALKS walks of it end
    within MAX_WALK_STEPS steps (a loop taken a million times, say)."""
    return _Flow(program, overrides).expect()


def summary(expectation: Expectation | None) -> str:
    """`4.0 events, 1.20 s mean, 1.65 s p95` (`~` before estimates)."""
    if expectation is None:
        return f"no estimate: {MIN_WALKS} walks of it take more than {MAX_WALK_STEPS:,} steps"
    about = "" if expectation.exact else "~"
    timed = "~" if expectation.measured or not expectation.exact else ""
    return (f"{about}{expectation.events:.1f} events, {timed}{duration_text(expectation.mean_ms)} mean, "
            f"{timed}{duration_text(expectation.p95_ms)} p95")


def duration_text(ms: float) -> str:
    """A duration for people, to three digits: `35 ms`, `1.20 s`, `13.1 s`, `1.15 min`, `2.00 h`, `3.50 d`."""
    if ms < 999.5:
        return f"{ms:.0f} ms"
    for unit, size, below in (("s", 1000, 60), ("min", 60_000, 60), ("h", 3_600_000, 24)):
        if ms < below * size:
            return f"{format(ms / size, '#.3g').rstrip('.')} {unit}"
    return f"{format(ms / 86_400_000, '#.3g').rstrip('.')} d"


class _Flow:
    """A program as the Markov chain of its flow."""

    def __init__(self, program: Program, overrides: Overrides) -> None:
        self.name = program.name
        self.nodes = nodes = program.nodes
        self.capped = {node.index: slot for slot, node in enumerate(n for n in nodes if n.max_visits is not None)}
        self.weights = [overrides.weight(node) if node.step.weight is not None else 0.0 for node in nodes]
        self.delays = [overrides.delay(node) for node in nodes]
        self.samplers = [overrides.sampler(node) for node in nodes]
        self.means = [delay_mean(delay) for delay in self.delays]
        self.fixed = [fixed_value(delay) for delay in self.delays]
        self.widths = [delay.bounds[1] - delay.bounds[0] if delay is not None else 0 for delay in self.delays]
        self.root: State = (0, None, (0,) * len(self.capped))
        self.known: dict[State, list[Transition]] = {}

    def transitions(self, state: State) -> list[Transition]:
        """Where the flow goes from a state, as ChainInstance._advance and resume move it."""
        found = self.known.get(state)
        if found is not None:
            return found
        index, inherited, visits = state
        assert index is not None
        node = self.nodes[index]
        slot = self.capped.get(index)
        if slot is not None:
            if visits[slot] >= (node.max_visits or 0):  # used up: skipped, inherited delay dropped
                return self._keep(state, [(1.0, None, None, None, (node.next, None, visits))])
            visits = (*visits[:slot], visits[slot] + 1, *visits[slot + 1:])
        source = index if self.delays[index] is not None or inherited is None else inherited
        if not node.branches:
            return self._keep(state, [(1.0, index, source, node.step.outcome, (node.following, None, visits))])
        open_branches = [b for b in node.branches
                         if b.max_visits is None or visits[self.capped[b.index]] < b.max_visits]
        if not open_branches:
            return self._keep(state, [(1.0, None, None, node.step.outcome, (node.next, None, visits))])
        total = sum(self.weights[b.index] for b in open_branches)
        return self._keep(state, [(self.weights[b.index] / total, None, None, node.step.outcome,
                                   (b.index, source, visits)) for b in open_branches])

    def _keep(self, state: State, found: list[Transition]) -> list[Transition]:
        """Remember a state's transitions; every ended state is the one END (visits no longer matter)."""
        kept = [(p, emitted, source, outcome, END if after[0] is None else after)
                for p, emitted, source, outcome, after in found]
        self.known[state] = kept
        return kept

    def expect(self) -> Expectation | None:
        values = self._solve()
        if values is None:
            return self._walked()
        root = values[self.root]
        if root.groups is not None:
            p95 = float(self._p95(root.groups))
        else:
            walks = self._walks()
            if walks is None:
                return None
            p95 = _quantile(sorted(w[1] for w in walks))
        return Expectation(self.name, root.events, root.mean, p95, _outcomes(root.labels))

    def _solve(self) -> dict[State, _Value] | None:
        """Every state's value, from the ends back (None: too many states, or a loop no max_visits bounds)."""
        values: dict[State, _Value] = {END: _Value(0.0, 0.0, {"": 1.0}, {(0, ()): 1.0})}
        pending: list[tuple[State, bool]] = [(self.root, False)]
        open_states: set[State] = set()
        while pending:
            state, expanded = pending.pop()
            if state in values:
                continue
            if expanded:
                open_states.discard(state)
                values[state] = self._combine(state, values)
                continue
            if state in open_states or len(values) + len(open_states) > MAX_STATES:
                return None
            open_states.add(state)
            pending.append((state, True))
            pending += [(t[4], False) for t in self.transitions(state) if t[4] not in values]
        return values

    def _combine(self, state: State, values: dict[State, _Value]) -> _Value:
        events = mean = 0.0
        labels: dict[str, float] = {}
        groups: dict[Group, float] | None = {}
        for probability, emitted, source, outcome, after in self.transitions(state):
            following = values[after]
            events += probability * ((emitted is not None) + following.events)
            mean += probability * ((self.means[source] if source is not None else 0.0) + following.mean)
            step = self.nodes[emitted].step.id if emitted is not None else None
            for label, p in following.labels.items():
                label = _relabel(label, outcome, step)
                labels[label] = labels.get(label, 0.0) + probability * p
            if groups is not None and following.groups is not None:
                for (fixed, random_ones), p in following.groups.items():
                    group = self._after(source, fixed, random_ones)
                    groups[group] = groups.get(group, 0.0) + probability * p
                if len(groups) > MAX_GROUPS:
                    groups = None
            else:
                groups = None
        return _Value(events, mean, labels, groups)

    def _after(self, source: int | None, fixed: int, random_ones: tuple[int, ...]) -> Group:
        """A group of paths with the delay of `source` (a node) before them."""
        if source is None:
            return fixed, random_ones
        constant = self.fixed[source]
        if constant is not None:
            return fixed + constant, random_ones
        return fixed, tuple(sorted((*random_ones, source)))

    def _p95(self, groups: dict[Group, float]) -> int:
        """The mixture's p95. A group's distribution is exact in its widest random delay, after each value of the
        sum of its other random delays: all of them, with their probabilities, when they are at most OFFSETS;
        else drawn (conditional Monte Carlo: a small sample of the smaller delays gives a precise figure where
        drawing the wide one too would not)."""
        rng = Random(f"expect:{self.name}")
        parts = []
        for (fixed, ones), probability in sorted(groups.items()):
            if not ones:
                parts.append(_Part.of(probability, None, {fixed: 1.0}))
                continue
            widest = max(ones, key=lambda i: self.widths[i])
            others = list(ones)
            others.remove(widest)
            if math.prod(self.widths[i] + 1 for i in others) <= OFFSETS:
                offsets = {fixed: 1.0}
                for i in others:
                    offsets = _convolve(offsets, pmf(self.delays[i]))
            else:
                count = max(OFFSETS_MIN, math.ceil(OFFSETS * probability))
                columns = [[self.samplers[i](rng) for _ in range(count)] for i in others]
                offsets = {}
                for drawn in map(sum, zip(*columns, strict=True)):
                    offsets[fixed + drawn] = offsets.get(fixed + drawn, 0.0) + 1 / count
            parts.append(_Part.of(probability, self.delays[widest], offsets))
        return _mixture_quantile(parts)

    def _walk(self, rng: Random, budget: list[int]) -> tuple[int, int, str] | None:
        """One seeded walk: (events, duration, outcome label), or None when the budget of steps ran out."""
        state, events, duration = self.root, 0, 0
        outcome = last = None
        while state[0] is not None:
            budget[0] -= 1
            if budget[0] < 0:
                return None
            found = self.transitions(state)
            point, k = rng.random(), 0
            while k < len(found) - 1 and point >= found[k][0]:
                point -= found[k][0]
                k += 1
            _, emitted, source, set_outcome, state = found[k]
            if set_outcome:
                outcome = set_outcome
            if emitted is not None:
                events += 1
                last = self.nodes[emitted].step.id
                duration += self.samplers[source](rng) if source is not None else 0
        label = f"o:{outcome}" if outcome else f"s:{last}" if last else ""
        return events, duration, label

    def _walks(self) -> list[tuple[int, int, str]] | None:
        """Up to WALKS seeded walks, as many as MAX_WALK_STEPS steps allow; None for fewer than MIN_WALKS."""
        rng, budget = Random(f"expect:{self.name}:walks"), [MAX_WALK_STEPS]
        walks: list[tuple[int, int, str]] = []
        while len(walks) < WALKS:
            walk = self._walk(rng, budget)
            if walk is None:
                break
            walks.append(walk)
        return walks if len(walks) >= MIN_WALKS else None

    def _walked(self) -> Expectation | None:
        """Every figure estimated from walks, for a chain whose states are too many to compute."""
        self.known.clear()  # a state graph too large to keep
        walks = self._walks()
        if walks is None:
            return None
        labels: dict[str, float] = {}
        for _, _, label in walks:
            labels[label] = labels.get(label, 0.0) + 1 / len(walks)
        return Expectation(self.name, sum(w[0] for w in walks) / len(walks), sum(w[1] for w in walks) / len(walks),
                           _quantile(sorted(w[1] for w in walks)), _outcomes(labels), exact=False)


class _Value(NamedTuple):  # NamedTuples, not attrs classes: defining one of those costs validate ~0.5 ms
    """What is expected from a state on: events, time, outcome labels, groups of paths (None: too many)."""

    events: float
    mean: float
    labels: dict[str, float]
    groups: dict[Group, float] | None


def _relabel(label: str, outcome: str | None, step: str | None) -> str:
    """What the future's label becomes with this transition before it: a later outcome stays; else this one's
    outcome; else, with no outcome at all, the last step emitted (`o:` outcome, `s:` step, "" nothing yet)."""
    if label.startswith("o:"):
        return label
    if outcome:
        return f"o:{outcome}"
    return label or (f"s:{step}" if step else "")


def _outcomes(labels: dict[str, float]) -> dict[str, float]:
    """Outcome labels as the summary names them: the outcome, else the last step, else `none`."""
    named: dict[str, float] = {}
    for label, p in sorted(labels.items()):
        name = label[2:] if label else "none"
        named[name] = named.get(name, 0.0) + p
    return named


class _Part(NamedTuple):
    """A group of paths in the p95's mixture: a delay's exact law (`cdf` on `bounds`) after each of its `offsets`
    (its fixed time plus the other random delays), each with its probability (`cumulative`: their running sums)."""

    probability: float
    cdf: Callable[[int], float]
    bounds: tuple[int, int]
    offsets: list[int]
    cumulative: list[float]

    @classmethod
    def of(cls, probability: float, delay: Delay | None, offsets: dict[int, float]) -> _Part:
        ordered = sorted(offsets)
        cumulative = [0.0, *itertools.accumulate(offsets[o] for o in ordered)]
        bounds = delay.bounds if delay is not None else (0, 0)
        return cls(probability, delay_cdf(delay), bounds, ordered, cumulative)

    def span(self) -> tuple[int, int]:
        return self.offsets[0] + self.bounds[0], self.offsets[-1] + self.bounds[1]

    def reached(self, t: int) -> float:
        """P(the group's duration <= t): offsets after which the delay has surely or surely not ended are summed,
        the others asked."""
        offsets, cumulative, (low, high), cdf = self.offsets, self.cumulative, self.bounds, self.cdf
        done = bisect.bisect_right(offsets, t - high)
        begun = bisect.bisect_right(offsets, t - low)
        return cumulative[done] + sum((cumulative[j + 1] - cumulative[j]) * cdf(t - offsets[j])
                                      for j in range(done, begun))


def _convolve(first: dict[int, float], second: dict[int, float]) -> dict[int, float]:
    """The law of the sum of two independent whole numbers."""
    total: dict[int, float] = {}
    for a, p in first.items():
        for b, q in second.items():
            total[a + b] = total.get(a + b, 0.0) + p * q
    return total


def _mixture_quantile(parts: list[_Part], level: float = P95) -> int:
    """The smallest whole millisecond by which the mixture's probability reaches `level`: by regula falsi on
    whole milliseconds, with a bisection whenever a step kept more than half of the bracket."""
    target = level - 1e-9  # sums of probabilities that should reach it exactly may fall short by rounding
    reached = lambda t: sum(part.probability * part.reached(t) for part in parts)  # noqa: E731
    low = min(part.span()[0] for part in parts) - 1  # reached(low) < target <= reached(high)
    high = max(part.span()[1] for part in parts)
    at_low, at_high, bisect_next = 0.0, 1.0, False
    while high - low > 1:
        if bisect_next:
            t = (low + high) // 2
        else:
            t = low + int((target - at_low) / (at_high - at_low) * (high - low))
            t = min(max(t, low + 1), high - 1)
        value = reached(t)
        width = high - low
        if value >= target:
            high, at_high = t, value
        else:
            low, at_low = t, value
        bisect_next = not bisect_next and high - low > width // 2
    return high


def _quantile(ordered: list[int], level: float = P95) -> float:
    return float(ordered[max(0, math.ceil(level * len(ordered) - 1e-9) - 1)])
