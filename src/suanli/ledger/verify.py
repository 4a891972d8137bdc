"""Checking a log from its entries alone: the leaves are hashed and folded again in order
(merkle.TreeBuilder), every entry's DSSE signature is checked (in worker processes: Ed25519
verification is what a large log's check costs), and every checkpoint is opened with the log's key
and compared with the root recomputed at its size. The store's `verify` and a bundle's use it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from suanli.ledger.note import Checkpoint, NoteError, Verifier, open_note
from suanli.ledger.provenance import BUILD_TYPES
from suanli.ledger.statement import open_envelope

CHUNK = 4000
INLINE_BELOW = 20_000  # entries; smaller logs are checked in this process (a worker costs ~0.5 s)


KIND_OF_BUILD = {v: k for k, v in BUILD_TYPES.items()}


def entry_problem(kind: str, body: bytes, verifiers: Sequence[Verifier]) -> str | None:
    """Why `body` is not a statement of `kind` signed by one of `verifiers`; None when it is."""
    try:
        env = json.loads(body)
        if not isinstance(env, dict):
            return "the entry is not a DSSE envelope"
        doc = open_envelope(env, list(verifiers))
    except (ValueError, NoteError) as e:  # JSON and UTF-8 errors are ValueErrors
        return str(e)[:200]
    pred = doc.get("predicate")
    build = pred.get("buildDefinition") if isinstance(pred, dict) else None
    build_type = build.get("buildType") if isinstance(build, dict) else None
    if KIND_OF_BUILD.get(build_type) != kind:  # type: ignore[arg-type]
        return f"the entry's kind {kind!r} is not what its statement says"
    return None


def _check_chunk(
    chunk: list[tuple[int, str, bytes]], verifiers: Sequence[Verifier]
) -> tuple[int, str] | None:
    for index, kind, body in chunk:
        problem = entry_problem(kind, body, verifiers)
        if problem:
            return index, problem
    return None


class SignatureCheck:
    """Entries' signatures and kinds checked in chunks of (index, kind, body), in worker processes for a
    large log; `first_bad` is the lowest-indexed failure."""

    def __init__(self, verifiers: Sequence[Verifier], total: int, workers: int | None = None) -> None:
        self.verifiers = list(verifiers)
        workers = workers or os.cpu_count() or 1
        self.pool = None
        if workers > 1 and total >= INLINE_BELOW:
            ctx = multiprocessing.get_context("forkserver")
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        self.limit = 2 * workers
        self.futures: list[Future] = []
        self.found: list[tuple[int, str]] = []
        self.checked = 0

    def submit(self, chunk: list[tuple[int, str, bytes]]) -> None:
        self.checked += len(chunk)
        if self.pool is None:
            bad = _check_chunk(chunk, self.verifiers)
            if bad:
                self.found.append(bad)
            return
        self.futures.append(self.pool.submit(_check_chunk, chunk, self.verifiers))
        while len(self.futures) >= self.limit:  # bounded memory: wait for the oldest chunk
            bad = self.futures.pop(0).result()
            if bad:
                self.found.append(bad)

    def first_bad(self) -> tuple[int, str] | None:
        for f in self.futures:
            bad = f.result()
            if bad:
                self.found.append(bad)
        self.futures = []
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        return min(self.found) if self.found else None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def checkpoint_problem(note: str, log_key: Verifier, origin: str, roots: dict[int, bytes]) -> str | None:
    """Why a stored checkpoint is not the log's signature of its recomputed root; None when it is.
    Every signature line must be the log's (cosignatures are kept and checked apart)."""
    try:
        text, _ = open_note(note, [log_key])
        cp = Checkpoint.parse(text)
    except NoteError as e:
        return str(e)
    extra = [
        line for line in note[len(text) + 1 :].splitlines() if not line.startswith(f"\u2014 {log_key.name} ")
    ]
    if extra:
        return "the checkpoint holds a signature line that is not the log's"
    if cp.origin != origin:
        return f"the checkpoint's origin {cp.origin!r} is not the log's, {origin!r}"
    if cp.size not in roots:
        return f"the checkpoint's size {cp.size} is beyond the log"
    if cp.root != roots[cp.size]:
        return f"the checkpoint's root at size {cp.size} is not the recomputed root"
    return None

