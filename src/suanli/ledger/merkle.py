"""The Merkle tree of RFC 6962 / RFC 9162 (section 2.1): leaf and node hashing, the tree head, inclusion
and consistency proofs, and their verification, for a log of any size.

A tree of n leaves is defined as in the RFC: MTH({}) = SHA-256(""), MTH({d0}) = SHA-256(0x00 || d0), and
for n > 1, with k the largest power of two below n, MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) ||
MTH(D[k:n])). Proofs are computed from the leaf hashes through `subtree`, which a store answers from the
perfect subtrees it keeps (the "tiles" of a tlog: every node whose span is a power of two aligned to its
size never changes once written). Verification follows the RFC 9162 steps (2.1.3.2 and 2.1.4.2) and
refuses, with the reason, every proof whose size, index or length does not fit the tree.

Standard library only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not verify; the message says why."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


Subtree = Callable[[int, int], bytes]  # (start, end) -> MTH of leaves [start, end)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes, by the definition (for tests and small trees)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def subtree_of(leaves: Sequence[bytes]) -> Subtree:
    """A `subtree` function over leaf hashes held in memory, with every perfect subtree cached."""
    cache: dict[tuple[int, int], bytes] = {}

    def mth(start: int, end: int) -> bytes:
        if end - start == 1:
            return leaves[start]
        if end <= start:
            return EMPTY_ROOT
        key = (start, end)
        if key in cache:
            return cache[key]
        k = _split(end - start)
        value = node_hash(mth(start, start + k), mth(start + k, end))
        if (end - start) & (end - start - 1) == 0:  # a perfect subtree never changes: keep it
            cache[key] = value
        return value

    return mth


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 2.1.1: the audit path of leaf `index` in the tree of `size` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(old: int, new: int, subtree: Subtree) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 2.1.2: that the tree of `old` leaves is a prefix of that of `new`."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new} (need 0 < old <= new)")
    if old == new:
        return []
    proof: list[bytes] = []
    start, end, whole = 0, new, True  # SUBPROOF(m, D[start:end], b)
    m = old
    while True:
        n = end - start
        if m == n:
            if not whole:
                proof.append(subtree(start, end))
            break
        k = _split(n)
        if m <= k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start += k
            m -= k
            whole = False
    proof.reverse()
    return proof


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what} hash {i} is {len(h)} bytes, not {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof implies (RFC 9162 2.1.3.2); ProofError if its shape is wrong."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"the leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
    _check_hashes("proof", proof)
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError(f"the proof is too long for leaf {index} of a tree of size {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the proof is too short for leaf {index} of a tree of size {size}")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """None if `leaf` is leaf `index` of the tree of `size` leaves with `root`; else ProofError."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"the proof of leaf {index} does not lead to the root of the tree of size {size}")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """None if the tree of `old` leaves with `old_root` is a prefix of the tree of `new` leaves with
    `new_root` (RFC 9162 2.1.4.2); else ProofError."""
    if old > new:
        raise ProofError(f"size {old} is larger than size {new}")
    if old == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    _check_hashes("proof", proof)
    if old == new:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots at size {old}")
        return
    if not proof:
        raise ProofError(f"an empty proof cannot show size {old} is a prefix of size {new}")
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node of the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"the proof is too long for sizes {old} -> {new}")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the proof is too short for sizes {old} -> {new}")
    if fr != old_root:
        raise ProofError(f"the proof does not lead to the root of size {old}")
    if sr != new_root:
        raise ProofError(f"the proof does not lead to the root of size {new}")


def blocks(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect, aligned subtrees that make up leaves [start, end) as the tree splits them, largest
    first, as (level, index): leaves [index x 2^level, (index + 1) x 2^level). MTH(D[start:end]) folds
    them from the right: node_hash(b1, node_hash(b2, ... node_hash(b(m-1), bm)))."""
    out = []
    while start < end:
        n = end - start
        size = n if n & (n - 1) == 0 else _split(n)
        level = size.bit_length() - 1
        out.append((level, start >> level))
        start += size
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its blocks' hashes (see `blocks`)."""
    if not hashes:
        return EMPTY_ROOT
    value = hashes[-1]
    for h in reversed(hashes[:-1]):
        value = node_hash(h, value)
    return value


def ranges_needed(proof: Callable[[Subtree], object]) -> set[tuple[int, int]]:
    """The (level, index) nodes a proof reads: `proof` is called with a subtree function that only
    records, so a store can fetch every node it needs in one read and then call it again for real."""
    needed: set[tuple[int, int]] = set()

    def record(start: int, end: int) -> bytes:
        needed.update(blocks(start, end))
        return EMPTY_ROOT

    proof(record)
    return needed


class TreeBuilder:
    """The tree grown one leaf at a time, as a log appends: it keeps the right border (the perfect
    subtrees of the size's binary form) and says which nodes each leaf completes. `border` continues a
    tree of `size` leaves from its stored border nodes (blocks(0, size), largest first)."""

    def __init__(self, size: int = 0, border: Sequence[bytes] = ()) -> None:
        keys = blocks(0, size)
        if len(keys) != len(border):
            raise ValueError(f"a tree of {size} leaves has {len(keys)} border nodes, not {len(border)}")
        self.size = size
        self.stack = [(level, h) for (level, _), h in zip(keys, border, strict=True)]

    def add(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf hash; the (level, index, hash) nodes it completes, the leaf itself first."""
        index = self.size
        done = [(0, index, leaf)]
        self.stack.append((0, leaf))
        while len(self.stack) > 1 and self.stack[-1][0] == self.stack[-2][0]:
            level, right = self.stack.pop()
            _, left = self.stack.pop()
            node = node_hash(left, right)
            self.stack.append((level + 1, node))
            done.append((level + 1, index >> (level + 1), node))
        self.size += 1
        return done

    def root(self) -> bytes:
        return fold([h for _, h in self.stack])
