"""SQLite: every event into a chainsim store file, the same tables `serve --store sqlite:PATH` reads.

    --sink sqlite:events.db         (the folder is created; an existing store goes on from its last seq)

Events are committed in batches by a thread of the sink's own (engine/store/writer.py); the file is a
chainsim store (engine/store/sqlite.py), so `serve --store sqlite:events.db` serves what a run wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..envelope import NATIVE, Encoding
from ..errors import UsageError

if TYPE_CHECKING:
    from ..store.writer import StoreWriter

USAGE = "an SQLite sink is sqlite:PATH, e.g. --sink sqlite:events.db"


def open_sqlite(target: str, encoding: Encoding = NATIVE) -> StoreWriter:
    """A StoreWriter on the store in file `target` (after `sqlite:`), which it closes when the run ends."""
    from ..store.sqlite import SQLiteStore
    from ..store.writer import StoreWriter

    if not target:
        raise UsageError("sqlite sink: no file given", USAGE)
    if encoding.name != "native":
        raise UsageError(f"sqlite sink: a store keeps chainsim's own JSON lines, not the {encoding.name!r} encoding")
    return StoreWriter(SQLiteStore(target), close_store=True)
