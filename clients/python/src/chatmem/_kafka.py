"""Kafka helpers shared by the client and the prebuilt stream."""

from __future__ import annotations

import time
from typing import Any, List

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from .errors import BrokerError

#: The offset that stands for a partition's beginning.
OFFSET_BEGINNING = -2


def left(deadline: float) -> float:
    """Seconds until deadline (time.monotonic()), at least 0."""
    return max(0.0, deadline - time.monotonic())


def kafka_text(e: BaseException) -> str:
    if e.args and isinstance(e.args[0], KafkaError):
        return str(e.args[0].str())
    return str(e)


def kafka_code(e: BaseException) -> str:
    if e.args and isinstance(e.args[0], KafkaError):
        return str(e.args[0].name())
    return ""


def topic_partitions(handle: Any, topic: str, deadline: float, brokers: str) -> List[int]:
    """The partition ids of topic, asking until deadline (a producer's
    metadata request also has a missing topic auto-created where the
    cluster allows it). Raises BrokerError."""
    why = "no answer"
    while True:
        try:
            md = handle.list_topics(topic=topic, timeout=max(0.1, left(deadline)))
            tm = md.topics.get(topic)
            if tm is not None and tm.error is None and tm.partitions:
                return sorted(tm.partitions)
            why = tm.error.str() if tm is not None and tm.error is not None else "no partitions"
        except KafkaException as e:
            why = kafka_text(e)
        if time.monotonic() >= deadline:
            raise BrokerError(f"topic {topic} is not available on {brokers}: {why}")
        time.sleep(0.05)


def assign_at(
    consumer: Consumer, topic: str, partitions: List[int], deadline: float, *, from_beginning: bool
) -> None:
    """Assigns every partition of topic to consumer, at its current end (or
    at its beginning), so that it reads every message produced after this
    returns. Raises BrokerError."""
    positions: List[TopicPartition] = []
    for p in partitions:
        if from_beginning:
            positions.append(TopicPartition(topic, p, OFFSET_BEGINNING))
            continue
        while True:
            try:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=max(0.1, left(deadline)), cached=False
                )
                positions.append(TopicPartition(topic, p, high))
                break
            except KafkaException as e:
                if time.monotonic() >= deadline:
                    raise BrokerError(f"cannot read the end of {topic} [{p}]: {kafka_text(e)}") from None
                time.sleep(0.05)
    consumer.assign(positions)
