"""`chainsim graph`: each chain as a state diagram on stdout, Mermaid (GitHub renders it) or Graphviz dot."""

from __future__ import annotations

import argparse
import sys

from .errors import EXIT_OK
from .listing import scenario_catalog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .parser import names

    parser.add_argument("--chain", metavar="NAME", help="draw only this chain")
    parser.add_argument("--only", type=names, metavar="NAME[,NAME...]",
                        help="draw only these chains (names or globs such as 'agent_*')")
    parser.add_argument("--scenario", metavar="FILE",
                        help="draw the chains as this scenario runs them (its weights, branch weights and delays)")
    # The formats are engine/load/graph.py's FORMATS, checked when the verb runs: importing the renderer to
    # build the parser would load the whole engine before every command.
    parser.add_argument("--format", default="mermaid", metavar="FORMAT",
                        help="mermaid (the default: a stateDiagram-v2, which GitHub renders) or dot (Graphviz: "
                             "pipe it to dot -Tsvg)")


def graph(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..hints import hint, known_or_close
    from ..load.catalog import load_catalog
    from ..load.graph import FORMATS, catalog_diagrams, render

    if args.format not in FORMATS:
        raise UsageError(f"--format {args.format!r} is not a diagram format", hint("usage", "graph format"))
    if args.chain is not None and args.only:
        raise UsageError("give --chain (one chain) or --only (several), not both")
    catalog = scenario_catalog(load_catalog(args.chains), args.scenario)
    if args.chain is not None:
        known = [chain.name for chain in catalog.chains]
        if args.chain not in known:
            raise UsageError(f"--chain {args.chain!r} names no chain of {catalog.directory}",
                             known_or_close(args.chain, known, "chains"))
        catalog = catalog.select([args.chain])
    elif args.only:
        catalog = catalog.select(args.only)
    sys.stdout.write(render(catalog_diagrams(catalog), args.format))
    return EXIT_OK
