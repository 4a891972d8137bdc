"""One error hierarchy. Each error knows its exit code so the CLI maps it in one place."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


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
        where = f"{printable(source)}: " if source else ""
        shown = printable(value if isinstance(value, str | int | float) else repr(value))
        text = f"{where}{field}: {allowed}" if shown == "" else f"{where}{field}={shown!s}: {allowed}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_SHOWN = 200


def printable(value: object) -> object:
    """A value as one printable line: control characters (a newline, an escape code) written as escapes,
    and a long one cut, so an error message is always one line that cannot repaint a terminal."""
    if not isinstance(value, str):
        return value
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


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


def unknown_node(
    field: str, name: str, nodes: Iterable[str], allowed: str = "is not a node of the pool"
) -> BadInput:
    """The BadInput for a node name the pool does not have: near names, else the nodes there are."""
    names = sorted(nodes)
    return BadInput(
        field, name, allowed, hint=did_you_mean(name, names) or "nodes up: " + (", ".join(names) or "none")
    )


def unreadable(field: str, path: str | Path, err: OSError | UnicodeDecodeError) -> BadInput:
    """The BadInput for a user's file that cannot be read as text: missing, a directory, not allowed,
    or not UTF-8 (located by line and byte offset)."""
    source = str(path)
    if isinstance(err, UnicodeDecodeError):
        return BadInput(field, source, _not_utf8(Path(path), err))
    if isinstance(err, FileNotFoundError):
        return BadInput(field, source, "does not exist")
    if isinstance(err, IsADirectoryError):
        return BadInput(field, source, "is a directory, not a file")
    if isinstance(err, PermissionError):
        return BadInput(field, source, "cannot be read (permission denied)")
    return BadInput(field, source, f"cannot be read ({err.strerror or err})")


def _not_utf8(path: Path, err: UnicodeDecodeError) -> str:
    """Where the file stops being UTF-8: re-read whole, since a streamed decode knows only its chunk."""
    data, offset = bytes(err.object), err.start
    with suppress(OSError):
        whole = path.read_bytes()
        try:
            whole.decode("utf-8")
        except UnicodeDecodeError as e:
            data, offset = whole, e.start
    line = data.count(b"\n", 0, offset) + 1
    text = f"must be UTF-8 text; line {line} is not (byte 0x{data[offset]:02x} at byte offset {offset})"
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text += "; it looks like UTF-16: save it as UTF-8"
    return text


def read_text(path: str | Path, field: str) -> str:
    """The UTF-8 text of a user's file, or BadInput naming `field`, the file and what is wrong."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise unreadable(field, path, e) from None


@contextmanager
def reading(path: str | Path, field: str) -> Iterator[None]:
    """Turn a failure to read `path` as text inside the block (a streamed CSV reader, a library's
    loader) into one BadInput naming `field` and the file."""
    try:
        yield
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        if isinstance(e, OSError) and e.filename is not None and Path(e.filename) != Path(path):
            raise
        raise unreadable(field, path, e) from None


def input_file(path: str | Path, field: str, *, inside: str | None = None) -> Path:
    """`path` as an existing file, or BadInput naming `field`; a directory holding `inside` (a model
    folder's config.json) gets it as the hint."""
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        hint = f"did you mean {p / inside}?" if inside and (p / inside).is_file() else None
        raise BadInput(field, str(path), "is a directory, not a file", hint=hint)
    raise BadInput(field, str(path), "does not exist" if not p.exists() else "is not a regular file")


class Unauthorized(SuanliError):
    """No valid credentials: a missing, unknown, expired or revoked token, or a wrong password (HTTP 401)."""

    exit_code = 2
    status = 401


class Forbidden(SuanliError):
    """Valid credentials whose role or project does not allow the action (HTTP 403)."""

    exit_code = 2
    status = 403


class TooManyAttempts(SuanliError):
    """Too many failed logins in a short time (HTTP 429)."""

    exit_code = 2
    status = 429
