"""chatmem: the Python client of chatmem, the memory of LLM chat applications.

chatmem remembers who the user is and what was said, and hands the
application a compact context (profile, running summary, the last messages,
the earlier messages relevant to the query) within a token budget. This
package speaks its Kafka contract from an application:

* :class:`ChatMem` -- the synchronous client (thread-safe; ``*_future``
  methods for many calls in flight);
* :class:`chatmem.aio.AsyncChatMem` -- the same operations for asyncio.

::

    from chatmem import ChatMem
    with ChatMem() as cm:
        cm.send("u42", "user", "Hi, I'm Sumit, a full stack developer")
        print(cm.context("u42", query="What do I work on?")["context"])
"""

from ._prebuilt import PrebuiltStream
from ._settings import Topics
from ._wire import PrebuiltEntry
from .client import ChatMem
from .errors import (
    BrokerError,
    ChatMemError,
    ChatMemTimeout,
    ClosedError,
    DeliveryError,
    ReplyError,
    ValidationError,
)
from .types import ContextReply, ContextRequest, Metadata, PrebuiltContext, Profile

#: The version of this package: the version of chatmem's wire contract
#: (schemas/*.schema.json) it speaks.
__version__ = "1.0.0"
#: The wire contract's version this client speaks.
CONTRACT_VERSION = __version__

__all__ = [
    "ChatMem",
    "PrebuiltStream",
    "PrebuiltEntry",
    "Topics",
    "ContextReply",
    "ContextRequest",
    "Metadata",
    "PrebuiltContext",
    "Profile",
    "ChatMemError",
    "ValidationError",
    "ReplyError",
    "ChatMemTimeout",
    "DeliveryError",
    "ClosedError",
    "BrokerError",
    "CONTRACT_VERSION",
    "__version__",
]
