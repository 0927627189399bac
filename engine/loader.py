"""Loading: a folder of chain files -> a validated, compiled `Catalog`, or every problem at once.

Nothing runs until everything is valid: each file is parsed safely, checked against the schema and
against what a schema cannot say, its templates are compiled, and each chain is dry-run along its
branches so undefined names, unknown Faker generators and template errors surface before any event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path as FsPath
from random import Random
from typing import Any

import attrs
import orjson
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import _yaml, schema
from .errors import ChainError, Path, Problem, did_you_mean
from .events import Clock
from .interpreter import ChainInstance, Node, Program
from .model import Chain
from .payload import RenderError, TemplateProblem
from .sandbox import new_environment

DATA_DIR = "data"
SCOPE = "vars, data, faker, random, steps, chain, event, elapsed_ms, delay_ms, visit"
VARS_SCOPE = "vars (those above this one), data, faker, random, chain"  # vars are drawn before any event
DRY_RUNS_PER_CHAIN = 64
TEMPLATE_SYNTAX_HINT = "check the {{ }} and {% %} pairs of this template"
_NO_ATTRIBUTE = re.compile(r"has no attribute '([^']*)'")


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
    return "" if parts == ["chain"] else " > ".join(parts)


class _FileReport:
    """Collects problems of one file, locating each by its path."""

    def __init__(self, file: str, doc: _yaml.Document | None, problems: list[Problem]) -> None:
        self.file, self.doc, self.problems = file, doc, problems

    def __call__(self, path: Path, message: str, hint: str = "", key: bool = False,
                 mark: _yaml.Mark | None = None) -> None:
        if mark is None:
            mark = self.doc.mark(path, key=key) if self.doc else _yaml.Mark(1, 1)
        line, column = mark.line, mark.column
        data = self.doc.data if self.doc else None
        self.problems.append(Problem(self.file, line, column, path, message, where(data, path), hint))


def _read(path: FsPath, report: _FileReport) -> _yaml.Document | None:
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        report((), f"not UTF-8 text: byte 0x{raw[error.start]:02x} cannot be decoded",
               "save the file as UTF-8", mark=_yaml.Mark(line, column))
        return None
    except OSError as error:
        report((), f"cannot read: {error.strerror}")
        return None
    try:
        return _yaml.load(text)
    except _yaml.YamlError as error:
        report(error.path, error.message, error.hint, mark=_yaml.Mark(error.line, error.column))
        return None


def _display(path: FsPath) -> str:
    try:
        return str(path.relative_to(FsPath.cwd()))
    except ValueError:
        return str(path)


def _load_data(
    folder: FsPath, problems: list[Problem], documents: dict[str, _yaml.Document]
) -> dict[str, Any]:
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
        message = "not a folder" if folder.exists() else "no such folder"
        raise ChainError([Problem(str(directory), 0, 0, (), message, "",
                                  "give the folder of chain files, e.g. --chains chains/")])
    documents: dict[str, _yaml.Document] = {}
    data = _load_data(folder / DATA_DIR, problems, documents)
    data_ok = not problems
    files = chain_files(folder)
    if not files:
        problems.append(Problem(
            _display(folder), 0, 0, (), "no chain files (*.yaml, *.yml) in this folder", "",
            "each chain is one YAML file in this folder; shared data lists go under data/",
        ))
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
        if doc.data is None:
            report((), "the file is empty", schema.CHAIN_FILE_HINT)
            continue
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
    programs = _compile(chains, env, data if data_ok else None, documents, problems)
    if problems:
        raise ChainError(problems)
    return Catalog(str(folder), tuple(chains), programs, data, documents)


def _compile(chains: Iterable[Chain], env: ImmutableSandboxedEnvironment, data: dict[str, Any] | None,
             documents: dict[str, _yaml.Document], problems: list[Problem]) -> dict[str, Program]:
    """Compile every chain; dry-run it too, unless a data file is broken (data is None): then its
    templates would fail for want of data, and those failures would only repeat the data file's problem."""
    programs: dict[str, Program] = {}
    for chain in chains:
        report = _FileReport(chain.file, documents[chain.file], problems)
        template_problems: list[TemplateProblem] = []
        program = Program.compile(chain, env, template_problems)
        for problem in template_problems:
            report(problem.path, problem.message, TEMPLATE_SYNTAX_HINT,
                   mark=_template_mark(documents[chain.file], problem))
        if template_problems or data is None:
            continue
        if _dry_run(program, data, report):
            programs[chain.name] = program
    return programs


def _template_mark(doc: _yaml.Document, problem: TemplateProblem) -> _yaml.Mark:
    """Where the template's failing line stands in the file.

    A literal block (|) keeps the template's lines: its line n is n lines below the `|`. Other styles
    fold or escape line breaks, so the failing line cannot be placed exactly: point at the value.
    """
    mark = doc.mark(problem.path)
    if mark.style != "|":
        return mark
    line = mark.line + problem.line
    text = doc.lines[line - 1] if line <= len(doc.lines) else ""
    return _yaml.Mark(line, len(text) - len(text.lstrip()) + 1)


def _dry_run(program: Program, data: dict[str, Any], report: _FileReport) -> bool:
    """Run the chain along every branch (up to DRY_RUNS_PER_CHAIN runs); report the first failure."""
    pending: list[list[int]] = [[]]
    runs = 0
    while pending and runs < DRY_RUNS_PER_CHAIN:
        prefix = pending.pop()
        taken: list[int] = []
        widths: list[int] = []

        def choose(node: Node, open_branches: Sequence[Node], rng: Random,
                   prefix: list[int] = prefix, taken: list[int] = taken, widths: list[int] = widths) -> Node:
            k = len(taken)
            pick = prefix[k] if k < len(prefix) else 0
            pick = min(pick, len(open_branches) - 1)
            taken.append(pick)
            widths.append(len(open_branches))
            return open_branches[pick]

        instance: ChainInstance | None = None
        try:
            instance = ChainInstance(
                program, 0, Random(f"dry-run:{runs}"), {"data": data}, _check_json, Clock(), choose
            )
            time = instance.start(0)
            while time is not None:
                time = instance.resume(time)
        except RenderError as error:
            _report_render_error(error, report, program.chain, data, list(instance.steps) if instance else [])
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


def _report_render_error(error: RenderError, report: _FileReport, chain: Chain, data: dict[str, Any],
                         emitted_steps: list[str]) -> None:
    message = str(error)
    hint = ""
    text = message.lower()
    emitted = ", ".join(emitted_steps) or "none yet"
    if "has no attribute" in text and report.doc is not None:
        explained = _explain_missing(message, _value_at(report.doc.data, error.path), chain, data, emitted)
        if explained:
            report(error.path, f"template error: {explained[0]}", explained[1])
            return
    if "undefined" in text or "has no attribute" in text:
        hint = f"names in scope: {VARS_SCOPE if error.path[:1] == ('vars',) else SCOPE}"
        if "steps" in text or "'dict object'" in text:
            hint += f"; steps.<id> holds events already emitted by this instance (here: {emitted})"
    elif "faker has no generator" in text:
        hint = "see https://faker.readthedocs.io/en/stable/providers.html for generator names"
    report(error.path, f"template error: {message}", hint)


def _value_at(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _did_you_mean(name: str, known: Iterable[str], noun: str) -> str:
    known = list(known)
    return did_you_mean(name, known, f"{noun}: {', '.join(known) or 'none'}")


def _explain_missing(message: str, source: Any, chain: Chain, data: dict[str, Any],
                     emitted: str) -> tuple[str, str] | None:
    """(message, hint) for `vars.x`, `steps.x` or `data.x` naming nothing, when the template shows which."""
    match = _NO_ATTRIBUTE.search(message)
    if not match or not isinstance(source, str):
        return None
    name = match.group(1)
    roots = [root for root in ("vars", "steps", "data")
             if re.search(rf"\b{root}\s*(\.\s*{re.escape(name)}\b|\[\s*['\"]{re.escape(name)}['\"])", source)]
    if len(roots) != 1:
        return None
    if roots[0] == "vars":
        if name in chain.vars:
            return (f"vars.{name} is used before it is set",
                    f"a var sees only the vars above it; move {name!r} up, above its first use")
        return f"vars.{name} is undefined", _did_you_mean(name, chain.vars, "vars of this chain")
    if roots[0] == "steps":
        ids = [step.id for step in chain.walk()]
        if name in ids:
            return (f"steps.{name} is not emitted yet",
                    f"steps.<id> holds events already emitted by this instance (here: {emitted})")
        return f"no step {name!r} in this chain", _did_you_mean(name, ids, "step ids in this chain")
    lists = "data.<name> is the file data/<name>.yaml of the chains folder; here"
    return f"data.{name} is undefined", _did_you_mean(name, sorted(data), lists)
