"""The ledger fills itself: every job attempt that ends, every checkpoint written through suanli.train,
every `suanli compress` output and every tuning trial gets a signed entry without the user doing anything,
and what those entries say (digests, git commit, hardware, outcome) is what is on disk."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from jobhelpers import REPO, invoke, wait_for
from suanli import Client
from suanli.jobs import parse_spec
from suanli.ledger import provenance as P
from suanli.ledger.statement import PAYLOAD_TYPE, STATEMENT_TYPE, open_envelope
from suanli.store.ledger import LedgerLog, lineage, pool_signer, statement_of
from suanli.store.ledger_audit import verify_log
from suanli.store.store import Store

MAKE = """\
import json, os, pathlib
rows = len(pathlib.Path("data.csv").read_text().splitlines()) - 1
out = pathlib.Path("out")
out.mkdir(exist_ok=True)
(out / "result.txt").write_text(f"rows={rows} attempt={os.environ['SUANLI_ATTEMPT']}\\n")
print(json.dumps({"metric": "rows", "value": rows, "step": 0}), flush=True)
"""

# Fails its first attempt, succeeds on the next.
FLAKY = """\
import os, sys
print("attempt", os.environ["SUANLI_ATTEMPT"], flush=True)
sys.exit(1 if os.environ["SUANLI_ATTEMPT"] == "1" else 0)
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.email=ann@example.com", "-c", "user.name=Ann",
           "-c", "commit.gpgsign=false", *args]  # fmt: skip
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def doc_of(log: LedgerLog, index: int) -> dict:
    return statement_of(log.entry(index)["body"])


def subjects(doc: dict) -> dict[str, str]:
    return dict(P.subjects_of(doc))


def deps(doc: dict) -> dict[str, dict]:
    return {d["name"]: d for d in doc["predicate"]["buildDefinition"]["resolvedDependencies"]}


def params(doc: dict) -> dict:
    return doc["predicate"]["buildDefinition"]["externalParameters"]


def byproducts(doc: dict) -> dict[str, dict]:
    return {b["name"]: b["annotations"] for b in doc["predicate"]["runDetails"]["byproducts"]}


def entries_of(log: LedgerLog, field: str, value: str, kind: str) -> list[int]:
    return [i for i in log.find(field, value) if log.entry(i)["kind"] == kind]


def run_entries(log: LedgerLog, job_id: int, count: int) -> list[int]:
    """The job's "run" entries, once there are `count` (the agent appends one just after the attempt
    ends, so a job can be seen finished a moment before its entry is in)."""

    def found() -> list[int] | None:
        runs = entries_of(log, "job", str(job_id), "run")
        return runs if len(runs) >= count else None

    return wait_for(found, timeout=60)


def test_a_finished_job_gets_a_signed_run_entry_of_what_it_read_and_made(tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.csv").write_text("x,y\n1,2\n3,4\n")
    (work / "make.py").write_text(MAKE)
    git(work, "init", "-q")
    git(work, "add", "data.csv", "make.py")
    git(work, "commit", "-q", "-m", "first")
    commit = git(work, "rev-parse", "HEAD")

    client = Client()
    spec = {"name": "made", "workdir": str(work), "resources": {"cpus": 1}, "datasets": ["data.csv"],
            "artifacts": ["out"], "run": "python make.py"}  # fmt: skip
    job_id = client.submit(parse_spec(spec))
    record = client.wait(job_id, timeout_s=120)
    assert record.state == "SUCCEEDED", record.to_json()
    log = LedgerLog(Store())
    [index] = run_entries(log, job_id, 1)

    entry = log.entry(index)
    envelope = json.loads(entry["body"])
    assert envelope["payloadType"] == PAYLOAD_TYPE
    # signed with the pool's key (the agent made SUANLI_HOME/ledger.key)
    doc = open_envelope(envelope, [pool_signer().verifier()])
    assert doc == statement_of(entry["body"])
    assert doc["_type"] == STATEMENT_TYPE and doc["predicateType"] == P.PREDICATE_TYPE
    assert doc["predicate"]["buildDefinition"]["buildType"] == P.BUILD_TYPES["run"]

    made = subjects(doc)
    assert made["out/result.txt"] == sha256(work / "out" / "result.txt")
    log_path = Path(record.attempts[0].log_path)
    assert made[f"job-{job_id}/attempt-1/output.log"] == sha256(log_path)

    used = deps(doc)
    assert used["dataset:data.csv"]["digest"] == {"sha256": sha256(work / "data.csv")}
    assert used["code"]["digest"]["gitCommit"] == commit
    assert used["code"]["annotations"]["git_dirty"] is False  # out/ is untracked, not a change
    assert used["code"]["uri"] == work.resolve().as_uri()

    p = params(doc)
    assert (p["job_id"], p["attempt"], p["name"], p["user"]) == (job_id, 1, "made", record.user)
    assert p["spec_sha256"] == P.spec_digest(client.get(job_id).spec_data)
    extra = byproducts(doc)
    assert extra["outcome"]["exit_code"] == 0 and extra["outcome"]["signal"] is None
    assert extra["hardware"]["cpus"] == 1 and extra["hardware"]["nodes"]
    assert extra["metrics"]["rows"] == 2
    assert extra["cost"]["wall_hours"] > 0
    meta = doc["predicate"]["runDetails"]["metadata"]
    assert meta["invocationId"] == f"job/{job_id}/attempt/1"
    assert meta["startedOn"] == P.rfc3339(record.attempts[0].started_at)

    assert verify_log(log, pool_signer().verifier())["ok"]
    # What a user sees: the job's entry, and the artifact traced back to its data and code.
    found = invoke("ledger", "find", "--job", str(job_id), "--json")
    assert found.exit_code == 0, found.stderr
    assert [e["index"] for e in found.json()["entries"]] == [index]
    traced = invoke("ledger", "lineage", str(work / "out" / "result.txt"), "--json")
    assert traced.exit_code == 0, traced.stderr
    trace = traced.json()
    assert [e["index"] for e in trace["entries"]] == [index]
    assert sha256(work / "data.csv") in trace["unresolved_inputs"]  # no entry of its own
    checked = invoke("ledger", "verify", "--json")
    assert checked.exit_code == 0 and checked.json()["ok"], checked.stdout + checked.stderr


def test_every_attempt_gets_one_entry_with_its_exit_code(tmp_path: Path):
    from suanli.run.provenance import attempt_item

    work = tmp_path / "work"
    work.mkdir()
    (work / "flaky.py").write_text(FLAKY)
    client = Client()
    base = {"workdir": str(work), "resources": {"cpus": 1}}
    flaky = client.submit(parse_spec({**base, "name": "flaky", "retries": 1, "run": "python flaky.py"}))
    failing = client.submit(parse_spec({**base, "name": "failing", "run": "python -c 'raise SystemExit(1)'"}))
    assert client.wait(flaky, timeout_s=120).state == "SUCCEEDED"
    assert client.wait(failing, timeout_s=120).state == "FAILED"
    log = LedgerLog(Store())

    [failed] = run_entries(log, failing, 1)
    doc = doc_of(log, failed)
    assert byproducts(doc)["outcome"]["exit_code"] == 1
    assert f"job-{failing}/attempt-1/output.log" in subjects(doc)

    first, second = run_entries(log, flaky, 2)
    docs = [doc_of(log, first), doc_of(log, second)]
    assert [params(d)["attempt"] for d in docs] == [1, 2]
    assert [byproducts(d)["outcome"]["exit_code"] for d in docs] == [1, 0]
    logs = [Path(a.log_path) for a in client.get(flaky).attempts]
    assert [subjects(d)[f"job-{flaky}/attempt-{n}/output.log"] for n, d in enumerate(docs, 1)] == [
        sha256(p) for p in logs
    ]
    assert log.find("source", f"attempt:{flaky}:1") == [first]

    # The same attempt recorded again (an agent that restarted after appending) is never a second entry.
    size = log.head()[0]
    job = client.get(flaky)
    item = attempt_item(log, job, job.attempts[0], {"exit_code": 1}, "local", logs[0])
    again = log.append_statements([item])
    assert again == [first] and log.head()[0] == size
    assert verify_log(log)["ok"]


def test_the_code_digest_is_the_workdir_less_the_artifacts(tmp_path: Path):
    from suanli.ledger import digest as D

    work = tmp_path / "work"
    (work / "src" / "model").mkdir(parents=True)
    (work / "src" / "model" / "net.py").write_text("def net(): ...\n")  # code, in a folder named model
    (work / "train.py").write_text(
        "import pathlib\npathlib.Path('results/model').mkdir(parents=True)\n"
        "pathlib.Path('results/model/w.bin').write_bytes(b'w')\npathlib.Path('scores.csv').write_text('1')\n"
    )
    client = Client()
    spec = {"name": "skip", "workdir": str(work), "resources": {"cpus": 1},
            "artifacts": ["results/model", "scores.csv"], "run": "python train.py"}  # fmt: skip
    job_id = client.submit(parse_spec(spec))
    assert client.wait(job_id, timeout_s=120).state == "SUCCEEDED"
    log = LedgerLog(Store())
    [index] = run_entries(log, job_id, 1)
    made = subjects(doc_of(log, index))
    assert made["scores.csv"] == sha256(work / "scores.csv") and "results/model/w.bin" in made
    everything = D.hash_dir(work, skip=P.CODE_SKIP).manifest
    code = {k: v for k, v in everything.items() if k != "scores.csv" and not k.startswith("results/model/")}
    assert sorted(code) == ["src/model/net.py", "train.py"]
    assert deps(doc_of(log, index))["code"]["digest"]["sha256"] == D.manifest_digest(code)


def test_a_job_seen_finished_already_has_its_entry(tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    for n in range(20):  # some code to hash, as any real workdir has
        (work / f"mod{n}.py").write_text("x = 1\n" * 5000)
    client = Client()
    job_id = client.submit(parse_spec({"name": "quick", "workdir": str(work), "run": "true"}))
    wait_for(lambda: client.store.get(job_id).is_terminal, timeout=120, interval=0.002)
    assert entries_of(LedgerLog(Store()), "job", str(job_id), "run")


def test_training_checkpoints_are_entries_of_their_job_and_trace_back_to_data_and_code(tmp_path: Path):
    from suanli.run.worker_env import checkpoint_dir

    examples = tmp_path / "examples"
    for name in ("digits", "digits-ddp"):
        shutil.copytree(REPO / "examples" / name, examples / name, ignore=shutil.ignore_patterns("__py*"))
    # The data the example trains on: scikit-learn's digits, recorded as a dataset before the run.
    import sklearn

    data = Path(sklearn.__file__).parent / "datasets" / "data" / "digits.csv.gz"
    added = invoke("ledger", "add", str(data), "--kind", "dataset", "--json")
    assert added.exit_code == 0, added.stderr
    dataset_entry = added.json()["index"]

    client = Client()
    spec = {"name": "ddp", "workdir": str(examples), "resources": {"cpus": 1}, "num_workers": 1,
            "datasets": [str(data)],
            # three epochs: the first checkpoint is gone by the end (train keeps the newest two)
            "run": "python digits-ddp/train.py --train-size 128 --batch 64 --epochs 3"}  # fmt: skip
    job_id = client.submit(parse_spec(spec))
    record = client.wait(job_id, timeout_s=240)
    assert record.state == "SUCCEEDED", record.to_json()
    log = LedgerLog(Store())
    [run] = run_entries(log, job_id, 1)
    run_doc = doc_of(log, run)
    run_made = subjects(run_doc)
    ckpts = entries_of(log, "job", str(job_id), "checkpoint")
    assert len(ckpts) == 3 and max(ckpts) < run  # signed and appended with the attempt's entry

    folder = checkpoint_dir(job_id)
    on_disk = sorted(p.name for p in folder.glob("ckpt-*.pt"))
    assert on_disk == ["ckpt-002000000.pt", "ckpt-003000000.pt"]
    for epoch, index in enumerate(ckpts, 1):
        doc = doc_of(log, index)
        [(name, digest)] = P.subjects_of(doc)
        assert name == f"ckpt-{epoch:03d}000000.pt"
        assert params(doc)["job_id"] == job_id and params(doc)["epoch"] == epoch
        assert params(doc)["user"] == record.user
        if (folder / name).exists():
            assert digest == sha256(folder / name) == run_made[f"job-{job_id}/checkpoints/{name}"]
        else:
            assert f"job-{job_id}/checkpoints/{name}" not in run_made
    assert deps(run_doc)["dataset:digits.csv.gz"]["digest"]["sha256"] == sha256(data)

    final = doc_of(log, ckpts[-1])
    trace = lineage(log, P.subjects_of(final)[0][1])
    got = {e["index"]: e for e in trace["entries"]}
    assert {ckpts[-1], run, dataset_entry} <= set(got)
    edges = {(e["from"], e["to"]) for e in trace["edges"]}
    assert (run, ckpts[-1]) in edges  # the job's attempt made the checkpoint
    assert (dataset_entry, run) in edges  # from the recorded dataset
    code = deps(run_doc)["code"]["digest"]["sha256"]
    assert {"name": "code", "sha256": code} in got[run]["inputs"]
    assert code in trace["unresolved_inputs"]
    # The first checkpoint is gone from disk but its entry still leads to the run.
    first = lineage(log, P.subjects_of(doc_of(log, ckpts[0]))[0][1])
    assert run in {e["index"] for e in first["entries"]}
    # A user asks with the file itself.
    traced = invoke("ledger", "lineage", str(folder / on_disk[-1]), "--json")
    assert traced.exit_code == 0, traced.stderr
    assert {e["index"] for e in traced.json()["entries"]} == set(got)
    assert verify_log(log, pool_signer().verifier())["ok"]


def _tiny_onnx(folder: Path) -> tuple[Path, Path]:
    """A 64 -> 10 linear classifier as an ONNX file, and data it gets right (an .npz with x and y)."""
    np = pytest.importorskip("numpy")
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 10)).astype(np.float32)
    b = rng.normal(size=(10,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["m"]),
         helper.make_node("Add", ["m", "b"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 10])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "tiny.onnx"
    onnx.save(model, str(path))
    x = rng.random((200, 1, 8, 8)).astype(np.float32)
    data = folder / "eval.npz"
    np.savez(data, x=x, y=(x.reshape(200, 64) @ w + b).argmax(1))
    return path, data


def test_a_compressed_model_is_found_by_its_model_card_with_its_source(tmp_path: Path):
    model, data = _tiny_onnx(tmp_path)
    out = tmp_path / "out"
    result = invoke("compress", str(model), "--task", "accuracy", "--eval", str(data), "--budget", "5pt",
                    "--methods", "int8-dynamic", "--out", str(out), "--repeats", "3", "--threads", "1",
                    "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr

    # The next ledger command signs what compress spooled; the model card finds the entry.
    found = invoke("ledger", "find", str(out / "report.json"), "--json")
    assert found.exit_code == 0, found.stderr
    [entry] = found.json()["entries"]
    assert entry["kind"] == "model"
    made = {s["name"]: s["sha256"] for s in entry["subjects"]}
    assert made["out/report.json"] == sha256(out / "report.json")
    assert made["out/model/model.onnx"] == sha256(out / "model" / "model.onnx")
    inputs = {i["name"]: i["sha256"] for i in entry["inputs"]}
    assert inputs == {"model:tiny.onnx": sha256(model), "data:eval.npz": sha256(data)}
    # The folder as a whole, by path or by digest, finds the same entry.
    by_folder = invoke("ledger", "find", str(out), "--json").json()
    assert [e["index"] for e in by_folder["entries"]] == [entry["index"]]
    assert by_folder["query"]["digest"] == made["out/"]
    # The compressed model traces back to the file it was made from.
    trace = invoke("ledger", "lineage", made["out/model/model.onnx"], "--json").json()
    assert sha256(model) in trace["unresolved_inputs"]
    assert verify_log(LedgerLog(Store()), pool_signer().verifier())["ok"]


def test_a_compressed_model_names_the_weights_it_was_made_from(tmp_path: Path):
    torch = pytest.importorskip("torch")
    _, data = _tiny_onnx(tmp_path)
    net = "torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))"
    (tmp_path / "net.py").write_text(f"import torch\n\ndef build():\n    return {net}\n")
    torch.manual_seed(0)
    weights = tmp_path / "weights.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).state_dict(), weights)
    out = tmp_path / "out"
    model = f"{tmp_path / 'net.py'}:build"
    result = invoke("compress", model, "--weights", str(weights), "--task", "fidelity", "--eval", str(data),
                    "--budget", "5%", "--methods", "int8-dynamic", "--runtime", "onnx", "--out", str(out),
                    "--repeats", "3", "--threads", "1", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [entry] = invoke("ledger", "find", str(out / "report.json"), "--json").json()["entries"]
    inputs = {i["sha256"] for i in entry["inputs"]}
    assert sha256(tmp_path / "net.py") in inputs
    assert sha256(weights) in inputs  # the trained model itself: lineage to the run that made it


TRIAL = """\
import json, sys
x = float(sys.argv[1])
for step in range(2):
    print(json.dumps({"metric": "score", "value": x * (step + 1), "step": step}), flush=True)
"""

STUDY = """\
job: job.yaml
objective: {metric: score, direction: maximize}
params:
  x: {type: float, low: 0.0, high: 1.0}
trials: 2
parallel: 2
pruner: none
sampler: random
seed: 0
study: ledgered
enqueue: [{x: 0.25}, {x: 0.75}]
"""


def test_each_tuning_trial_gets_an_entry_with_its_params_and_value(tmp_path: Path):
    from suanli.tune import load_tune_spec, tune

    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "trial.py").write_text(TRIAL)
    (folder / "job.yaml").write_text("name: tiny\nresources: {cpus: 1}\nrun: python trial.py {{x}}\n")
    (folder / "tune.yaml").write_text(STUDY)
    result = tune(load_tune_spec(folder / "tune.yaml"), client=Client())
    assert [(t.state, t.value) for t in result.trials] == [("COMPLETE", 0.5), ("COMPLETE", 1.5)]

    log = LedgerLog(Store())
    trials = entries_of(log, "study", "ledgered", "trial")
    assert len(trials) == 2
    docs = sorted((doc_of(log, i) for i in trials), key=lambda d: params(d)["trial"])
    jobs = {t.number: t.job_id for t in result.trials}
    for number, (doc, x) in enumerate(zip(docs, (0.25, 0.75), strict=True)):
        p = params(doc)
        assert (p["study"], p["trial"], p["state"]) == ("ledgered", number, "COMPLETE")
        assert p["job_id"] == jobs[number]
        assert p["params"] == {"x": x} and p["value"] == pytest.approx(2 * x)
        assert (p["metric"], p["direction"]) == ("score", "maximize")
        [(name, _)] = P.subjects_of(doc)
        assert name == f"ledgered/trial-{number}"
        assert byproducts(doc)["cost"]["device_hours"] > 0
    # A trial leads to the attempt of the job that ran it.
    run = run_entries(log, jobs[1], 1)[0]
    index = next(i for i in trials if params(doc_of(log, i))["trial"] == 1)
    trace = lineage(log, P.subjects_of(doc_of(log, index))[0][1])
    assert {e["from"] for e in trace["edges"] if e["to"] == index} == {run}
    assert verify_log(log, pool_signer().verifier())["ok"]
