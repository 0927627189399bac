"""Problems located in a file: `where` names the chain, step and key of a path; `FileReport` collects them."""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any

from ..errors import Path, Problem
from ..hints import hint
from . import yaml_marks
from .files import FileProblem, display, read_bytes


def where(data: Any, path: Path, top: str = "chain") -> str:
    """`chain 'x' > step 'y' > key 'delay.max'` for a path in a chain file (`top`: what the file is)."""
    name = data.get("name") if isinstance(data, dict) else None
    parts = [f"{top} {name!r}" if isinstance(name, str) else top]
    node, rest, i = data, "", 0
    while i < len(path):
        part = path[i]
        nxt = path[i + 1] if i + 1 < len(path) else None
        if part in ("steps", "branches") and isinstance(nxt, int) and not rest:
            kind = "step" if part == "steps" else "branch"
            try:
                node = node[part][nxt]
            except (KeyError, IndexError, TypeError):
                node = None
            label = node.get("id") if isinstance(node, dict) else None
            parts.append(f"{kind} {label!r}" if isinstance(label, str) else f"{kind} #{nxt + 1}")
            i += 2
            continue
        rest += f"[{part}]" if isinstance(part, int) else (f".{part}" if rest else str(part))
        i += 1
    if rest:
        parts.append(f"key {rest!r}")
    return "" if parts == [top] else " > ".join(parts)


class FileReport:
    """Collects the problems of one file, locating each by its path."""

    def __init__(self, file: str, doc: yaml_marks.Document | None, problems: list[Problem], top: str = "chain") -> None:
        self.file, self.doc, self.problems, self.top = file, doc, problems, top

    def __call__(self, path: Path, message: str, hint: str = "", key: bool = False,
                 mark: yaml_marks.Mark | None = None) -> None:
        if mark is None:
            mark = self.doc.mark(path, key=key) if self.doc else yaml_marks.Mark(1, 1)
        data = self.doc.data if self.doc else None
        self.problems.append(Problem(self.file, mark.line, mark.column, path, message,
                                     where(data, path, self.top), hint))

    def entry(self, message: str, hint: str = "") -> None:
        """A problem with the file as a whole (it cannot be read): no line."""
        self.problems.append(Problem(self.file, 0, 0, (), message, "", hint))


def read_document(path: FsPath, problems: list[Problem],
                  top: str = "chain") -> tuple[FileReport, yaml_marks.Document | None]:
    """Read and parse one YAML file within the bounds; its report, and the document (None when it failed)."""
    report = FileReport(display(path), None, problems, top)
    try:
        raw = read_bytes(path)
    except FileProblem as problem:
        report.entry(problem.message, problem.hint)
        return report, None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        report((), f"not UTF-8 text: byte 0x{raw[error.start]:02x} cannot be decoded",
               hint("file", "utf-8"), mark=yaml_marks.Mark(line, column))
        return report, None
    try:
        doc = yaml_marks.load(text)
    except yaml_marks.YamlError as error:
        report(error.path, error.message, error.hint, mark=yaml_marks.Mark(error.line, error.column))
        return report, None
    except yaml_marks.YamlErrors as refused:
        report.doc = refused.document  # placed in their chain and step
        for each in refused.errors:
            report(each.path, each.message, each.hint, mark=yaml_marks.Mark(each.line, each.column))
        report.doc = None
        return report, None
    report.doc = doc
    return report, doc
