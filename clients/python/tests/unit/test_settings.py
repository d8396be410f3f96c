"""Settings: options, defaults from the environment (the daemons'
variables), and how librdkafka properties reach each Kafka handle."""

from __future__ import annotations

import pathlib
import re

import pytest

import chatmem
from chatmem import ChatMem, ClosedError, Topics, ValidationError, _settings
from chatmem.aio import AsyncChatMem


def test_defaults() -> None:
    s = _settings.resolve(environ={})
    assert s.brokers == "127.0.0.1:9092"
    assert s.topics == Topics("chat.events", "context.requests", "context.replies", "context.prebuilt")
    assert s.kafka == {} and s.default_timeout == 10.0 and s.reply_topic is None


def test_environment() -> None:
    env = {
        "CHATMEM_KAFKA_BROKERS": "k1:9092,k2:9092",
        "CHATMEM_TOPICS_EVENTS": "ns.chat.events",
        "CHATMEM_TOPICS_REQUESTS": "ns.context.requests",
        "CHATMEM_TOPICS_REPLIES": "ns.context.replies",
        "CHATMEM_TOPICS_PREBUILT": "ns.context.prebuilt",
        "CHATMEM_KAFKA_PROP_SASL_PASSWORD": "secret",
        "CHATMEM_KAFKA_PROP_SECURITY_PROTOCOL": "SASL_SSL",
        "CHATMEM_OTHER": "x",
    }
    s = _settings.resolve(environ=env)
    assert s.brokers == "k1:9092,k2:9092"
    assert s.topics == Topics("ns.chat.events", "ns.context.requests", "ns.context.replies", "ns.context.prebuilt")
    assert s.kafka == {"sasl.password": "secret", "security.protocol": "SASL_SSL"}


def test_options_win() -> None:
    env = {"CHATMEM_KAFKA_BROKERS": "k1:9092", "CHATMEM_TOPICS_EVENTS": "x", "CHATMEM_KAFKA_PROP_LINGER_MS": "5"}
    s = _settings.resolve(
        brokers=["a:1", "b:2"],
        topics={"events": "mine"},
        kafka={"linger.ms": 7, "enable.idempotence": True},
        environ=env,
        default_timeout=3,
    )
    assert s.brokers == "a:1,b:2" and s.topics.events == "mine" and s.topics.requests == "context.requests"
    assert s.kafka == {"linger.ms": "7", "enable.idempotence": "true"} and s.default_timeout == 3.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"topics": {"bogus": "x"}},
        {"topics": {"events": "bad topic"}},
        {"topics": {"events": ".."}},
        {"reply_topic": "x" * 250},
        {"brokers": " "},
        {"default_timeout": 0},
        {"default_timeout": "10"},
        {"kafka": {"": "x"}},
    ],
)
def test_bad_options(kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError):
        _settings.resolve(environ={}, **kwargs)


def test_client_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMEM_TOPICS_REPLIES", "ns.context.replies")
    cm = ChatMem(brokers="127.0.0.1:1")
    assert cm.reply_topic == f"ns.context.replies.{cm.instance_id}" and len(cm.instance_id) == 32
    assert not cm.connected and cm.in_flight == 0
    # Arguments are checked first, then the state.
    with pytest.raises(ValidationError):
        cm.context("bad id")
    with pytest.raises(ClosedError, match="not connected"):
        cm.context("u42")
    with pytest.raises(ClosedError):
        cm.send("u42", "user", "hi")
    with pytest.raises(ClosedError):
        cm.prebuilt()
    cm.close()
    cm.close()
    with pytest.raises(ClosedError, match="closed"):
        cm.connect()
    assert ChatMem(reply_topic="context.replies.mine").reply_topic == "context.replies.mine"


async def test_async_client_offline() -> None:
    acm = AsyncChatMem(brokers="127.0.0.1:1")
    with pytest.raises(ClosedError):
        await acm.context("u42")
    with pytest.raises(ValidationError):
        await acm.send("u42", "robot", "hi")
    await acm.close()


def test_properties_reach_the_right_handles() -> None:
    cm = ChatMem(
        brokers="b:1",
        kafka={"security.protocol": "SSL", "linger.ms": 5, "fetch.wait.max.ms": 1, "group.id": "g"},
        client_id="app",
    )
    p = cm._producer_conf()
    c = cm._consumer_conf("default-group")
    a = cm._admin_conf()
    for conf in (p, c, a):
        assert conf["bootstrap.servers"] == "b:1" and conf["security.protocol"] == "SSL"
        assert conf["client.id"] == "app"
    assert p["enable.idempotence"] == "true" and p["acks"] == "all" and p["linger.ms"] == "5"
    assert "fetch.wait.max.ms" not in p and "group.id" not in p
    assert c["fetch.wait.max.ms"] == "1" and c["group.id"] == "g" and c["enable.auto.commit"] == "false"
    assert "linger.ms" not in c and "enable.idempotence" not in c
    assert "linger.ms" not in a and "group.id" not in a


def test_version_is_the_contracts() -> None:
    here = pathlib.Path(__file__).resolve()
    pyproject = (here.parents[2] / "pyproject.toml").read_text()
    contract = (here.parents[4] / "schemas" / "VERSION").read_text().strip()
    m = re.search(r'^version = "([^"]+)"', pyproject, re.M)
    assert m and m.group(1) == chatmem.__version__ == chatmem.CONTRACT_VERSION == contract


def test_refused_kafka_property() -> None:
    cm = ChatMem(brokers="127.0.0.1:1", kafka={"no.such.property": "x"})
    with pytest.raises(ValidationError) as ei:
        cm.connect(timeout=1)
    assert ei.value.field == "kafka" and "no.such.property" in str(ei.value)
    cm.close()
