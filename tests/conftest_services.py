"""Fixtures for the real services (a plugin: `pytest_plugins = ["tests.conftest_services"]` in a test module).

A service that cannot be started or reached fails the test with what was tried; it is never skipped,
because CI has both services.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.services import ServiceError, drop_table, postgres_url, tansu, unique_table


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """Bootstrap address of a Tansu broker started for this test session."""
    with contextlib.ExitStack() as stack:
        try:
            bootstrap = stack.enter_context(tansu())
        except ServiceError as error:
            reason = str(error)  # failed outside the except block, so the report is this message alone
        else:
            yield bootstrap
            return
    pytest.fail(f"cannot start the Kafka broker: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def postgres() -> str:
    """URL of the local PostgreSQL test database."""
    try:
        return postgres_url()
    except ServiceError as error:
        reason = str(error)
    pytest.fail(reason, pytrace=False)


@pytest.fixture
def pg_table(postgres: str) -> Iterator[str]:
    """A table name no other test uses, dropped after the test."""
    table = unique_table()
    yield table
    drop_table(postgres, table)
