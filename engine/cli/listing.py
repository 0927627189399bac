"""`chainsim list`: each chain with its share in percent, what an instance is expected to do, its steps,
delays and event types; with --scenario, as that scenario runs them."""

from __future__ import annotations

import argparse
from typing import Any

from .errors import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .parser import names

    parser.add_argument("--only", type=names, metavar="NAME[,NAME...]",
                        help="list only these chains (names or globs such as 'agent_*')")
    parser.add_argument("--scenario", metavar="FILE",
                        help="list the chains as this scenario runs them (its weights, branch weights and delays)")


def scenario_catalog(catalog: Any, scenario: str | None) -> Any:
    """The catalog as a scenario changes it (its weights, branch weights, delays, vars, data), or itself."""
    if scenario is None:
        return catalog
    from ..scenarios.load import load_scenario

    return load_scenario(scenario, catalog).catalog


def list_chains(args: argparse.Namespace) -> int:
    from ..load.catalog import load_catalog
    from ..load.describe import describe_catalog

    catalog = scenario_catalog(load_catalog(args.chains), args.scenario)
    print(describe_catalog(catalog.select(args.only) if args.only else catalog))
    return EXIT_OK
