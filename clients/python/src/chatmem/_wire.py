"""The chatmem wire contract: checking, encoding and decoding messages.

Pure functions, no Kafka: what the client produces (chat events, context
requests) is checked and encoded here, and what it consumes (replies,
prebuilt contexts) decoded. The rules are those of chatmem's
``schemas/*.schema.json``:

* ``user_id``, ``conversation_id``: 1-128 bytes of ``[A-Za-z0-9._@-]``;
  ``conversation_id`` defaults to ``default``;
* ``event_id``, ``request_id``: 1-128 bytes of ``[A-Za-z0-9._@:-]``;
* ``role``: ``user``, ``assistant`` or ``system``;
* text (content, query, profile fields): valid Unicode without U+0000;
  message content is not empty; a profile field is 1-256 UTF-8 bytes and
  there are at most 64 interests.

Limits that are the service's configuration (``limits.max_content_bytes``,
the ranges of ``max_tokens`` and ``recent``) are checked by chatmem itself:
an event over them goes to its dead-letter topic, a request gets an
``invalid_request`` error reply (:class:`~chatmem.ReplyError`).

Every message is keyed by its session, ``<user_id>:<conversation_id>``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union, cast

from .errors import ReplyError, ValidationError
from .types import ContextReply, Message, PrebuiltContext, ProfileFields

DEFAULT_CONVERSATION = "default"
ROLES = ("user", "assistant", "system")
SCOPES = ("session", "user")
PROFILE_TEXT_MAX_BYTES = 256
PROFILE_INTERESTS_MAX = 64

_ID_RE = re.compile(r"[A-Za-z0-9._@-]{1,128}")
_EVENT_ID_RE = re.compile(r"[A-Za-z0-9._@:-]{1,128}")


# One encoder and decoder for every message (json.dumps and json.loads
# build theirs on each call when given options or bytes).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DECODER = json.JSONDecoder()


def _encode(obj: Mapping[str, Any]) -> bytes:
    # Compact JSON, UTF-8 as is (not \u-escaped). Text was checked to be
    # encodable before, so this cannot fail on a lone surrogate.
    return _ENCODER.encode(obj).encode("utf-8")


def _decode(value: bytes) -> Any:
    # Raises ValueError (UnicodeDecodeError or JSONDecodeError).
    return _DECODER.decode(value.decode("utf-8"))


def _check_pattern(field: str, value: object, pattern: "re.Pattern[str]", chars: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if not pattern.fullmatch(value):
        raise ValidationError(field, f"{value!r} is not 1-128 characters of {chars}")
    return value


def check_id(field: str, value: object) -> str:
    """Returns ``value`` if it is a user or conversation id (1-128 bytes of
    ``[A-Za-z0-9._@-]``), else raises :class:`ValidationError`."""
    return _check_pattern(field, value, _ID_RE, "[A-Za-z0-9._@-]")


def check_event_id(field: str, value: object) -> str:
    """Returns ``value`` if it is an event or request id (1-128 bytes of
    ``[A-Za-z0-9._@:-]``), else raises :class:`ValidationError`."""
    return _check_pattern(field, value, _EVENT_ID_RE, "[A-Za-z0-9._@:-]")


def check_role(field: str, value: object) -> str:
    """Returns ``value`` if it is ``user``, ``assistant`` or ``system``."""
    if not isinstance(value, str) or value not in ROLES:
        raise ValidationError(field, f"must be one of user, assistant, system; not {value!r}")
    return value


def check_text(field: str, value: object, *, min_bytes: int = 0, max_bytes: Optional[int] = None) -> str:
    """Returns ``value`` if it is a string of valid Unicode (encodable as
    UTF-8: no lone surrogate) without U+0000, of ``min_bytes`` to
    ``max_bytes`` UTF-8 bytes."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise ValidationError(field, "must not contain U+0000")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ValidationError(field, f"is not valid Unicode ({e.reason} at {e.start})") from None
    if size < min_bytes:
        raise ValidationError(field, "must not be empty" if min_bytes == 1 else f"must be at least {min_bytes} bytes")
    if max_bytes is not None and size > max_bytes:
        raise ValidationError(field, f"is {size} bytes, more than {max_bytes}")
    return value


def _check_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, not {type(value).__name__}")
    return value


def check_profile(
    field: str,
    name: Optional[str] = None,
    role: Optional[str] = None,
    interests: Optional[Iterable[str]] = None,
) -> ProfileFields:
    """Checks profile fields set by the application and returns them as the
    wire's ``profile`` object (only the fields given). Each text is 1-256
    UTF-8 bytes; at most 64 interests."""
    out: Dict[str, Any] = {}
    if name is not None:
        out["name"] = check_text(f"{field}.name", name, min_bytes=1, max_bytes=PROFILE_TEXT_MAX_BYTES)
    if role is not None:
        out["role"] = check_text(f"{field}.role", role, min_bytes=1, max_bytes=PROFILE_TEXT_MAX_BYTES)
    if interests is not None:
        if isinstance(interests, (str, bytes)):
            raise ValidationError(f"{field}.interests", "must be a list of strings, not a single string")
        items = list(interests)
        if len(items) > PROFILE_INTERESTS_MAX:
            raise ValidationError(f"{field}.interests", f"{len(items)} items, more than {PROFILE_INTERESTS_MAX}")
        out["interests"] = [
            check_text(f"{field}.interests[{i}]", v, min_bytes=1, max_bytes=PROFILE_TEXT_MAX_BYTES)
            for i, v in enumerate(items)
        ]
    return cast(ProfileFields, out)


def _profile_mapping(field: str, profile: object) -> ProfileFields:
    if not isinstance(profile, Mapping):
        raise ValidationError(field, f"must be a mapping with name, role, interests; not {type(profile).__name__}")
    unknown = set(profile) - {"name", "role", "interests"}
    if unknown:
        raise ValidationError(field, f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    return check_profile(field, profile.get("name"), profile.get("role"), profile.get("interests"))


def session_key(user_id: str, conversation_id: str) -> str:
    """The Kafka message key of a session: ``<user_id>:<conversation_id>``."""
    return f"{user_id}:{conversation_id}"


def new_event_id() -> str:
    """A fresh event id (a random UUID, 32 hex digits)."""
    return uuid.uuid4().hex


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Encoded:
    """A message ready to produce: its key, its JSON value, and its id
    (``event_id`` or ``request_id``)."""

    key: bytes
    value: bytes
    id: str


def _event(
    kind: str, user_id: str, conversation_id: str, event_id: Optional[str], extra: Mapping[str, Any]
) -> Encoded:
    check_id("user_id", user_id)
    check_id("conversation_id", conversation_id)
    eid = new_event_id() if event_id is None else check_event_id("event_id", event_id)
    body: Dict[str, Any] = {
        "type": kind,
        "event_id": eid,
        "user_id": user_id,
        "conversation_id": conversation_id,
    }
    body.update(extra)
    return Encoded(session_key(user_id, conversation_id).encode("ascii"), _encode(body), eid)


def message_event(
    user_id: str,
    role: str,
    content: str,
    conversation_id: str = DEFAULT_CONVERSATION,
    event_id: Optional[str] = None,
    ts: Optional[int] = None,
) -> Encoded:
    """A ``message`` event. ``ts`` (ms since the epoch) defaults to now."""
    check_role("role", role)
    check_text("content", content, min_bytes=1)
    if ts is None:
        ts = now_ms()
    elif _check_int("ts", ts) < 0:
        raise ValidationError("ts", "must be >= 0 (milliseconds since the epoch)")
    return _event(
        "message", user_id, conversation_id, event_id, {"role": role, "content": content, "ts": ts}
    )


def profile_event(
    user_id: str,
    profile: ProfileFields,
    conversation_id: str = DEFAULT_CONVERSATION,
    event_id: Optional[str] = None,
) -> Encoded:
    """A ``profile.set`` event; ``profile`` comes from :func:`check_profile`."""
    if not profile:
        raise ValidationError("profile", "give at least one of name, role, interests")
    return _event("profile.set", user_id, conversation_id, event_id, {"profile": profile})


def session_delete_event(user_id: str, conversation_id: str, event_id: Optional[str] = None) -> Encoded:
    """A ``session.delete`` event: forget the conversation."""
    return _event("session.delete", user_id, conversation_id, event_id, {})


def user_delete_event(user_id: str, event_id: Optional[str] = None) -> Encoded:
    """A ``user.delete`` event: forget every conversation and the profile
    of the user. Keyed by the user's default session, as chatmem's CLI
    does."""
    return _event("user.delete", user_id, DEFAULT_CONVERSATION, event_id, {})


def _history(history: Iterable[Any]) -> List[Message]:
    if isinstance(history, (str, bytes, Mapping)):
        raise ValidationError("history", "must be a list of {role, content} messages")
    out: List[Message] = []
    for i, m in enumerate(history):
        if not isinstance(m, Mapping):
            raise ValidationError(f"history[{i}]", f"must be a mapping with role and content, not {type(m).__name__}")
        role = check_role(f"history[{i}].role", m.get("role"))
        content = check_text(f"history[{i}].content", m.get("content"))
        out.append(cast(Message, {"role": role, "content": content}))
    return out


def context_request(
    request_id: str,
    user_id: str,
    conversation_id: str = DEFAULT_CONVERSATION,
    *,
    reply_to: Optional[str] = None,
    query: Optional[str] = None,
    max_tokens: Optional[int] = None,
    recent: Optional[int] = None,
    history: Optional[Iterable[Any]] = None,
    scope: Optional[str] = None,
    profile: Optional[Mapping[str, Any]] = None,
    stored: Optional[bool] = None,
) -> Encoded:
    """A context request. Only the fields given are put in it; chatmem
    applies its defaults to the others. ``request_id`` is the caller's own
    (checked by the caller when it is not)."""
    check_id("user_id", user_id)
    check_id("conversation_id", conversation_id)
    body: Dict[str, Any] = {
        "request_id": request_id,
        "user_id": user_id,
        "conversation_id": conversation_id,
    }
    if reply_to is not None:
        body["reply_to"] = reply_to
    if max_tokens is not None:
        body["max_tokens"] = _check_int("max_tokens", max_tokens)
    if recent is not None:
        body["recent"] = _check_int("recent", recent)
    if query is not None:
        body["query"] = check_text("query", query)
    if scope is not None:
        if scope not in SCOPES:
            raise ValidationError("scope", f"must be session or user, not {scope!r}")
        body["scope"] = scope
    if history is not None:
        body["history"] = _history(history)
    if profile is not None:
        body["profile"] = _profile_mapping("profile", profile)
    if stored is not None:
        if not isinstance(stored, bool):
            raise ValidationError("stored", f"must be a bool, not {type(stored).__name__}")
        body["stored"] = stored
    return Encoded(session_key(user_id, conversation_id).encode("ascii"), _encode(body), request_id)


def _text(b: Union[bytes, str, None]) -> Optional[str]:
    if b is None:
        return None
    if isinstance(b, str):
        return b
    return b.decode("utf-8", errors="replace")


def decode_reply(value: Optional[bytes], request_id: str) -> Union[ContextReply, ReplyError]:
    """Decodes the reply to ``request_id``: the reply dict, or the
    :class:`ReplyError` of an error reply (or of a reply that is not a
    JSON object, code ``bad_reply``)."""
    try:
        obj = _decode(value) if value is not None else None
    except ValueError as e:
        return ReplyError("bad_reply", f"the reply is not JSON: {e}", request_id)
    if not isinstance(obj, dict):
        return ReplyError("bad_reply", "the reply is not a JSON object", request_id)
    err = obj.get("error")
    if err is not None:
        if isinstance(err, dict):
            return ReplyError(str(err.get("code", "error")), str(err.get("message", "")), request_id)
        return ReplyError("error", str(err), request_id)
    return cast(ContextReply, obj)


@dataclass(frozen=True)
class PrebuiltEntry:
    """One entry of ``context.prebuilt``: the latest context of a session.

    ``context`` is the prebuilt context (the reply shape without
    ``request_id``; its text is ``entry.context["context"]``), or ``None``
    for a tombstone: the session was deleted.
    """

    #: The session key, ``<user_id>:<conversation_id>``.
    key: str
    user_id: str
    conversation_id: str
    #: The context, or ``None`` for a tombstone.
    context: Optional[PrebuiltContext]
    partition: int
    offset: int
    #: The message's timestamp (ms since the epoch), when the broker has one.
    timestamp_ms: Optional[int] = None

    @property
    def deleted(self) -> bool:
        """Whether this entry is a tombstone (the session was deleted)."""
        return self.context is None


def decode_prebuilt(
    key: Union[bytes, str, None],
    value: Optional[bytes],
    partition: int,
    offset: int,
    timestamp_ms: Optional[int] = None,
) -> Optional[PrebuiltEntry]:
    """Decodes one message of ``context.prebuilt``; ``None`` when it is not
    a session's entry (no key, or a value that is not a JSON object)."""
    k = _text(key)
    if not k or ":" not in k:
        return None
    user_id, conversation_id = k.split(":", 1)
    context: Optional[PrebuiltContext] = None
    if value is not None:
        try:
            obj = _decode(value)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        context = cast(PrebuiltContext, obj)
    return PrebuiltEntry(k, user_id, conversation_id, context, partition, offset, timestamp_ms)

