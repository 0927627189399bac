"""Golden runs: each chain of the catalog, run alone in virtual time with a fixed seed and start, gives
exactly the saved events. A change to the output is a deliberate act: `pytest --update-golden`."""

from __future__ import annotations

import attrs
import pytest

from engine import RunOptions, load_catalog, run_to_list
from engine.envelope import NATIVE

from .conftest import CHAINS, ROOT, START_MS

encode = NATIVE.encode

GOLDEN = ROOT / "tests" / "golden"
CATALOG = load_catalog(CHAINS)


@pytest.mark.parametrize("name", [chain.name for chain in CATALOG.chains])
def test_each_chain_matches_its_golden_run(name, update_golden):
    """Twenty instances of the chain, seed 1, start 2026-01-01: byte for byte the saved JSON lines."""
    chain = next(c for c in CATALOG.chains if c.name == name)
    alone = attrs.evolve(CATALOG, chains=(chain,))
    events = run_to_list(alone, RunOptions(seed=1, start_ms=START_MS, count=20, rate=5))
    actual = b"".join(encode(e) for e in events)
    path = GOLDEN / f"{name}.jsonl"
    if update_golden:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(actual)
    assert path.read_bytes() == actual


def test_every_golden_file_belongs_to_a_chain():
    """No golden file outlives its chain."""
    assert {c.name for c in CATALOG.chains} == {p.stem for p in GOLDEN.glob("*.jsonl")}
