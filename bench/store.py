"""Store: events/s written to SQLite through StoreWriter against a plain executemany, and query latency at 1M events.

    python bench/store.py            (full: 200k events written, queries on 1M stored events; a few minutes)
    python bench/store.py --smoke    (small sizes, a few seconds; asserts nothing about speed)

Writes. The items of one virtual run of the catalog (events with their lines, and each chain's end as the
run reports it) are made once, before any timing. Then, alternating, best of N, each into a new file:
- engine: `StoreWriter(SQLiteStore(file))`, `write(event, line)` for every event and `end_chain(...)` for
  every end on this thread, then `close()` (all committed): the generator's side, the commit thread's rows
  and figures, the transactions.
- floor: the same layout (a store created and closed), opened with sqlite3 and the same pragmas (WAL,
  synchronous=NORMAL); `executemany` of the same rows, built beforehand: each batch of events (batch_rows
  per transaction, as the writer) and the chain rows the writer leaves, each inserted in the batch where the
  chain first appears, already final (so the floor does no upsert and no end update).
  A second floor inserts the event rows alone.
Ratio = engine events/s / floor events/s; goal >= 0.8.

Queries. A store of 1M events (smoke: 20k) is filled by a virtual run through StoreWriter (the path of
`--sink sqlite:`). Then, while a thread keeps a writer committing (5,000 events/s of a run made beforehand,
paced, into the same store), this thread times N calls each of `events(EventQuery(limit=100))` (the newest page),
`events(EventQuery(event_type="omninode.agent.*", limit=100))`, `chain(correlation_id)` for random stored
instances and `chains(ChainQuery(limit=100))`, and `statistics()`: p50 and p99 in ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import ROOT, START_MS

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET = 0.8
BATCH_ROWS = 10_000


class _Recorder:
    """A run sink that keeps each event (a shallow copy: the writer reads top-level fields), its line and ends."""

    needs_event = True
    flush_every = 0.0

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []

    def write(self, event: dict[str, Any], line: bytes) -> None:
        self.items.append(("event", dict(event), line))

    def end_chain(self, correlation_id: str, chain: str, outcome: str, at: int) -> None:
        self.items.append(("end", correlation_id, chain, outcome, at))

    def write_lines(self, lines: bytes) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def flush_until(self, at: int) -> None:
        pass

    def close(self) -> None:
        pass


def _run(sink: Any, count: int, seed: int, start_ms: int = START_MS) -> None:
    from engine import RunOptions, load_catalog
    from engine.run.simulation import Simulation

    catalog = load_catalog(ROOT / "chains")
    Simulation(catalog, RunOptions(seed=seed, start_ms=start_ms, count=count), sink).run()


def _items(events: int) -> list[tuple[Any, ...]]:
    recorder = _Recorder()
    _run(recorder, count=max(1, events * 10 // 26), seed=1)
    return recorder.items


def _engine_write(items: list[tuple[Any, ...]], path: Path) -> float:
    from engine.store.sqlite import SQLiteStore
    from engine.store.writer import StoreWriter

    store = SQLiteStore(path)
    writer = StoreWriter(store, batch_rows=BATCH_ROWS)
    write, end = writer.write, writer.end_chain
    began = time.perf_counter()
    for item in items:
        if item[0] == "event":
            write(item[1], item[2])
        else:
            end(item[1], item[2], item[3], item[4])
    writer.close()
    elapsed = time.perf_counter() - began
    store.close()
    return elapsed


def _floor_rows(items: list[tuple[Any, ...]]) -> list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Per transaction: the event rows and the (final) chain rows that first appear in it, as the store has them."""
    from engine.store.aggregates import Timestamps

    ms = Timestamps().ms
    batches: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = []
    chains: dict[str, list[Any]] = {}
    rows: list[tuple[Any, ...]] = []
    new: list[list[Any]] = []
    seq = 0
    for item in items:
        if item[0] == "end":
            _, cid, _, outcome, at = item
            chains[cid][5:9] = [at, chains[cid][6], "finished", outcome]
            continue
        event, line = item[1], item[2]
        seq += 1
        ts = ms(event["timestamp"])
        cid = event["correlation_id"]
        rows.append((seq, event["event_id"], event["event_type"], cid, event["causation_id"], event["tenant_id"],
                     event["namespace"], ts, event["chain"], event["step"], line))
        if cid not in chains:
            chains[cid] = [cid, event["chain"], event["tenant_id"], seq, ts, ts, 0, "in_flight", None]
            new.append(chains[cid])
        chains[cid][6] += 1
        chains[cid][5] = max(chains[cid][5], ts)
        if len(rows) == BATCH_ROWS:
            batches.append((rows, new))  # type: ignore[arg-type]
            rows, new = [], []
    if rows or new:
        batches.append((rows, new))  # type: ignore[arg-type]
    return [(rows, [tuple(chain) for chain in new]) for rows, new in batches]


def _floor_write(batches: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]], path: Path,
                 chains: bool = True) -> float:
    import sqlite3

    from engine.store.sqlite import SQLiteStore

    SQLiteStore(path).close()  # the same layout
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    began = time.perf_counter()
    for rows, chain_rows in batches:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        if chains:
            connection.executemany("INSERT INTO chains VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", chain_rows)
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - began
    connection.close()
    return elapsed


def measure_writes(events: int, rounds: int) -> dict[str, Any]:
    items = _items(events)
    count = sum(1 for item in items if item[0] == "event")
    batches = _floor_rows(items)
    times: dict[str, list[float]] = {"engine": [], "floor": [], "events": []}
    with tempfile.TemporaryDirectory(prefix="chainsim-bench-store-") as folder:
        for number in range(rounds):  # the order changes each round: a file's writeback can slow the next one
            sides = ["engine", "floor", "events"]
            for side in sides[number % 3:] + sides[:number % 3]:
                path = Path(folder) / f"{number}-{side}.db"
                times[side].append(_engine_write(items, path) if side == "engine" else
                                   _floor_write(batches, path, chains=side == "floor"))
    engine, floor, floor_events = times["engine"], times["floor"], times["events"]
    rate, base, base_events = count / min(engine), count / min(floor), count / min(floor_events)
    return {"events": count, "engine_events_per_s": round(rate), "floor_events_per_s": round(base),
            "ratio": round(rate / base, 3), "floor_events_only_per_s": round(base_events),
            "ratio_events_only": round(rate / base_events, 3), "target": TARGET, "rounds": rounds}


class _Paced:
    """Keeps a writer committing into the store: `items` (events with lines, over and over), `rate` per second."""

    def __init__(self, writer: Any, items: list[tuple[Any, ...]], rate: float) -> None:
        self.writer, self.items, self.rate = writer, items, rate
        self.stop = threading.Event()
        self.written = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began = time.perf_counter()
        while not self.stop.is_set():
            for index in range(0, len(self.items), 50):
                if self.stop.is_set():
                    return
                chunk = self.items[index:index + 50]
                for _, event, line in chunk:
                    self.writer.write(event, line)
                self.written += len(chunk)
                wait = began + self.written / self.rate - time.perf_counter()
                if wait > 0:
                    self.stop.wait(wait)


def _timed(call: Any, rounds: int) -> dict[str, float]:
    from engine.store.aggregates import percentile

    samples = []
    for _ in range(rounds):
        began = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - began)
    samples.sort()
    return {"p50_ms": round(percentile(samples, 50) / 1e6, 3), "p99_ms": round(percentile(samples, 99) / 1e6, 3)}


def measure_queries(stored: int, rounds: int) -> dict[str, Any]:
    from engine.store import ChainQuery, EventQuery
    from engine.store.sqlite import SQLiteStore
    from engine.store.writer import StoreWriter

    with tempfile.TemporaryDirectory(prefix="chainsim-bench-store-") as folder:
        path = Path(folder) / "events.db"
        began = time.perf_counter()
        writer = StoreWriter(SQLiteStore(path), close_store=True)
        _run(writer, count=max(1, stored * 10 // 26), seed=1)
        writer.close()
        fill_s = time.perf_counter() - began
        store = SQLiteStore(path)
        opened_s = time.perf_counter() - began - fill_s
        total = store.statistics()["events"]
        rng = random.Random(1)
        ids = [item["correlation_id"] for item in store.chains(ChainQuery(limit=1000)).items]
        ids += [item["correlation_id"] for item in store.chains(ChainQuery(limit=1000, order="asc")).items]
        recorder = _Recorder()
        _run(recorder, count=2_000 if rounds < 100 else 20_000, seed=99, start_ms=START_MS + 400 * 86_400_000)
        writer = StoreWriter(store)
        paced = _Paced(writer, [item for item in recorder.items if item[0] == "event"], rate=5_000)
        paced.thread.start()
        try:
            figures = {
                "events_limit_100": _timed(lambda: store.events(EventQuery(limit=100)), rounds),
                "events_glob_limit_100": _timed(
                    lambda: store.events(EventQuery(event_type="omninode.agent.*", limit=100)), rounds),
                "chain_detail": _timed(lambda: store.chain(rng.choice(ids)), rounds),
                "chains_limit_100": _timed(lambda: store.chains(ChainQuery(limit=100)), rounds),
                "statistics": _timed(store.statistics, rounds),
            }
        finally:
            paced.stop.set()
            paced.thread.join()
            writer.close()
        store.close()
    return {"stored_events": total, "fill_s": round(fill_s, 1), "open_s": round(opened_s, 3),
            "writer_events_during": paced.written, "rounds": rounds, **figures}


def measure(smoke: bool) -> dict[str, Any]:
    return {
        "writes": measure_writes(events=3_000 if smoke else 200_000, rounds=1 if smoke else 3),
        "queries": measure_queries(stored=10_000 if smoke else 1_000_000, rounds=30 if smoke else 2_000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds; asserts nothing about speed")
    args = parser.parse_args()
    results = measure(args.smoke)
    writes, queries = results["writes"], results["queries"]
    print(f"store writes: {writes['engine_events_per_s']:,} events/s through StoreWriter, floor (executemany of "
          f"the same rows) {writes['floor_events_per_s']:,}/s: ratio {writes['ratio']} (goal >= {TARGET}); "
          f"events-only floor {writes['floor_events_only_per_s']:,}/s: ratio {writes['ratio_events_only']}")
    print(f"store queries on {queries['stored_events']:,} events while a writer commits "
          f"({queries['writer_events_during']:,} events written meanwhile):")
    for name in ("events_limit_100", "events_glob_limit_100", "chain_detail", "chains_limit_100", "statistics"):
        print(f"  {name:24} p50 {queries[name]['p50_ms']:8.3f} ms   p99 {queries[name]['p99_ms']:8.3f} ms")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
