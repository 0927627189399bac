"""Loading: a folder of chain files -> a validated, compiled `Catalog`, or every problem at once.

Nothing runs until everything is valid: each file is read within its bounds and parsed safely, checked
against the schema and against what a schema cannot say, its templates are compiled, and each chain is
dry-run along its branches so undefined names, unknown Faker generators and template errors surface
before any event.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path as FsPath
from typing import Any

import attrs
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import LoadError, Path, Problem, TemplateRunError, UsageError, json_path
from ..hints import hint, known_or_close
from ..run.interpreter import Program, unbounded_loop
from ..templates.compiler import RenderError, TemplateProblem
from ..templates.fakers import Fakers
from ..templates.sandbox import new_environment
from . import schema, yaml_marks
from .dryrun import dry_run
from .files import display, yaml_files
from .model import Chain
from .report import FileReport, read_document, where

DATA_DIR = "data"


@attrs.frozen
class Catalog:
    """Every chain of a folder, validated and compiled, with the shared data lists.

    A catalog is read-only once loaded: several runs (in several threads) may use one.
    """

    directory: str
    chains: tuple[Chain, ...]
    programs: dict[str, Program]
    data: dict[str, Any]
    documents: dict[str, yaml_marks.Document]
    env: Any = None  # the sandbox the templates were compiled in (a scenario compiles its own there too)

    def mark(self, file: str, path: Path) -> yaml_marks.Mark:
        return self.documents[file].mark(path) if file in self.documents else yaml_marks.Mark(0, 0)

    def locate(self, file: str, path: Path) -> str:
        mark = self.mark(file, path)
        return f"{file}:{mark.line}:{mark.column}"

    def shares(self) -> dict[str, float]:
        """Each chain's chance, in percent, of being the next instance started."""
        total = sum(c.weight for c in self.chains)
        return {c.name: 100.0 * c.weight / total for c in self.chains}

    def select(self, patterns: Iterable[str]) -> Catalog:
        """The catalog of the chains whose names match `patterns` (names or globs such as `agent_*`), in the
        catalog's order; UsageError for a pattern that matches no chain."""
        names = [chain.name for chain in self.chains]
        wanted: set[str] = set()
        for pattern in patterns:
            matched = fnmatch.filter(names, pattern)
            if not matched:
                known = "chains here" if any(c in pattern for c in "*?[") else "chains"
                raise UsageError(f"--only {pattern!r} names no chain of {self.directory}",
                                 known_or_close(pattern, names, known))
            wanted.update(matched)
        chains = tuple(chain for chain in self.chains if chain.name in wanted)
        return attrs.evolve(self, chains=chains, programs={c.name: self.programs[c.name] for c in chains})

    def chain_of(self, file: str) -> Chain | None:
        return next((chain for chain in self.chains if chain.file == file), None)

    def template_error(self, error: RenderError) -> TemplateRunError:
        """A template that failed at run time, located where it is written: file, line, chain, step, key."""
        mark = self.mark(error.file, error.path)
        chain = self.chain_of(error.file)
        document = self.documents.get(error.file)
        place = where(document.data if document else None, error.path)
        step = _step_at(chain, error.path) if chain else None
        key = ".".join(str(p) for p in error.path[len(step.path):]) if step else json_path(error.path)[2:]
        problem = Problem(error.file, mark.line, mark.column, error.path, f"template error at run time: {error}",
                          place, hint("template", "at run time"))
        return TemplateRunError(problem, chain.name if chain else "", step.id if step else None, key, error.error)


def _step_at(chain: Chain, path: Path) -> Any:
    """The deepest step whose path starts `path`."""
    found = None
    for step in chain.walk():
        if path[:len(step.path)] == step.path and (found is None or len(step.path) > len(found.path)):
            found = step
    return found


def _load_data(folder: FsPath, problems: list[Problem], documents: dict[str, yaml_marks.Document]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for path in yaml_files(folder):
        report, doc = read_document(path, problems, top="data file")
        if doc is not None:
            data[path.stem] = doc.data
            documents[report.file] = doc
    return data


def load_catalog(directory: str | FsPath) -> Catalog:
    """Load, validate and compile every chain file of a folder; LoadError lists every problem."""
    folder = FsPath(directory)
    problems: list[Problem] = []
    if not folder.is_dir():
        message = "not a folder" if folder.exists() else "no such folder"
        raise LoadError([Problem(str(directory), 0, 0, (), message, "", hint("folder", "missing"))])
    documents: dict[str, yaml_marks.Document] = {}
    data = _load_data(folder / DATA_DIR, problems, documents)
    data_ok = not problems
    files = yaml_files(folder)
    if not files:
        problems.append(Problem(display(folder), 0, 0, (), "no chain files (*.yaml, *.yml) in this folder", "",
                                hint("folder", "no chains")))
    chains: list[Chain] = []
    first_file: dict[str, str] = {}
    for path in files:
        report, doc = read_document(path, problems)
        if doc is None:
            continue
        documents[report.file] = doc
        if doc.data is None:
            report((), "the file is empty", hint("file", "empty"))
            continue
        found = schema.check(doc, report.file)
        if found:
            problems += [attrs.evolve(p, where=where(doc.data, p.path)) for p in found]
            continue
        before = len(problems)
        chain = Chain.from_dict(doc.data, report.file, report)
        if chain.name in first_file:
            report(("name",), f"duplicate chain name {chain.name!r}",
                   hint("model", "duplicate chain", other=first_file[chain.name]))
        first_file.setdefault(chain.name, report.file)
        if len(problems) == before:
            chains.append(chain)
    env = new_environment()
    programs = _compile(chains, env, data if data_ok else None, documents, problems)
    if problems:
        raise LoadError(problems)
    return Catalog(str(folder), tuple(chains), programs, data, documents, env)


def _compile(chains: Iterable[Chain], env: ImmutableSandboxedEnvironment, data: dict[str, Any] | None,
             documents: dict[str, yaml_marks.Document], problems: list[Problem]) -> dict[str, Program]:
    """Compile every chain; dry-run it too, unless a data file is broken (data is None): then its
    templates would fail for want of data, and those failures would only repeat the data file's problem."""
    programs: dict[str, Program] = {}
    fakers = Fakers()  # the dry run's own: nothing of it is left for the runs
    for chain in chains:
        report = FileReport(chain.file, documents[chain.file], problems)
        template_problems: list[TemplateProblem] = []
        program = Program.compile(chain, env, template_problems)
        for problem in template_problems:
            report(problem.path, problem.message, hint("template", "syntax"),
                   mark=_template_mark(documents[chain.file], problem))
        loop = unbounded_loop(program)
        if loop is not None:  # the dry run would never end
            jump = next((node for node in loop if node.step.goto is not None), loop[-1])
            report((*jump.step.path, "goto") if jump.step.goto else jump.step.path,
                   f"a loop no max_visits bounds: {' > '.join(node.step.id for node in loop)} > {loop[0].step.id}",
                   hint("model", "loop without bound", steps=", ".join(node.step.id for node in loop)))
            continue
        if template_problems or data is None:
            continue
        if dry_run(program, data, report, fakers):
            programs[chain.name] = program
    return programs


def _template_mark(doc: yaml_marks.Document, problem: TemplateProblem) -> yaml_marks.Mark:
    """Where the template's failing line stands in the file.

    A literal block (|) keeps the template's lines: its line n is n lines below the `|`. Other styles
    fold or escape line breaks, so the failing line cannot be placed exactly: point at the value.
    """
    mark = doc.mark(problem.path)
    if mark.style != "|":
        return mark
    line = mark.line + problem.line
    text = doc.lines[line - 1] if line <= len(doc.lines) else ""
    return yaml_marks.Mark(line, len(text) - len(text.lstrip()) + 1)
