"""`chainsim list`: each chain with its share in percent, its steps, delays and event types."""

from __future__ import annotations

import argparse

from .errors import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags of its own: --chains and --debug are common to every verb."""


def list_chains(args: argparse.Namespace) -> int:
    from ..load.catalog import load_catalog
    from ..load.describe import describe_catalog

    print(describe_catalog(load_catalog(args.chains)))
    return EXIT_OK
