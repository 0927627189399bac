"""Sinks that hand events to Python: a list (`run_to_list`), or a function of the caller's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from . import SinkBase


class ListSink(SinkBase):
    """Keeps a copy of every event, as written (the engine shares constant payload parts between events)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def write(self, event: dict[str, Any], line: bytes) -> None:
        self.events.append(orjson.loads(line))


class CallbackSink(SinkBase):
    """Calls `callback(event)` with a copy of each event (a dict of its own)."""

    def __init__(self, callback: Callable[[dict[str, Any]], Any]) -> None:
        self.callback = callback

    def write(self, event: dict[str, Any], line: bytes) -> None:
        self.callback(orjson.loads(line))
