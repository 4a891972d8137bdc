"""The provenance ledger's log in the store: entries at consecutive indices, the hashes of the perfect
subtrees (written once, never changed), and one head row (size, root) that every append locks, so
appends are integrated in order, in batches, with no gap and no duplicate. Proofs read the nodes they
need in one query (ledger/merkle.py says which)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from suanli.core.errors import BadInput, NotFound
from suanli.ledger import merkle
from suanli.store import models as m
from suanli.store.store import Store

MAX_BODY_BYTES = 1 << 20


class LedgerLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    def append(self, entries: Sequence[tuple[str, bytes]]) -> tuple[int, int, bytes]:
        """Append (kind, body) entries in one transaction; returns (first index, new size, new root)."""
        for kind, body in entries:
            if not kind or len(kind) > 32:
                raise BadInput("kind", kind, "must be 1-32 characters")
            if len(body) > MAX_BODY_BYTES:
                raise BadInput("entry", f"{len(body)} bytes", f"must be at most {MAX_BODY_BYTES} bytes")
        now = time.time()
        with self.store._tx() as s:
            head = s.get(m.LedgerHead, 1, with_for_update=True)
            if head is None:
                head = m.LedgerHead(id=1, size=0, root=merkle.EMPTY_ROOT, updated_at=now)
                s.add(head)
                s.flush()
            first = size = head.size
            # The right border of the tree: the perfect subtrees of size's binary form, largest first.
            border = merkle.blocks(0, size)
            known = self._nodes(s, border)
            stack = [(level, index, known[(level, index)]) for level, index in border]
            new_nodes = []
            rows = []
            for kind, body in entries:
                leaf = merkle.leaf_hash(body)
                rows.append({"index": size, "kind": kind, "body": body, "leaf_hash": leaf, "created_at": now})
                stack.append((0, size, leaf))
                new_nodes.append({"level": 0, "index": size, "hash": leaf})
                while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
                    level, right_index, right = stack.pop()
                    _, _, left = stack.pop()
                    node = (level + 1, right_index >> 1, merkle.node_hash(left, right))
                    stack.append(node)
                    new_nodes.append({"level": node[0], "index": node[1], "hash": node[2]})
                size += 1
            if rows:
                s.execute(m.LedgerEntry.__table__.insert(), rows)
                s.execute(m.LedgerNode.__table__.insert(), new_nodes)
            head.size = size
            head.root = merkle.fold([h for _, _, h in stack])
            head.updated_at = now
            return first, size, head.root

    @staticmethod
    def _nodes(s: Session, keys: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not keys:
            return {}
        by_level: dict[int, list[int]] = {}
        for level, index in keys:
            by_level.setdefault(level, []).append(index)
        # One IN list per level, so both databases answer each from the primary key (a row-value IN
        # scans in SQLite); written as text because building the expression cost more than the read.
        # Only integers we computed go into it.
        where = " OR ".join(
            f'(level = {int(lv)} AND "index" IN ({", ".join(str(int(i)) for i in ix)}))'
            for lv, ix in by_level.items()
        )
        rows = s.execute(text(f'SELECT level, "index", hash FROM ledger_nodes WHERE {where}'))
        found = {(level, index): bytes(h) for level, index, h in rows}
        missing = set(keys) - set(found)
        if missing:
            raise RuntimeError(f"the ledger's tree is missing nodes {sorted(missing)[:5]}")
        return found

    def head(self) -> tuple[int, bytes]:
        """(size, root) of the log as it is now."""
        with self.store._read() as s:
            head = s.get(m.LedgerHead, 1)
            return (0, merkle.EMPTY_ROOT) if head is None else (head.size, head.root)

    def _prove(self, size: int, proof: Callable[[merkle.Subtree], list[bytes]]) -> list[bytes]:
        """Run a proof over the stored nodes: one read for every node it needs."""
        needed = merkle.ranges_needed(proof)
        with self.store._read() as s:
            head = s.get(m.LedgerHead, 1)
            current = head.size if head else 0
            if size > current:
                raise BadInput("size", size, f"must be at most the log's size, {current}")
            nodes = self._nodes(s, needed)
        return proof(lambda a, b: merkle.fold([nodes[k] for k in merkle.blocks(a, b)]))

    def root(self, size: int) -> bytes:
        """The root of the log's first `size` entries."""
        if size == 0:
            return merkle.EMPTY_ROOT
        current, root = self.head()
        if size == current:
            return root
        if not 0 < size < current:
            raise BadInput("size", size, f"must be 0 to the log's size, {current}")
        keys = merkle.blocks(0, size)
        with self.store._read() as s:
            nodes = self._nodes(s, keys)
        return merkle.fold([nodes[k] for k in keys])

    def inclusion(self, index: int, size: int) -> list[bytes]:
        if not 0 <= index < size:
            raise NotFound("entry", index, f"is not in the log's first {size} entries")
        return self._prove(size, lambda sub: merkle.inclusion_proof(index, size, sub))

    def consistency(self, old: int, new: int) -> list[bytes]:
        if not 0 < old <= new:
            raise BadInput("size", old, f"must be 1 to {new} for a proof to size {new}")
        return self._prove(new, lambda sub: merkle.consistency_proof(old, new, sub))

    def entry(self, index: int) -> dict:
        with self.store._read() as s:
            row = s.get(m.LedgerEntry, index)
            if row is None:
                raise NotFound("entry", index, "no such entry in the ledger")
            return {"index": row.index, "kind": row.kind, "body": row.body, "leaf_hash": row.leaf_hash,
                    "created_at": row.created_at}  # fmt: skip
