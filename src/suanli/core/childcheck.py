"""Checks that must import heavy or foreign code (torch, Flower, onnxruntime, the user's own module) run
in a child process, so that the control plane never imports it and a crash in it is only a refusal.

The child prints one JSON line, `{"ok": true, ...}` or `{"bad_input": {field, value, allowed, hint}}`;
the parent turns the latter back into the BadInput it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping

from suanli.core.errors import BadInput, SuanliError


def answer(check: Callable[[], dict | None]) -> int:
    """The child's side: run `check` and print its one line (BadInput becomes a bad_input line)."""
    try:
        extra = check() or {}
    except BadInput as e:
        doc = {"field": e.field, "value": str(e.value), "allowed": e.allowed, "hint": e.hint}
        print(json.dumps({"bad_input": doc}), flush=True)
        return 2
    print(json.dumps({"ok": True, **extra}), flush=True)
    return 0


def ask(module: str, *, env: Mapping[str, str], cwd: str, timeout_s: float, field: str, what: str) -> dict:
    """The parent's side: `python -m MODULE check`; its answer, or the BadInput it reported. `field` and
    `what` name the thing checked in the refusals of a child that hangs or crashes."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, "check"], env=dict(env), cwd=cwd, capture_output=True, text=True,
            timeout=timeout_s,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BadInput(field, "(import)", f"must load within {timeout_s:.0f} s") from None
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    try:
        doc = json.loads(lines[-1]) if lines else {}
    except ValueError:
        doc = {}
    if "bad_input" in doc:
        b = doc["bad_input"]
        raise BadInput(b["field"], b["value"], b["allowed"], hint=b.get("hint"))
    if not doc.get("ok"):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SuanliError(f"checking {what} failed: {tail[0][:300]}")
    return doc
