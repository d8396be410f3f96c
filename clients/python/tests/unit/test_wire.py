"""Checking and encoding what the client produces, decoding what it
consumes: no broker. Every encoded message validates against the
contract's schema."""

from __future__ import annotations

import json
from typing import Any, Dict

import jsonschema
import pytest

from chatmem import PrebuiltEntry, ReplyError, ValidationError, _wire


def _valid(schemas: Dict[str, Dict[str, Any]], name: str, value: bytes) -> Dict[str, Any]:
    obj = json.loads(value)
    jsonschema.Draft202012Validator(schemas[name]).validate(obj)
    return obj  # type: ignore[no-any-return]


GOOD_IDS = ["u", "u42", "a" * 128, "Sumit.Pandya@example.com", "x_y-z.0"]
BAD_IDS = ["", "a" * 129, "a:b", "a b", "abc\n", "é", "a/b", 42, None, b"u42"]


@pytest.mark.parametrize("value", GOOD_IDS)
def test_good_ids(value: str) -> None:
    assert _wire.check_id("user_id", value) == value


@pytest.mark.parametrize("value", BAD_IDS)
def test_bad_ids(value: Any) -> None:
    with pytest.raises(ValidationError) as ei:
        _wire.check_id("user_id", value)
    assert ei.value.field == "user_id" and isinstance(ei.value, ValueError)


def test_event_ids_allow_colons() -> None:
    assert _wire.check_event_id("event_id", "u42:default:7") == "u42:default:7"
    with pytest.raises(ValidationError):
        _wire.check_event_id("event_id", "a b")
    assert len(_wire.new_event_id()) == 32 and _wire.new_event_id() != _wire.new_event_id()


def test_message_event(schemas: Dict[str, Dict[str, Any]]) -> None:
    enc = _wire.message_event("u42", "user", "Hi, I'm Sumit — 👋", "c7", "e-1", 1732400000123)
    assert enc.key == b"u42:c7" and enc.id == "e-1"
    assert _valid(schemas, "chat-event", enc.value) == {
        "type": "message",
        "event_id": "e-1",
        "user_id": "u42",
        "conversation_id": "c7",
        "role": "user",
        "content": "Hi, I'm Sumit — 👋",
        "ts": 1732400000123,
    }
    # UTF-8 as is, not \u escapes.
    assert "👋".encode() in enc.value


def test_message_event_defaults(schemas: Dict[str, Dict[str, Any]]) -> None:
    enc = _wire.message_event("u42", "assistant", "hello")
    ev = _valid(schemas, "chat-event", enc.value)
    assert enc.key == b"u42:default" and ev["conversation_id"] == "default"
    assert ev["event_id"] == enc.id and len(enc.id) == 32
    assert ev["ts"] > 1_700_000_000_000


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"role": "robot"}, "role"),
        ({"content": ""}, "content"),
        ({"content": "a\x00b"}, "content"),
        ({"content": "lone \ud800 surrogate"}, "content"),
        ({"content": b"bytes"}, "content"),
        ({"ts": -1}, "ts"),
        ({"ts": True}, "ts"),
        ({"ts": 1.5}, "ts"),
        ({"user_id": "bad id"}, "user_id"),
        ({"conversation_id": ""}, "conversation_id"),
        ({"event_id": "bad id"}, "event_id"),
    ],
)
def test_message_event_refused(kwargs: Dict[str, Any], field: str) -> None:
    args: Dict[str, Any] = {"user_id": "u42", "role": "user", "content": "hi"}
    args.update(kwargs)
    with pytest.raises(ValidationError) as ei:
        _wire.message_event(**args)
    assert ei.value.field == field


def test_profile_event(schemas: Dict[str, Dict[str, Any]]) -> None:
    profile = _wire.check_profile("profile", "Sumit Pandya", None, ["React", "Node.js"])
    enc = _wire.profile_event("u42", profile)
    assert enc.key == b"u42:default"
    ev = _valid(schemas, "chat-event", enc.value)
    assert ev["type"] == "profile.set" and ev["profile"] == {"name": "Sumit Pandya", "interests": ["React", "Node.js"]}
    assert "role" not in ev


@pytest.mark.parametrize(
    "args,field",
    [
        (("",), "profile.name"),
        (("x" * 257,), "profile.name"),
        ((None, "\x00"), "profile.role"),
        ((None, None, "React"), "profile.interests"),
        ((None, None, ["ok", ""]), "profile.interests[1]"),
        ((None, None, ["i"] * 65), "profile.interests"),
    ],
)
def test_profile_refused(args: Any, field: str) -> None:
    with pytest.raises(ValidationError) as ei:
        _wire.check_profile("profile", *args)
    assert ei.value.field == field


def test_profile_event_needs_a_field() -> None:
    with pytest.raises(ValidationError):
        _wire.profile_event("u42", _wire.check_profile("profile"))


def test_delete_events(schemas: Dict[str, Dict[str, Any]]) -> None:
    s = _wire.session_delete_event("u42", "c7")
    assert s.key == b"u42:c7"
    assert _valid(schemas, "chat-event", s.value) == {
        "type": "session.delete",
        "event_id": s.id,
        "user_id": "u42",
        "conversation_id": "c7",
    }
    # Keyed by the user's default session, as chatmem's CLI keys it.
    u = _wire.user_delete_event("u42", "del-1")
    assert u.key == b"u42:default" and u.id == "del-1"
    assert _valid(schemas, "chat-event", u.value)["type"] == "user.delete"


def test_context_request_minimal(schemas: Dict[str, Dict[str, Any]]) -> None:
    enc = _wire.context_request("r-1", "u42", reply_to="context.replies.x")
    assert enc.key == b"u42:default" and enc.id == "r-1"
    assert _valid(schemas, "context-request", enc.value) == {
        "request_id": "r-1",
        "user_id": "u42",
        "conversation_id": "default",
        "reply_to": "context.replies.x",
    }


def test_context_request_full(schemas: Dict[str, Dict[str, Any]]) -> None:
    history = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}]
    enc = _wire.context_request(
        "inst-7",
        "u42",
        "c7",
        reply_to="context.replies.x",
        query="What did I say?",
        max_tokens=500,
        recent=2,
        history=iter(history),
        scope="user",
        profile={"name": "Sumit", "interests": []},
        stored=False,
    )
    req = json.loads(enc.value)
    assert req == {
        "request_id": "inst-7",
        "user_id": "u42",
        "conversation_id": "c7",
        "reply_to": "context.replies.x",
        "max_tokens": 500,
        "recent": 2,
        "query": "What did I say?",
        "scope": "user",
        "history": history,
        "profile": {"name": "Sumit", "interests": []},
        "stored": False,
    }
    # The schema of the contract accepts it (it ignores unknown fields).
    _valid(schemas, "context-request", enc.value)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"recent": 1.0}, "recent"),
        ({"query": "a\x00"}, "query"),
        ({"scope": "everything"}, "scope"),
        ({"history": "hello"}, "history"),
        ({"history": [{"role": "user"}]}, "history[0].content"),
        ({"history": [{"role": "bot", "content": "x"}]}, "history[0].role"),
        ({"history": ["x"]}, "history[0]"),
        ({"profile": {"nick": "x"}}, "profile"),
        ({"profile": ["x"]}, "profile"),
        ({"stored": 0}, "stored"),
    ],
)
def test_context_request_refused(kwargs: Dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as ei:
        _wire.context_request("r-1", "u42", **kwargs)
    assert ei.value.field == field


def test_ranges_are_the_services_to_check() -> None:
    # Out of the schema's ranges, but well-typed: sent, and chatmem answers
    # invalid_request (a ReplyError), as its configuration decides.
    req = json.loads(_wire.context_request("r-1", "u42", max_tokens=0, recent=100000).value)
    assert req["max_tokens"] == 0 and req["recent"] == 100000


def test_decode_reply(schemas: Dict[str, Dict[str, Any]]) -> None:
    reply = {
        "request_id": "r-1",
        "user_id": "u42",
        "conversation_id": "default",
        "context": "User Profile: Sumit",
        "profile": {"name": "Sumit", "interests": []},
        "summary": "",
        "recent": [{"role": "user", "content": "hi"}],
        "metadata": {
            "total_messages": 1,
            "summarized": False,
            "cached": False,
            "tokens": 5,
            "full_history_tokens": 5,
            "degraded": False,
            "build_us": 10,
        },
    }
    raw = json.dumps(reply).encode()
    _valid(schemas, "context-reply", raw)
    assert _wire.decode_reply(raw, "r-1") == reply


def test_decode_error_reply(schemas: Dict[str, Dict[str, Any]]) -> None:
    raw = b'{"request_id":"r-1","error":{"code":"invalid_request","message":"field \'max_tokens\': out of range"}}'
    _valid(schemas, "context-reply", raw)
    err = _wire.decode_reply(raw, "r-1")
    assert isinstance(err, ReplyError)
    assert (err.code, err.request_id) == ("invalid_request", "r-1") and "max_tokens" in err.message
    assert str(err).startswith("invalid_request: ")


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", None, b'"x"'])
def test_decode_bad_reply(raw: Any) -> None:
    err = _wire.decode_reply(raw, "r-1")
    assert isinstance(err, ReplyError) and err.code == "bad_reply"


def test_decode_prebuilt() -> None:
    body = b'{"user_id":"u42","conversation_id":"c:7"}'
    e = _wire.decode_prebuilt(b"u42:c7", body, 3, 17, 1732400000000)
    assert e == PrebuiltEntry("u42:c7", "u42", "c7", json.loads(body), 3, 17, 1732400000000)
    assert not e.deleted
    t = _wire.decode_prebuilt(b"u42:c7", None, 3, 18)
    assert t is not None and t.context is None and t.deleted and (t.user_id, t.conversation_id) == ("u42", "c7")
    assert _wire.decode_prebuilt(None, body, 0, 0) is None
    assert _wire.decode_prebuilt(b"nocolon", body, 0, 0) is None
    assert _wire.decode_prebuilt(b"u:c", b"garbage", 0, 0) is None
