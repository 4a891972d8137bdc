"""Files and folders private to their user: state and logs are 0600 in 0700 folders, and a file is
written to a temporary name and renamed, so a reader never sees half of it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from suanli.core.errors import BadInput


def private_dir(path: Path, what: str = "folder") -> Path:
    """`path` as a folder only its owner can enter: created 0700, tightened to 0700 if it is ours and
    more open, refused (BadInput) if it belongs to someone else or is not a real folder."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        st = os.stat(path)  # a symlink the user made to a folder of theirs is fine; its target is checked
    if not stat.S_ISDIR(st.st_mode):
        raise BadInput(what, str(path), "must be a folder")
    if st.st_uid != os.getuid():
        raise BadInput(what, str(path), f"belongs to uid {st.st_uid}, not to you (uid {os.getuid()})")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str | bytes) -> None:
    """Write `path` atomically (temporary name, then rename), readable by its owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def open_private(path: Path, mode: str = "ab"):  # type: ignore[no-untyped-def]
    """Open a file for appending, created 0600 (a log)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    return os.fdopen(os.open(path, flags, 0o600), mode)


def touch_private(path: Path) -> None:
    """Create `path` empty and 0600 if it does not exist (a database file, before SQLite opens it with
    whatever the process's umask allows; SQLite gives its -wal and -shm files the same mode)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
