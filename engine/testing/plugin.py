"""The pytest plugin (entry point `pytest11: chainsim`): fixtures that run a catalog or a scenario in virtual
time with a fixed seed and hand back its events, ready to be asserted on.

    def test_every_agent_execution_is_answered(chainsim):
        events = chainsim.run(count=500)
        assert_followed_by(events, "omninode.agent.execution.started.v1", "omninode.agent.execution.*", 2000)

Options: `--chainsim-chains DIR` / ini `chainsim_chains` (default `chains`, from the rootdir), `--chainsim-seed S`
/ ini `chainsim_seed` (default 1). The seed is printed in pytest's header, so a failure can be run again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DEFAULT_CHAINS, DEFAULT_SEED = "chains", 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chainsim", "chainsim: event chains for tests")
    group.addoption("--chainsim-chains", metavar="DIR", help=f"the chains folder (default: ini chainsim_chains, "
                                                             f"else {DEFAULT_CHAINS})")
    group.addoption("--chainsim-seed", type=int, metavar="S", help="the seed of every chainsim run (default: ini "
                                                                    f"chainsim_seed, else {DEFAULT_SEED})")
    parser.addini("chainsim_chains", "the chains folder of the chainsim fixtures", default=DEFAULT_CHAINS)
    parser.addini("chainsim_seed", "the seed of the chainsim fixtures", default=str(DEFAULT_SEED))


def _chains(config: pytest.Config) -> Path:
    given = config.getoption("chainsim_chains") or config.getini("chainsim_chains")
    path = Path(given)
    return path if path.is_absolute() else Path(config.rootpath) / path


def _seed(config: pytest.Config) -> int:
    given = config.getoption("chainsim_seed")
    return int(given if given is not None else config.getini("chainsim_seed"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"chainsim: chains {_chains(config)}, seed {_seed(config)} (--chainsim-seed to change it)"


class Runner:
    """What the `chainsim` fixture hands a test: runs of the catalog (with a scenario, overrides and settings)
    in virtual time, with the session's seed unless one is given."""

    def __init__(self, catalog: Any, seed: int) -> None:
        self.catalog, self.seed = catalog, seed

    def run(self, scenario: Any = None, overrides: dict[str, Any] | None = None, **settings: Any) -> Any:
        """The events of a finite run, as `engine.testing.Events` (a list, with each instance's outcome)."""
        from .runs import Events

        outcomes: dict[str, str] = {}
        settings.setdefault("seed", self.seed)
        events = list(self.stream(scenario, overrides, outcomes=outcomes, **settings))
        return Events(events, outcomes, settings["seed"])

    def stream(self, scenario: Any = None, overrides: dict[str, Any] | None = None,
               **settings: Any) -> Iterator[dict[str, Any]]:
        """The events one by one, for long runs."""
        from ..api import stream

        settings.setdefault("seed", self.seed)
        return stream(self.catalog, scenario, overrides, **settings)


@pytest.fixture(scope="session")
def chainsim_catalog(pytestconfig: pytest.Config) -> Any:
    """The catalog of the chains folder, loaded once per session; invalid files fail the tests that use it with
    the report `validate` prints."""
    from ..errors import LoadError
    from ..load.catalog import load_catalog

    try:
        return load_catalog(_chains(pytestconfig))
    except LoadError as error:
        report = error.report()
    pytest.fail(f"the chainsim catalog is not valid:\n{report}", pytrace=False)


@pytest.fixture(scope="session")
def chainsim_seed(pytestconfig: pytest.Config) -> int:
    """The seed of the session's chainsim runs."""
    return _seed(pytestconfig)


@pytest.fixture
def chainsim(chainsim_catalog: Any, chainsim_seed: int) -> Runner:
    """Runs of the catalog in virtual time: `chainsim.run(count=100)`, `chainsim.run("scenarios/x.yaml")`."""
    return Runner(chainsim_catalog, chainsim_seed)
