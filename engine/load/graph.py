"""Chains as state diagrams: Mermaid's `stateDiagram-v2` (GitHub renders it) or Graphviz dot.

A `Diagram` is read off a compiled `Program`. Each step is a box: its event type (a step with branches says
`one of`, and is drawn dashed or as a diamond), its delay as written, `max_visits`, its outcome. Arrows: the
flow from step to step, each branch with its weight normalised to percent, `goto` jumps, where the flow goes
when a step is used up (`max_visits`), and the ends. Weights and delays come through `Overrides`, so a
scenario that changes them gets the diagram of what it runs. The text formats are pure functions of diagrams.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from .overrides import AS_WRITTEN, Overrides

if TYPE_CHECKING:
    from ..run.interpreter import Program
    from .catalog import Catalog

FORMATS = ("mermaid", "dot")
START, END = "start", "end"  # arrow ends that are no box (box keys are s0, s1, ...)
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/,()%+=@")


@attrs.frozen
class Box:
    """A step: `title` is its id, `lines` what it emits and when."""

    key: str
    title: str
    lines: tuple[str, ...]
    choice: bool = False  # a step with branches: it emits nothing, one of its branches does


@attrs.frozen
class Arrow:
    source: str  # a box's key, or START
    target: str  # a box's key, or END
    label: str = ""
    kind: str = "flow"  # flow | branch | goto | skip


@attrs.frozen
class Diagram:
    chain: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]


def diagram(program: Program, overrides: Overrides = AS_WRITTEN) -> Diagram:
    """The diagram of a compiled chain, with the weights and delays `overrides` gives."""
    boxes, arrows = [], [Arrow(START, _key(0))]
    for node in program.nodes:
        step, key = node.step, _key(node.index)
        delay = overrides.delay(node)
        lines = [step.event_type or "one of"]
        lines += [f"after {delay.describe()}"] if delay is not None else []
        lines += [f"at most {step.max_visits}x"] if step.max_visits is not None else []
        lines += [f"outcome: {step.outcome}"] if step.outcome else []
        boxes.append(Box(key, step.id, tuple(lines), bool(node.branches)))
        if node.branches:
            total = sum(overrides.weight(branch) for branch in node.branches)
            arrows += [Arrow(key, _key(branch.index), _percent(overrides.weight(branch) / total), "branch")
                       for branch in node.branches]
            if step.max_visits is None and all(branch.max_visits is not None for branch in node.branches):
                arrows.append(Arrow(key, _key(node.next), "no branch left", "skip"))
        elif step.goto is not None:
            arrows.append(Arrow(key, _key(node.following), "goto", "goto"))
        else:
            arrows.append(Arrow(key, _key(node.following)))
        if step.max_visits is not None and (node.branches or node.next != node.following):
            arrows.append(Arrow(key, _key(node.next), f"skipped after {step.max_visits}x", "skip"))
    return Diagram(program.name, tuple(boxes), tuple(arrows))


def catalog_diagrams(catalog: Catalog, overrides: Mapping[str, Overrides] | None = None) -> list[Diagram]:
    """Every chain's diagram, in the catalog's order."""
    changes = overrides or {}
    return [diagram(catalog.programs[chain.name], changes.get(chain.name, AS_WRITTEN)) for chain in catalog.chains]


def render(diagrams: Sequence[Diagram], format: str = "mermaid") -> str:
    """The diagrams as one text in `format` (one of FORMATS), ending in a newline."""
    return mermaid(diagrams) if format == "mermaid" else dot(diagrams)


def mermaid(diagrams: Sequence[Diagram]) -> str:
    """One `stateDiagram-v2`: a chain alone, titled with its name; several, each a composite state."""
    many = len(diagrams) > 1
    lines = [] if many else ["---", f"title: {diagrams[0].chain}", "---"]
    lines.append("stateDiagram-v2")
    choices = []
    for number, chart in enumerate(diagrams):
        prefix, pad = (f"c{number}_", " " * 8) if many else ("", " " * 4)
        if many:
            lines.append(f'    state "{chart.chain}" as c{number} {{')
        for box in chart.boxes:
            lines.append(f'{pad}state "{box.title}" as {prefix}{box.key}')
            lines += [f"{pad}{prefix}{box.key} : {_mermaid_text(line)}" for line in box.lines]
        for arrow in chart.arrows:
            source = "[*]" if arrow.source == START else prefix + arrow.source
            target = "[*]" if arrow.target == END else prefix + arrow.target
            lines.append(f"{pad}{source} --> {target}" + (f" : {_mermaid_text(arrow.label)}" if arrow.label else ""))
        if many:
            lines.append("    }")
        choices += [prefix + box.key for box in chart.boxes if box.choice]
    if choices:
        lines += ["    classDef choice stroke-dasharray:4", f"    class {','.join(choices)} choice"]
    return "\n".join(lines) + "\n"


def dot(diagrams: Sequence[Diagram]) -> str:
    """One Graphviz `digraph`: a chain alone, labelled with its name; several, each a cluster."""
    many = len(diagrams) > 1
    name = "chains" if many else diagrams[0].chain
    lines = [f"digraph {_dot_text(name)} {{", "    graph [fontname=Helvetica];",
             "    node [shape=box, style=rounded, fontname=Helvetica];", "    edge [fontname=Helvetica, fontsize=10];"]
    if not many:
        lines.append(f"    label={_dot_text(name)}; labelloc=t;")
    for number, chart in enumerate(diagrams):
        prefix, pad = (f"c{number}_", " " * 8) if many else ("", " " * 4)
        if many:
            lines += [f"    subgraph cluster_{number} {{", f"        label={_dot_text(chart.chain)};"]
        lines.append(f"{pad}{prefix}{START} [shape=point, width=0.15];")
        lines.append(f"{pad}{prefix}{END} [shape=doublecircle, label=\"\", width=0.12];")
        for box in chart.boxes:
            shape = ", shape=diamond, style=dashed" if box.choice else ""
            label = _dot_text("\n".join((box.title, *box.lines)))
            lines.append(f"{pad}{prefix}{box.key} [label={label}{shape}];")
        for arrow in chart.arrows:
            attributes = [f"label={_dot_text(arrow.label)}"] if arrow.label else []
            attributes += ["style=dashed"] if arrow.kind == "skip" else []
            tail = f" [{', '.join(attributes)}]" if attributes else ""
            lines.append(f"{pad}{prefix}{arrow.source} -> {prefix}{arrow.target}{tail};")
        if many:
            lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _key(index: int | None) -> str:
    return END if index is None else f"s{index}"


def _percent(share: float) -> str:
    return f"{100 * share:.3g}%"


def _mermaid_text(text: str) -> str:
    """Text as Mermaid shows it: anything beyond letters, digits, space and `._-:/,()%+=@` as an entity code
    (`#59;` for `;`), so no event type or outcome can be read as Mermaid syntax or markup."""
    return "".join(c if c in _PLAIN else f"#{ord(c)};" for c in text)


def _dot_text(text: str) -> str:
    """A dot string: quoted, with its quotes and backslashes escaped and its line breaks as `\\n`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
