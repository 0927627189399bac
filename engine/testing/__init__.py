"""chainsim for test suites: a pytest plugin (plugin.py, registered through the `pytest11` entry point) and
the helpers it hands tests (runs.py: events grouped by chain instance, and assertions about them)."""

from __future__ import annotations

from .runs import (
    ChainRun,
    Events,
    assert_causation_chains,
    assert_every_chain_finished,
    assert_followed_by,
    assert_outcome_mix,
)

__all__ = ["ChainRun", "Events", "assert_causation_chains", "assert_every_chain_finished", "assert_followed_by",
           "assert_outcome_mix"]
