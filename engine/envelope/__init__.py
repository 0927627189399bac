"""The event envelope: its fields and how an event is encoded for the sinks.

`fields.py` holds what every event carries (names, reproducible ids, RFC 3339 timestamps); an encoding
(`native.py`: chainsim's own JSON line) is the one place between a run's `emit` and its sinks that knows
the bytes of a line, so no sink slices a line itself.
"""

from __future__ import annotations

from .native import NATIVE, Encoding

__all__ = ["NATIVE", "Encoding"]
