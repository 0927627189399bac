"""Kafka: one message per event, through confluent-kafka (librdkafka), idempotent by default.

    --sink kafka://HOST:PORT/TOPIC?acks=all&linger_ms=5&key=correlation_id&topic_per_type=false

value = the JSON line without its newline; key = the event's correlation_id, so the events of one chain
instance go to one partition, in order; headers `event_type` and `chain`. Any other option is a librdkafka
setting with `_` for `.` (`message_timeout_ms=5000` is `message.timeout.ms`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..envelope import NATIVE, Encoding
from ..envelope.fields import FIELDS
from ..errors import SinkError, UsageError
from ..hints import hint
from . import SinkBase

INSTALL = "pip install 'chainsim[kafka]'"
USAGE = "a Kafka sink is kafka://HOST:PORT/TOPIC[?option=value&...], e.g. kafka://localhost:9092/events"
DEFAULTS = {"enable.idempotence": "true", "acks": "all", "linger.ms": "5"}
KEYS = tuple(field for field in FIELDS if field != "payload")
CONNECT_TIMEOUT_S = 10.0  # at most this long to reach the broker when the sink opens
POLL_WHEN_FULL_S = 0.1  # the producer's queue is full: serve delivery reports this long, then retry


class _LastLog(logging.Handler):
    """Keeps librdkafka's last log line for error messages, instead of printing every retry on stderr."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


class KafkaSink(SinkBase):
    """Produces each event's encoded value; counts failed deliveries and reports them, not each message."""

    def __init__(self, config: dict[str, str], topic: str, key: str | None, topic_per_type: bool,
                 encoding: Encoding = NATIVE) -> None:
        try:
            import confluent_kafka
        except ImportError:
            raise UsageError(f"the kafka sink needs confluent-kafka: {INSTALL}") from None
        self.topic, self.key, self.topic_per_type = topic, key, topic_per_type
        self._value = encoding.value
        self.servers = config["bootstrap.servers"]
        self.written = 0
        self.failed = 0
        self.first_failure = ""
        self._headers: dict[str, dict[str, list[tuple[str, bytes]]]] = {}  # event type -> chain -> headers
        self._log = _LastLog()
        logger = logging.getLogger(f"chainsim.kafka.{id(self)}")
        logger.propagate = False
        logger.addHandler(self._log)
        try:
            # Delivery reports for failures only: a Python call per delivered message would cost more than
            # producing it.
            self.producer = confluent_kafka.Producer({**config, "logger": logger, "on_delivery": self._on_delivery,
                                                      "delivery.report.only.error": True})
        except (confluent_kafka.KafkaException, ValueError, TypeError) as error:
            raise UsageError(f"kafka sink: {_reason(error)} (options are librdkafka settings, _ for .); "
                             f"{USAGE}") from None
        self._kafka_exception: type[Exception] = confluent_kafka.KafkaException
        self._produce: Callable[..., None] = self.producer.produce
        self._check_reachable(config)

    def _check_reachable(self, config: dict[str, str]) -> None:
        timeout = min(CONNECT_TIMEOUT_S, float(config.get("message.timeout.ms", 300_000)) / 1000)
        try:
            self.producer.list_topics(timeout=timeout)
        except self._kafka_exception as error:
            last = f" ({self._log.last})" if self._log.last else ""
            raise OSError(f"no Kafka broker answered at {self.servers} within {timeout:g} s: "
                          f"{_reason(error)}{last}") from None

    def _on_delivery(self, error: Any, message: Any) -> None:
        if error is None:
            return
        self.failed += 1
        if not self.first_failure:
            self.first_failure = f"{error.str()} (topic {message.topic()!r})"

    def write(self, event: dict[str, Any], line: bytes) -> None:
        event_type, chain = event["event_type"], event["chain"]
        by_chain = self._headers.get(event_type)
        headers = by_chain.get(chain) if by_chain is not None else None
        if headers is None:
            headers = self._new_headers(event_type, chain)
        topic = event_type if self.topic_per_type else self.topic
        value = self._value(line)
        try:  # event.get(None) is None: no key
            self._produce(topic, value, event.get(self.key), headers=headers)  # type: ignore[arg-type]
        except BufferError:
            self._produce_when_full(topic, value, event.get(self.key), headers)  # type: ignore[arg-type]
        except self._kafka_exception as error:
            raise SinkError(f"kafka sink: cannot produce to topic {topic!r}: {_reason(error)}", _HINT) from None
        self.written += 1
        if self.failed:
            self._raise_if_failed()

    def _new_headers(self, event_type: str, chain: str) -> list[tuple[str, bytes]]:
        headers = [("event_type", event_type.encode()), ("chain", chain.encode())]
        self._headers.setdefault(event_type, {})[chain] = headers
        return headers

    def _produce_when_full(self, topic: str, value: bytes, key: str | None, headers: list[tuple[str, bytes]]) -> None:
        """The local queue is full: let librdkafka send (serving delivery reports), then try again."""
        while True:
            self.producer.poll(POLL_WHEN_FULL_S)
            self._raise_if_failed()
            try:
                self._produce(topic, value, key, headers=headers)
                return
            except BufferError:
                continue
            except self._kafka_exception as error:
                raise SinkError(f"kafka sink: cannot produce to topic {topic!r}: {_reason(error)}", _HINT) from None

    def flush(self) -> None:
        """Serve delivery reports without waiting; librdkafka sends within linger_ms on its own."""
        self.producer.poll(0)
        self._raise_if_failed()

    def close(self) -> None:
        """Wait until every message is delivered or has failed (at most message_timeout_ms)."""
        while self.producer.flush(1.0):
            pass
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self.failed:
            raise SinkError(
                f"kafka sink: {self.failed} of {self.written} event(s) could not be delivered to {self.servers}; "
                f"first error: {self.first_failure}",
                _HINT,
            )


_HINT = hint("sink", "kafka")


def _reason(error: BaseException) -> str:
    inner = error.args[0] if error.args else error
    return inner.str() if hasattr(inner, "str") else str(inner)


def _flag(name: str, text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise UsageError(f"kafka sink: {name}={text!r} is not true or false; {USAGE}")


def open_kafka(target: str, encoding: Encoding = NATIVE) -> KafkaSink:
    """A Kafka sink from `//HOST:PORT[,HOST:PORT...]/TOPIC[?options]` (the text after `kafka:`)."""
    if not target.startswith("//"):
        raise UsageError(f"kafka sink: {('kafka:' + target)!r} has no broker address; {USAGE}")
    parts = urlsplit("kafka:" + target)
    if not parts.netloc:
        raise UsageError(f"kafka sink: {('kafka:' + target)!r} has no broker address; {USAGE}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    topic_per_type = _flag("topic_per_type", options.pop("topic_per_type", "false"))
    key: str | None = options.pop("key", "correlation_id")
    if key == "none":
        key = None
    elif key not in KEYS:
        raise UsageError(f"kafka sink: key={key!r} is not an envelope field; use one of {', '.join(KEYS)} or none")
    topic = parts.path.lstrip("/")
    if not topic and not topic_per_type:
        raise UsageError(f"kafka sink: {('kafka:' + target)!r} names no topic; {USAGE}")
    config = {**DEFAULTS, **{name.replace("_", "."): value for name, value in options.items()}}
    config["bootstrap.servers"] = parts.netloc
    return KafkaSink(config, topic, key, topic_per_type, encoding)
