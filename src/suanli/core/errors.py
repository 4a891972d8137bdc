"""One error hierarchy. Each error knows its exit code so the CLI maps it in one place."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SuanliError(Exception):
    """A failure that is not the user's input (exit code 1)."""

    exit_code = 1


class BadInput(SuanliError):
    """The user's input is wrong (exit code 2). Names the field, the value and what is allowed."""

    exit_code = 2

    def __init__(
        self,
        field: str,
        value: object,
        allowed: str,
        *,
        hint: str | None = None,
        source: str | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.hint = hint
        self.source = source
        where = f"{source}: " if source else ""
        shown = value if isinstance(value, str | int | float) else repr(value)
        text = f"{where}{field}: {allowed}" if shown == "" else f"{where}{field}={shown!s}: {allowed}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class NotFound(BadInput):
    """A named thing (job id, node) does not exist."""


def did_you_mean(value: str, choices: Iterable[str], *, n: int = 3) -> str | None:
    """A 'did you mean' hint from near names, case-insensitive; None when nothing is near."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    near = difflib.get_close_matches(value.lower(), list(lowered), n=n, cutoff=0.5)
    if not near:
        return None
    return "did you mean: " + ", ".join(lowered[c] for c in near) + "?"
