"""Settings of a client: options, with defaults from the environment.

The environment variables are the ones chatmem's daemons read, so that an
application deployed beside them is configured the same way:

* ``CHATMEM_KAFKA_BROKERS`` (default ``127.0.0.1:9092``);
* ``CHATMEM_TOPICS_EVENTS``, ``CHATMEM_TOPICS_REQUESTS``,
  ``CHATMEM_TOPICS_REPLIES``, ``CHATMEM_TOPICS_PREBUILT`` (defaults
  ``chat.events``, ``context.requests``, ``context.replies``,
  ``context.prebuilt``);
* ``CHATMEM_KAFKA_PROP_<NAME>``: the librdkafka property ``<name>``
  lower-cased with ``_`` as ``.`` (``CHATMEM_KAFKA_PROP_SASL_PASSWORD`` sets
  ``sasl.password``).

An option given to the constructor wins over the environment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, Union

from .errors import ValidationError

DEFAULT_BROKERS = "127.0.0.1:9092"
DEFAULT_TIMEOUT = 10.0
KAFKA_PROP_ENV_PREFIX = "CHATMEM_KAFKA_PROP_"

#: Topic role -> (environment variable, default name).
TOPIC_DEFAULTS: Dict[str, Tuple[str, str]] = {
    "events": ("CHATMEM_TOPICS_EVENTS", "chat.events"),
    "requests": ("CHATMEM_TOPICS_REQUESTS", "context.requests"),
    "replies": ("CHATMEM_TOPICS_REPLIES", "context.replies"),
    "prebuilt": ("CHATMEM_TOPICS_PREBUILT", "context.prebuilt"),
}

_TOPIC_RE = re.compile(r"[A-Za-z0-9._-]{1,249}")


def check_topic(field_name: str, name: object) -> str:
    """Returns ``name`` if it is a valid Kafka topic name, else raises
    :class:`ValidationError`."""
    if not isinstance(name, str) or not _TOPIC_RE.fullmatch(name) or name in (".", ".."):
        raise ValidationError(field_name, f"{name!r} is not a Kafka topic name ([A-Za-z0-9._-]{{1,249}})")
    return name


@dataclass(frozen=True)
class Topics:
    """The topics a client uses."""

    events: str = "chat.events"
    requests: str = "context.requests"
    replies: str = "context.replies"
    prebuilt: str = "context.prebuilt"


@dataclass(frozen=True)
class Settings:
    """Everything a client needs to connect, resolved once at construction."""

    brokers: str
    topics: Topics
    reply_topic: Optional[str]
    client_id: str
    default_timeout: float
    #: librdkafka properties of the environment and the ``kafka`` option
    #: (the option wins), applied over the client's own defaults.
    kafka: Dict[str, Any] = field(default_factory=dict)


def env_kafka_properties(environ: Mapping[str, str]) -> Dict[str, str]:
    """The librdkafka properties set by ``CHATMEM_KAFKA_PROP_*`` variables."""
    props: Dict[str, str] = {}
    for var, value in environ.items():
        if var.startswith(KAFKA_PROP_ENV_PREFIX) and len(var) > len(KAFKA_PROP_ENV_PREFIX):
            props[var[len(KAFKA_PROP_ENV_PREFIX) :].lower().replace("_", ".")] = value
    return props


def _brokers(value: Union[str, Iterable[str], None], environ: Mapping[str, str]) -> str:
    if value is None:
        value = environ.get("CHATMEM_KAFKA_BROKERS") or DEFAULT_BROKERS
    if not isinstance(value, str):
        value = ",".join(str(b) for b in value)
    value = value.strip()
    if not value:
        raise ValidationError("brokers", "empty: give host:port[,host:port...]")
    return value


def _kafka_value(name: str, value: Any) -> Any:
    # librdkafka wants strings; confluent-kafka also takes callables (for
    # error_cb, oauth_cb...) and a few objects (logger), passed as they are.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def resolve(
    brokers: Union[str, Iterable[str], None] = None,
    reply_topic: Optional[str] = None,
    kafka: Optional[Mapping[str, Any]] = None,
    topics: Optional[Mapping[str, str]] = None,
    client_id: Optional[str] = None,
    default_timeout: float = DEFAULT_TIMEOUT,
    environ: Optional[Mapping[str, str]] = None,
) -> Settings:
    """Resolves a client's settings from its options and the environment
    (``os.environ`` unless ``environ`` is given). Raises
    :class:`ValidationError` for a bad option."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    names: Dict[str, str] = {}
    for role, (var, default) in TOPIC_DEFAULTS.items():
        names[role] = env.get(var) or default
    if topics:
        for role, name in topics.items():
            if role not in TOPIC_DEFAULTS:
                raise ValidationError(
                    "topics", f"unknown topic role {role!r} (known: {', '.join(TOPIC_DEFAULTS)})"
                )
            names[role] = name
    for role, name in names.items():
        check_topic(f"topics.{role}", name)
    if reply_topic is not None:
        check_topic("reply_topic", reply_topic)
    if isinstance(default_timeout, bool) or not isinstance(default_timeout, (int, float)) or default_timeout <= 0:
        raise ValidationError("default_timeout", "must be a number of seconds > 0")
    props: Dict[str, Any] = dict(env_kafka_properties(env))
    for name, value in (kafka or {}).items():
        if not isinstance(name, str) or not name:
            raise ValidationError("kafka", f"property names are strings, not {name!r}")
        props[name] = _kafka_value(name, value)
    return Settings(
        brokers=_brokers(brokers, env),
        topics=Topics(**names),
        reply_topic=reply_topic,
        client_id=client_id or "chatmem-python",
        default_timeout=float(default_timeout),
        kafka=props,
    )
