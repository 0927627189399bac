"""`python -m engine` is the `chainsim` command."""

from __future__ import annotations

try:
    from .cli import console
except KeyboardInterrupt:  # Ctrl-C while Python imports the command
    raise SystemExit(130) from None

raise SystemExit(console())
