"""`chainsim list`: each chain with its share in percent, its steps, delays and event types."""

from __future__ import annotations

import argparse

from .errors import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .parser import names

    parser.add_argument("--only", type=names, metavar="NAME[,NAME...]",
                        help="list only these chains (names or globs such as 'agent_*')")


def list_chains(args: argparse.Namespace) -> int:
    from ..load.catalog import load_catalog
    from ..load.describe import describe_catalog

    catalog = load_catalog(args.chains)
    print(describe_catalog(catalog.select(args.only) if args.only else catalog))
    return EXIT_OK
