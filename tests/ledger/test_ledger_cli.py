"""`suanli ledger` as a user and an auditor use it: JSON on stdout, one line and exit 2 for bad input
with nothing appended, exit 1 naming the first bad entry when history was rewritten; witnesses that
cosign honest growth and refuse a fork; a client's old checkpoint that catches a log cut back."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from jobhelpers import REPO, invoke


def ok(*args: str) -> dict:
    r = invoke("ledger", *args, "--json")
    assert r.exit_code == 0, r.stderr
    return r.json()


def size() -> int:
    return ok("log")["size"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,2\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 1000)
    (model / "card.md").write_text("# model\n")
    return {"data": data, "model": model}


def test_add_find_lineage_prove_export_and_verify(files, tmp_path):
    d = ok("add", str(files["data"]))
    m = ok("add", str(files["model"]), "--kind", "model", "--input", str(files["data"]))
    assert (d["index"], m["index"]) == (0, 1)
    assert ok("find", str(files["data"]))["entries"][0]["index"] == 0
    assert [e["index"] for e in ok("find", d["sha256"])["entries"]] == [0, 1]  # made it, then used it
    trace = ok("lineage", str(files["model"]))
    assert [e["index"] for e in trace["entries"]] == [0, 1]
    assert trace["edges"] == [{"from": 0, "to": 1, "via": d["sha256"]}]
    proof = ok("prove", "0")
    assert proof["verified"] and proof["size"] == 2 and len(proof["proof"]) == 1
    shown = ok("show", "1")
    assert shown["statement"]["predicateType"] == "https://slsa.dev/provenance/v1"
    assert {s["name"] for s in shown["statement"]["subject"]} == {
        "model/",
        "model/card.md",
        "model/weights.bin",
    }
    # Re-adding an unchanged folder reads none of its files again.
    assert ok("add", str(files["model"]), "--kind", "model")["files_read"] == 0
    bundle = tmp_path / "b.jsonl"
    assert ok("export", "--out", str(bundle))["entries"] == 3
    key = ok("key")["key"]
    report = ok("verify", "--bundle", str(bundle), "--key", key)
    assert report["ok"] and report["key_trusted"] and report["entries_checked"] == 3
    assert ok("verify")["ok"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["add", "/no/such/path"], "path=/no/such/path: does not exist"),
        (["add", "{data}", "--kind", "weights"], "kind=weights: must be dataset or model"),
        (["add", "{data}", "--input", "/no/such"], "input=/no/such: must be a SHA-256"),
        (["show", "7"], "entry=7: the ledger has 1 entries"),
        (["show", "1e3"], "entry=1e3: must be an entry's index"),
        (["prove", "abc"], "entry=abc: must be an entry's index"),
        (["lineage", "/no/such"], "model=/no/such: must be a SHA-256"),
        (["export", "3"], "entry=3: the ledger has 1 entries"),
        (["find"], "find: needs a DIGEST"),
        (["verify", "--key", "nonsense"], "key=nonsense: a verifier key is NAME+KEYID+BASE64"),
        (["verify", "--bundle", "{tmp}/missing.jsonl"], "No such file"),
        (["verify", "--bundle", "{data}"], "is not JSON"),
        (["verify", "--checkpoint", "{data}"], "is not a checkpoint signed by this log's key"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_appends_nothing(files, tmp_path, args, message):
    ok("add", str(files["data"]))
    args = [a.format(data=files["data"], tmp=tmp_path) for a in args]
    r = invoke("ledger", *args, "--json")
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert size() == 1


def test_a_bundle_signed_by_another_key_is_refused(files, tmp_path, monkeypatch):
    ok("add", str(files["data"]))
    bundle = tmp_path / "b.jsonl"
    ok("export", "--out", str(bundle))
    monkeypatch.setenv("SUANLI_HOME", str(tmp_path / "other-home"))
    other = ok("key")["key"]
    r = invoke("ledger", "verify", "--bundle", str(bundle), "--key", other)
    assert r.exit_code == 2 and "is not the trusted key" in r.stderr


def test_tampering_exits_1_and_names_the_first_bad_entry(files, suanli_home):
    for _ in range(3):
        ok("add", str(files["data"]))
    db = sqlite3.connect(suanli_home / "suanli.db", isolation_level=None)
    body = bytearray(db.execute('SELECT body FROM ledger_entries WHERE "index" = 1').fetchone()[0])
    body[100] ^= 1
    db.execute('UPDATE ledger_entries SET body = ? WHERE "index" = 1', (bytes(body),))
    r = invoke("ledger", "verify", "--json")
    assert r.exit_code == 1
    assert r.json()["first_bad"]["entry"] == 1
    assert "TAMPERED: entry 1" in r.stderr


def test_a_checkpoint_a_client_kept_catches_a_log_cut_back_or_forked(files, suanli_home, tmp_path):
    for _ in range(5):
        ok("add", str(files["data"]))
    held = tmp_path / "held.txt"
    held.write_text(ok("log")["checkpoint"])
    assert ok("verify", "--checkpoint", str(held))["held_checkpoint"] == {"size": 5, "consistent": True}
    # The operator, holding the key, rebuilds the log without its last entries and signs it again.
    rewritten = f"sqlite:///{tmp_path / 'rewritten.db'}"
    for _ in range(3):
        assert invoke("--db", rewritten, "ledger", "add", str(files["data"])).exit_code == 0
    r = invoke("--db", rewritten, "ledger", "verify", "--checkpoint", str(held), "--json")
    assert r.exit_code == 1 and "fewer than the 5" in r.json()["first_bad"]["reason"]
    # ... or with other entries in their place, at the same size or larger.
    (files["data"]).write_text("other data\n")
    for _ in range(3):
        assert invoke("--db", rewritten, "ledger", "add", str(files["data"])).exit_code == 0
    r = invoke("--db", rewritten, "ledger", "verify", "--checkpoint", str(held), "--json")
    assert r.exit_code == 1 and "root at size 5" in r.json()["first_bad"]["reason"]


class Witnesses:
    """Witness processes (`suanli ledger witness`) on loopback, stopped at the end."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, log_key: str) -> str:
        folder = self.home.parent / name
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "suanli",
                "ledger",
                "witness",
                "--listen",
                "127.0.0.1:0",
                "--log",
                log_key,
                "--state",
                str(folder / "state.json"),
                "--key",
                str(folder / f"{name}.key"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=os.environ.copy(),
        )
        self.procs.append(proc)
        line = proc.stdout.readline()
        assert line.startswith("witness listening on "), proc.stderr.read()
        return line.split()[-1]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
            p.wait(timeout=30)


def _cosigner_key(folder: Path, name: str) -> str:
    from suanli.ledger.note import Signer
    from suanli.ledger.witness import cosigner_vkey

    return cosigner_vkey(Signer.parse((folder / name / f"{name}.key").read_text()))


def test_witnesses_cosign_honest_growth_and_refuse_a_fork(files, suanli_home, tmp_path):
    ok("add", str(files["data"]))
    log_key = ok("key")["key"]
    witnesses = Witnesses(suanli_home)
    try:
        urls = {name: witnesses.start(name, log_key) for name in ("w1", "w2")}
        config = {"witnesses": [{"url": urls[n], "key": _cosigner_key(suanli_home.parent, n)} for n in urls]}
        (suanli_home / "ledger.yaml").write_text(json.dumps(config))
        assert not ok("log")["witnessed"]
        first = ok("cosign")
        assert first["witnesses"] == {"w1": "cosigned", "w2": "cosigned"} and first["witnessed"]
        for _ in range(3):  # each new checkpoint is cosigned as it is made, with a consistency proof
            ok("add", str(files["data"]))
        log = ok("log")
        assert log["size"] == 4 and log["witnessed"] and sorted(log["cosigned_by"]) == ["w1", "w2"]
        report = ok("verify")
        assert report["ok"] and report["cosignatures_checked"] == 8
        # The same key signs another history of the same size: both witnesses refuse to cosign it.
        fork = f"sqlite:///{tmp_path / 'fork.db'}"
        files["data"].write_text("rewritten\n")
        for _ in range(4):
            added = invoke("--db", fork, "ledger", "add", str(files["data"]))
            assert added.exit_code == 0 and "did not cosign" in added.stderr
        r = invoke("--db", fork, "ledger", "cosign", "--json")
        assert r.exit_code == 1
        answers = r.json()["witnesses"]
        assert all(a != "cosigned" for a in answers.values()), answers
        assert not r.json()["witnessed"]
    finally:
        witnesses.stop()
