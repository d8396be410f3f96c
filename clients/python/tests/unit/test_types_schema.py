"""chatmem.types against schemas/*.schema.json: every TypedDict has the keys
of its schema object, required where the schema requires them."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest

from chatmem import types

# (TypedDict, schema file, JSON pointer into it).
PAIRS: List[Tuple[Any, str, str]] = [
    (types.ChatEvent, "chat-event", ""),
    (types.ProfileFields, "chat-event", "/properties/profile"),
    (types.ContextRequest, "context-request", ""),
    (types.ProfileFields, "context-request", "/properties/profile"),
    (types.Message, "context-request", "/properties/history/items"),
    (types.ContextReply, "context-reply", "/$defs/reply"),
    (types.Profile, "context-reply", "/$defs/profile"),
    (types.Message, "context-reply", "/$defs/message"),
    (types.Metadata, "context-reply", "/$defs/metadata"),
    (types.ErrorReply, "context-reply", "/$defs/error_reply"),
    (types.ErrorInfo, "context-reply", "/$defs/error_reply/properties/error"),
    (types.PrebuiltContext, "context-prebuilt", ""),
    (types.Profile, "context-prebuilt", "/$defs/profile"),
    (types.Metadata, "context-prebuilt", "/$defs/metadata"),
]


def _at(doc: Dict[str, Any], pointer: str) -> Dict[str, Any]:
    node = doc
    for part in pointer.split("/")[1:]:
        node = node[part]
    return node


@pytest.mark.parametrize("td,schema,pointer", PAIRS, ids=[f"{p[0].__name__}@{p[1]}{p[2]}" for p in PAIRS])
def test_typeddict_matches_schema(td: Any, schema: str, pointer: str, schemas: Dict[str, Dict[str, Any]]) -> None:
    obj = _at(schemas[schema], pointer)
    props = set(obj.get("properties", {}))
    required = set(obj.get("required", []))
    assert set(td.__required_keys__) == required, f"{td.__name__} required keys differ from {schema}{pointer}"
    assert set(td.__required_keys__) | set(td.__optional_keys__) == props, (
        f"{td.__name__} keys differ from {schema}{pointer}: "
        f"only in the type {sorted(set(td.__annotations__) - props)}, "
        f"only in the schema {sorted(props - set(td.__annotations__))}"
    )


def test_role_and_scope_literals(schemas: Dict[str, Dict[str, Any]]) -> None:
    from typing import get_args

    assert set(get_args(types.Role)) == set(schemas["chat-event"]["$defs"]["role"]["enum"])
    assert set(get_args(types.EventType)) == set(schemas["chat-event"]["properties"]["type"]["enum"])
    assert set(get_args(types.Scope)) == set(schemas["context-request"]["properties"]["scope"]["enum"])
