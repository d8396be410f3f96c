"""The synchronous chatmem client, :class:`ChatMem`.

One Kafka producer sends events (``chat.events``) and context requests
(``context.requests``); one consumer reads the client's own reply topic,
``<replies topic>.<instance id>`` (inside chatmem's default allow-list
``context.replies*``), from its end as it was when :meth:`ChatMem.connect`
returned, so no reply is missed. Two background threads serve them:

* the reply thread consumes replies in batches and resolves the waiting
  request's :class:`concurrent.futures.Future` by ``request_id`` (the reply's
  key), and fails the requests whose time-out passed;
* the delivery thread serves the producer's delivery reports, which resolve
  the futures of sends (and fail a request Kafka could not take).

Every operation exists as a ``*_future`` method that returns at once with a
:class:`~concurrent.futures.Future` (many can be in flight), and as a
blocking method that waits for it. :mod:`chatmem.aio` wraps the same
futures for asyncio.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
import weakref
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from types import TracebackType
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Type, TypeVar, Union

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]  # re-exported, not in __all__

from . import _settings, _wire
from ._kafka import assign_at, kafka_code, kafka_text, left, topic_partitions
from ._prebuilt import PrebuiltStream
from .errors import BrokerError, ChatMemError, ChatMemTimeout, ClosedError, DeliveryError, ValidationError
from .types import ContextReply

__all__ = ["ChatMem"]

log = logging.getLogger("chatmem")
_kafka_log = logging.getLogger("chatmem.kafka")

T = TypeVar("T")

# States of a client.
_NEW, _OPEN, _CLOSED = "new", "open", "closed"
# What a deadline in the heap stands for.
_REQUEST, _SEND = 0, 1
# The longest the reply thread waits in one poll(): the granularity of
# time-outs, and how soon it sees close().
_TICK_S = 0.1
# Replies taken from the consumer at once.
_REPLY_BATCH = 1000
# The reply topic's retention: replies are read within seconds; a topic
# left behind by a client that died holds an hour of them at most.
_REPLY_RETENTION_MS = "3600000"

# librdkafka settings of the client, under what the environment
# (CHATMEM_KAFKA_PROP_*) and the kafka option set.
_PRODUCER_DEFAULTS: Dict[str, str] = {
    "enable.idempotence": "true",
    "acks": "all",
    # Requests are sent as soon as the previous batch is acknowledged: a
    # burst still travels in few produce requests, one request alone waits
    # for nothing.
    "linger.ms": "0",
}
_CONSUMER_DEFAULTS: Dict[str, str] = {
    "enable.auto.commit": "false",
    "enable.auto.offset.store": "false",
    "auto.offset.reset": "earliest",
    "enable.partition.eof": "false",
    # A real broker answers a fetch as soon as data arrives; this bounds
    # the wait of a development broker that holds it (librdkafka's mock).
    "fetch.wait.max.ms": "10",
}
# Properties that only a consumer knows: not handed to producers and admin
# clients (librdkafka would warn about each one).
_CONSUMER_ONLY = frozenset(
    {
        "group.id",
        "group.instance.id",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "auto.commit.interval.ms",
        "auto.offset.reset",
        "enable.partition.eof",
        "fetch.wait.max.ms",
        "fetch.min.bytes",
        "fetch.max.bytes",
        "fetch.message.max.bytes",
        "max.partition.fetch.bytes",
        "fetch.error.backoff.ms",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "isolation.level",
        "check.crcs",
        "partition.assignment.strategy",
    }
)
_PRODUCER_ONLY = frozenset(
    {
        "enable.idempotence",
        "acks",
        "request.required.acks",
        "linger.ms",
        "queue.buffering.max.ms",
        "batch.num.messages",
        "batch.size",
        "compression.type",
        "compression.codec",
        "message.timeout.ms",
        "delivery.timeout.ms",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
        "retries",
        "message.send.max.retries",
        "retry.backoff.ms",
        "max.in.flight",
        "max.in.flight.requests.per.connection",
        "partitioner",
        "transactional.id",
        "enable.gapless.guarantee",
        "sticky.partitioning.linger.ms",
    }
)


class _Waiter:
    """A call waiting for its outcome: a context request for its reply
    (kind _REQUEST, key = request_id) or an event for its delivery report
    (kind _SEND, key = a sequence number)."""

    __slots__ = ("fut", "kind", "key", "id", "timeout", "deadline")

    def __init__(self, kind: int, key: Any, id: str, timeout: float) -> None:
        self.fut: "Future[Any]" = Future()
        self.kind = kind
        self.key = key
        self.id = id  # the request_id or event_id
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout

    def timed_out(self) -> ChatMemTimeout:
        if self.kind == _REQUEST:
            return ChatMemTimeout(f"no reply to request {self.id} within {self.timeout:g} s", request_id=self.id)
        return ChatMemTimeout(
            f"event {self.id} not acknowledged within {self.timeout:g} s; it may still be delivered: "
            "retry with the same event_id",
            event_id=self.id,
        )


def _settle(fut: "Future[Any]", outcome: Any) -> None:
    """Completes fut with outcome (an exception fails it); a future the
    application cancelled stays cancelled."""
    try:
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)
    except InvalidStateError:
        pass


class ChatMem:
    """A chatmem client: sends chat events, asks for contexts, reads
    prebuilt contexts.

    ``brokers`` (``host:port[,...]`` or a list) defaults to
    ``$CHATMEM_KAFKA_BROKERS``, else ``127.0.0.1:9092``. ``topics`` maps
    ``events``, ``requests``, ``replies``, ``prebuilt`` to topic names
    (defaults from ``$CHATMEM_TOPICS_*``, else chatmem's). ``reply_topic``
    names the topic replies come back on (it must exist, or be
    auto-created, and match chatmem's ``context.reply_topics``); by default
    the client creates ``<replies>.<instance id>`` on connect and deletes
    it on close. ``kafka`` is a dict of librdkafka properties for every
    Kafka handle (``security.protocol``, ``sasl.*``, ``ssl.*``...), applied
    over ``$CHATMEM_KAFKA_PROP_*`` and the client's own defaults.
    ``default_timeout`` (seconds) bounds each call that does not give its
    own ``timeout``.

    Use it as a context manager, or call :meth:`connect` and :meth:`close`::

        with ChatMem() as cm:
            cm.send("u42", "user", "Hi, I'm Sumit")
            print(cm.context("u42")["context"])

    It is thread-safe: any number of threads may call it at once.
    """

    def __init__(
        self,
        brokers: Union[str, Iterable[str], None] = None,
        reply_topic: Optional[str] = None,
        kafka: Optional[Mapping[str, Any]] = None,
        topics: Optional[Mapping[str, str]] = None,
        client_id: Optional[str] = None,
        default_timeout: float = _settings.DEFAULT_TIMEOUT,
    ) -> None:
        self._settings = _settings.resolve(
            brokers=brokers,
            reply_topic=reply_topic,
            kafka=kafka,
            topics=topics,
            client_id=client_id,
            default_timeout=default_timeout,
        )
        self._instance = uuid.uuid4().hex
        self._reply_topic = reply_topic or f"{self._settings.topics.replies}.{self._instance}"
        self._generated_topic = reply_topic is None
        self._lock = threading.Lock()
        self._connect_lock = threading.Lock()
        self._state = _NEW
        # request_id -> the request waiting for its reply.
        self._pending: Dict[str, _Waiter] = {}
        # seq -> the event waiting for its delivery report.
        self._sends: Dict[int, _Waiter] = {}
        # (deadline, kind, key): a heap of the time-outs of both; entries
        # whose wait ended already are dropped when they come up.
        self._deadlines: List[Tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._late = 0
        self._closing = False
        self._controller = False
        self._producer: Optional[Producer] = None
        self._consumer: Optional[Consumer] = None
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._streams: "weakref.WeakSet[PrebuiltStream]" = weakref.WeakSet()

    # -- settings and state ---------------------------------------------

    @property
    def brokers(self) -> str:
        """The bootstrap brokers, ``host:port[,...]``."""
        return self._settings.brokers

    @property
    def topics(self) -> _settings.Topics:
        """The topics this client uses (events, requests, replies, prebuilt)."""
        return self._settings.topics

    @property
    def reply_topic(self) -> str:
        """The topic this client's replies come back on."""
        return self._reply_topic

    @property
    def instance_id(self) -> str:
        """A random id of this client instance (32 hex digits): its reply
        topic's suffix and its request ids' prefix."""
        return self._instance

    @property
    def default_timeout(self) -> float:
        """Seconds a call waits when it gives no ``timeout``."""
        return self._settings.default_timeout

    @property
    def connected(self) -> bool:
        """Whether :meth:`connect` succeeded and :meth:`close` was not called."""
        return self._state == _OPEN

    @property
    def in_flight(self) -> int:
        """Context requests waiting for their reply."""
        return len(self._pending)

    @property
    def late_replies(self) -> int:
        """Replies that came after their request timed out (dropped)."""
        return self._late

    def _timeout(self, timeout: Optional[float]) -> float:
        if timeout is None:
            return self._settings.default_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValidationError("timeout", "must be a number of seconds > 0")
        return float(timeout)

    def _check_open(self) -> None:
        if self._state != _OPEN:
            raise ClosedError("the client is closed" if self._state == _CLOSED else "not connected: call connect() first")

    # -- Kafka configuration ---------------------------------------------

    def _conf(self, defaults: Mapping[str, str], drop: "frozenset[str]") -> Dict[str, Any]:
        conf: Dict[str, Any] = {
            "bootstrap.servers": self._settings.brokers,
            "client.id": self._settings.client_id,
            "logger": _kafka_log,
            "error_cb": _on_kafka_error,
        }
        conf.update(defaults)
        conf.update({k: v for k, v in self._settings.kafka.items() if k not in drop})
        return conf

    def _producer_conf(self) -> Dict[str, Any]:
        return self._conf(_PRODUCER_DEFAULTS, _CONSUMER_ONLY)

    def _consumer_conf(self, group: str) -> Dict[str, Any]:
        conf = self._conf(_CONSUMER_DEFAULTS, _PRODUCER_ONLY)
        # assign() at explicit offsets: the group is never joined and no
        # offset is committed, but librdkafka wants one.
        conf.setdefault("group.id", group)
        return conf

    def _admin_conf(self) -> Dict[str, Any]:
        return self._conf({}, _CONSUMER_ONLY | _PRODUCER_ONLY)

    # -- connect ----------------------------------------------------------

    def connect(self, timeout: Optional[float] = None) -> "ChatMem":
        """Connects to Kafka: creates the producer, the reply topic when
        this client names its own (AdminClient, 1 partition; a cluster
        without a controller, such as chatmem's development broker, or one
        that refuses, leaves it to the broker's auto-creation) and the
        reply consumer, positioned at the topic's current end. Returns
        ``self`` once replies cannot be missed any more. Calling it again
        does nothing.

        Raises :class:`BrokerError` when the brokers do not answer within
        ``timeout`` (default: ``default_timeout``) or the reply topic cannot
        be had, :class:`ClosedError` after :meth:`close`.
        """
        t = self._timeout(timeout)
        with self._connect_lock:
            if self._state == _OPEN:
                return self
            if self._state == _CLOSED:
                raise ClosedError("the client is closed: make a new one")
            deadline = time.monotonic() + t
            producer = consumer = None
            try:
                producer = _handle(Producer, self._producer_conf())
                consumer = _handle(Consumer, self._consumer_conf(f"chatmem-client-{self._instance}"))
                if self._generated_topic:
                    self._create_reply_topic(deadline)
                parts = topic_partitions(producer, self._reply_topic, deadline, self._settings.brokers)
                assign_at(consumer, self._reply_topic, parts, deadline, from_beginning=False)
            except BaseException:
                if consumer is not None:
                    consumer.close()
                raise
            self._producer, self._consumer = producer, consumer
            self._stop.clear()
            self._threads = [
                threading.Thread(target=self._reply_loop, name="chatmem-replies", daemon=True),
                threading.Thread(target=self._delivery_loop, name="chatmem-deliveries", daemon=True),
            ]
            for th in self._threads:
                th.start()
            with self._lock:
                self._state = _OPEN
        log.debug("connected to %s, replies on %s", self._settings.brokers, self._reply_topic)
        return self

    def _create_reply_topic(self, deadline: float) -> None:
        admin = _handle(AdminClient, self._admin_conf())
        try:
            md = admin.list_topics(timeout=max(0.1, left(deadline)))
        except KafkaException as e:
            raise BrokerError(f"cannot reach the brokers {self._settings.brokers}: {kafka_text(e)}") from None
        if self._reply_topic in md.topics and md.topics[self._reply_topic].error is None:
            return
        # librdkafka's mock cluster (chatmem-devbroker) names a controller
        # that is none of its brokers, and an admin request would wait for
        # it until the time-out: its topics are auto-created instead.
        self._controller = md.controller_id in md.brokers
        if not self._controller:
            log.debug("no controller among the brokers: %s is left to auto-creation", self._reply_topic)
            return
        wait = max(0.1, left(deadline))
        fut = admin.create_topics(
            [NewTopic(self._reply_topic, 1, config={"retention.ms": _REPLY_RETENTION_MS})],
            request_timeout=wait,
            operation_timeout=wait,
        )[self._reply_topic]
        try:
            fut.result(timeout=wait + 1.0)
        except KafkaException as e:
            err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            if err is not None and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return
            log.warning(
                "cannot create the reply topic %s (%s): relying on the broker's auto-creation",
                self._reply_topic,
                kafka_text(e),
            )
        except FutureTimeout:
            log.warning("creating the reply topic %s timed out: relying on auto-creation", self._reply_topic)

    # -- the background threads -----------------------------------------

    def _reply_loop(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while not self._stop.is_set():
            wait = _TICK_S
            if self._deadlines:
                wait = min(wait, max(0.0, self._deadlines[0][0] - time.monotonic()))
            try:
                # consume() waits for a whole batch, poll() for one message:
                # wait for the first, then take what else is there at once.
                first = consumer.poll(wait)
                msgs = [first] if first is not None else []
                if first is not None:
                    msgs.extend(consumer.consume(num_messages=_REPLY_BATCH, timeout=0))
            except Exception:  # pragma: no cover - only when closed under it
                log.exception("reading replies failed")
                continue
            if msgs:
                self._on_replies(msgs)
            if self._deadlines and self._deadlines[0][0] <= time.monotonic():
                self._expire()

    def _on_replies(self, msgs: List[Message]) -> None:
        mine: List[Tuple[_Waiter, Optional[bytes]]] = []
        late: List[_Waiter] = []
        now = time.monotonic()
        with self._lock:
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("reply topic %s: %s", self._reply_topic, err.str())
                    continue
                key = m.key()
                rid = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
                if not rid:
                    continue
                waiter = self._pending.pop(rid, None)
                if waiter is None or waiter.deadline < now:
                    # Its request timed out: whether or not that was seen
                    # yet, the reply is dropped.
                    self._late += 1
                    if waiter is not None:
                        late.append(waiter)
                    continue
                value = m.value()
                mine.append((waiter, value if isinstance(value, bytes) else None))
        for waiter in late:
            _settle(waiter.fut, waiter.timed_out())
        for waiter, value in mine:
            _settle(waiter.fut, _wire.decode_reply(value, waiter.id))

    def _take(self, kind: int, key: Any) -> Optional[_Waiter]:
        # Takes a waiter out (the lock held): whoever takes it settles it.
        if kind == _REQUEST:
            return self._pending.pop(key, None)
        return self._sends.pop(key, None)

    def _expire(self) -> None:
        now = time.monotonic()
        expired: List[_Waiter] = []
        with self._lock:
            while self._deadlines and self._deadlines[0][0] <= now:
                _, kind, key = heapq.heappop(self._deadlines)
                waiter = self._take(kind, key)
                if waiter is not None:
                    expired.append(waiter)
        for waiter in expired:
            _settle(waiter.fut, waiter.timed_out())

    def _wait(self, waiter: _Waiter) -> Any:
        """Waits for the outcome of waiter (the blocking calls): its result,
        or its exception raised. Its time-out is the caller's own, not the
        reply thread's (which sees it within _TICK_S)."""
        try:
            return waiter.fut.result(waiter.timeout)
        except FutureTimeout as e:
            # On Python >= 3.11 that is also the builtin TimeoutError, which
            # ChatMemTimeout (a future's own outcome) subclasses.
            if isinstance(e, ChatMemError):
                raise
        with self._lock:
            mine = self._take(waiter.kind, waiter.key) is not None
        if mine:
            _settle(waiter.fut, waiter.timed_out())
        # Settled now, by this thread or (a reply that came meanwhile) by
        # the reply thread.
        return waiter.fut.result(_TICK_S * 10)

    def _delivery_loop(self) -> None:
        producer = self._producer
        assert producer is not None
        while not self._stop.is_set():
            producer.poll(_TICK_S)

    # -- producing ----------------------------------------------------------

    def _produce(self, topic: str, enc: _wire.Encoded, on_delivery: Any, deadline: float) -> None:
        producer = self._producer
        assert producer is not None
        while True:
            try:
                producer.produce(topic, enc.value, enc.key, on_delivery=on_delivery)
                return
            except BufferError:
                # The local queue is full: wait for deliveries to make room.
                if time.monotonic() >= deadline:
                    raise ChatMemTimeout(f"the producer's queue stayed full: {enc.id} not sent") from None
                producer.poll(0.01)
            except KafkaException as e:
                raise DeliveryError(f"cannot produce to {topic}: {kafka_text(e)}", code=kafka_code(e)) from None

    def _delivery_error(self, err: KafkaError, what: str, topic: str) -> ChatMemError:
        if self._closing and err.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
            return ClosedError(f"{what}: the client closed before the broker acknowledged it")
        return DeliveryError(f"{what} not delivered to {topic}: {err.str()}", code=err.name(), retriable=err.retriable())

    def _send(self, enc: _wire.Encoded, timeout: Optional[float]) -> _Waiter:
        topic = self._settings.topics.events
        seq = next(self._seq)
        waiter = _Waiter(_SEND, seq, enc.id, self._timeout(timeout))
        with self._lock:
            self._check_open()
            self._sends[seq] = waiter
            heapq.heappush(self._deadlines, (waiter.deadline, _SEND, seq))

        def delivered(err: Optional[KafkaError], _msg: Message) -> None:
            with self._lock:
                mine = self._sends.pop(seq, None) is not None
            if mine:
                _settle(waiter.fut, self._delivery_error(err, f"event {enc.id}", topic) if err else enc.id)

        try:
            self._produce(topic, enc, delivered, waiter.deadline)
        except BaseException:
            with self._lock:
                self._sends.pop(seq, None)
            raise
        return waiter

    def send_future(
        self,
        user_id: str,
        role: str,
        content: str,
        conversation_id: str = _wire.DEFAULT_CONVERSATION,
        event_id: Optional[str] = None,
        ts: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> "Future[str]":
        """Like :meth:`send`, but returns at once with a future of the
        event id, resolved when the broker acknowledged the event.
        Arguments are checked before it returns (:class:`ValidationError`)."""
        return self._send(_wire.message_event(user_id, role, content, conversation_id, event_id, ts), timeout).fut

    def send(
        self,
        user_id: str,
        role: str,
        content: str,
        conversation_id: str = _wire.DEFAULT_CONVERSATION,
        event_id: Optional[str] = None,
        ts: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> str:
        """Sends one message of a conversation to chatmem and waits until
        the broker acknowledged it; returns its event id.

        ``role`` is ``user``, ``assistant`` or ``system``. ``event_id``
        (1-128 characters of ``[A-Za-z0-9._@:-]``) is generated when absent;
        chatmem drops a repeated one, so a retry with the same id is safe.
        ``ts`` (ms since the epoch) defaults to now. The event is keyed by
        its session, so a session's events are applied in order.

        Raises :class:`ValidationError` (nothing sent), :class:`DeliveryError`,
        :class:`ChatMemTimeout` (not acknowledged within ``timeout``; it may
        still arrive) or :class:`ClosedError`.
        """
        enc = _wire.message_event(user_id, role, content, conversation_id, event_id, ts)
        return str(self._wait(self._send(enc, timeout)))

    def profile_set_future(
        self,
        user_id: str,
        name: Optional[str] = None,
        role: Optional[str] = None,
        interests: Optional[Iterable[str]] = None,
        conversation_id: str = _wire.DEFAULT_CONVERSATION,
        *,
        event_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> "Future[str]":
        """Like :meth:`profile_set`, returning a future of the event id."""
        profile = _wire.check_profile("profile", name, role, interests)
        return self._send(_wire.profile_event(user_id, profile, conversation_id, event_id), timeout).fut

    def profile_set(
        self,
        user_id: str,
        name: Optional[str] = None,
        role: Optional[str] = None,
        interests: Optional[Iterable[str]] = None,
        conversation_id: str = _wire.DEFAULT_CONVERSATION,
        *,
        event_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> str:
        """Sets profile fields of the user (a ``profile.set`` event): each
        field given wins over what chatmem extracts from the conversation,
        in every conversation of the user. Give at least one. Returns the
        event id once acknowledged."""
        profile = _wire.check_profile("profile", name, role, interests)
        return str(self._wait(self._send(_wire.profile_event(user_id, profile, conversation_id, event_id), timeout)))

    def delete_session_future(
        self,
        user_id: str,
        conversation_id: str,
        *,
        event_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> "Future[str]":
        """Like :meth:`delete_session`, returning a future of the event id."""
        return self._send(_wire.session_delete_event(user_id, conversation_id, event_id), timeout).fut

    def delete_session(
        self,
        user_id: str,
        conversation_id: str,
        *,
        event_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> str:
        """Forgets one conversation (a ``session.delete`` event): its
        messages, summary and archive; its prebuilt context gets a
        tombstone. Returns the event id once acknowledged."""
        return str(self._wait(self._send(_wire.session_delete_event(user_id, conversation_id, event_id), timeout)))

    def delete_user_future(
        self, user_id: str, *, event_id: Optional[str] = None, timeout: Optional[float] = None
    ) -> "Future[str]":
        """Like :meth:`delete_user`, returning a future of the event id."""
        return self._send(_wire.user_delete_event(user_id, event_id), timeout).fut

    def delete_user(self, user_id: str, *, event_id: Optional[str] = None, timeout: Optional[float] = None) -> str:
        """Forgets the user (a ``user.delete`` event): every conversation
        and the profile. Returns the event id once acknowledged."""
        return str(self._wait(self._send(_wire.user_delete_event(user_id, event_id), timeout)))

    # -- context ------------------------------------------------------------

    def _context(
        self,
        user_id: str,
        conversation_id: str,
        query: Optional[str],
        max_tokens: Optional[int],
        recent: Optional[int],
        history: Optional[Iterable[Mapping[str, str]]],
        scope: Optional[str],
        timeout: Optional[float],
        profile: Optional[Mapping[str, Any]],
        stored: Optional[bool],
    ) -> _Waiter:
        t = self._timeout(timeout)
        request_id = f"{self._instance}-{next(self._seq)}"
        enc = _wire.context_request(
            request_id,
            user_id,
            conversation_id,
            reply_to=self._reply_topic,
            query=query,
            max_tokens=max_tokens,
            recent=recent,
            history=history,
            scope=scope,
            profile=profile,
            stored=stored,
        )
        topic = self._settings.topics.requests
        waiter = _Waiter(_REQUEST, request_id, request_id, t)
        with self._lock:
            self._check_open()
            self._pending[request_id] = waiter
            heapq.heappush(self._deadlines, (waiter.deadline, _REQUEST, request_id))

        def delivered(err: Optional[KafkaError], _msg: Message) -> None:
            if err is None:
                return
            with self._lock:
                mine = self._pending.pop(request_id, None) is not None
            if mine:
                _settle(waiter.fut, self._delivery_error(err, f"request {request_id}", topic))

        try:
            self._produce(topic, enc, delivered, waiter.deadline)
        except BaseException:
            with self._lock:
                self._pending.pop(request_id, None)
            raise
        return waiter

    def context_future(
        self,
        user_id: str,
        conversation_id: str = _wire.DEFAULT_CONVERSATION,
        query: Optional[str] = None,
        max_tokens: Optional[int] = None,
        recent: Optional[int] = None,
        history: Optional[Iterable[Mapping[str, str]]] = None,
        scope: Optional[str] = None,
        timeout: Optional[float] = None,
        profile: Optional[Mapping[str, Any]] = None,
        stored: Optional[bool] = None,
    ) -> "Future[ContextReply]":
        """Like :meth:`context`, but returns at once with a future of the
        reply; any number may be in flight. The future fails with
        :class:`ReplyError`, :class:`ChatMemTimeout`, :class:`DeliveryError`
        or :class:`ClosedError`. A reply that comes after ``timeout`` is
        dropped; the time-out itself is seen within 0.1 s. Arguments are
        checked before it returns (:class:`ValidationError`)."""
        waiter = self._context(
            user_id, conversation_id, query, max_tokens, recent, history, scope, timeout, profile, stored
        )
        return waiter.fut

    def context(
        self,
        user_id: str,
        conversation_id: str = _wire.DEFAULT_CONVERSATION,
        query: Optional[str] = None,
        max_tokens: Optional[int] = None,
        recent: Optional[int] = None,
        history: Optional[Iterable[Mapping[str, str]]] = None,
        scope: Optional[str] = None,
        timeout: Optional[float] = None,
        profile: Optional[Mapping[str, Any]] = None,
        stored: Optional[bool] = None,
    ) -> ContextReply:
        """Asks chatmem for the context of a session and waits for the
        reply (a dict of the wire's reply shape: ``reply["context"]`` is the
        text for the prompt, ``reply["metadata"]`` how it was built).

        ``query`` is the message the application is about to answer: the
        context then also holds the earlier messages most relevant to it.
        ``max_tokens`` and ``recent`` (messages kept verbatim) default to
        chatmem's configuration. ``history`` (a list of ``{"role",
        "content"}``) is used instead of the stored messages. ``scope`` is
        ``"session"`` (default) or ``"user"`` (recall from every
        conversation of the user). ``profile`` (``{"name", "role",
        "interests"}``) overrides profile fields in this reply only;
        ``stored=False`` builds it from the request alone.

        Raises :class:`ReplyError` when chatmem refuses the request (code
        ``invalid_request``: e.g. ``max_tokens`` out of range),
        :class:`ChatMemTimeout` when no reply came within ``timeout``
        seconds (default: ``default_timeout``; a later reply is dropped),
        :class:`ValidationError`, :class:`DeliveryError` or
        :class:`ClosedError`.
        """
        waiter = self._context(
            user_id, conversation_id, query, max_tokens, recent, history, scope, timeout, profile, stored
        )
        reply: ContextReply = self._wait(waiter)
        return reply

    # -- prebuilt -------------------------------------------------------------

    def prebuilt(self, from_beginning: bool = False, timeout: Optional[float] = None) -> PrebuiltStream:
        """Reads ``context.prebuilt``: returns an iterator of
        :class:`PrebuiltEntry` (key, user_id, conversation_id, context,
        partition, offset), ``context`` being ``None`` for a tombstone (a
        deleted session). It starts at the topic's current end (every entry
        published after this call returns), or at its beginning with
        ``from_beginning=True`` (the latest context of every session, as far
        as log compaction kept them). Iterating blocks until an entry comes;
        :meth:`PrebuiltStream.get` waits at most a time-out. Close it (or
        use it as a context manager); :meth:`close` of the client closes it
        too."""
        self._check_open()
        stream = PrebuiltStream(
            self._consumer_conf(f"chatmem-prebuilt-{uuid.uuid4().hex}"),
            self._settings.topics.prebuilt,
            from_beginning,
            time.monotonic() + self._timeout(timeout),
            self._settings.brokers,
        )
        with self._lock:
            if self._state != _OPEN:
                stream.close()
                self._check_open()
            self._streams.add(stream)
        return stream

    # -- close ----------------------------------------------------------------

    def close(self, timeout: Optional[float] = None) -> None:
        """Closes the client: requests still waiting for a reply fail with
        :class:`ClosedError`; events already sent are delivered (waiting at
        most ``timeout``, default ``default_timeout``; those still
        unacknowledged then fail with :class:`ClosedError`); prebuilt
        streams close; the reply topic this client created is deleted
        (best-effort). Calling it again does nothing."""
        t = self._timeout(timeout)
        with self._connect_lock:
            with self._lock:
                if self._state == _CLOSED:
                    return
                was_open = self._state == _OPEN
                self._state = _CLOSED
                pending = list(self._pending.values())
                self._pending.clear()
                streams = list(self._streams)
            for waiter in pending:
                _settle(waiter.fut, ClosedError(f"the client closed before the reply to request {waiter.id} came"))
            for stream in streams:
                stream.close()
            if not was_open:
                return
            self._stop.set()
            for th in self._threads:
                if th is not threading.current_thread():
                    th.join()
            self._closing = True
            producer, consumer = self._producer, self._consumer
            assert producer is not None and consumer is not None
            if producer.flush(t) > 0:
                producer.purge()
                producer.poll(0)
            with self._lock:
                sends = list(self._sends.values())
                self._sends.clear()
                self._deadlines.clear()
            for waiter in sends:
                _settle(waiter.fut, ClosedError(f"event {waiter.id}: the client closed before the broker acknowledged it"))
            consumer.close()
            if self._generated_topic and self._controller:
                self._delete_reply_topic(min(t, 5.0))
        log.debug("closed (%d requests failed, %d late replies)", len(pending), self._late)

    def _delete_reply_topic(self, timeout: float) -> None:
        try:
            admin = AdminClient(self._admin_conf())
            fut = admin.delete_topics([self._reply_topic], request_timeout=timeout, operation_timeout=timeout)[
                self._reply_topic
            ]
            fut.result(timeout=timeout + 1.0)
        except Exception as e:  # best-effort: the topic's retention is short
            log.info("could not delete the reply topic %s: %s", self._reply_topic, e)

    def __enter__(self) -> "ChatMem":
        return self.connect()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ChatMem {self._state} brokers={self._settings.brokers!r} reply_topic={self._reply_topic!r}>"


def _handle(kind: Type[T], conf: Dict[str, Any]) -> T:
    """A Kafka handle of kind (Producer, Consumer, AdminClient) made with
    conf; a property librdkafka refuses raises ValidationError."""
    try:
        return kind(conf)  # type: ignore[call-arg]
    except (KafkaException, ValueError, TypeError) as e:
        raise ValidationError("kafka", f"librdkafka refused the configuration: {kafka_text(e)}") from None


def _on_kafka_error(err: KafkaError) -> None:
    # Global errors (brokers down, authentication): librdkafka keeps
    # retrying; the calls that depend on it time out.
    _kafka_log.warning("kafka: %s", err.str())
