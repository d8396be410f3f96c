"""Time-outs (and a late reply), an error reply, closing with requests in
flight, validation before producing, the reply topic's life cycle."""

from __future__ import annotations

import os

import pytest
from confluent_kafka.admin import AdminClient
from conftest import uid, wait_for

from chatmem import ChatMem, ChatMemError, ChatMemTimeout, ClosedError, ReplyError, ValidationError
from chatmem.aio import AsyncChatMem


def _nobody_topic(cm: ChatMem) -> str:
    # A request topic no context worker reads (auto-created by the broker).
    return cm.topics.requests + ".nobody"


def test_timeout_when_nobody_answers() -> None:
    probe = ChatMem()
    with ChatMem(topics={"requests": _nobody_topic(probe)}) as cm:
        with pytest.raises(ChatMemTimeout) as ei:
            cm.context(uid(), timeout=0.5)
        assert isinstance(ei.value, TimeoutError) and isinstance(ei.value, ChatMemError)
        assert ei.value.request_id and ei.value.request_id.startswith(cm.instance_id)
        assert cm.in_flight == 0


async def test_timeout_async() -> None:
    probe = ChatMem()
    async with AsyncChatMem(topics={"requests": _nobody_topic(probe)}) as acm:
        with pytest.raises(ChatMemTimeout):
            await acm.context(uid(), timeout=0.3)


def test_late_reply_is_dropped(cm: ChatMem) -> None:
    user = uid()
    # A time-out shorter than any round trip through Kafka: the request
    # times out, its reply comes later and is dropped. (Should a reply
    # ever beat it, try again: what is tested is the late reply.)
    for _ in range(5):
        try:
            cm.context(user, timeout=0.001)
        except ChatMemTimeout:
            break
    else:
        pytest.fail("a 1 ms time-out never expired")
    wait_for("the late reply", lambda: cm.late_replies >= 1)
    # The client goes on as before.
    reply = cm.context(user)
    assert reply["user_id"] == user and cm.in_flight == 0


def test_error_reply(cm: ChatMem) -> None:
    # max_tokens out of range: chatmem answers invalid_request.
    with pytest.raises(ReplyError) as ei:
        cm.context(uid(), max_tokens=0)
    assert ei.value.code == "invalid_request"
    assert "max_tokens" in ei.value.message
    assert ei.value.request_id and ei.value.request_id.startswith(cm.instance_id)
    # The client goes on as before.
    assert cm.context(uid(), max_tokens=100)["metadata"]["tokens"] <= 100


async def test_error_reply_async() -> None:
    async with AsyncChatMem() as acm:
        with pytest.raises(ReplyError) as ei:
            await acm.context(uid(), recent=100000)
        assert ei.value.code == "invalid_request" and "recent" in ei.value.message


def test_close_fails_pending_requests() -> None:
    probe = ChatMem()
    cm = ChatMem(topics={"requests": _nobody_topic(probe)}).connect()
    futures = [cm.context_future(uid(), timeout=60) for _ in range(10)]
    assert cm.in_flight == 10
    cm.close()
    for f in futures:
        with pytest.raises(ClosedError):
            f.result()
    cm.close()  # idempotent
    with pytest.raises(ClosedError):
        cm.send(uid(), "user", "too late")
    with pytest.raises(ClosedError):
        cm.connect()


def test_not_connected() -> None:
    with pytest.raises(ClosedError):
        ChatMem().context(uid())


def test_validation_before_producing(cm: ChatMem) -> None:
    with pytest.raises(ValidationError) as ei:
        cm.send("not valid!", "user", "hello")
    assert ei.value.field == "user_id"
    with pytest.raises(ValidationError):
        cm.send(uid(), "robot", "hello")
    with pytest.raises(ValidationError):
        cm.context(uid(), conversation_id="a:b")
    assert cm.in_flight == 0


def _has_controller(admin: AdminClient) -> bool:
    md = admin.list_topics(timeout=10)
    return md.controller_id in md.brokers


def test_reply_topic_life_cycle() -> None:
    admin = AdminClient({"bootstrap.servers": os.environ.get("CHATMEM_KAFKA_BROKERS", "127.0.0.1:9092")})
    with ChatMem() as cm:
        topic = cm.reply_topic
        assert topic == f"{cm.topics.replies}.{cm.instance_id}"
        md = admin.list_topics(topic=topic, timeout=10)
        assert md.topics[topic].error is None
        if _has_controller(admin):
            # Created by the client: one partition.
            assert len(md.topics[topic].partitions) == 1
    if not _has_controller(admin):
        pytest.skip("a broker without a controller (the devbroker): the reply topic is auto-created and kept")
    wait_for("the reply topic deleted", lambda: topic not in admin.list_topics(timeout=10).topics)


def test_given_reply_topic_is_kept() -> None:
    probe = ChatMem()
    topic = f"{probe.topics.replies}.{uid('given')}"
    with ChatMem(reply_topic=topic) as cm:
        assert cm.reply_topic == topic
        assert cm.context(uid())["user_id"]
    admin = AdminClient({"bootstrap.servers": probe.brokers})
    assert topic in admin.list_topics(timeout=10).topics
