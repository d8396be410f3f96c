"""The wire shapes of the chatmem contract, as ``TypedDict`` classes.

They mirror ``schemas/*.schema.json`` of the chatmem repository key for key
(a test compares them): what the client sends (:class:`ChatEvent`,
:class:`ContextRequest`) and what it receives (:class:`ContextReply`,
:class:`ErrorReply`, :class:`PrebuiltContext`). Replies are handed to the
application as the plain ``dict`` decoded from JSON; these classes only
type them.
"""

from __future__ import annotations

from typing import List, Literal, TypedDict

__all__ = [
    "Role",
    "EventType",
    "Scope",
    "Message",
    "Profile",
    "ProfileFields",
    "Metadata",
    "PrebuiltContext",
    "ContextReply",
    "ErrorInfo",
    "ErrorReply",
    "ContextRequest",
    "ChatEvent",
]

Role = Literal["user", "assistant", "system"]
"""Who wrote a message."""

EventType = Literal["message", "profile.set", "session.delete", "user.delete"]
"""The ``type`` of a chat event."""

Scope = Literal["session", "user"]
"""Where recall searches: this conversation, or every conversation of the user."""


class Message(TypedDict):
    """One message: of a reply's ``recent`` list or a request's ``history``."""

    role: Role
    content: str


class _ProfileRequired(TypedDict):
    interests: List[str]


class Profile(_ProfileRequired, total=False):
    """What chatmem knows about the user (in a reply): ``name`` and ``role``
    only when known, ``interests`` always (possibly empty)."""

    name: str
    role: str


class ProfileFields(TypedDict, total=False):
    """Profile fields set by the application (a ``profile.set`` event, or a
    request's ``profile``): each one given wins over what chatmem extracted."""

    name: str
    role: str
    interests: List[str]


class _MetadataRequired(TypedDict):
    total_messages: int
    summarized: bool
    cached: bool
    tokens: int
    full_history_tokens: int
    degraded: bool
    build_us: int


class Metadata(_MetadataRequired, total=False):
    """How a context was built.

    ``tokens`` never exceeds the request's ``max_tokens``;
    ``full_history_tokens`` is what the whole history would take;
    ``degraded`` is true when it was built without Redis; ``recalled`` counts
    the earlier messages included for the query.
    """

    recalled: int
    recall_us: int


class PrebuiltContext(TypedDict):
    """A context as published on ``context.prebuilt`` (the reply shape
    without ``request_id``)."""

    user_id: str
    conversation_id: str
    context: str
    profile: Profile
    summary: str
    recent: List[Message]
    metadata: Metadata


class ContextReply(PrebuiltContext):
    """The reply to a context request: ``context`` is the text to put in the
    prompt; the other fields are its parts and how it was built."""

    request_id: str


class ErrorInfo(TypedDict):
    """The error of an error reply: a machine-readable ``code`` and a
    one-line ``message``."""

    code: str
    message: str


class _ErrorReplyRequired(TypedDict):
    error: ErrorInfo


class ErrorReply(_ErrorReplyRequired, total=False):
    """The reply to a bad request (raised as :class:`chatmem.ReplyError`)."""

    request_id: str


class _ContextRequestRequired(TypedDict):
    request_id: str
    user_id: str


class ContextRequest(_ContextRequestRequired, total=False):
    """A context request as produced to ``context.requests``."""

    conversation_id: str
    reply_to: str
    max_tokens: int
    recent: int
    query: str
    scope: Scope
    history: List[Message]
    profile: ProfileFields
    stored: bool


class _ChatEventRequired(TypedDict):
    event_id: str
    user_id: str


class ChatEvent(_ChatEventRequired, total=False):
    """A chat event as produced to ``chat.events``."""

    type: EventType
    conversation_id: str
    role: Role
    content: str
    ts: int
    profile: ProfileFields
