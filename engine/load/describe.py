"""`chainsim list`: each chain with its share in percent, what one instance is expected to do (expect.py), its
steps, delays and event types."""

from __future__ import annotations

from .catalog import Catalog
from .expect import expect_catalog, summary
from .model import Step


def _step_lines(step: Step, depth: int, share: float | None = None) -> list[str]:
    pad = "  " * depth
    label = f"{step.id}" + (f" ({share:.0f}%)" if share is not None else "")
    after = f"  after {step.delay.describe()}" if step.delay else ""
    jump = f"  -> {step.goto}" if step.goto else ("  (ends)" if step.end else "")
    cap = f"  (at most {step.max_visits}x)" if step.max_visits else ""
    what = step.event_type or "one of:"
    lines = [f"{pad}{label:<28} {what}{after}{jump}{cap}"]
    total = sum(b.weight or 0 for b in step.branches)
    for branch in step.branches:
        lines += _step_lines(branch, depth + 1, 100.0 * (branch.weight or 0) / total)
        for child in branch.steps:
            lines += _step_lines(child, depth + 2)
    return lines


def describe_catalog(catalog: Catalog) -> str:
    shares = catalog.shares()
    expected = expect_catalog(catalog)
    lines = []
    for chain in catalog.chains:
        lines.append(f"{chain.name}  {shares[chain.name]:.1f}%  {summary(expected[chain.name])}  ({chain.file})")
        for step in chain.steps:
            lines += _step_lines(step, 1)
    return "\n".join(lines)
