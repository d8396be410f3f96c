"""1,000 context requests in flight at once, every reply correlated with
its request: asyncio.gather, threads on the sync client, and futures."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import List

from conftest import uid

from chatmem import ChatMem, ContextReply
from chatmem.aio import AsyncChatMem

N = 1000
SESSIONS = 50


def _check(users: List[str], replies: List[ContextReply], cm: ChatMem) -> None:
    assert len(replies) == N
    # Each reply is the one of its request: the session asked for, and a
    # request id of this client, each one once.
    for i, (user, reply) in enumerate(zip(users, replies)):
        assert reply["user_id"] == user, (i, reply["user_id"], user)
        assert reply["conversation_id"] == f"c{i % 7}"
    ids = {r["request_id"] for r in replies}
    assert len(ids) == N and all(i.startswith(cm.instance_id + "-") for i in ids)
    assert cm.in_flight == 0


async def test_1000_concurrent_asyncio() -> None:
    tag = uid("pc")
    users = [f"{tag}u{i % SESSIONS}" for i in range(N)]
    async with AsyncChatMem(default_timeout=60) as acm:
        replies = await asyncio.gather(
            *(acm.context(u, f"c{i % 7}", recent=1) for i, u in enumerate(users))
        )
        _check(users, list(replies), acm.sync)


def test_1000_concurrent_threads(cm: ChatMem) -> None:
    tag = uid("pt")
    users = [f"{tag}u{i % SESSIONS}" for i in range(N)]
    with ThreadPoolExecutor(max_workers=64) as pool:
        replies = list(
            pool.map(lambda iu: cm.context(iu[1], f"c{iu[0] % 7}", recent=1, timeout=60), enumerate(users))
        )
    _check(users, replies, cm)


def test_1000_futures_one_thread(cm: ChatMem) -> None:
    tag = uid("pf")
    users = [f"{tag}u{i % SESSIONS}" for i in range(N)]
    futures = [cm.context_future(u, f"c{i % 7}", recent=1, timeout=60) for i, u in enumerate(users)]
    _check(users, [f.result() for f in futures], cm)
