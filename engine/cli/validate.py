"""`chainsim validate`: check every file of a chains folder; print every problem, or that all is valid."""

from __future__ import annotations

import argparse
import sys

from .errors import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags of its own: --chains and --debug are common to every verb."""


def validate(args: argparse.Namespace) -> int:
    from ..load.catalog import load_catalog

    catalog = load_catalog(args.chains)
    names = len(catalog.chains)
    print(f"{catalog.directory}: {names} chain{'s' if names != 1 else ''} valid", file=sys.stderr)
    return EXIT_OK
