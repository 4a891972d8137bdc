"""The ledger: sustained appends of signed statements, proofs, `verify` of the whole log, and re-hashing
a model folder, with pymerkle's append rate in the same run.

    python benchmarks/bench_ledger.py                          # 50,000 statements, a 0.2 GB folder
    python benchmarks/bench_ledger.py --entries 1000000 --verify-runs 3 --rehash-gb 2   # the issue's sizes

Appends: realistic "dataset" statements (one subject, external parameters, one input, a `source`),
signed by `append_statements` into DSSE envelopes (Ed25519, about 1.1 KB each) and appended in batches
(one transaction each, batched tree integration, a signed checkpoint per batch) into a fresh SQLite
store (WAL, the store's synchronous=NORMAL: a commit survives the process, not a power cut; a second
store at synchronous=FULL fsyncs every commit). Raw bodies of the envelopes' size through `append`,
pymerkle's SqliteTree (one transaction per batch) and its InmemoryTree (no durability) get the same
random bodies, at most --compare-entries of them (pymerkle keeps everything in one process: at 1M
entries it would only take longer, not say more). Proofs: inclusion proof generation from the store and
verification, and consistency proofs, at the final size, with where a proof's time goes. `verify`:
verify_log of the whole log (every node, checkpoint and Ed25519 signature), and again with the
signature checks stubbed out, to tell the signatures' share. Re-hash: a model folder of --rehash-gb
(8 files of random data and a small config.json) hashed from scratch, then re-hashed after changing
config.json with the previous manifest.

Everything is written under a temporary folder in /tmp (SUANLI_HOME included: the ledger's key is
made there) and removed at the end. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROWS: list[tuple[str, str, str]] = []


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _row(name: str, value: str, note: str = "") -> None:
    ROWS.append((name, value, note))
    _say(f"{name}: {value} {note}")


def _ms(times: list[float]) -> tuple[str, str]:
    p95 = sorted(times)[int(len(times) * 0.95)]
    return f"{statistics.median(times) * 1e3:.3f}", f"p95 {p95 * 1e3:.3f} ms"


def _statement(i: int) -> object:
    from suanli.ledger.provenance import dependency, provenance
    from suanli.store.ledger import Item

    sha = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
    raw = hashlib.sha256(b"raw" + i.to_bytes(8, "big")).hexdigest()
    doc = provenance(
        "dataset",
        {f"shards/part-{i:08d}.parquet": sha},
        external={
            "job_id": 1000 + i // 100,
            "user": "alice",
            "project": "bench",
            "rows": 250_000 + i % 977,
            "filter": "lang == 'en' and quality > 0.5",
        },
        dependencies=[dependency("raw", raw, uri=f"s3://corpus/raw/{i // 100:06d}.jsonl.zst")],
        invocation=f"bench-{i // 100}",
        started=1.7e9 + i,
        finished=1.7e9 + i + 30,
    )
    return Item("dataset", doc, source=f"bench/dataset/{i}")


def _full_sync(store: object) -> None:
    """synchronous=FULL on the store's write connections (an fsync at every commit)."""
    from sqlalchemy import event, text

    engine = store._write_engine  # type: ignore[attr-defined]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    engine.dispose()
    with store._write() as s:  # type: ignore[attr-defined]
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2, "synchronous=FULL did not take"


def append_statements(log: object, start: int, n: int, batch: int, what: str) -> list[float]:
    """Append statements start..start+n in batches; the seconds each batch's append_statements took."""
    times = []
    for b, a in enumerate(range(start, start + n, batch)):
        items = [_statement(i) for i in range(a, min(a + batch, start + n))]
        t0 = time.perf_counter()
        indices = log.append_statements(items)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - t0)
        assert indices == list(range(a, a + len(items))), indices[:3]
        if b % 50 == 0 or a + batch >= start + n:
            done = a + len(items) - start
            _say(f"{what}: {done:,} appended, {done / sum(times):,.0f}/s so far")
    return times


def bench_appends(args: argparse.Namespace, tmp: Path) -> tuple[object, object, int]:
    import pymerkle

    from suanli.store.ledger import LedgerLog
    from suanli.store.store import Store

    n, batch = args.entries, args.batch
    db = tmp / "suanli.db"
    log = LedgerLog(Store(f"sqlite:///{db}"))
    times = append_statements(log, 0, n, batch, "statements")
    size, _ = log.head()
    assert size == n
    tail = max(1, len(times) // 10)
    tail_n = n - batch * (len(times) - tail)
    body_len = statistics.mean(len(log.entry(i)["body"]) for i in range(0, n, max(1, n // 100)))
    _row(f"appends/s, signed statements via append_statements, {n:,} entries in batches of {batch:,}",
         f"{n / sum(times):,.0f}", f"first {batch * tail:,}: {batch * tail / sum(times[:tail]):,.0f}/s, "
         f"last {tail_n:,}: {tail_n / sum(times[-tail:]):,.0f}/s; "
         f"envelopes {body_len:,.0f} B; db {os.path.getsize(db) / 2**30:.2f} GiB")  # fmt: skip

    m = min(args.compare_entries, n)
    if args.full_sync and m:
        full = LedgerLog(Store(f"sqlite:///{tmp / 'full.db'}"))
        _full_sync(full.store)
        t = append_statements(full, 0, m, batch, "statements, synchronous=FULL")
        _row(f"appends/s, signed statements, synchronous=FULL (fsync per commit), {m:,} entries",
             f"{m / sum(t):,.0f}", "")  # fmt: skip
        full.store.close()
    if not m:
        return log, None, size

    rng = random.Random(1)
    data = [rng.randbytes(round(body_len)) for _ in range(m)]
    batches = [data[i : i + batch] for i in range(0, m, batch)]
    raw = LedgerLog(Store(f"sqlite:///{tmp / 'raw.db'}"))
    start = time.perf_counter()
    for i, b in enumerate(batches):
        raw.append([("bench", d) for d in b])
        if i % 100 == 0:
            _say(f"raw bodies: {i * batch:,} appended")
    ours = time.perf_counter() - start
    _, raw_root = raw.head()

    theirs_db = pymerkle.SqliteTree(str(tmp / "pymerkle.db"), algorithm="sha256")
    start = time.perf_counter()
    for b in batches:
        theirs_db.append_entries(b)
    theirs_sqlite = time.perf_counter() - start
    _say("pymerkle SqliteTree done")
    memory = pymerkle.InmemoryTree(algorithm="sha256")
    start = time.perf_counter()
    for d in data:
        memory.append_entry(d)
    theirs_memory = time.perf_counter() - start
    _say("pymerkle InmemoryTree done")
    assert memory.get_root(m) == raw_root == theirs_db.get_root(m), "the roots differ"
    del memory, data, batches
    stmt, raw_rate, sqlite_rate, memory_rate = n / sum(times), m / ours, m / theirs_sqlite, m / theirs_memory
    _row(f"appends/s, raw bodies of that size via append, {m:,} entries", f"{raw_rate:,.0f}",
         f"{raw_rate / sqlite_rate:.2f}x pymerkle SqliteTree's rate")  # fmt: skip
    _row(f"appends/s, pymerkle 7.0 SqliteTree (a transaction per batch), same {m:,} bodies",
         f"{sqlite_rate:,.0f}", f"signed statements: {stmt / sqlite_rate:.2f}x its rate")  # fmt: skip
    _row(f"appends/s, pymerkle 7.0 InmemoryTree (no durability), same {m:,} bodies",
         f"{memory_rate:,.0f}", f"signed statements: {stmt / memory_rate:.2f}x its rate")  # fmt: skip
    return log, raw, size


def bench_proofs(args: argparse.Namespace, log: object) -> None:
    from sqlalchemy import text

    from suanli.ledger import merkle

    size, root = log.head()  # type: ignore[attr-defined]
    rng = random.Random(2)
    indices = [rng.randrange(size) for _ in range(args.proofs)]
    olds = [rng.randrange(1, size + 1) for _ in range(args.proofs)]
    leaves = {}
    with log.store._read() as s:  # type: ignore[attr-defined]
        for i in set(indices):
            leaves[i] = bytes(s.execute(text('SELECT leaf_hash FROM ledger_entries WHERE "index" = :i'),
                                        {"i": i}).scalar())  # fmt: skip
    gen, ver, cons, cver = [], [], [], []
    for index, old in zip(indices, olds, strict=True):
        t0 = time.perf_counter()
        proof = log.inclusion(index, size)  # type: ignore[attr-defined]
        t1 = time.perf_counter()
        merkle.verify_inclusion(index, size, leaves[index], proof, root)
        t2 = time.perf_counter()
        gen.append(t1 - t0)
        ver.append(t2 - t1)
        t3 = time.perf_counter()
        cproof = log.consistency(old, size)  # type: ignore[attr-defined]
        cons.append(time.perf_counter() - t3)
        old_root = log.root(old)  # type: ignore[attr-defined]
        t4 = time.perf_counter()
        merkle.verify_consistency(old, size, old_root, root, cproof)
        cver.append(time.perf_counter() - t4)
    for what, times in (
        ("inclusion proof from the store", gen),
        ("inclusion proof verification", ver),
        ("consistency proof from the store", cons),
        ("consistency proof verification", cver),
    ):
        _row(f"{what} at {size:,} entries, median ms of {len(times):,}", *_ms(times))

    # Where an inclusion proof's time goes: the steps of LedgerLog._prove, one at a time.
    parts: dict[str, list[float]] = {k: [] for k in ("plan", "session", "head", "nodes", "fold", "sqlite3")}
    db = str(log.store.path)  # type: ignore[attr-defined]
    conn = sqlite3.connect(db)
    for index in indices:
        t0 = time.perf_counter()
        needed = merkle.ranges_needed(lambda sub, i=index: merkle.inclusion_proof(i, size, sub))
        t1 = time.perf_counter()
        with log.store._read_engine.connect() as s:  # type: ignore[attr-defined]  # as _prove reads
            t2 = time.perf_counter()
            s.execute(text("SELECT size FROM ledger_head WHERE id = 1")).scalar()
            t3 = time.perf_counter()
            nodes = log._nodes(s, needed)
            t4 = time.perf_counter()
        t5 = time.perf_counter()
        merkle.inclusion_proof(
            index, size, lambda a, b, nodes=nodes: merkle.fold([nodes[k] for k in merkle.blocks(a, b)])
        )
        t6 = time.perf_counter()
        by_level: dict[int, list[int]] = {}
        for lv, ix in needed:
            by_level.setdefault(lv, []).append(ix)
        where = " OR ".join(f'(level = {lv} AND "index" IN ({", ".join(map(str, ix))}))'
                            for lv, ix in by_level.items())  # fmt: skip
        t7 = time.perf_counter()
        conn.execute(f'SELECT level, "index", hash FROM ledger_nodes WHERE {where}').fetchall()
        t8 = time.perf_counter()
        parts["plan"].append(t1 - t0)
        parts["session"].append((t2 - t1) + (t5 - t4))
        parts["head"].append(t3 - t2)
        parts["nodes"].append(t4 - t3)
        parts["fold"].append(t6 - t5)
        parts["sqlite3"].append(t8 - t7)
    conn.close()
    for key, what in (
        ("plan", "ranges_needed (which nodes)"),
        ("session", "opening and closing the read connection"),
        ("head", "the head's size (one SQL read)"),
        ("nodes", "the node query through SQLAlchemy (_nodes)"),
        ("fold", "building the proof from the nodes"),
        ("sqlite3", "the same node query in plain sqlite3 (a floor)"),
    ):
        _row(f"  inclusion proof part: {what}, median ms", *_ms(parts[key]))


class _NoSignatures:
    """SignatureCheck's stand-in that checks nothing (to tell the signatures' share of verify)."""

    def __init__(self, verifiers: object, total: int, workers: int | None = None) -> None:
        self.checked = 0

    def submit(self, chunk: list) -> None:
        self.checked += len(chunk)

    def first_bad(self) -> None:
        return None

    def close(self) -> None:
        pass


def bench_verify(args: argparse.Namespace, log: object) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from suanli.ledger.statement import pae
    from suanli.ledger.verify import entry_problem
    from suanli.store import ledger_audit

    size, _ = log.head()  # type: ignore[attr-defined]

    def progress_every(what: str) -> Callable[[int, int], None]:
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - last[0] > 15 or done == total:
                last[0] = time.perf_counter()
                _say(f"{what}: {done:,} of {total:,}")

        return progress

    walls = []
    for run in range(args.verify_runs):
        t0 = time.perf_counter()
        progress = progress_every(f"verify {run + 1}")
        report = ledger_audit.verify_log(log, workers=args.workers, progress=progress)
        walls.append(time.perf_counter() - t0)
        assert report["ok"] and report["signatures_checked"] == size, report
        _say(f"verify run {run + 1}: {walls[-1]:.1f} s ({report['nodes_checked']:,} nodes, "
             f"{report['checkpoints_checked']:,} checkpoints)")  # fmt: skip
    workers = args.workers or os.cpu_count()
    _row(f"verify_log of {size:,} entries, workers={workers}, median s of {len(walls)}",
         f"{statistics.median(walls):.1f}", "runs " + ", ".join(f"{w:.1f}" for w in walls))  # fmt: skip

    real = ledger_audit.SignatureCheck
    ledger_audit.SignatureCheck = _NoSignatures  # type: ignore[assignment,misc]
    try:
        t0 = time.perf_counter()
        report = ledger_audit.verify_log(log, progress=progress_every("verify, no signatures"))
        bare = time.perf_counter() - t0
    finally:
        ledger_audit.SignatureCheck = real  # type: ignore[misc]
    assert report["ok"]
    _row(f"verify_log of {size:,} entries with the signature checks stubbed out (one process), s",
         f"{bare:.1f}", "the tree, nodes, checkpoints")  # fmt: skip

    key = log.key()  # type: ignore[attr-defined]
    sample = [log.entry(i)["body"] for i in range(0, size, max(1, size // args.sig_sample))]  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for body in sample:
        assert entry_problem("dataset", body, [key]) is None
    per = (time.perf_counter() - t0) / len(sample)
    _row("one envelope's check (JSON, base64, PAE, Ed25519 verify), one core, us",
         f"{per * 1e6:.0f}", f"{1 / per:,.0f}/s; {size:,} of them: {size * per:.0f} s on one core, "
         f"{size * per / workers:.0f} s on {workers}")  # fmt: skip
    public = Ed25519PublicKey.from_public_bytes(key.public_key)
    signed = []
    for body in sample:
        env = json.loads(body)
        message = pae(env["payloadType"], base64.b64decode(env["payload"]))
        signed.append((base64.b64decode(env["signatures"][0]["sig"]), message))
    t0 = time.perf_counter()
    for sig, message in signed:
        public.verify(sig, message)
    alone = (time.perf_counter() - t0) / len(signed)
    t0 = time.perf_counter()
    for _ in signed:
        Ed25519PublicKey.from_public_bytes(key.public_key)
    load = (time.perf_counter() - t0) / len(signed)
    _row("  of which Ed25519 verify alone (key object made once), us", f"{alone * 1e6:.0f}",
         f"{1 / alone:,.0f}/s; Verifier.verify makes the key each call: {load * 1e6:.0f} us")  # fmt: skip


def _drop_cache(folder: Path) -> None:
    for p in folder.iterdir():
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def bench_rehash(args: argparse.Namespace) -> None:
    from suanli.ledger.digest import hash_dir

    folder = Path(tempfile.mkdtemp(prefix="suanli-rehash-", dir="/tmp"))
    try:
        files, total = 8, int(args.rehash_gb * 2**30)
        per, chunk = total // files, 1 << 24
        for f in range(files):
            with open(folder / f"model-{f + 1:05d}-of-{files:05d}.safetensors", "wb") as out:
                left = per
                while left > 0:
                    out.write(os.urandom(min(chunk, left)))
                    left -= chunk
            _say(f"re-hash: wrote file {f + 1} of {files}")
        config = folder / "config.json"
        config.write_text(json.dumps({"hidden_size": 4096, "layers": 32, "version": 0}))
        size = sum(p.stat().st_size for p in folder.iterdir())
        cold, warm, again = [], [], []
        hashed = None
        for _ in range(args.rehash_runs):
            _drop_cache(folder)
            t0 = time.perf_counter()
            hashed = hash_dir(folder)
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hashed = hash_dir(folder)
            warm.append(time.perf_counter() - t0)
            _say(f"re-hash: from scratch {cold[-1]:.2f} s (cold), {warm[-1]:.2f} s (warm)")
        assert hashed is not None
        for r in range(max(5, args.rehash_runs)):
            config.write_text(json.dumps({"hidden_size": 4096, "layers": 32, "version": r + 1}))
            t0 = time.perf_counter()
            new = hash_dir(folder, hashed.manifest)
            again.append(time.perf_counter() - t0)
            assert new.files_read == 1 and new.files_reused == files and new.digest != hashed.digest
            hashed = new
        assert hashed.digest == hash_dir(folder).digest
        label = f"{size / 2**30:.2f} GiB, {files} files + config.json"
        c, w, a = statistics.median(cold), statistics.median(warm), statistics.median(again)
        _row(f"hash a model folder from scratch ({label}), page cache dropped, median s of {len(cold)}",
             f"{c:.2f}", f"{size / c / 2**20:,.0f} MiB/s")  # fmt: skip
        _row(f"hash it from scratch, files in the page cache, median s of {len(warm)}",
             f"{w:.2f}", f"{size / w / 2**20:,.0f} MiB/s")  # fmt: skip
        _row(f"re-hash after changing config.json, previous manifest given, median ms of {len(again)}",
             f"{a * 1e3:.2f}", f"{w / a:,.0f}x faster than warm, {c / a:,.0f}x than cold")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=50_000, help="signed statements to append")
    parser.add_argument("--batch", type=int, default=1000, help="entries per append (one transaction)")
    parser.add_argument("--compare-entries", type=int, default=200_000,
                        help="raw bodies for append and pymerkle (at most --entries; 0: none)")  # fmt: skip
    parser.add_argument("--no-full-sync", dest="full_sync", action="store_false",
                        help="skip the synchronous=FULL store")  # fmt: skip
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--verify-runs", type=int, default=1, help="verify_log runs (0: skip verify)")
    parser.add_argument("--workers", type=int, default=None, help="verify_log workers (default: CPUs)")
    parser.add_argument("--sig-sample", type=int, default=4000)
    parser.add_argument("--rehash-gb", type=float, default=0.2, help="model folder size (0: skip)")
    parser.add_argument("--rehash-runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="suanli-bench-ledger-", dir="/tmp") as tmp:
        os.environ["SUANLI_HOME"] = str(Path(tmp) / "home")
        free = shutil.disk_usage(tmp).free / 2**30
        need = args.entries * 2.2e-6 + args.rehash_gb + 1
        if free < need:
            print(f"bench_ledger: {free:.0f} GiB free in /tmp, {need:.0f} GiB needed", file=sys.stderr)
            return 1
        _say(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {free:.0f} GiB free in /tmp")
        log, raw, _ = bench_appends(args, Path(tmp))
        if raw is not None:
            raw.store.close()  # type: ignore[attr-defined]
        bench_proofs(args, log)
        if args.verify_runs:
            bench_verify(args, log)
    if args.rehash_gb:
        bench_rehash(args)
    width = max(len(r[0]) for r in ROWS)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"{'measure'.ljust(width)} | value | notes")
    for name, value, note in ROWS:
        print(f"{name.ljust(width)} | {value} | {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
