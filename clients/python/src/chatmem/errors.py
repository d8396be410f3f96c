"""The exceptions of the chatmem client.

Every exception the client raises on purpose is a :class:`ChatMemError`, so
that ``except chatmem.ChatMemError`` catches them all. The subclasses say
what went wrong:

* :class:`ValidationError` -- an argument breaks the wire contract (an id
  outside ``[A-Za-z0-9._@-]{1,128}``, an unknown role...); raised before
  anything is produced. Also a :class:`ValueError`.
* :class:`ReplyError` -- chatmem answered the request with an error object
  (``code`` is machine-readable, e.g. ``invalid_request``).
* :class:`ChatMemTimeout` -- no reply (or no delivery report) within the
  time-out. Also the builtin :class:`TimeoutError`.
* :class:`DeliveryError` -- Kafka did not accept a message (the delivery
  report carried an error).
* :class:`ClosedError` -- the client is not open: not connected yet, or
  closed (requests still waiting when it closes fail with it).
* :class:`BrokerError` -- the client could not set itself up on the cluster
  (brokers unreachable, the reply topic missing and not creatable).
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "ChatMemError",
    "ValidationError",
    "ReplyError",
    "ChatMemTimeout",
    "DeliveryError",
    "ClosedError",
    "BrokerError",
]


class ChatMemError(Exception):
    """Base class of every error raised by the chatmem client."""


class ValidationError(ChatMemError, ValueError):
    """An argument does not satisfy the wire contract.

    Raised by the client itself, before anything is sent. ``field`` names the
    argument (``user_id``, ``role``, ``history[2].content``...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ReplyError(ChatMemError):
    """chatmem answered a context request with an error reply.

    ``code`` is the reply's machine-readable code (``invalid_request`` for a
    request chatmem refused), ``message`` its one-line explanation naming the
    field, and ``request_id`` the request it answers.
    """

    def __init__(self, code: str, message: str, request_id: Optional[str] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class ChatMemTimeout(ChatMemError, TimeoutError):
    """Nothing came back in time.

    For :meth:`~chatmem.ChatMem.context`: no reply within the time-out (a
    reply that arrives later is dropped). For :meth:`~chatmem.ChatMem.send`
    and the other events: the broker did not acknowledge the event in time;
    it may still be delivered, so retry with the same ``event_id`` (chatmem
    drops the duplicate). ``request_id`` or ``event_id`` says which.
    """

    def __init__(
        self,
        message: str,
        *,
        request_id: Optional[str] = None,
        event_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.event_id = event_id


class DeliveryError(ChatMemError):
    """Kafka refused or failed to deliver a message.

    ``code`` is librdkafka's error name (``MSG_SIZE_TOO_LARGE``,
    ``TOPIC_AUTHORIZATION_FAILED``, ``_MSG_TIMED_OUT``...), ``retriable``
    whether the same message may succeed later.
    """

    def __init__(self, message: str, *, code: str = "", retriable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retriable = retriable


class ClosedError(ChatMemError):
    """The client is not open: not connected yet, or closed.

    Requests and sends still waiting when :meth:`~chatmem.ChatMem.close` is
    called fail with this error.
    """


class BrokerError(ChatMemError):
    """The client could not set itself up on the Kafka cluster.

    Raised by :meth:`~chatmem.ChatMem.connect` (and
    :meth:`~chatmem.ChatMem.prebuilt`) when the brokers do not answer in time
    or a topic is missing and cannot be created.
    """
