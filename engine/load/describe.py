"""`chainsim list`: each chain with its share in percent, what one instance is expected to do (expect.py), its
steps, delays and event types, as its compiled program runs them (so a scenario's weights and delays show)."""

from __future__ import annotations

from ..run.interpreter import Node, Program
from .catalog import Catalog
from .expect import expect_catalog, summary
from .model import Step


def _step_lines(step: Step, nodes: dict[str, Node], depth: int, share: float | None = None) -> list[tuple[str, str]]:
    """(the step's label, the rest of its line) for the step and what it contains."""
    node = nodes[step.id]
    label = "  " * depth + step.id + (f" ({share:.0f}%)" if share is not None else "")
    after = f"  after {node.delay.describe()}" if node.delay else ""
    jump = f"  -> {step.goto}" if step.goto else ("  (ends)" if step.end else "")
    cap = f"  (at most {step.max_visits}x)" if step.max_visits else ""
    lines = [(label, f"{step.event_type or 'one of:'}{after}{jump}{cap}")]
    total = sum(nodes[b.id].weight for b in step.branches)
    for branch in step.branches:
        lines += _step_lines(branch, nodes, depth + 1, 100.0 * nodes[branch.id].weight / total if total else 0.0)
        for child in branch.steps:
            lines += _step_lines(child, nodes, depth + 2)
    return lines


def describe_program(program: Program) -> list[str]:
    """A chain's steps, one line each, in columns (labels of any length)."""
    nodes = {node.step.id: node for node in program.nodes}
    rows = [row for step in program.chain.steps for row in _step_lines(step, nodes, 1)]
    width = max(28, *(len(label) + 1 for label, _ in rows))
    return [f"{label:<{width}} {rest}" for label, rest in rows]


def describe_catalog(catalog: Catalog) -> str:
    shares = catalog.shares()
    expected = expect_catalog(catalog)
    lines = []
    for chain in catalog.chains:
        lines.append(f"{chain.name}  {shares[chain.name]:.1f}%  {summary(expected[chain.name])}  ({chain.file})")
        lines += describe_program(catalog.programs[chain.name])
    return "\n".join(lines)


def _step_data(step: Step, nodes: dict[str, Node], share: float | None = None) -> dict[str, object]:
    node = nodes[step.id]
    data: dict[str, object] = {"id": step.id, "event_type": step.event_type,
                               "after": node.delay.describe() if node.delay else None}
    if share is not None:
        data["share"] = round(share, 2)
    if step.goto:
        data["goto"] = step.goto
    if step.end:
        data["end"] = True
    if step.max_visits:
        data["max_visits"] = step.max_visits
    if step.branches:
        total = sum(nodes[b.id].weight for b in step.branches)
        data["branches"] = [{**_step_data(branch, nodes, 100.0 * nodes[branch.id].weight / total if total else 0.0),
                             "steps": [_step_data(child, nodes) for child in branch.steps]}
                            for branch in step.branches]
    return data


def catalog_data(catalog: Catalog) -> dict[str, object]:
    """What `list` prints, as JSON-ready data (the server's GET /catalog)."""
    shares = catalog.shares()
    expected = expect_catalog(catalog)
    chains = []
    for chain in catalog.chains:
        program = catalog.programs[chain.name]
        nodes = {node.step.id: node for node in program.nodes}
        expectation = expected[chain.name]
        chains.append({
            "name": chain.name,
            "share": round(shares[chain.name], 2),
            "file": chain.file,
            "event_types": sorted({s.event_type for s in chain.walk() if s.event_type}),
            "expected": None if expectation is None else {
                "events": round(expectation.events, 3), "mean_ms": round(expectation.mean_ms, 1),
                "p95_ms": round(expectation.p95_ms, 1),
                "outcomes": {k: round(v, 4) for k, v in expectation.outcomes.items()}},
            "steps": [_step_data(step, nodes) for step in chain.steps],
        })
    return {"chains": chains}
