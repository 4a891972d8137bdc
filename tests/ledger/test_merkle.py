"""The RFC 6962 / 9162 Merkle tree: every published proof vector, and agreement with an independent
implementation (pymerkle) on 10,000 random tree sizes and indices."""

from __future__ import annotations

import base64
import json
import os
import random
from pathlib import Path

import pytest

from suanli.ledger.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of,
    subtree_of,
    verify_consistency,
    verify_inclusion,
)

VECTORS = (
    Path(os.environ.get("SUANLI_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    / "datasets"
    / "rfc6962-proof-vectors"
    / "testdata"
)
RFC_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]  # fmt: skip


def _cases(kind: str) -> list[Path]:
    if not VECTORS.exists():
        pytest.skip(f"no proof vectors at {VECTORS}")
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


def test_every_inclusion_vector():
    cases = _cases("inclusion")
    assert len(cases) == 98
    for path in cases:
        c = json.loads(path.read_text())
        root = base64.b64decode(c["root"] or "")
        leaf = base64.b64decode(c["leafHash"] or "")
        try:
            verify_inclusion(c["leafIdx"], c["treeSize"], leaf, _b64(c["proof"]), root)
        except ProofError as e:
            assert c["wantErr"], f"{path}: {e}"
            assert str(e)  # the reason is said
        else:
            assert not c["wantErr"], f"{path} verified: {c['desc']}"


def test_every_consistency_vector():
    cases = _cases("consistency")
    assert len(cases) == 98
    for path in cases:
        c = json.loads(path.read_text())
        r1, r2 = base64.b64decode(c["root1"] or ""), base64.b64decode(c["root2"] or "")
        try:
            verify_consistency(c["size1"], c["size2"], r1, r2, _b64(c["proof"]))
        except ProofError as e:
            assert c["wantErr"], f"{path}: {e}"
        else:
            assert not c["wantErr"], f"{path} verified: {c['desc']}"


def test_rfc_roots_and_every_proof_of_small_trees():
    leaves = [leaf_hash(d) for d in RFC_LEAVES]
    assert root_of([]) == EMPTY_ROOT
    assert root_of(leaves[:1]).hex().startswith("6e340b9c")
    assert root_of(leaves).hex().startswith("5dc9da79")
    for size in range(1, 9):
        mth = subtree_of(leaves[:size])
        root = root_of(leaves[:size])
        for i in range(size):
            proof = inclusion_proof(i, size, mth)
            verify_inclusion(i, size, leaves[i], proof, root)
            with pytest.raises(ProofError):  # nor against another tree's root
                verify_inclusion(i, size, leaves[i], proof, root_of(leaves[: size - 1]))
            with pytest.raises(ProofError, match=r"too (long|short)"):  # nor with a path of another shape
                verify_inclusion(i, size, leaves[i], [*proof, leaves[0]], root)
        for old in range(1, size + 1):
            verify_consistency(old, size, root_of(leaves[:old]), root, consistency_proof(old, size, mth))


def test_agrees_with_pymerkle_on_10000_random_sizes_and_indices():
    pymerkle = pytest.importorskip("pymerkle")
    rng = random.Random(6962)
    n = 3000
    data = [rng.randbytes(rng.randrange(0, 40)) for _ in range(n)]
    theirs = pymerkle.InmemoryTree(algorithm="sha256")
    for d in data:
        theirs.append_entry(d)
    leaves = [leaf_hash(d) for d in data]
    mth = subtree_of(leaves)
    roots: dict[int, bytes] = {}
    for _ in range(10_000):
        size = rng.randrange(1, n + 1)
        index = rng.randrange(size)
        root = roots.setdefault(size, theirs.get_root(size))
        assert mth(0, size) == root
        proof = inclusion_proof(index, size, mth)
        path = theirs.prove_inclusion(index + 1, size).path  # their path starts with the leaf itself
        assert proof == list(path[1:]) if len(path) > 1 else proof == []
        verify_inclusion(index, size, leaves[index], proof, root)
        old = rng.randrange(1, size + 1)
        old_root = roots.setdefault(old, theirs.get_root(old))
        verify_consistency(old, size, old_root, root, consistency_proof(old, size, mth))


def test_the_stored_log_appends_in_batches_and_proves_like_the_definition(db_url):
    pymerkle = pytest.importorskip("pymerkle")
    from suanli.store.ledger import LedgerLog
    from suanli.store.store import Store

    log = LedgerLog(Store(db_url))
    assert log.head() == (0, EMPTY_ROOT)
    rng = random.Random(9162)
    data = [rng.randbytes(rng.randrange(0, 60)) for _ in range(700)]
    theirs = pymerkle.InmemoryTree(algorithm="sha256")
    done = 0
    while done < len(data):  # batches of uneven sizes, each one transaction
        batch = data[done : done + rng.choice([1, 2, 3, 7, 64, 200])]
        first, size, root = log.append([("test", d) for d in batch])
        for d in batch:
            theirs.append_entry(d)
        assert (first, size) == (done, done + len(batch))
        assert root == theirs.get_root(size)
        done = size
    assert log.head() == (700, theirs.get_root(700))
    leaves = [leaf_hash(d) for d in data]
    for _ in range(300):
        size = rng.randrange(1, 701)
        index = rng.randrange(size)
        root = log.root(size)
        assert root == theirs.get_root(size)
        verify_inclusion(index, size, leaves[index], log.inclusion(index, size), root)
        old = rng.randrange(1, size + 1)
        verify_consistency(old, size, log.root(old), root, log.consistency(old, size))
    assert log.entry(5)["body"] == data[5]
