"""`verify: replicate` on a pool shared by three owners (three agents, one machine each pretends to be):
two replicas on two owners' nodes, a mismatch settled by a third on a third owner, the owner outside the
majority flagged in the ledger and left out of later replicas; a pool with one owner cannot verify."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobhelpers import invoke, wait_for, write_job
from suanli.store.ledger import KEY_FILE, pool_signer

# Replica 2 "cheats" (its owner returns a perturbed result), whichever node it lands on; 1 and 3 are honest.
JOB = """name: square
run: python3 -c "import os; x = 7 * 7 + (1 if os.environ['SUANLI_REPLICA'] == '2' and os.environ.get('CHEAT') else 0); open(os.environ['SUANLI_OUTPUT_DIR'] + '/out.txt', 'w').write(str(x))"
artifacts: [out.txt]
verify: replicate
"""  # noqa: E501


def verdicts() -> list[dict]:
    entries = invoke("ledger", "log", "--json").json()["entries"]
    return [e for e in entries if e["kind"] == "verification"]


@pytest.fixture
def three_owners(suanli_home, tmp_path, monkeypatch):
    """This test's agent (owner vision) and two more agents on the same database (nlp, audio)."""
    monkeypatch.setenv("SUANLI_NODE_OWNER", "vision")
    assert invoke("nodes", "--json").exit_code == 0  # starts this home's agent
    db = f"sqlite:///{suanli_home / 'suanli.db'}"
    pool_signer()  # the pool's ledger key, which every agent of the pool holds (docs/shared-compute.md)
    procs = []
    for name, owner in (("node-b", "nlp"), ("node-c", "audio")):
        home = tmp_path / f"home-{name}"
        home.mkdir(mode=0o700)
        shutil.copy2(suanli_home / KEY_FILE, home / KEY_FILE)
        env = {**os.environ, "SUANLI_HOME": str(home), "SUANLI_NODE_NAME": name, "SUANLI_NODE_OWNER": owner}
        procs.append(subprocess.Popen([sys.executable, "-m", "suanli.run.agent", "--db", db], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
    up = lambda: {n["owner"] for n in invoke("nodes", "--json").json()["nodes"] if n["status"] == "UP"}  # noqa: E731
    wait_for(lambda: up() >= {"vision", "nlp", "audio"})
    yield
    for p in procs:
        p.terminate()
        p.wait(timeout=60)


def test_a_pool_of_one_owner_cannot_verify(tmp_path, monkeypatch):
    monkeypatch.setenv("SUANLI_NODE_OWNER", "vision")
    r = invoke("submit", str(write_job(tmp_path, JOB)), "--json")
    assert r.exit_code == 2 and r.stdout == ""
    assert "verify=replicate: needs nodes of 2 different owners" in r.stderr and "vision" in r.stderr
    assert invoke("status", "--json").json()["jobs"] == []


def test_a_mismatch_is_settled_by_a_third_owner_and_the_odd_one_is_flagged(three_owners, tmp_path):
    r = invoke("submit", str(write_job(tmp_path, JOB)), "--env", "CHEAT=1", "--json")
    assert r.exit_code == 0, r.stderr
    found = wait_for(verdicts)
    assert len(found) == 1
    jobs = sorted(invoke("status", "--json").json()["jobs"], key=lambda j: j["id"])
    assert [j["status"] for j in jobs] == ["SUCCEEDED"] * 3  # two replicas, then a third
    owners = {n["name"]: n["owner"] for n in invoke("nodes", "--json").json()["nodes"]}
    ran_on = [owners[j["attempts"][-1]["node"]] for j in jobs]
    assert len(set(ran_on)) == 3  # three different owners
    outs = sorted(p.read_text() for p in Path(tmp_path).glob(".replicas/*/out.txt"))
    assert outs == ["49", "49", "50"]  # each replica wrote into its own folder

    report = {o["owner"]: o for o in invoke("report", "--owners", "--json").json()["owners"]}
    assert report[ran_on[1]]["flags"] == 1 and report[ran_on[0]]["flags"] == 0

    # The flagged owner is left out: an honest run is replicated on the other two and verified.
    assert invoke("submit", str(write_job(tmp_path, JOB)), "--json").exit_code == 0
    wait_for(lambda: len(verdicts()) == 2)
    later = sorted(invoke("status", "--json").json()["jobs"], key=lambda j: j["id"])[3:]
    assert len(later) == 2 and ran_on[1] not in {owners[j["attempts"][-1]["node"]] for j in later}
    shown = [invoke("ledger", "show", str(v["index"]), "--json").json() for v in verdicts()]
    params = [s["statement"]["predicate"]["buildDefinition"]["externalParameters"] for s in shown]
    assert sorted((p["status"], tuple(p["flagged_owners"])) for p in params) == [
        ("majority", (ran_on[1],)),
        ("verified", ()),
    ]


def test_the_verdict_rules():
    from suanli.run.verify import Replica, verdict

    def r(i, owner, out, ok=True):
        return Replica(i, owner, f"n{i}", ok, {"out": out} if ok else {})

    assert verdict([r(1, "a", "x")]).status == "waiting"
    assert verdict([r(1, "a", "x"), r(2, "b", "x")]).status == "verified"
    assert verdict([r(1, "a", "x"), r(2, "b", "x", ok=False)]).status == "rerun"  # a failure is no answer
    three = verdict([r(1, "a", "x"), r(2, "b", "y"), r(3, "c", "x")])
    assert (three.status, three.flagged, three.agreed) == ("majority", ["b"], [1, 3])
    assert verdict([r(1, "a", "x"), r(2, "b", "y"), r(3, "c", "z")]).flagged == []  # unresolved: nobody
    # Metrics compared within a relative tolerance (GPU work is not bitwise reproducible).
    close = [Replica(1, "a", "n1", True, {"loss": 0.5000001}), Replica(2, "b", "n2", True, {"loss": 0.5})]
    assert verdict(close, rtol=1e-5).status == "verified" and verdict(close, rtol=0).status == "rerun"
