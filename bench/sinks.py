"""Sinks (Kafka, PostgreSQL): placeholders until the sinks exist. No figures are made up."""

from __future__ import annotations

from typing import Any

SINKS = ("kafka", "postgres")


def measure() -> dict[str, Any]:
    return {name: None for name in SINKS}  # None: not measured


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(f"sink: {name}", "not measured: sink not implemented", "-", "-") for name in result]
