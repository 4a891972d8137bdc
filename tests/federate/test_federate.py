"""`suanli federate` as a user runs it: a federation in Flower's simulation engine as one suanli job,
rounds reported, the model written; the privacy budget stops it; each participant's data is read only by
that participant's client; bad input is one line, exit 2, and no job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from jobhelpers import REPO, invoke

EXAMPLE = REPO / "examples" / "federated"

AUDIT_HOOK = """
import json, os, sys
_LOG, _ROOT = os.environ.get("FED_AUDIT_LOG"), os.environ.get("FED_AUDIT_ROOT")

def _hook(event, args):
    if event != "open" or not args or isinstance(args[0], int) or args[0] is None:
        return
    path = os.fsdecode(args[0])
    if not path.startswith(_ROOT):
        return
    frame, partition = sys._getframe(1), None
    while frame is not None:
        if frame.f_code.co_name in ("train", "evaluate") and "pid" in frame.f_locals:
            partition = frame.f_locals["pid"]
            break
        frame = frame.f_back
    argv = " ".join(sys.argv)
    server = "federate/runner" in argv or "flwr-serverapp" in argv
    role = "server" if server else "agent" if "run/agent" in argv else "worker"
    line = json.dumps({"role": role, "partition": partition, "path": path, "os_pid": os.getpid()})
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (line + "\\n").encode())
    os.close(fd)

if _LOG and _ROOT:
    sys.addaudithook(_hook)
"""


def federation(tmp_path: Path, **changes) -> Path:
    """The example federation copied into tmp_path with three participants, changed as asked."""
    root = tmp_path / "fed"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("*.pt", "__pycache__"))
    doc = yaml.safe_load((root / "fed.yaml").read_text())
    doc.update(rounds=3, participants=doc["participants"][:3], output="model.pt", simulation={"cpus": 2})
    doc["strategy"]["options"]["fraction_train"] = 1.0
    doc.pop("target_accuracy")
    doc["app"]["lr"] = 0.1
    doc.update(changes)
    (root / "fed.yaml").write_text(yaml.safe_dump(doc))
    return root / "fed.yaml"


def epsilon_after(rounds: int, sigma: float) -> float:
    """opacus's own RDP accounting of `rounds` full-participation releases (sample rate 1)."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    for _ in range(rounds):
        accountant.step(noise_multiplier=sigma, sample_rate=1.0)
    return accountant.get_epsilon(delta=1e-5)


def audited(tmp_path: Path, monkeypatch) -> tuple[dict, Path]:
    """An audit hook in every Python process from here on (the agent included): each open of a file
    under the federation's data folder is logged with the process's role and the partition being read."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(AUDIT_HOOK)
    log = tmp_path / "opens.jsonl"
    audit = {
        "PYTHONPATH": str(hook),
        "FED_AUDIT_LOG": str(log),
        "FED_AUDIT_ROOT": str(tmp_path / "fed" / "data"),
    }
    for name, value in audit.items():
        monkeypatch.setenv(name, value)  # the agent, which must not read the participants' data either
    return audit, log


def assert_data_stayed(log: Path, data: Path, participants: int) -> None:
    opens = [json.loads(line) for line in log.read_text().splitlines()]
    for i in range(participants):
        part = str(data / f"part-{i}.npz")
        readers = {(o["role"], o["partition"]) for o in opens if o["path"] == part}
        assert readers == {("worker", i)}, (part, readers)  # its own client, and nobody else
    server = {o["path"] for o in opens if o["role"] == "server"}
    assert server == {str(data / "test.npz")}  # the server reads its own data, and only that


def test_federation_runs_as_a_job_stops_at_its_privacy_budget_and_data_stays_with_its_owner(
    tmp_path, monkeypatch
):
    audit, log = audited(tmp_path, monkeypatch)
    sigma = 0.01  # little noise, so that the model still visibly learns in two rounds
    budget = (epsilon_after(2, sigma) + epsilon_after(3, sigma)) / 2  # two rounds fit, a third would not
    privacy = {"mode": "central", "noise_multiplier": sigma, "clipping_norm": 1.0, "max_epsilon": budget}
    fed = federation(tmp_path, envs=audit, rounds=10, privacy=privacy)

    r = invoke("federate", str(fed), "--simulation", "--json")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert (
        doc["state"] == "SUCCEEDED" and doc["rounds_run"] == 2 and doc["stopped_because"] == "privacy_budget"
    )
    assert [row["epsilon"] for row in doc["rounds"]] == pytest.approx(
        [epsilon_after(1, sigma), epsilon_after(2, sigma)]
    )
    assert doc["epsilon"] <= budget
    assert [row["clients_used"] for row in doc["rounds"]] == [3, 3]
    assert all(row["bytes"] > 0 for row in doc["rounds"])
    assert doc["rounds"][-1]["accuracy"] > 0.5  # two rounds on digits: well above chance (0.1)
    assert Path(doc["output"]).is_file()
    assert_data_stayed(log, fed.parent / "data", 3)


def test_deployed_federation_runs_superlink_supernodes_and_serverapp_as_jobs(tmp_path, monkeypatch):
    audit, log = audited(tmp_path, monkeypatch)
    node = invoke("nodes", "--json").json()["nodes"][0]["name"]
    parts = [{"name": f"p{i}", "node": node, "data": f"data/part-{i}.npz"} for i in range(2)]
    fed = federation(tmp_path, envs=audit, rounds=2, participants=parts, deployment={"cpus_per_node": 0.5})

    r = invoke("federate", str(fed), "--json")
    doc = r.json()
    assert r.exit_code == 0, invoke("logs", str(doc["job_id"])).stdout[-3000:]
    assert doc["state"] == "SUCCEEDED" and doc["simulation"] is False and doc["rounds_run"] == 2
    assert [row["clients_used"] for row in doc["rounds"]] == [2, 2]
    assert doc["rounds"][-1]["accuracy"] > 0.3 and doc["traffic_bytes"] > 0
    assert Path(doc["output"]).is_file()
    jobs = {j["id"]: j for j in invoke("status", "--json").json()["jobs"]}
    names = [jobs[i]["name"] for i in doc["job_ids"]]
    assert names == ["fed-digits-superlink", "fed-digits-p0", "fed-digits-p1", "fed-digits"]
    # Every part ended by itself once the run was over (none was cancelled), each SuperNode on its node.
    assert {jobs[i]["status"] for i in doc["job_ids"]} == {"SUCCEEDED"}, [jobs[i] for i in doc["job_ids"]]
    assert all(jobs[i]["attempts"][-1]["node"] == node for i in doc["job_ids"][1:3])
    assert_data_stayed(log, fed.parent / "data", 2)


BAD = [
    ({"strategy": {"name": "FedAvgg"}}, "strategy.name", "FedAvg"),
    ({"strategy": {"name": "FedAvg", "options": {"fraction_trian": 0.5}}}, "strategy.options.fraction_trian",
     "fraction_train"),
    ({"strategy": {"name": "FedProx", "options": {"proximal_mu": "high"}}}, "strategy.options.proximal_mu",
     "float"),
    ({"participants": [{"name": "a", "node": "no-such-node", "data": "data/part-0.npz"}]},
     "participants[0].node", "not a node of the pool"),
    ({"participants": [{"name": "a", "data": "data/part-0.npz"}, {"name": "b", "data": "data/nothing.npz"}]},
     "participants[1].data", "holds no data"),
    ({"privacy": {"max_epsilon": 0}}, "privacy.max_epsilon", "budget > 0"),
    ({"privacy": {"max_epsilon": -3}}, "privacy.max_epsilon", "budget > 0"),
    ({"aggregator": {"name": "bulyan", "f": 1}}, "f", "4f + 3"),
    ({"app": {"model": "nosuch.py:make_model", "dataset": "task.py:load"}}, "app.model", "be imported"),
    ({"app": {"model": "task.py:nothing", "dataset": "task.py:load"}}, "app.model", "be imported"),
]  # fmt: skip


DEPLOY_BAD = [
    ({"participants": [{"name": "a", "data": "data/part-0.npz", "attack": "sign_flip"}]},
     "participants[0].attack", "simulation only"),
    ({"deployment": {"cpus_per_node": 64}}, "deployment.cpus_per_node", "the pool has"),
    ({"deployment": {"superlink_node": "elsewhere"}}, "deployment.superlink_node", "not a node of the pool"),
    ({"deployment": {"address": "host:99999"}}, "deployment.address", "1-65535"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "field", "says"), DEPLOY_BAD, ids=[b[1] for b in DEPLOY_BAD])
def test_bad_deployment_is_one_line_exit_2_and_no_job(tmp_path, changes, field, says):
    r = invoke("federate", str(federation(tmp_path, **changes)), "--json")
    assert r.exit_code == 2, r.stdout + r.stderr
    message = r.stderr.strip().splitlines()
    assert len(message) == 1 and field in message[0] and says in message[0], message
    assert invoke("status", "--json").json()["jobs"] == []


@pytest.mark.parametrize(("changes", "field", "says"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_federation_is_one_line_exit_2_and_no_job(tmp_path, changes, field, says):
    r = invoke("federate", str(federation(tmp_path, **changes)), "--simulation", "--json")
    assert r.exit_code == 2, r.stdout + r.stderr
    assert r.stdout == ""
    message = r.stderr.strip().splitlines()
    assert len(message) == 1 and field in message[0] and says in message[0], message
    assert invoke("status", "--json").json()["jobs"] == []
