"""Reading ``context.prebuilt``: :class:`PrebuiltStream`."""

from __future__ import annotations

import collections
import logging
import threading
import time
from types import TracebackType
from typing import Any, Deque, Dict, Iterator, Optional, Type

from confluent_kafka import Consumer, KafkaError, KafkaException

from ._kafka import assign_at, kafka_text, topic_partitions
from ._wire import PrebuiltEntry, decode_prebuilt
from .errors import ValidationError

__all__ = ["PrebuiltStream"]

log = logging.getLogger("chatmem")

# The longest one consume() holds the stream's lock: how soon close() is
# seen by a reader blocked in get() or in iteration.
_TICK_S = 0.2
_BATCH = 500


class PrebuiltStream(Iterator[PrebuiltEntry]):
    """An iterator over the entries of ``context.prebuilt``, made by
    :meth:`chatmem.ChatMem.prebuilt`.

    Iterating blocks until the next entry comes and ends once the stream
    (or its client) is closed; :meth:`get` waits at most a time-out. Each
    entry is a :class:`~chatmem.PrebuiltEntry`: the session's key, user and
    conversation, its latest ``context`` (``None`` for a tombstone: the
    session was deleted), partition and offset. Entries of one session come
    in order. Safe to close from another thread.
    """

    def __init__(
        self, conf: Dict[str, Any], topic: str, from_beginning: bool, deadline: float, brokers: str
    ) -> None:
        self._topic = topic
        self._lock = threading.Lock()
        self._closed = False
        self._consumer_closed = False
        self._buf: Deque[PrebuiltEntry] = collections.deque()
        try:
            self._consumer = Consumer(conf)
        except (KafkaException, ValueError, TypeError) as e:
            raise ValidationError("kafka", f"librdkafka refused the configuration: {kafka_text(e)}") from None
        try:
            parts = topic_partitions(self._consumer, topic, deadline, brokers)
            assign_at(self._consumer, topic, parts, deadline, from_beginning=from_beginning)
        except BaseException:
            self.close()
            raise

    @property
    def topic(self) -> str:
        """The topic read (``context.prebuilt`` unless configured)."""
        return self._topic

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def get(self, timeout: Optional[float] = None) -> Optional[PrebuiltEntry]:
        """The next entry, waiting at most ``timeout`` seconds (``None``:
        until one comes); ``None`` when none came in time or the stream is
        closed."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._buf:
                return self._buf.popleft()
            with self._lock:
                if self._closed:
                    return None
                wait = _TICK_S if end is None else min(_TICK_S, max(0.0, end - time.monotonic()))
                # consume() waits for a whole batch, poll() for one message:
                # wait for the first, then take what else is there at once.
                first = self._consumer.poll(wait)
                msgs = [] if first is None else [first, *self._consumer.consume(num_messages=_BATCH, timeout=0)]
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("%s: %s", self._topic, err.str())
                    continue
                ts_type, ts = m.timestamp()
                entry = decode_prebuilt(m.key(), m.value(), m.partition() or 0, m.offset() or 0, ts if ts_type else None)
                if entry is not None:
                    self._buf.append(entry)
            if not self._buf and end is not None and time.monotonic() >= end:
                return None

    def __iter__(self) -> "PrebuiltStream":
        return self

    def __next__(self) -> PrebuiltEntry:
        entry = self.get()
        if entry is None:
            raise StopIteration
        return entry

    def close(self) -> None:
        """Stops reading; iteration ends. Calling it again does nothing."""
        self._closed = True
        with self._lock:
            if not self._consumer_closed:
                self._consumer_closed = True
                self._consumer.close()

    def __enter__(self) -> "PrebuiltStream":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()
