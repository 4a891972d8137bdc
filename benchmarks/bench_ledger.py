"""The ledger's log: sustained appends into the store, and proofs, side by side with pymerkle.

    python benchmarks/bench_ledger.py                      # 50,000 entries in batches of 100
    python benchmarks/bench_ledger.py --entries 1000000    # the issue's proof size (minutes)

Appends: entries of 300 random bytes (about an in-toto envelope's size) into a fresh SQLite store,
each batch one transaction (WAL, the store's synchronous=NORMAL: a commit survives the process, not a
power cut), against pymerkle's SqliteTree (its own file, one transaction per batch too) and its
InmemoryTree (no durability; an upper bound) in the same run. Proofs: inclusion proof generation from
the store and verification, and consistency proofs, at the log's final size; medians of many.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--proofs", type=int, default=1000)
    args = parser.parse_args()

    import pymerkle

    from suanli.ledger import merkle
    from suanli.store.ledger import LedgerLog
    from suanli.store.store import Store

    rng = random.Random(1)
    data = [rng.randbytes(300) for _ in range(args.entries)]
    batches = [data[i : i + args.batch] for i in range(0, len(data), args.batch)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        log = LedgerLog(Store(f"sqlite:///{Path(tmp) / 'suanli.db'}"))
        start = time.perf_counter()
        for i, batch in enumerate(batches):
            log.append([("bench", d) for d in batch])
            if i % 100 == 0:
                print(f"suanli: {i * args.batch:,} appended", file=sys.stderr)
        ours = time.perf_counter() - start
        size, root = log.head()

        theirs_db = pymerkle.SqliteTree(os.path.join(tmp, "pymerkle.db"), algorithm="sha256")
        start = time.perf_counter()
        for batch in batches:
            theirs_db.append_entries(batch)
        theirs_sqlite = time.perf_counter() - start
        memory = pymerkle.InmemoryTree(algorithm="sha256")
        start = time.perf_counter()
        for d in data:
            memory.append_entry(d)
        theirs_memory = time.perf_counter() - start
        assert memory.get_root(size) == root == theirs_db.get_root(size), "the roots differ"

        rows.append(
            ("appends/s, suanli LedgerLog (SQLite, a transaction per batch)", _rate(size, ours), "1.00x")
        )
        rows.append(("appends/s, pymerkle SqliteTree (a transaction per batch)", _rate(size, theirs_sqlite),
                     f"{theirs_sqlite / ours:.2f}x suanli's time"))  # fmt: skip
        rows.append(("appends/s, pymerkle InmemoryTree (no durability)", _rate(size, theirs_memory),
                     f"{theirs_memory / ours:.2f}x suanli's time"))  # fmt: skip

        leaves = {}
        gen, ver, cons = [], [], []
        for _ in range(args.proofs):
            index = rng.randrange(size)
            t0 = time.perf_counter()
            proof = log.inclusion(index, size)
            t1 = time.perf_counter()
            leaf = leaves.setdefault(index, merkle.leaf_hash(data[index]))
            t2 = time.perf_counter()
            merkle.verify_inclusion(index, size, leaf, proof, root)
            t3 = time.perf_counter()
            gen.append(t1 - t0)
            ver.append(t3 - t2)
            old = rng.randrange(1, size + 1)
            t4 = time.perf_counter()
            log.consistency(old, size)
            cons.append(time.perf_counter() - t4)
        for what, times in (
            ("inclusion proof from the store", gen),
            ("inclusion proof verification", ver),
            ("consistency proof from the store", cons),
        ):
            p95 = sorted(times)[int(len(times) * 0.95)]
            rows.append((f"{what} at {size:,} entries, median ms", f"{statistics.median(times) * 1e3:.3f}",
                         f"p95 {p95 * 1e3:.3f} ms"))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)} | value | vs")
    for name, value, ratio in rows:
        print(f"{name.ljust(width)} | {value} | {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
