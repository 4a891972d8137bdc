"""Checking the stored log end to end, and exporting it as a bundle another machine can check.

`verify_log` trusts nothing it reads: it rehashes every entry, rebuilds every node of the tree and
compares each with the stored one, recomputes the root at every checkpoint's size and checks the
checkpoint's signature, checks every entry's DSSE signature (and that its kind is its statement's)
and every witness's cosignature, and names the first entry that does not match. The search index and
the entries' `created_at` are the store's notes, not part of the log, and are not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import text

from suanli.core.errors import BadInput
from suanli.ledger import bundle, merkle
from suanli.ledger.note import Verifier
from suanli.ledger.verify import SignatureCheck, checkpoint_problem
from suanli.store.ledger import LedgerLog

Progress = Callable[[int, int], None]


def verify_log(
    log: LedgerLog,
    trusted: Verifier | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    check_cosignature: Callable[[str, str, str], str | None] | None = None,
) -> dict:
    """The log checked from its entries up (module docstring); `ok` False names the first problem."""
    size, root = log.head()
    key = log.key()
    if (
        trusted is not None
        and key is not None
        and (key.name, key.public_key) != (trusted.name, trusted.public_key)
    ):
        raise BadInput(
            "key", trusted.name, f"is not the log's key ({key.name}); the log cannot be checked with it"
        )
    problems: list[dict] = []
    entry_bad: list[tuple[int, str]] = []
    checkpoints = log.checkpoints()
    sizes = {n for n, _ in checkpoints}
    roots: dict[int, bytes] = {}
    levels: dict[int, list[bytes]] = {}
    tree = merkle.TreeBuilder()
    sigs = SignatureCheck([key] if key else [], size, workers)
    try:
        for chunk in log.entries(0, size):
            for index, _kind, body, leaf_stored, node in chunk:
                if index != tree.size:
                    entry_bad.append((tree.size, "the entry is missing"))
                    break
                leaf = merkle.leaf_hash(body)
                if leaf != leaf_stored:
                    entry_bad.append((index, "the entry's bytes do not match its stored leaf hash"))
                if node != leaf:
                    entry_bad.append((index, "the tree's leaf node does not match the entry"))
                for level, _, h in tree.add(leaf)[1:]:
                    levels.setdefault(level, []).append(h)
                if tree.size in sizes:
                    roots[tree.size] = tree.root()
            sigs.submit([(i, kind, body) for i, kind, body, _, _ in chunk])
            if progress:
                progress(tree.size, size)
        bad_sig = sigs.first_bad()
    finally:
        sigs.close()
    if bad_sig:
        entry_bad.append(bad_sig)
    if tree.size != size:
        entry_bad.append((tree.size, f"the log holds {tree.size} entries, its head says {size}"))
    elif tree.root() != root:
        problems.append({"head": True, "reason": "the head's root is not the recomputed root"})
    # An inner node that differs only because an entry below it changed is not a finding of its own.
    node_bad = _check_nodes(log, levels, size)
    if not entry_bad:
        entry_bad = node_bad
    for n, note in checkpoints:
        problem = checkpoint_problem(note, key, key.name, roots) if key else "the log has no key"
        if problem:
            problems.append({"checkpoint": n, "reason": problem})
    cosigs = log.cosignatures()
    notes = dict(checkpoints)
    for c in cosigs:
        problem = "no checkpoint at its size" if c["size"] not in notes else None
        if problem is None and check_cosignature is not None:
            problem = check_cosignature(c["witness"], notes[c["size"]], c["line"])
        if problem:
            problems.append(
                {"cosignature": c["size"], "witness": c["witness"].split("+")[0], "reason": problem}
            )
    entry_bad.sort(key=lambda p: p[0])  # stable: at one index, the first problem found comes first
    first = entry_bad[0] if entry_bad else None
    return {
        "ok": first is None and not problems,
        "size": size,
        "origin": key.name if key else None,
        "key": str(key) if key else None,
        "entries_checked": tree.size,
        "signatures_checked": sigs.checked,
        "nodes_checked": sum(len(v) for v in levels.values()) + tree.size,
        "checkpoints_checked": len(checkpoints),
        "cosignatures_checked": len(cosigs),
        "first_bad": {"entry": first[0], "reason": first[1]}
        if first
        else (problems[0] if problems else None),
        "problems": ([{"entry": i, "reason": r} for i, r in entry_bad[:10]] + problems)[:20],
    }


def _check_nodes(log: LedgerLog, levels: dict[int, list[bytes]], size: int) -> list[tuple[int, str]]:
    """Stored inner nodes against the recomputed ones (each names the first entry below it)."""
    bad = []
    seen = dict.fromkeys(levels, 0)
    q = text('SELECT level, "index", hash FROM ledger_nodes WHERE level > 0 ORDER BY level, "index"')
    with log.store._read() as s:
        for level, index, h in s.execute(q):
            want = levels.get(level, [])
            if index >= len(want):
                bad.append((min(index << level, size), f"a node at level {level} is beyond the log"))
                continue
            seen[level] = seen.get(level, 0) + 1
            if bytes(h) != want[index]:
                bad.append((index << level, f"the tree's node at level {level} does not match its entries"))
        extra = s.execute(
            text('SELECT min("index") FROM ledger_entries WHERE "index" >= :n'), {"n": size}
        ).scalar()
        if extra is not None:
            bad.append((int(extra), "an entry lies beyond the log's size"))
        extra = s.execute(text('SELECT min("index") FROM ledger_nodes WHERE level = 0 AND "index" >= :n'),
                          {"n": size}).scalar()  # fmt: skip
        if extra is not None:
            bad.append((int(extra), "a leaf node lies beyond the log's size"))
    for level, want in levels.items():
        if seen.get(level, 0) < len(want):
            bad.append((0, f"nodes at level {level} are missing"))
    return bad


def export(log: LedgerLog, path: Path, indices: Iterable[int] | None = None) -> dict:
    """Write the log (or the entries `indices`, with inclusion proofs) as a bundle at the latest
    checkpoint; the bundle holds the log's key, the checkpoint and its cosignatures."""
    note = log.checkpoint()
    key = log.key()
    size = int(note.split("\n")[1])
    wanted = sorted(set(indices)) if indices is not None else None
    if wanted is not None:
        for i in wanted:
            if not 0 <= i < size:
                raise BadInput("entry", i, f"must be an entry of the log (0 to {size - 1})")
    header = {
        "origin": key.name if key else None,
        "log_key": str(key),
        "checkpoint": note,
        "cosignatures": [{"witness": c["witness"], "line": c["line"]} for c in log.cosignatures(size)],
        "partial": wanted is not None,
        "count": size if wanted is None else len(wanted),
    }

    def lines() -> Iterable[dict]:
        if wanted is None:
            for chunk in log.entries(0, size):
                yield from (bundle.entry_line(i, kind, body) for i, kind, body, _, _ in chunk)
            return
        for i in wanted:
            e = log.entry(i)
            yield bundle.entry_line(i, e["kind"], e["body"], log.inclusion(i, size))

    count = bundle.write(path, header, lines())
    return {
        "path": str(path),
        "size": size,
        "entries": count,
        "partial": wanted is not None,
        "origin": header["origin"],
    }
