"""Sinks: events/s of the engine's Kafka and PostgreSQL sinks against the raw client doing the same writes.

The events of one virtual run are made once, before any timing, with their JSON lines. Then, alternating,
best of N:
- Kafka: `KafkaSink.write(event, line)` for every event, then `close()` (all delivered), against a
  `confluent_kafka.Producer` with the same settings producing the same values, keys and headers (built
  beforehand), then `flush()`. Before the timing, each producer delivers one message, untimed: an
  idempotent producer's id sometimes takes 0.5 s to come from Tansu. Each side writes to its own topic of a
  Tansu broker started here (in memory). The raw producer has no delivery callback; the sink counts failures.
- PostgreSQL: `PostgresSink.write` + `close()` against psycopg's `cursor.copy()` + `write_row` of the same
  rows (built beforehand), in batches of 5,000 with a commit each, into an empty table of the same schema.
A first round of each, not counted, warms up the broker and the server. Ratio = engine sink / raw client;
target >= 0.8. A service that cannot be reached is reported, not measured.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from _common import ROOT, SEVEN, START_MS

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests/services.py: the Tansu and PostgreSQL helpers the tests use

SINKS = ("kafka", "postgres")
TARGET = 0.8


def _events(count: int) -> tuple[list[dict[str, Any]], list[bytes]]:
    from engine import RunOptions, load_catalog, run_to_list
    from engine.envelope import NATIVE
    encode = NATIVE.encode

    catalog = load_catalog(ROOT / "chains").select(SEVEN)
    events = run_to_list(catalog, RunOptions(seed=1, start_ms=START_MS, count=count))
    return events, [encode(event) for event in events]


def _sink_run(open_sink: Callable[[], Any], events: list[dict[str, Any]], lines: list[bytes],
              warm: Callable[[Any], None] = lambda sink: None) -> float:
    sink = open_sink()  # opening (connecting, creating the table) is outside the timing
    warm(sink)
    began = time.perf_counter()
    for event, line in zip(events, lines, strict=True):
        sink.write(event, line)
    sink.close()
    return time.perf_counter() - began


def _kafka(events: list[dict[str, Any]], lines: list[bytes], rounds: int) -> dict[str, Any]:
    import confluent_kafka

    from engine.sinks.kafka import DEFAULTS, open_kafka
    from tests.services import tansu

    values = [line[:-1] for line in lines]
    keys = [event["correlation_id"] for event in events]
    headers = [[("event_type", e["event_type"].encode()), ("chain", e["chain"].encode())] for e in events]

    def raw(bootstrap: str, topic: str) -> float:
        producer = confluent_kafka.Producer({**DEFAULTS, "bootstrap.servers": bootstrap})
        producer.produce(topic, values[0], keys[0], headers=headers[0])  # untimed, as for the sink: see warm()
        producer.flush(10)
        produce = producer.produce
        began = time.perf_counter()
        for value, key, header in zip(values, keys, headers, strict=True):
            while True:
                try:
                    produce(topic, value, key, headers=header)
                    break
                except BufferError:
                    producer.poll(0.1)
        if producer.flush(60):
            raise RuntimeError("raw producer: messages left undelivered")
        took = time.perf_counter() - began
        del producer  # gone before the broker stops, so librdkafka does not log the disconnection
        return took

    def warm(sink: Any) -> None:
        """One message, delivered: the idempotent producer has its producer id (acquiring it sometimes
        takes 0.5 s with Tansu, which would swamp a short timing)."""
        sink.write(events[0], lines[0])
        sink.producer.flush(10)

    with tansu() as bootstrap:
        ours, theirs = [], []
        for round in range(rounds + 1):  # round 0 creates the topics (not timed: Tansu's set-up) and is not counted
            ours.append(_sink_run(lambda: open_kafka(f"//{bootstrap}/bench-sink"), events, lines, warm))
            theirs.append(raw(bootstrap, "bench-raw"))
            if round == 0:
                ours, theirs = [], []
    return _figures(len(events), ours, theirs, rounds)


def _postgres(events: list[dict[str, Any]], lines: list[bytes], rounds: int) -> dict[str, Any]:
    import psycopg

    from engine.envelope import NATIVE
    from engine.sinks.postgres import DEFAULT_BATCH, open_postgres
    payload_json = NATIVE.payload_json
    from tests.services import drop_table, postgres_url, unique_table

    url = postgres_url()
    rows = [(e["event_id"], e["event_type"], e["correlation_id"], e["causation_id"], e["tenant_id"],
             e["namespace"], e["timestamp"], e["chain"], e["step"], payload_json(line))
            for e, line in zip(events, lines, strict=True)]
    tables: list[str] = []

    def table() -> str:
        tables.append(unique_table("chainsim_bench"))
        return tables[-1]

    def raw() -> float:
        name = table()
        open_postgres(f"{url.removeprefix('postgresql:')}?table={name}").close()  # the same empty table
        with psycopg.connect(url) as connection:
            statement = f"COPY {name} (event_id, event_type, correlation_id, causation_id, tenant_id, namespace, " \
                        '"timestamp", chain, step, payload) FROM STDIN'
            began = time.perf_counter()
            for start in range(0, len(rows), DEFAULT_BATCH):
                with connection.cursor() as cursor, cursor.copy(statement) as copy:
                    for row in rows[start:start + DEFAULT_BATCH]:
                        copy.write_row(row)
                connection.commit()
            return time.perf_counter() - began

    try:
        ours, theirs = [], []
        for round in range(rounds + 1):  # round 0 warms the connection path and the server up, not counted
            if round == 1:
                ours, theirs = [], []
            ours.append(_sink_run(lambda: open_postgres(f"{url.removeprefix('postgresql:')}?table={table()}"),
                                  events, lines))
            theirs.append(raw())
    finally:
        for name in tables:
            drop_table(url, name)
    return _figures(len(events), ours, theirs, rounds)


def _figures(events: int, ours: list[float], theirs: list[float], rounds: int) -> dict[str, Any]:
    sink, raw = events / min(ours), events / min(theirs)
    return {"events": events, "rounds": rounds, "sink_events_per_s": sink, "raw_events_per_s": raw,
            "ratio": sink / raw}


def measure(smoke: bool) -> dict[str, Any]:
    """Each sink's figures, or {"error": why} when its service cannot be reached."""
    count, rounds = (150, 3) if smoke else (40_000, 5)  # chain instances: ~2.4 events each
    events, lines = _events(count)
    results: dict[str, Any] = {}
    for name, section in (("kafka", _kafka), ("postgres", _postgres)):
        try:
            results[name] = section(events, lines, rounds)
        except Exception as error:  # a missing service must not hide the other figures
            results[name] = {"error": f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"}
    return results


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    table = []
    for name in SINKS:
        figures = result.get(name)
        if not figures or "error" in figures:
            reason = figures["error"] if figures else "sink not measured"
            table.append((f"sink: {name}", f"not measured: {reason}", "-", "-"))
            continue
        raw = "confluent_kafka.Producer" if name == "kafka" else "psycopg COPY"
        table.append((
            f"sink: {name}, events/s (best of {figures['rounds']})", f"{figures['sink_events_per_s']:,.0f}",
            f"{figures['raw_events_per_s']:,.0f} raw {raw}",
            f"**{figures['ratio']:.2f}x** (target >= {TARGET}); {figures['events']:,} events",
        ))
    return table
