"""The README's quick start, taken from its fenced block and run as it is
written (the broker and topics come from the environment, as the README
says)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

from conftest import wait_for

from chatmem import ChatMem

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "no python block under '## Quick start'"
    return m.group(1)


def test_quick_start_is_five_lines() -> None:
    lines = [line for line in quick_start().splitlines() if line.strip()]
    assert len(lines) == 5, lines


def test_quick_start_runs(cm: ChatMem) -> None:
    code = quick_start()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # It printed the context: empty if chatmem had not applied the message
    # yet when it asked (events are applied asynchronously, as the README
    # says), else one that holds it.
    assert out.stdout == "\n" or "Sumit" in out.stdout, out.stdout
    # What it sent reached chatmem: the user's context names them.
    user = re.search(r'cm\.send\("([^"]+)"', code).group(1)  # type: ignore[union-attr]
    wait_for("the quick start's message in the context", lambda: "Sumit" in cm.context(user)["context"])
