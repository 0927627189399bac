"""`chainsim validate`: check every file of a chains folder, and the scenarios that run on it; print every
problem, or that all is valid and what one instance of each chain is expected to do."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import LoadError
from .errors import EXIT_OK

SCENARIOS = "scenarios"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenarios", metavar="DIR", default=None,
                        help=f"check every scenario file of DIR against the chains too (default: ./{SCENARIOS}/ when "
                             "it exists)")
    parser.add_argument("--scenario", action="append", default=[], metavar="FILE",
                        help="check this scenario file against the chains (repeatable)")


def validate(args: argparse.Namespace) -> int:
    from ..load.catalog import load_catalog
    from ..load.expect import expect_catalog, summary
    from ..load.files import display, yaml_files
    from ..scenarios.load import load_scenario

    catalog = load_catalog(args.chains)
    folder = Path(args.scenarios) if args.scenarios else Path(SCENARIOS)
    files = [Path(f) for f in args.scenario]
    if args.scenarios or (not files and folder.is_dir()):
        files += yaml_files(folder)
    problems = []
    for file in files:
        try:
            load_scenario(file, catalog)
        except LoadError as error:
            problems += error.problems
    if problems:
        raise LoadError(problems)
    names = len(catalog.chains)
    line = f"{catalog.directory}: {names} chain{'s' if names != 1 else ''} valid"
    if files:
        where = display(folder) if not args.scenario else ", ".join(display(f) for f in files)
        line += f"; {where}: {len(files)} scenario{'s' if len(files) != 1 else ''} valid"
    lines = [line]
    width = max(len(chain.name) for chain in catalog.chains)
    lines += [f"  {name:<{width}}  {summary(expected)}" for name, expected in expect_catalog(catalog).items()]
    print("\n".join(lines), file=sys.stderr)
    return EXIT_OK
