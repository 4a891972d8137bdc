"""`suanli serve` as a user runs it: replicas and a front as suanli jobs; the front answers by the vote,
says how many replicas agreed, drops and flags a replica that answers wrong labels and one that never
answers, survives bad requests, and its replicas end with it. Bad input is one line, exit 2, no job."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from jobhelpers import REPO, invoke, wait_for

EXAMPLE = REPO / "examples" / "serve"
sys.path.insert(0, str(EXAMPLE))

from make_models import digits_split  # noqa: E402


def ensemble(tmp_path: Path, **changes) -> Path:
    """The example ensemble copied into tmp_path, changed as asked."""
    root = tmp_path / "serve"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__"))
    doc = yaml.safe_load((root / "ensemble.yaml").read_text())
    doc.update(changes)
    (root / "ensemble.yaml").write_text(yaml.safe_dump(doc))
    return root / "ensemble.yaml"


def post(endpoint: str, body: object) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{endpoint}/predict", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(endpoint: str, path: str) -> dict:
    with urllib.request.urlopen(f"{endpoint}{path}", timeout=30) as reply:
        return json.loads(reply.read())


def honest_labels(root: Path, names: list[str], x: np.ndarray) -> np.ndarray:
    """The majority vote of the honest replicas, computed here from their model files."""
    from suanli.serve.models import load
    from suanli.serve.spec import load_ensemble_spec
    from suanli.serve.vote import combine

    spec = load_ensemble_spec(root / "ensemble.yaml")
    replicas = [r for r in spec.replicas if r.name in names]
    return combine([load(spec, r)(x) for r in replicas], [r.weight for r in replicas], "majority").labels


def test_front_votes_reports_agreement_and_drops_a_wrong_and_a_silent_replica(tmp_path):
    node = invoke("nodes", "--json").json()["nodes"][0]["name"]
    honest = [
        {"name": "a", "node": node, "model": "models/a.onnx", "cpus": 0.2},
        {"name": "c", "node": node, "model": "models/c.pt", "cpus": 0.2},
        {"name": "e", "node": node, "model": "net.py:make_model", "weights": "models/e-state.pt",
         "cpus": 0.2},
    ]  # fmt: skip
    bad = [
        {"name": "liar", "node": node, "model": "models/b.onnx", "cpus": 0.2, "attack": "wrong_labels"},
        {"name": "mute", "node": node, "model": "models/d.onnx", "cpus": 0.2, "attack": "no_answer"},
    ]  # fmt: skip
    path = ensemble(
        tmp_path, name="vote-test", replicas=honest + bad, timeout_s=1.0, quorum=2,
        drop={"timeouts": 2, "window": 50, "disagreement": 0.5}, front={"cpus": 0.2, "report_s": 0.5},
    )  # fmt: skip
    r = invoke("serve", str(path), "--json")
    assert r.exit_code == 0, r.stderr
    service = r.json()
    endpoint, front = service["endpoint"], service["front_job_id"]
    assert service["state"] == "READY" and service["live"] == 5
    jobs = {j["id"]: j for j in invoke("status", "--json").json()["jobs"]}
    assert all(jobs[i]["attempts"][-1]["node"] == node for i in service["job_ids"])

    _, _, x, y = digits_split()
    expected = honest_labels(path.parent, ["a", "c", "e"], x[:100])
    code, first = post(endpoint, {"inputs": x[:100].tolist()})
    assert code == 200, first
    # The liar disagreed on every row of a full window and is dropped; the mute one timed out once.
    assert first["asked"] == 5 and first["answered"] == 4 and first["failed"] == ["mute"]
    assert first["dropped"] == ["liar"]
    labels = np.array(first["labels"])
    assert np.mean(labels == y[:100]) >= np.mean(expected == y[:100]) - 0.02
    assert max(first["agreed"]) == 3  # the liar never agrees

    code, second = post(endpoint, {"inputs": x[100:200].tolist()})
    assert code == 200 and second["failed"] == ["mute"] and sorted(second["dropped"]) == ["liar", "mute"]
    assert second["labels"] == honest_labels(path.parent, ["a", "c", "e"], x[100:200]).tolist()
    code, third = post(endpoint, {"inputs": x[200].tolist()})  # one row may be given bare
    assert code == 200 and third["asked"] == 3 and third["answered"] == 3 and third["failed"] == []
    assert third["labels"] == [int(y[200])] and third["agreed"] == [3]

    # Bad requests: one clear line each, and the front goes on answering.
    code, doc = post(endpoint, b"{not json")
    assert code == 400 and doc["error"].startswith("body: must be JSON")
    code, doc = post(endpoint, {"inputs": [[1, 2, 3]]})
    assert code == 422 and doc["error"] == "inputs: has shape [1, 3]; must be rows of shape [64]"
    assert post(endpoint, {"inputs": [[float("nan")] * 64]})[0] == 422
    assert post(endpoint, {"rows": []})[0] == 400
    assert post(endpoint, {"inputs": x[:2].tolist()})[0] == 200

    status = {r["name"]: r for r in get(endpoint, "/status")["replicas"]}
    assert status["liar"]["state"] == "dropped" and "disagreed" in status["liar"]["reason"]
    assert status["mute"]["state"] == "dropped" and "in a row" in status["mute"]["reason"]
    assert {status[n]["state"] for n in "ace"} == {"live"}
    assert status["a"]["recent_disagreement"] < 0.2

    # Flagged in the front's log and metrics as well.
    wait_for(lambda: {"dropped_liar", "dropped_mute"} <= _metrics(front), timeout=60)
    log = invoke("logs", str(front)).stdout
    assert "replica liar dropped and flagged" in log and "replica mute dropped and flagged" in log
    wait_for(lambda: {"latency_p50_ms", "latency_p95_ms", "throughput_rps"} <= _metrics(front), timeout=60)

    # Cancelling the front ends the service: each replica notices it has gone and ends by itself.
    assert invoke("cancel", str(front)).exit_code == 0
    replicas = service["job_ids"][:-1]
    wait_for(lambda: all(_state(i) in ("SUCCEEDED", "FAILED", "CANCELLED") for i in replicas), timeout=60)
    assert {_state(i) for i in replicas} == {"SUCCEEDED"}


def _metrics(job_id: int) -> set[str]:
    from suanli.api import Client

    return {m["name"] for m in Client().metric_history(job_id)}


def _state(job_id: int) -> str:
    return invoke("status", str(job_id), "--json").json()["status"]


def test_soft_vote_service_and_down(tmp_path):
    replicas = [
        {"name": "a", "model": "models/a.onnx", "cpus": 0.2},
        {"name": "b", "model": "models/b.onnx", "cpus": 0.2},
    ]  # fmt: skip
    path = ensemble(tmp_path, name="soft-test", vote="soft", quorum=1, replicas=replicas, front={"cpus": 0.2})
    service = invoke("serve", str(path), "--json").json()
    assert service["state"] == "READY"
    _, _, x, y = digits_split()
    code, doc = post(service["endpoint"], {"inputs": x[:50].tolist()})
    assert code == 200 and doc["vote"] == "soft" and doc["answered"] == 2
    assert np.mean(np.array(doc["labels"]) == y[:50]) >= 0.9
    # A second service of the same name is refused while the first runs.
    again = invoke("serve", str(path), "--json")
    assert again.exit_code == 2 and "already being served" in again.stderr
    down = invoke("serve", "--down", "soft-test", "--json")
    assert down.exit_code == 0 and sorted(down.json()["cancelled"]) == sorted(service["job_ids"])
    assert {_state(i) for i in service["job_ids"]} <= {"CANCELLED", "SUCCEEDED"}
    with pytest.raises(urllib.error.URLError):
        get(service["endpoint"], "/health")
    assert invoke("serve", "--down", "soft-test").exit_code == 2


BAD = [
    ({"vote": "plurality"}, "vote", "majority"),
    ({"replicas": [{"name": "a", "model": "models/a.onnx", "node": "no-such-node"}]}, "replicas[0].node",
     "not a node of the pool"),
    ({"replicas": [{"name": "a", "model": "models/none.onnx"}]}, "replicas[0].model", "is not a file"),
    ({"replicas": [{"name": "a", "model": "models/a.onnx"}, {"name": "b", "model": "broken.onnx"}]},
     "replicas[1].model", "must load"),
    ({"replicas": [{"name": "a", "model": "models/e-state.pt"}]}, "replicas[0].model", "not a TorchScript"),
    ({"replicas": [{"name": "a", "model": "net.py:no_such_factory"}]}, "replicas[0].model",
     "cannot be imported"),
    ({"replicas": [{"name": "a", "model": "models/a.onnx", "weights": "models/e-state.pt"}]},
     "replicas[0].weights", "file.py:factory"),
    ({"replicas": [{"name": "a", "model": "models/a.onnx"}, {"name": "a", "model": "models/b.onnx"}]},
     "replicas[1].name", "unique"),
    ({"replicas": [{"name": "a", "modle": "models/a.onnx"}]}, "replicas.0.modle", "did you mean"),
    ({"input_shape": [32]}, "replicas[0].model", "input_shape 32"),
    ({"drop": {"disagreement": 2}}, "drop.disagreement", "less than or equal to 1"),
    ({"quorum": 9}, "quorum", "at most the number of replicas"),
    ({"front": {"cpus": 64}}, "replicas[].cpus", "more than the pool's"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "field", "says"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_ensemble_is_one_line_exit_2_and_no_job(tmp_path, changes, field, says):
    path = ensemble(tmp_path, **{"quorum": 1, **changes})
    (path.parent / "broken.onnx").write_text("not a model\n")
    r = invoke("serve", str(path), "--json")
    assert r.exit_code == 2, r.stdout + r.stderr
    message = r.stderr.strip().splitlines()
    assert len(message) == 1 and field in message[0] and says in message[0], message
    assert r.stdout == ""
    assert invoke("status", "--json").json()["jobs"] == []


def test_serve_needs_a_file_or_down():
    r = invoke("serve", "--json")
    assert r.exit_code == 2 and "ENSEMBLE_FILE" in r.stderr and len(r.stderr.strip().splitlines()) == 1
