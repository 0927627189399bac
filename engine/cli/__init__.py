"""The command line: `chainsim` / `python -m engine`. `main.py` parses and dispatches; one module per verb."""

from __future__ import annotations

from .main import console, main

__all__ = ["console", "main"]
