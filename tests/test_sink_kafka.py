"""The Kafka sink against a real Kafka-protocol broker (Tansu, started by the `kafka_broker` fixture)."""

from __future__ import annotations

import collections
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.errors import RunError
from engine.sinks.kafka import open_kafka
from tests.conftest import CHAINS, ROOT, START
from tests.services import free_port, tansu

pytest_plugins = ["tests.conftest_services"]  # the service fixtures

RUN = ["--chains", str(CHAINS), "--count", "200", "--seed", "3", "--start", START, "-q"]
CONSUME_TIMEOUT_S = 30.0


def engine(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def consume(bootstrap: str, topics: list[str], expected: int) -> list[Any]:
    """Every message of `topics`, read from the beginning until `expected` arrived and no more follow.

    Partitions are assigned, not subscribed: Tansu takes ~20 s to settle a new consumer group.
    """
    import confluent_kafka

    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}",
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10)
        consumer.assign([confluent_kafka.TopicPartition(topic, partition, confluent_kafka.OFFSET_BEGINNING)
                         for topic in topics for partition in metadata.topics[topic].partitions])
        messages: list[Any] = []
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, timeout=1.0)
            for message in batch:
                assert message.error() is None, message.error()
            messages += batch
            if len(messages) >= expected and not batch:  # a quiet second after the last expected message
                break
        return messages
    finally:
        consumer.close()


def expected_lines(tmp_path: Path, *extra: str) -> list[bytes]:
    output = tmp_path / "events.jsonl"
    result = engine(*RUN, *extra, "--output", str(output))
    assert 0 == result.returncode, result.stderr
    return output.read_bytes().splitlines()


def test_kafka_sink_writes_the_run_in_order_per_partition(kafka_broker: str, tmp_path: Path) -> None:
    """Every event of a run is one message: value = its JSON line, key = correlation_id, in order per partition."""
    topic = f"events-{uuid.uuid4().hex[:8]}"
    lines = expected_lines(tmp_path)

    result = engine(*RUN, "--sink", f"kafka://{kafka_broker}/{topic}")

    assert 0 == result.returncode, result.stderr
    messages = consume(kafka_broker, [topic], len(lines))
    assert len(lines) == len(messages)
    assert sorted(lines) == sorted(message.value() for message in messages)
    by_partition: dict[int, list[Any]] = collections.defaultdict(list)
    for message in messages:
        by_partition[message.partition()].append(message)
    partition_of: dict[bytes, int] = {}
    for partition, in_partition in by_partition.items():
        in_partition.sort(key=lambda message: message.offset())
        for message in in_partition:
            event = orjson.loads(message.value())
            assert event["correlation_id"].encode() == message.key()
            assert [("event_type", event["event_type"].encode()), ("chain", event["chain"].encode())] == \
                message.headers()
            assert partition_of.setdefault(message.key(), partition) == partition  # a chain stays in one partition
        keys = {message.key() for message in in_partition}
        in_file_order = [line for line in lines if orjson.loads(line)["correlation_id"].encode() in keys]
        assert in_file_order == [message.value() for message in in_partition]
    timestamps: dict[str, list[str]] = collections.defaultdict(list)
    for line in lines:
        event = orjson.loads(line)
        timestamps[event["correlation_id"]].append(event["timestamp"])
    assert all(stamps == sorted(stamps) for stamps in timestamps.values())


def test_topic_per_type_writes_one_topic_per_event_type(kafka_broker: str, tmp_path: Path) -> None:
    """With topic_per_type=true each event goes to the topic named after its event_type."""
    lines = expected_lines(tmp_path, "--count", "50")
    by_type = collections.Counter(orjson.loads(line)["event_type"] for line in lines)

    result = engine(*RUN, "--count", "50", "--sink", f"kafka://{kafka_broker}/?topic_per_type=true")

    assert 0 == result.returncode, result.stderr
    messages = consume(kafka_broker, sorted(by_type), len(lines))
    assert by_type == collections.Counter(message.topic() for message in messages)
    assert all(orjson.loads(message.value())["event_type"] == message.topic() for message in messages)


USAGE = "a Kafka sink is kafka://HOST:PORT/TOPIC[?option=value&...], e.g. kafka://localhost:9092/events"


@pytest.mark.parametrize(("spec", "message"), [
    ("kafka:localhost:9092/events", f"kafka sink: 'kafka:localhost:9092/events' has no broker address; {USAGE}"),
    ("kafka://localhost:9092", f"kafka sink: 'kafka://localhost:9092' names no topic; {USAGE}"),
    ("kafka://localhost:9092/events?key=payload",
     "kafka sink: key='payload' is not an envelope field; use one of event_id, event_type, correlation_id, "
     "causation_id, tenant_id, namespace, timestamp, chain, step or none"),
    ("kafka://localhost:9092/events?topic_per_type=maybe", f"kafka sink: topic_per_type='maybe' is not true or "
                                                           f"false; {USAGE}"),
    ("kafka://localhost:9092/events?lingr_ms=5", 'kafka sink: No such configuration property: "lingr.ms" (options '
                                                 f'are librdkafka settings, _ for .); {USAGE}'),
])
def test_a_bad_target_is_a_usage_error(spec: str, message: str) -> None:
    """A malformed Kafka target exits 2 with one line saying what is wrong and what the form is."""
    result = engine(*RUN, "--sink", spec)

    assert (2, f"chainsim: error: {message}\n") == (result.returncode, result.stderr)


def test_an_unreachable_broker_is_a_clear_error_within_the_timeout() -> None:
    """Nothing listening: exit 2 with one line naming the address, after at most message_timeout_ms."""
    address = f"127.0.0.1:{free_port()}"
    began = time.monotonic()

    result = engine(*RUN, "--sink", f"kafka://{address}/events?message_timeout_ms=2000", timeout=30)

    assert time.monotonic() - began < 15
    assert (2, f"chainsim: error: cannot open sink: no Kafka broker answered at {address} within 2 s: "
               "Failed to get metadata: Local: Broker transport failure\n") == (result.returncode, result.stderr)


def test_failed_deliveries_are_one_run_error_on_close() -> None:
    """A broker that goes away after the sink opened: close() raises one RunError counting the lost events."""
    with tansu() as bootstrap:
        sink = open_kafka(f"//{bootstrap}/events?message_timeout_ms=1000")
    event = {"event_id": "e", "event_type": "t.v1", "correlation_id": "c", "chain": "x"}
    for _ in range(10):
        sink.write(event, orjson.dumps(event) + b"\n")

    with pytest.raises(RunError) as raised:
        sink.close()

    assert raised.value.message.startswith(f"kafka sink: 10 of 10 event(s) could not be delivered to {bootstrap}; "
                                           "first error: ")
