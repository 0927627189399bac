"""`python -m engine` is the `chainsim` command."""

from __future__ import annotations

from .cli import console

raise SystemExit(console())
