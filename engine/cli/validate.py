"""`chainsim validate`: check every file of a chains folder; print every problem, or that all is valid and what
one instance of each chain is expected to do."""

from __future__ import annotations

import argparse
import sys

from .errors import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags of its own: --chains and --debug are common to every verb."""


def validate(args: argparse.Namespace) -> int:
    from ..load.catalog import load_catalog
    from ..load.expect import expect_catalog, summary

    catalog = load_catalog(args.chains)
    names = len(catalog.chains)
    lines = [f"{catalog.directory}: {names} chain{'s' if names != 1 else ''} valid"]
    width = max(len(chain.name) for chain in catalog.chains)
    lines += [f"  {name:<{width}}  {summary(expected)}" for name, expected in expect_catalog(catalog).items()]
    print("\n".join(lines), file=sys.stderr)
    return EXIT_OK
