"""`python -m engine` is the `chainsim` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
