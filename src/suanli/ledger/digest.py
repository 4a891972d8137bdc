"""Digests of files and directories, with incremental re-hashing.

A directory is hashed per file into a manifest (relative path -> SHA-256, size, mtime, inode); its
digest is the SHA-256 of the manifest's lines "SHA256  PATH\\n" in path order, so two directories with
the same files have the same digest wherever they lie. Given the previous manifest, a file whose size,
modification time (ns) and inode are unchanged is not read again: changing one small file of a 2 GB
model re-reads that file only (what OpenSSF model-signing's users ask for, model-transparency #562).
Symbolic links are recorded by their target, never followed (a link cannot pull in files from outside).

Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1 << 20


def file_sha256(path: str | Path, progress: Callable[[int], None] | None = None) -> str:
    """The file's SHA-256; `progress` is told each chunk's size as it is read (a large model is slow)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            if progress:
                progress(len(chunk))
    return h.hexdigest()


@dataclass
class Hashed:
    """A directory's manifest and digest, with what hashing it cost."""

    digest: str
    manifest: dict[str, dict] = field(default_factory=dict)
    files_read: int = 0
    bytes_read: int = 0
    files_reused: int = 0


def manifest_digest(manifest: dict[str, dict]) -> str:
    # Names as the file system holds them (os.fsencode): a name that is not UTF-8 still hashes.
    lines = b"".join(f"{manifest[p]['sha256']}  ".encode() + os.fsencode(p) + b"\n" for p in sorted(manifest))
    return hashlib.sha256(lines).hexdigest()


class TooManyFiles(ValueError):
    """A directory with more files than the caller allowed to hash."""


def hash_dir(
    root: str | Path,
    previous: dict[str, dict] | None = None,
    *,
    skip: Collection[str] = (),
    exclude: Collection[str] = (),
    max_files: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Hashed:
    """The manifest and digest of every file under `root`; files unchanged since `previous` (a
    manifest this function returned) keep their digest without being read. Folders named in `skip`
    (anywhere below `root`) and the paths in `exclude` (relative to `root`, a file or a folder and all
    below it) are left out; more than `max_files` files raise TooManyFiles."""
    excluded = {os.path.normpath(e).replace(os.sep, "/") for e in exclude}
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    previous = previous or {}
    out = Hashed(digest="")
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = os.path.relpath(dirpath, root).replace(os.sep, "/")
        prefix = "" if here == "." else here + "/"
        dirnames[:] = sorted(d for d in dirnames if d not in skip and prefix + d not in excluded)
        filenames = [f for f in filenames if prefix + f not in excluded]
        if max_files is not None and len(out.manifest) + len(filenames) > max_files:
            raise TooManyFiles(f"{root}: more than {max_files} files")
        for name in sorted(filenames) + sorted(
            d for d in dirnames if os.path.islink(os.path.join(dirpath, d))
        ):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                out.manifest[rel] = {"sha256": hashlib.sha256(b"link:" + os.fsencode(target)).hexdigest(),
                                     "link": target}  # fmt: skip
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # sockets, FIFOs, devices are not content
            key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
            before = previous.get(rel)
            if before and all(before.get(k) == v for k, v in key.items()):
                out.manifest[rel] = before
                out.files_reused += 1
                continue
            out.manifest[rel] = {"sha256": file_sha256(path, progress), **key}
            out.files_read += 1
            out.bytes_read += st.st_size
    out.digest = manifest_digest(out.manifest)
    return out
