"""The command: parse the arguments, dispatch to the verb's module, and turn errors into exit codes here only."""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

from ..errors import ChainsimError, command_text
from . import graph, listing, run, serve, validate
from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_INVALID, internal_text
from .parser import VERBS, build_parser

DISPATCH = {"run": run.run, "validate": validate.validate, "list": listing.list_chains, "graph": graph.graph,
            "serve": serve.serve}


def console() -> int:
    """The `chainsim` command and `python -m engine`: main() with the cycle collector kept out of the way.

    While the command starts (imports, loading and checking the chains) nothing it builds is garbage worth
    collecting, so the collector is off until the run begins (engine/cli/process.py: settle_memory; validate
    never turns it on). At exit everything is frozen first: CPython's shutdown otherwise runs full
    collections over every object, about 0.13 s on the development VM, more than the rest of `validate`
    after the imports.
    """
    gc.disable()
    try:
        return main()
    except KeyboardInterrupt:  # Ctrl-C before a run has begun (a run itself stops cleanly on it)
        print("chainsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line, for programs and tests; `chainsim` and `python -m engine` run it through console()."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in (*VERBS, "-h", "--help"):
        args_list.insert(0, "run")
    args = build_parser().parse_args(args_list)
    try:
        return DISPATCH[args.verb](args)
    except ChainsimError as error:
        print(command_text(error), file=sys.stderr)
        return EXIT_INVALID
    except Exception as error:
        if args.debug:
            raise
        print(internal_text(error), file=sys.stderr)
        return EXIT_INTERNAL
