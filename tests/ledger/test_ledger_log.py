"""The stored ledger as a user and an attacker see it: signed entries appended once, found by digest,
job and user, traced back to their data and code, checked end to end, exported and checked elsewhere;
and every single-byte change to what is stored is caught."""

from __future__ import annotations

import base64
import json
import random
import sqlite3

import pytest

from suanli.core.errors import BadInput
from suanli.ledger import bundle
from suanli.ledger import provenance as P
from suanli.ledger.note import Signer
from suanli.ledger.witness import cosignature_line, cosigner_vkey
from suanli.store.ledger import Item, LedgerLog, cosignature_problem, lineage
from suanli.store.ledger_audit import export, verify_log
from suanli.store.store import Store


def sha(n: int) -> str:
    return f"{n:064x}"


def dataset(n: int, user: str = "ann") -> Item:
    return Item("dataset", P.provenance("dataset", {f"data-{n}.csv": sha(n)}, external={"user": user}))


def run(job: int, inputs: list[str], outputs: dict[str, str]) -> Item:
    deps = [P.dependency(f"in-{i}", d) for i, d in enumerate(inputs)]
    doc = P.provenance("run", outputs, external={"job_id": job, "user": "bob"}, dependencies=deps)
    return Item("run", doc, source=f"attempt:{job}:1")


@pytest.fixture
def log(db_url: str) -> LedgerLog:
    return LedgerLog(Store(db_url))


@pytest.fixture
def sqlite_log(suanli_home) -> LedgerLog:
    """For what does not depend on the database (bundles, hashing): SQLite only, to keep CI short."""
    return LedgerLog(Store(f"sqlite:///{suanli_home / 'suanli.db'}"))


def test_entries_are_appended_once_found_and_traced(log):
    first = log.append_statements([dataset(1), dataset(2, user="cy")])
    assert first == [0, 1]
    # A retried attempt end (same source) keeps its entry; a new one in the same batch is appended.
    again = log.append_statements([run(7, [sha(1), sha(2)], {"ckpt.pt": sha(10)}), dataset(3)])
    assert again == [2, 3]
    assert log.append_statements([dataset(4), run(7, [sha(1)], {"x": sha(99)})]) == [4, 2]
    assert log.head()[0] == 5
    assert log.find("digest", sha(1)) == [0, 2]
    assert log.find("digest", sha(10), role="subject") == [2]
    assert log.find("job", "7") == [2]
    assert log.find("user", "cy") == [1]
    model = P.provenance("model", {"m/": sha(20)}, dependencies=[P.dependency("base", sha(10))])
    log.append_statements([Item("model", model)])
    trace = lineage(log, sha(20))
    assert [e["index"] for e in trace["entries"]] == [0, 1, 2, 5]
    assert {(e["from"], e["to"]) for e in trace["edges"]} == {(0, 2), (1, 2), (2, 5)}
    assert lineage(log, sha(12345))["found"] is False
    report = verify_log(log)
    assert report["ok"], report
    assert report["entries_checked"] == report["signatures_checked"] == 6
    assert report["checkpoints_checked"] == 4  # one per append that added entries


def test_a_log_refuses_a_second_key(log, db_url):
    log.append_statements([dataset(1)])
    other = LedgerLog(Store(db_url), signer=Signer.generate("someone-else"))
    with pytest.raises(BadInput, match="signed by"):
        other.append_statements([dataset(2)])
    assert log.head()[0] == 1
    with pytest.raises(BadInput, match="not the log's key"):
        verify_log(log, trusted=Signer.generate("x").verifier())


def test_bundles_are_checked_without_the_database(sqlite_log, tmp_path):
    log = sqlite_log
    log.append_statements([dataset(n) for n in range(37)])
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    assert export(log, full)["entries"] == 37
    assert export(log, part, [3, 36])["entries"] == 2
    key = log.key()
    for path in (full, part):
        report = bundle.verify_bundle(path, trusted=key)
        assert report["ok"] and report["key_trusted"], report
    with pytest.raises(bundle.BundleError, match="not the trusted key"):
        bundle.verify_bundle(full, trusted=Signer.generate("x").verifier())
    # An entry rewritten (valid base64, other bytes) is tampering, named by its index.
    lines = full.read_text().splitlines()
    e = json.loads(lines[1 + 20])
    body = bytearray(base64.b64decode(e["body"]))
    body[40] ^= 1
    e["body"] = base64.b64encode(bytes(body)).decode()
    lines[1 + 20] = json.dumps(e)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    report = bundle.verify_bundle(bad)
    assert not report["ok"] and report["first_bad"]["entry"] == 20
    # A bundle cut short, or not JSON, cannot be read at all (not a finding about the log).
    bad.write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(bundle.BundleError, match="holds 34 entries"):
        bundle.verify_bundle(bad)
    bad.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(bundle.BundleError, match="not JSON"):
        bundle.verify_bundle(bad)
    # A partial bundle's proof for another size fails as an inclusion proof.
    lines = part.read_text().splitlines()
    e = json.loads(lines[1])
    e["proof"] = e["proof"][:-1]
    lines[1] = json.dumps(e)
    bad.write_text("\n".join(lines) + "\n")
    report = bundle.verify_bundle(bad)
    assert not report["ok"] and report["first_bad"]["entry"] == 3


def _cosigned(log: LedgerLog) -> Signer:
    witness = Signer.generate("witness.example")
    size = log.head()[0]
    note = log.checkpoint()
    text = note[: note.index("\n\n") + 1]
    log.add_cosignatures(size, cosigner_vkey(witness), [cosignature_line(witness, text, 1_700_000_000)])
    return witness


def test_1000_single_byte_changes_are_all_caught(suanli_home):
    url = f"sqlite:///{suanli_home / 'suanli.db'}"
    log = LedgerLog(Store(url))
    for n in range(0, 24, 6):
        log.append_statements([dataset(k) for k in range(n, n + 6)])
    _cosigned(log)
    assert verify_log(log, check_cosignature=cosignature_problem)["ok"]
    targets = [
        ("ledger_entries", "body"),
        ("ledger_entries", "leaf_hash"),
        ("ledger_nodes", "hash"),
        ("ledger_checkpoints", "note"),
        ("ledger_cosignatures", "line"),
        ("ledger_cosignatures", "witness"),
    ]
    rng = random.Random(6962)
    db = sqlite3.connect(suanli_home / "suanli.db", isolation_level=None)
    missed = []
    for trial in range(1000):
        table, column = targets[trial % len(targets)]
        rowid, value = rng.choice(db.execute(f"SELECT rowid, {column} FROM {table}").fetchall())
        raw = bytearray(value.encode() if isinstance(value, str) else value)
        at = rng.randrange(len(raw))
        raw[at] = (raw[at] + rng.randrange(1, 256)) % 256
        changed = bytes(raw) if isinstance(value, bytes) else raw.decode("utf-8", "replace")
        if changed == value:  # a text byte that did not survive decoding unchanged: change another way
            changed = value[:at] + ("x" if value[at] != "x" else "y") + value[at + 1 :]
        db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (changed, rowid))
        report = verify_log(log, check_cosignature=cosignature_problem)
        if report["ok"]:
            missed.append((table, column, at))
        db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (value, rowid))
    assert missed == []
    assert verify_log(log, check_cosignature=cosignature_problem)["ok"]


def test_verify_names_the_first_bad_entry(suanli_home):
    url = f"sqlite:///{suanli_home / 'suanli.db'}"
    log = LedgerLog(Store(url))
    log.append_statements([dataset(k) for k in range(10)])
    db = sqlite3.connect(suanli_home / "suanli.db", isolation_level=None)
    for index in (7, 4):
        body = bytearray(
            db.execute('SELECT body FROM ledger_entries WHERE "index" = ?', (index,)).fetchone()[0]
        )
        body[-3] ^= 0x20
        db.execute('UPDATE ledger_entries SET body = ? WHERE "index" = ?', (bytes(body), index))
    report = verify_log(log)
    assert not report["ok"]
    assert report["first_bad"]["entry"] == 4
    assert "leaf hash" in report["first_bad"]["reason"]
    # An entry removed from the end with the head put back is caught too.
    db.execute('DELETE FROM ledger_entries WHERE "index" = 9')
    assert verify_log(log)["first_bad"]["entry"] == 4


def test_incremental_rehash_reads_only_what_changed(sqlite_log, tmp_path):
    log = sqlite_log
    model = tmp_path / "model"
    (model / "shards").mkdir(parents=True)
    for n in range(5):
        (model / "shards" / f"{n}.bin").write_bytes(bytes([n]) * 100_000)
    (model / "config.json").write_text("{}")
    subjects, first = log.hash_artifact(model)
    assert first.files_read == 6 and "model/" in subjects and "model/config.json" in subjects
    (model / "config.json").write_text('{"lr": 1}')
    subjects2, second = log.hash_artifact(model)
    assert (second.files_read, second.files_reused) == (1, 5)
    assert second.bytes_read == len('{"lr": 1}')
    assert subjects2["model/"] != subjects["model/"]
    assert subjects2["model/shards/0.bin"] == subjects["model/shards/0.bin"]


def test_concurrent_appenders_leave_no_gap_and_no_duplicate(db_url):
    """Writers in several threads, each with its own store connection, from an empty log (the head row
    is made by whichever first append wins)."""
    import threading

    logs = [LedgerLog(Store(db_url)) for _ in range(6)]
    barrier = threading.Barrier(len(logs))
    got: list[list[int]] = []
    errors: list[BaseException] = []

    def write(n: int, log: LedgerLog) -> None:
        try:
            barrier.wait()
            for b in range(10):
                got.append(log.append_statements([dataset(1000 * n + 10 * b + k) for k in range(5)]))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n, log)) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    indices = sorted(i for batch in got for i in batch)
    assert indices == list(range(300))
    assert all(batch == list(range(batch[0], batch[0] + 5)) for batch in got)  # each batch contiguous
    report = verify_log(logs[0])
    assert report["ok"] and report["checkpoints_checked"] == 60
