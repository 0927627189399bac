"""Automatic mode, the seed's behaviour: send events to Kafka too when a broker answers, else serve from the
embedded store alone, and say which in one line.

The broker is `--kafka HOST:PORT`, else the environment's KAFKA_BOOTSTRAP_SERVERS. It must answer a metadata
request within PROBE_S seconds; later failures are the Kafka sink's business (engine/server/bus.py: Guarded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

PROBE_S = 3.0
DEFAULT_TOPIC = "chainsim.events"


@attrs.frozen
class Choice:
    """The sink specs automatic mode chose, and the line that says why."""

    specs: tuple[str, ...]
    reason: str


def probe_kafka(servers: str, timeout: float = PROBE_S) -> str | None:
    """None when a broker at `servers` answers a metadata request in time, else why not."""
    try:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient
    except ImportError:
        return "confluent-kafka is not installed (pip install 'chainsim[kafka]')"
    config: dict[str, Any] = {"bootstrap.servers": servers, "socket.timeout.ms": int(timeout * 1000),
                              "log_level": 0, "logger": _Silent()}
    client = AdminClient(config)
    try:
        client.list_topics(timeout=timeout)
    except KafkaException as error:
        return f"no Kafka broker answered at {servers} within {timeout:g} s ({error.args[0].str()})"
    return None


class _Silent:
    """librdkafka's log lines (connection refused, again and again) are not ours to print."""

    def log(self, *args: object, **kwargs: object) -> None:
        pass


def choose(kafka: str | None, topic: str, environ: Mapping[str, str]) -> Choice:
    """What `--sink auto` means here and now."""
    servers = kafka or environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if not servers:
        return Choice((), "no Kafka broker named (KAFKA_BOOTSTRAP_SERVERS or --kafka): events go to the store only")
    failure = probe_kafka(servers)
    if failure is not None:
        return Choice((), f"{failure}: events go to the store only")
    return Choice((f"kafka://{servers}/{topic}",), f"Kafka broker at {servers} answered: events also go to topic "
                  f"{topic!r}")
