"""Loading: a folder of chain files -> a validated, compiled `Catalog`, or every problem at once.

Nothing runs until everything is valid: each file is parsed safely, checked against the schema and
against what a schema cannot say, its templates are compiled, and each chain is dry-run along its
branches so undefined names, unknown Faker generators and template errors surface before any event.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path as FsPath
from random import Random
from typing import Any

import attrs
import orjson
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import _yaml, schema
from .errors import ChainError, Path, Problem
from .events import Clock
from .interpreter import ChainInstance, Node, Program
from .model import Chain
from .payload import RenderError, TemplateProblem
from .sandbox import new_environment

DATA_DIR = "data"
SCOPE = "vars, data, faker, random, steps, chain, event, elapsed_ms, delay_ms, visit"
DRY_RUNS_PER_CHAIN = 64


@attrs.frozen
class Catalog:
    """Every chain of a folder, validated and compiled, with the shared data lists."""

    directory: str
    chains: tuple[Chain, ...]
    programs: dict[str, Program]
    data: dict[str, Any]
    documents: dict[str, _yaml.Document]

    def locate(self, file: str, path: Path) -> str:
        mark = self.documents[file].mark(path) if file in self.documents else _yaml.Mark(0, 0)
        return f"{file}:{mark.line}:{mark.column}"

    def shares(self) -> dict[str, float]:
        """Each chain's chance, in percent, of being the next instance started."""
        total = sum(c.weight for c in self.chains)
        return {c.name: 100.0 * c.weight / total for c in self.chains}


def where(data: Any, path: Path) -> str:
    """`chain 'x' > step 'y' > key 'delay.max'` for a path in a chain file."""
    name = data.get("name") if isinstance(data, dict) else None
    parts = [f"chain {name!r}" if isinstance(name, str) else "chain"]
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
    return " > ".join(parts)


class _FileReport:
    """Collects problems of one file, locating each by its path."""

    def __init__(self, file: str, doc: _yaml.Document | None, problems: list[Problem]) -> None:
        self.file, self.doc, self.problems = file, doc, problems

    def __call__(self, path: Path, message: str, hint: str = "", key: bool = False, line_offset: int = 0) -> None:
        mark = self.doc.mark(path, key=key) if self.doc else _yaml.Mark(1, 1)
        line, column = mark.line + line_offset, mark.column
        if line_offset:
            column = 1
        data = self.doc.data if self.doc else None
        self.problems.append(Problem(self.file, line, column, path, message, where(data, path), hint))


def _read(path: FsPath, report: _FileReport) -> _yaml.Document | None:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        report((), f"not UTF-8 text (byte {error.start})", "save the file as UTF-8")
        return None
    except OSError as error:
        report((), f"cannot read: {error.strerror}")
        return None
    try:
        return _yaml.load(text)
    except _yaml.YamlError as error:
        report.problems.append(Problem(report.file, error.line, error.column, (), error.message, "", error.hint))
        return None


def _display(path: FsPath) -> str:
    try:
        return str(path.relative_to(FsPath.cwd()))
    except ValueError:
        return str(path)


def _load_data(folder: FsPath, problems: list[Problem], documents: dict[str, _yaml.Document]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        report = _FileReport(_display(path), None, problems)
        doc = _read(path, report)
        if doc is not None:
            data[path.stem] = doc.data
            documents[report.file] = doc
    return data


def chain_files(directory: FsPath) -> list[FsPath]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_catalog(directory: str | FsPath) -> Catalog:
    """Load, validate and compile every chain file of a folder; ChainError lists every problem."""
    folder = FsPath(directory)
    problems: list[Problem] = []
    if not folder.is_dir():
        raise ChainError([Problem(str(directory), 0, 0, (), "no such folder", "", "give the folder of chain files, e.g. --chains chains/")])
    documents: dict[str, _yaml.Document] = {}
    data = _load_data(folder / DATA_DIR, problems, documents)
    files = chain_files(folder)
    if not files:
        problems.append(Problem(_display(folder), 0, 0, (), "no chain files (*.yaml) in this folder", "", "each chain is one YAML file, see CONTRIBUTING.md"))
    env = new_environment()
    chains: list[Chain] = []
    first_file: dict[str, str] = {}
    for path in files:
        report = _FileReport(_display(path), None, problems)
        doc = _read(path, report)
        if doc is None:
            continue
        report.doc = doc
        documents[report.file] = doc
        found = schema.check(doc, report.file)
        if found:
            problems += [attrs.evolve(p, where=where(doc.data, p.path)) for p in found]
            continue
        before = len(problems)
        chain = Chain.from_dict(doc.data, report.file, report)
        if chain.name in first_file:
            report(("name",), f"duplicate chain name {chain.name!r}",
                   f"chain names are unique across files; {first_file[chain.name]} uses it too")
        first_file.setdefault(chain.name, report.file)
        if len(problems) == before:
            chains.append(chain)
    programs = _compile(chains, env, data, documents, problems)
    if problems:
        raise ChainError(problems)
    return Catalog(str(folder), tuple(chains), programs, data, documents)


def _compile(chains: Iterable[Chain], env: ImmutableSandboxedEnvironment, data: dict[str, Any],
             documents: dict[str, _yaml.Document], problems: list[Problem]) -> dict[str, Program]:
    programs: dict[str, Program] = {}
    for chain in chains:
        report = _FileReport(chain.file, documents[chain.file], problems)
        template_problems: list[TemplateProblem] = []
        program = Program.compile(chain, env, template_problems)
        for problem in template_problems:
            report(problem.path, problem.message, "check the {{ }} and {% %} pairs of this template",
                   line_offset=_line_offset(documents[chain.file], problem))
        if template_problems:
            continue
        if _dry_run(program, data, report):
            programs[chain.name] = program
    return programs


def _line_offset(doc: _yaml.Document, problem: TemplateProblem) -> int:
    """Lines from the YAML value's mark to the template's failing line."""
    mark = doc.mark(problem.path)
    block = mark.style in ("|", ">")
    return problem.line if block else problem.line - 1


def _dry_run(program: Program, data: dict[str, Any], report: _FileReport) -> bool:
    """Run the chain along every branch (up to DRY_RUNS_PER_CHAIN runs); report the first failure."""
    pending: list[list[int]] = [[]]
    runs = 0
    while pending and runs < DRY_RUNS_PER_CHAIN:
        prefix = pending.pop()
        taken: list[int] = []
        widths: list[int] = []

        def choose(node: Node, open_branches: list[Node], rng: Random) -> Node:
            k = len(taken)
            pick = prefix[k] if k < len(prefix) else 0
            pick = min(pick, len(open_branches) - 1)
            taken.append(pick)
            widths.append(len(open_branches))
            return open_branches[pick]

        instance: ChainInstance | None = None
        try:
            instance = ChainInstance(program, 0, Random(f"dry-run:{runs}"), {"data": data}, _check_json, Clock(), choose)
            time = instance.start(0)
            while time is not None:
                time = instance.resume(time)
        except RenderError as error:
            _report_render_error(error, report, list(instance.steps) if instance else [])
            return False
        runs += 1
        for k in range(len(prefix), len(taken)):
            for alternative in range(1, widths[k]):
                pending.append([*taken[:k], alternative])
    return True


def _check_json(event: dict[str, Any]) -> None:
    try:
        orjson.dumps(event)
    except TypeError as error:  # pragma: no cover - to_json converts what templates return
        raise RenderError(("payload",), error) from error


def _report_render_error(error: RenderError, report: _FileReport, emitted_steps: list[str]) -> None:
    message = str(error)
    hint = ""
    text = message.lower()
    if "undefined" in text or "has no attribute" in text:
        hint = f"names in scope: {SCOPE}"
        if "steps" in text or "'dict object'" in text:
            emitted = ", ".join(emitted_steps) or "none yet"
            hint += f"; steps.<id> holds events already emitted by this instance (here: {emitted})"
    elif "faker has no generator" in text:
        hint = "see https://faker.readthedocs.io/en/stable/providers.html for generator names"
    report(error.path, f"template error: {message}", hint)
