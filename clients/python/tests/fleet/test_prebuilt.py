"""context.prebuilt through the client: a session's context is published
after a message, and its deletion publishes a tombstone (None)."""

from __future__ import annotations

import asyncio
from typing import Optional

from conftest import WAIT_S, uid

from chatmem import ChatMem, PrebuiltEntry, PrebuiltStream
from chatmem.aio import AsyncChatMem, AsyncPrebuiltStream


def _next_for(stream: PrebuiltStream, key: str, want_deleted: bool, text: Optional[str] = None) -> PrebuiltEntry:
    """Reads stream until an entry of key that is (or is not) a tombstone
    (and holds text); fails after WAIT_S seconds."""
    import time

    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        e = stream.get(timeout=0.5)
        if e is None or e.key != key or e.deleted != want_deleted:
            continue
        if text is None or (e.context is not None and text in e.context["context"]):
            return e
    raise AssertionError(f"no {'tombstone' if want_deleted else 'context'} for {key} within {WAIT_S} s")


def test_prebuilt_context_then_tombstone(cm: ChatMem) -> None:
    user = uid()
    key = f"{user}:p1"
    with cm.prebuilt() as stream:
        cm.send(user, "user", "The launch code word is heliotrope.", conversation_id="p1")
        e = _next_for(stream, key, False, "heliotrope")
        assert (e.user_id, e.conversation_id) == (user, "p1")
        assert e.context is not None and "request_id" not in e.context
        assert e.context["user_id"] == user and e.context["metadata"]["total_messages"] >= 1
        assert e.partition >= 0 and e.offset >= 0
        cm.delete_session(user, "p1")
        t = _next_for(stream, key, True)
        assert t.context is None and t.deleted and (t.user_id, t.conversation_id) == (user, "p1")
        assert t.offset > e.offset or t.partition != e.partition
    assert stream.closed


def test_prebuilt_from_beginning(cm: ChatMem) -> None:
    user = uid()
    cm.send(user, "user", "A message from before the stream started.")
    with cm.prebuilt() as live:
        _next_for(live, f"{user}:default", False, "before the stream")
    # Read from the beginning, the session's context is there again.
    with cm.prebuilt(from_beginning=True) as stream:
        _next_for(stream, f"{user}:default", False, "before the stream")


def test_client_close_ends_iteration() -> None:
    cm = ChatMem().connect()
    stream = cm.prebuilt()
    cm.close()
    assert stream.closed and list(stream) == []


async def test_prebuilt_async_for() -> None:
    user = uid()
    key = f"{user}:p2"
    async with AsyncChatMem() as acm:
        stream: AsyncPrebuiltStream = await acm.prebuilt()
        await acm.send(user, "user", "My favourite colour is vermilion.", conversation_id="p2")

        async def first(deleted: bool) -> PrebuiltEntry:
            async for e in stream:
                if e.key == key and e.deleted == deleted:
                    return e
            raise AssertionError("the stream ended")

        e = await asyncio.wait_for(first(False), WAIT_S)
        assert e.context is not None and "vermilion" in e.context["context"]
        await acm.delete_session(user, "p2")
        t = await asyncio.wait_for(first(True), WAIT_S)
        assert t.context is None
        await stream.close()
