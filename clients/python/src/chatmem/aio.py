"""The asyncio chatmem client, :class:`AsyncChatMem`.

The same operations as :class:`chatmem.ChatMem`, as coroutines. It is a thin
layer over a :class:`~chatmem.ChatMem`: each call starts the operation with
the synchronous client's ``*_future`` method (which never blocks on the
network) and awaits that :class:`concurrent.futures.Future` through
:func:`asyncio.wrap_future`, so the client's background threads hand
outcomes to the event loop with ``call_soon_threadsafe``. Any number of
calls may be in flight at once (``asyncio.gather``). Only :meth:`connect`,
:meth:`close` and starting a prebuilt stream touch the network from the
caller's side; they run in the loop's default executor.

::

    async with AsyncChatMem() as cm:
        await cm.send("u42", "user", "Hi, I'm Sumit")
        reply = await cm.context("u42", query="What is my name?")
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Generator, Iterable, Mapping, Optional, Type, Union

from . import _settings, _wire
from ._prebuilt import PrebuiltStream
from ._settings import Topics
from ._wire import PrebuiltEntry
from .client import ChatMem
from .errors import ClosedError
from .types import ContextReply

__all__ = ["AsyncChatMem", "AsyncPrebuiltStream"]

# How long one executor call of the prebuilt stream waits for an entry: how
# soon an async iteration sees close().
_PREBUILT_WAIT_S = 0.5


class AsyncChatMem:
    """An asyncio chatmem client. Same arguments, settings and errors as
    :class:`chatmem.ChatMem` (whose instance is :attr:`sync`)."""

    def __init__(
        self,
        brokers: Union[str, Iterable[str], None] = None,
        reply_topic: Optional[str] = None,
        kafka: Optional[Mapping[str, Any]] = None,
        topics: Optional[Mapping[str, str]] = None,
        client_id: Optional[str] = None,
        default_timeout: float = _settings.DEFAULT_TIMEOUT,
    ) -> None:
        self._cm = ChatMem(
            brokers=brokers,
            reply_topic=reply_topic,
            kafka=kafka,
            topics=topics,
            client_id=client_id,
            default_timeout=default_timeout,
        )

    @property
    def sync(self) -> ChatMem:
        """The synchronous client underneath (for its properties, or to call
        it from a thread)."""
        return self._cm

    @property
    def reply_topic(self) -> str:
        """The topic this client's replies come back on."""
        return self._cm.reply_topic

    @property
    def topics(self) -> Topics:
        """The topics this client uses."""
        return self._cm.topics

    @property
    def connected(self) -> bool:
        """Whether :meth:`connect` succeeded and :meth:`close` was not called."""
        return self._cm.connected

    async def connect(self, timeout: Optional[float] = None) -> "AsyncChatMem":
        """Connects (see :meth:`chatmem.ChatMem.connect`); returns ``self``."""
        await asyncio.get_running_loop().run_in_executor(None, self._cm.connect, timeout)
        return self

    async def close(self, timeout: Optional[float] = None) -> None:
        """Closes (see :meth:`chatmem.ChatMem.close`): pending calls fail
        with :class:`~chatmem.ClosedError`. Calling it again does nothing."""
        await asyncio.get_running_loop().run_in_executor(None, self._cm.close, timeout)

    async def send(
        self,
        user_id: str,
        role: str,
        content: str,
        conversation_id: str = _wire.DEFAULT_CONVERSATION,
        event_id: Optional[str] = None,
        ts: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> str:
        """Sends one message (see :meth:`chatmem.ChatMem.send`); returns
        its event id once the broker acknowledged it."""
        return await asyncio.wrap_future(
            self._cm.send_future(user_id, role, content, conversation_id, event_id, ts, timeout=timeout)
        )

    async def profile_set(
        self,
        user_id: str,
        name: Optional[str] = None,
        role: Optional[str] = None,
        interests: Optional[Iterable[str]] = None,
        conversation_id: str = _wire.DEFAULT_CONVERSATION,
        *,
        event_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> str:
        """Sets profile fields (see :meth:`chatmem.ChatMem.profile_set`)."""
        return await asyncio.wrap_future(
            self._cm.profile_set_future(
                user_id, name, role, interests, conversation_id, event_id=event_id, timeout=timeout
            )
        )

    async def delete_session(
        self,
        user_id: str,
        conversation_id: str,
        *,
        event_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> str:
        """Forgets one conversation (see :meth:`chatmem.ChatMem.delete_session`)."""
        return await asyncio.wrap_future(
            self._cm.delete_session_future(user_id, conversation_id, event_id=event_id, timeout=timeout)
        )

    async def delete_user(
        self, user_id: str, *, event_id: Optional[str] = None, timeout: Optional[float] = None
    ) -> str:
        """Forgets the user (see :meth:`chatmem.ChatMem.delete_user`)."""
        return await asyncio.wrap_future(self._cm.delete_user_future(user_id, event_id=event_id, timeout=timeout))

    async def context(
        self,
        user_id: str,
        conversation_id: str = _wire.DEFAULT_CONVERSATION,
        query: Optional[str] = None,
        max_tokens: Optional[int] = None,
        recent: Optional[int] = None,
        history: Optional[Iterable[Mapping[str, str]]] = None,
        scope: Optional[str] = None,
        timeout: Optional[float] = None,
        profile: Optional[Mapping[str, Any]] = None,
        stored: Optional[bool] = None,
    ) -> ContextReply:
        """Asks for the context of a session (see
        :meth:`chatmem.ChatMem.context`) and returns the reply."""
        return await asyncio.wrap_future(
            self._cm.context_future(
                user_id, conversation_id, query, max_tokens, recent, history, scope, timeout, profile, stored
            )
        )

    def prebuilt(self, from_beginning: bool = False, timeout: Optional[float] = None) -> "AsyncPrebuiltStream":
        """Reads ``context.prebuilt`` (see :meth:`chatmem.ChatMem.prebuilt`)
        as an async iterator. It is positioned when awaited
        (``stream = await cm.prebuilt()``), entered (``async with``) or first
        iterated (``async for entry in cm.prebuilt()``): await it before
        producing what it must see."""
        return AsyncPrebuiltStream(self._cm, from_beginning, timeout)

    async def __aenter__(self) -> "AsyncChatMem":
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncChatMem {self._cm!r}>"


class AsyncPrebuiltStream:
    """An async iterator over ``context.prebuilt`` (see
    :class:`chatmem.PrebuiltStream`), made by :meth:`AsyncChatMem.prebuilt`.
    Iteration ends when it (or its client) is closed."""

    def __init__(self, cm: ChatMem, from_beginning: bool, timeout: Optional[float]) -> None:
        self._cm = cm
        self._from_beginning = from_beginning
        self._timeout = timeout
        self._stream: Optional[PrebuiltStream] = None
        self._closed = False

    async def start(self) -> "AsyncPrebuiltStream":
        """Positions the stream (at the topic's end, or its beginning);
        does nothing once done. Returns ``self``. Raises
        :class:`~chatmem.ClosedError` once closed."""
        if self._closed:
            raise ClosedError("the prebuilt stream is closed")
        if self._stream is None:
            stream = await asyncio.get_running_loop().run_in_executor(
                None, self._cm.prebuilt, self._from_beginning, self._timeout
            )
            if self._stream is None:
                self._stream = stream
            else:  # started twice at once: keep the first
                stream.close()
        return self

    def __await__(self) -> Generator[Any, None, "AsyncPrebuiltStream"]:
        return self.start().__await__()

    async def get(self, timeout: Optional[float] = None) -> Optional[PrebuiltEntry]:
        """The next entry, waiting at most ``timeout`` seconds (``None``:
        until one comes); ``None`` when none came in time or the stream is
        closed."""
        if self._closed:
            return None
        await self.start()
        stream = self._stream
        assert stream is not None
        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while not stream.closed:
            wait = _PREBUILT_WAIT_S if end is None else min(_PREBUILT_WAIT_S, max(0.0, end - loop.time()))
            entry = await loop.run_in_executor(None, stream.get, wait)
            if entry is not None:
                return entry
            if end is not None and loop.time() >= end:
                return None
        return None

    def __aiter__(self) -> "AsyncPrebuiltStream":
        return self

    async def __anext__(self) -> PrebuiltEntry:
        entry = await self.get()
        if entry is None:
            raise StopAsyncIteration
        return entry

    async def close(self) -> None:
        """Stops reading; iteration ends."""
        self._closed = True
        if self._stream is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._stream.close)

    async def __aenter__(self) -> "AsyncPrebuiltStream":
        return await self.start()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()
