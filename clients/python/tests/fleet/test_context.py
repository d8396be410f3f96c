"""send, then context: the messages sent are in the reply (sync and
asyncio); profile_set; the reply's shape."""

from __future__ import annotations

import asyncio
from typing import List, Optional

import pytest
from conftest import uid, wait_for

from chatmem import ChatMem, ContextReply
from chatmem.aio import AsyncChatMem

MESSAGES = [
    ("user", "Hi, I'm Grace Hopper, I work as a compiler engineer"),
    ("assistant", "Nice to meet you, Grace!"),
    ("user", "I wrote the first compiler, for the A-0 system."),
]


def _recent_is(reply: ContextReply, want: List[tuple]) -> bool:
    return [(m["role"], m["content"]) for m in reply["recent"]] == want


def test_send_then_context_sync(cm: ChatMem) -> None:
    user = uid()
    ids = [cm.send(user, role, content, conversation_id="c1") for role, content in MESSAGES]
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)

    def probe() -> Optional[ContextReply]:
        # Ingest stores the messages, then what they say of the user.
        reply = cm.context(user, "c1", recent=3)
        return reply if _recent_is(reply, MESSAGES) and reply["profile"].get("name") else None

    reply = wait_for("the three messages and the profile in the context", probe)
    assert reply["user_id"] == user and reply["conversation_id"] == "c1"
    assert reply["request_id"].startswith(cm.instance_id)
    for _, content in MESSAGES:
        assert content in reply["context"]
    meta = reply["metadata"]
    assert meta["total_messages"] == 3 and meta["degraded"] is False
    assert 0 < meta["tokens"] <= 2000
    assert reply["profile"]["name"] == "Grace Hopper"
    # Another conversation of the user is empty, but knows the profile.
    other = cm.context(user, "c2")
    assert other["recent"] == [] and other["profile"].get("name") == "Grace Hopper"


async def test_send_then_context_async() -> None:
    user = uid()
    async with AsyncChatMem() as acm:
        for role, content in MESSAGES:
            await acm.send(user, role, content)

        async def reply_when_ready() -> ContextReply:
            for _ in range(300):
                reply = await acm.context(user, query="What did I write?")
                if _recent_is(reply, MESSAGES):
                    return reply
                await asyncio.sleep(0.1)
            pytest.fail("the messages never reached the context")

        reply = await reply_when_ready()
        assert reply["user_id"] == user and reply["conversation_id"] == "default"
        assert "A-0 system" in reply["context"]


def test_event_id_dedupe_and_profile_set(cm: ChatMem) -> None:
    user = uid()
    # The same event twice: chatmem keeps it once.
    cm.send(user, "user", "I live in Arlington.", event_id=f"{user}-e1", ts=1732400000000)
    cm.send(user, "user", "I live in Arlington.", event_id=f"{user}-e1", ts=1732400000000)
    cm.send(user, "user", "I like sailing.", event_id=f"{user}-e2")
    reply = wait_for(
        "both events applied",
        lambda: (lambda r: r if len(r["recent"]) == 2 else None)(cm.context(user, recent=10)),
    )
    assert [m["content"] for m in reply["recent"]] == ["I live in Arlington.", "I like sailing."]
    assert reply["metadata"]["total_messages"] == 2

    cm.profile_set(user, name="Rear Admiral Hopper", interests=["COBOL", "sailing"])
    reply = wait_for(
        "the profile set",
        lambda: (lambda r: r if r["profile"].get("name") == "Rear Admiral Hopper" else None)(cm.context(user)),
    )
    assert {"COBOL", "sailing"} <= set(reply["profile"]["interests"])
    assert "Rear Admiral Hopper" in reply["context"]


def test_inline_history(cm: ChatMem) -> None:
    history = [{"role": "user", "content": "inline one"}, {"role": "assistant", "content": "inline two"}]
    reply = cm.context(uid(), history=history, recent=5)
    assert reply["recent"] == history


def test_delete_user(cm: ChatMem) -> None:
    user = uid()
    cm.send(user, "user", "Hi, I'm Alan, a mathematician", conversation_id="a")
    cm.send(user, "user", "Remember the number 1912.", conversation_id="b")
    wait_for(
        "both sessions and the profile",
        lambda: cm.context(user, "a")["profile"].get("name") and cm.context(user, "b")["recent"],
    )
    cm.delete_user(user)
    wait_for(
        "the user forgotten",
        lambda: not cm.context(user, "a")["recent"] and not cm.context(user, "b")["recent"]
        and not cm.context(user)["profile"].get("name"),
    )


def test_request_profile_and_stored(cm: ChatMem) -> None:
    user = uid()
    cm.send(user, "user", "Hi, I'm Ada Lovelace, a mathematician")
    cm.send(user, "user", "The stored message mentions the analytical engine.")
    wait_for(
        "the stored messages and the profile",
        lambda: (lambda r: len(r["recent"]) == 2 and r["profile"].get("name"))(cm.context(user, recent=5)),
    )
    # The request's profile wins in this reply, and only in it.
    reply = cm.context(user, profile={"name": "Countess of Lovelace", "interests": ["poetry"]})
    assert reply["profile"]["name"] == "Countess of Lovelace"
    assert "poetry" in reply["profile"]["interests"]
    assert cm.context(user)["profile"].get("name") == "Ada Lovelace"
    # stored=False: from the request alone; nothing stored is read.
    history = [{"role": "user", "content": "Only this inline message."}]
    reply = cm.context(user, history=history, stored=False, profile={"role": "poet"}, recent=5)
    assert reply["recent"] == history
    assert "analytical engine" not in reply["context"]
    assert reply["profile"].get("role") == "poet" and "name" not in reply["profile"]
    assert reply["metadata"]["degraded"] is False
