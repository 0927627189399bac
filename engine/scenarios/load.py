"""Loading a scenario: a file (or a mapping given from Python) -> a checked scenario applied to a catalog, or
every problem at once, located in the scenario's file like a chain file's.

The file is read within the same bounds as chain files, checked against schemas/scenario.schema.json and
against the catalog (every chain, step, branch, var and data list it names), its templates compiled in the
catalog's sandbox, and each changed chain and each scripted start dry-run before any event.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any

import attrs

from ..errors import LoadError, Path, Problem
from ..hints import hint
from ..load import schema, yaml_marks
from ..load.catalog import Catalog
from ..load.dryrun import dry_run
from ..load.report import FileReport, read_document, where
from ..templates.compiler import TemplateProblem
from ..templates.fakers import Fakers
from .apply import Applied, apply
from .model import Scenario

SCHEMA = "scenario.schema.json"
TOP = "scenario"
SCENARIO_KEYS = ("chains", "script")  # the paths of templates written in a scenario start with one of these


def load_scenario(source: str | FsPath | dict[str, Any], catalog: Catalog) -> Applied:
    """A scenario file (or a mapping with the same keys, given from Python) applied to `catalog`; LoadError
    lists every problem."""
    problems: list[Problem] = []
    if isinstance(source, dict):
        report = FileReport("<scenario>", yaml_marks.Document(source, {(): yaml_marks.Mark(1, 1)}, {}), problems, TOP)
        doc: yaml_marks.Document | None = report.doc
    else:
        report, doc = read_document(FsPath(source), problems, top=TOP)
    if doc is None:
        raise LoadError(problems)
    if doc.data is None:
        report((), "the file is empty", hint("scenario", "file"))
        raise LoadError(problems)
    found = schema.check(doc, report.file, SCHEMA)
    if found:
        raise LoadError([attrs.evolve(p, where=where(doc.data, p.path, TOP)) for p in found])
    scenario = Scenario.from_dict(doc.data, report.file, catalog, report)
    if problems:
        raise LoadError(problems)
    template_problems: list[TemplateProblem] = []
    applied = apply(scenario, catalog, template_problems)
    for problem in template_problems:
        report(problem.path, problem.message, hint("template", "syntax"))
    if not problems:
        _dry_run(applied, catalog, report)
    if problems:
        raise LoadError(problems)
    return applied


class _Routed:
    """Reports a dry run's failure where its template is written: in the scenario, or in the chain's file."""

    def __init__(self, scenario: FileReport, chain: FileReport, name: str) -> None:
        self.scenario, self.chain, self.name = scenario, chain, name

    def __call__(self, path: Path, message: str, hint_text: str = "", **marks: Any) -> None:
        if path[:1] and path[0] in SCENARIO_KEYS:
            self.scenario(path, message, hint_text, **marks)
        else:  # the chain's own template, failing with what the scenario changed
            self.chain(path, f"{message} (with the changes of scenario {self.name!r})", hint_text, **marks)


def _dry_run(applied: Applied, catalog: Catalog, report: FileReport) -> None:
    fakers, derived = Fakers(), applied.catalog
    changed = [name for name in derived.programs if derived.programs[name] is not catalog.programs.get(name)
               or (applied.scenario.data and name in derived.programs)]
    for name in changed:
        program = derived.programs[name]
        chain_report = FileReport(program.chain.file, catalog.documents.get(program.chain.file), report.problems)
        dry_run(program, derived.data, _Routed(report, chain_report, applied.scenario.name), fakers)
    for _, name, start in _distinct(applied.starts):
        program = derived.programs[name]
        chain_report = FileReport(program.chain.file, catalog.documents.get(program.chain.file), report.problems)
        dry_run(program, derived.data, _Routed(report, chain_report, applied.scenario.name), fakers, start)


def _distinct(starts: tuple[tuple[float, str, Any], ...]) -> list[tuple[float, str, Any]]:
    """One of each scripted start (repeats share their Start)."""
    seen: set[int] = set()
    result = []
    for at, name, start in starts:
        if id(start) not in seen:
            seen.add(id(start))
            result.append((at, name, start))
    return result
