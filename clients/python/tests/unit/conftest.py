"""Fixtures of the broker-less unit tests."""

from __future__ import annotations

import json
import pathlib
from typing import Any, Dict

import pytest

# The repository's contract: clients/python/tests/unit -> schemas/.
SCHEMAS = pathlib.Path(__file__).resolve().parents[4] / "schemas"


@pytest.fixture(scope="session")
def schemas() -> Dict[str, Dict[str, Any]]:
    """schemas/*.schema.json of the repository, by file name stem
    (``context-reply``...)."""
    if not SCHEMAS.is_dir():
        pytest.fail(f"the contract's schemas are not at {SCHEMAS}")
    return {p.name[: -len(".schema.json")]: json.loads(p.read_text()) for p in SCHEMAS.glob("*.schema.json")}
