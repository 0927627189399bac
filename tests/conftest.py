"""Shared fixtures: write chain folders from text, run the engine in virtual time."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import Catalog, RunOptions, load_catalog, run_to_list

ROOT = Path(__file__).resolve().parent.parent
CHAINS = ROOT / "chains"
START = "2026-01-01T00:00:00Z"
START_MS = 1767225600000


@pytest.fixture
def chain_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write chain files (name -> YAML text, dedented) into a fresh folder and return it."""

    def write(files: dict[str, str] | None = None, **named: str) -> Path:
        folder = tmp_path / "chains"
        folder.mkdir(exist_ok=True)
        for name, text in {**(files or {}), **named}.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return folder

    return write


@pytest.fixture
def catalog_of(chain_dir: Callable[..., Path]) -> Callable[..., Catalog]:
    """Load a catalog from chain files given as text."""

    def load(files: dict[str, str] | None = None, **named: str) -> Catalog:
        return load_catalog(chain_dir(files, **named))

    return load


def run(catalog: Catalog, count: int = 10, seed: int = 1, **options: Any) -> list[dict[str, Any]]:
    """Events of a virtual run of `count` chains."""
    options.setdefault("rate", 10.0)
    return run_to_list(catalog, RunOptions(seed=seed, start_ms=START_MS, count=count, **options))


# A chain whose template divides by zero for its instance 3 (the dry run, with instance 0, passes).
FAILS_AT_INSTANCE_3 = """
    name: div
    steps:
      - id: one
        event_type: t
        payload:
          ratio: "{{ 10 // (chain.instance - 3) }}"
"""


class LagProbe:
    """A task that sleeps 1 ms at a time and notes how late it wakes: the event loop's lag."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def run(self) -> None:
        import asyncio
        import time

        while True:
            asked = time.monotonic()
            await asyncio.sleep(0.001)
            self.lags.append(time.monotonic() - asked - 0.001)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/*.jsonl from the current engine (on purpose only)")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
