"""Fixtures of the tests against a running chatmem fleet.

tests/test_e2e_client_python.sh starts the fleet (Redis, a broker, the
ingest, summarizer and context workers) and runs these tests with
CHATMEM_KAFKA_BROKERS and CHATMEM_TOPICS_* set, as an application would be
configured. Every test uses users of its own (``uid()``), so the tests do
not see each other's sessions.
"""

from __future__ import annotations

import time
import uuid
from typing import Callable, Iterator, Optional, TypeVar

import pytest

from chatmem import ChatMem

T = TypeVar("T")

# The bound of every wait for an effect of the fleet (ingest applying an
# event, a prebuilt context being published): generous, since the fleet
# shares two cores with the tests; a wait ends as soon as the effect is seen.
WAIT_S = 30.0


def uid(prefix: str = "py") -> str:
    """A user id no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def wait_for(what: str, probe: Callable[[], Optional[T]], timeout: float = WAIT_S) -> T:
    """Calls probe until it returns something true, and returns that;
    fails the test once timeout seconds have passed."""
    end = time.monotonic() + timeout
    last: Optional[T] = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= end:
            pytest.fail(f"{what}: not seen within {timeout:g} s")
        time.sleep(0.1)


@pytest.fixture
def cm() -> Iterator[ChatMem]:
    with ChatMem() as client:
        yield client
