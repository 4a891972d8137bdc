"""A Ray cluster as the pool, scheduled by suanli's policies: a cluster of this machine started by the
test (ray.cluster_utils.Cluster), whose nodes declare GPUs and an accelerator type, so GPU placement
is exercised without GPUs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from jobhelpers import cli, cli_json, wait_for, write_job

pytest.importorskip("ray")

GPU_NODES = 3

# A training job in miniature: one step every 0.1 s, its progress saved with suanli.train.checkpoints
# after every step, resumed from the newest checkpoint when an attempt starts.
TRAINER = """\
import json, os, sys, time
from suanli.train import checkpoints

steps = int(sys.argv[1])
last = checkpoints.latest()
step = checkpoints.load(last)["step"] if last else 0
where = f"attempt {os.environ['SUANLI_ATTEMPT']} on {os.environ['SUANLI_NODE']}"
print(f"{where} resumed at step {step}", flush=True)
while step < steps:
    time.sleep(0.1)
    step += 1
    checkpoints.save_atomic({"step": step}, step)
    print(json.dumps({"metric": "step", "value": step}), flush=True)
"""


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(GPU_NODES):
        c.add_node(num_cpus=2, num_gpus=4, resources={"accelerator_type:A100": 1})
    yield c
    c.shutdown()


@pytest.fixture(autouse=True)
def on_ray(cluster, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    return cluster


def _job(tmp_path: Path, text: str, name: str) -> Path:
    (tmp_path / "train.py").write_text(TRAINER)
    return write_job(tmp_path, text, name)


def _submit(path: Path) -> int:
    return cli_json("submit", str(path))["id"]


def _status(job_id: int) -> dict:
    return cli_json("status", str(job_id))


def _gpu_nodes() -> list[dict]:
    return [n for n in cli_json("nodes")["nodes"] if n["accelerators"] and n["status"] == "UP"]


def test_nodes_lists_every_ray_node_with_its_gpus(tmp_path):
    nodes = cli_json("nodes")["nodes"]
    assert len(nodes) == GPU_NODES + 1  # the head has no GPUs
    gpu = [n for n in nodes if n["accelerators"]]
    assert [n["accelerators"] for n in gpu] == [{"A100": 4}] * GPU_NODES
    assert all(n["status"] == "UP" and n["cpus"] == 2 for n in gpu)
    table = cli("nodes", check=True).stdout
    assert "A100" in table


def test_gang_job_runs_on_the_nodes_the_policy_chose(tmp_path):
    job = write_job(
        tmp_path,
        "num_nodes: 2\nresources: {cpus: 1, accelerators: A100:4}\n"
        "run: echo rank=$RANK node=$SUANLI_NODE gpus=$CUDA_VISIBLE_DEVICES\n",
    )
    proc = cli("run", str(job), "--json", check=True, timeout=600)
    doc = json.loads(proc.stdout)
    assert doc["status"] == "SUCCEEDED"
    chosen = doc["attempts"][0]["nodes"]
    assert len(set(chosen)) == 2
    log = Path(doc["log_path"]).read_text()
    ran_on = re.findall(r"rank=(\d) node=(\S+) gpus=([\d,]+)", log)
    assert sorted((int(r), n) for r, n, _ in ran_on) == [(0, chosen[0]), (1, chosen[1])]
    assert all(len(g.split(",")) == 4 for _, _, g in ran_on)  # Ray's 4 GPUs each


def test_samples_come_from_each_node_the_job_runs_on(tmp_path, suanli_home):
    from suanli.store.monitoring import MonitorStore
    from suanli.store.store import Store

    (suanli_home / "alerts.yaml").write_text("sample_interval: 0.5s\n")
    busy = "import time; t = time.time(); all(time.time() - t < 3 for _ in iter(int, 1))"
    spec = f"num_nodes: 2\nresources: {{cpus: 1, accelerators: A100:4}}\nrun: python3 -c '{busy}'\n"
    job = write_job(tmp_path, spec)
    doc = json.loads(cli("run", str(job), "--json", check=True, timeout=600).stdout)
    samples = MonitorStore(Store()).samples(doc["id"])
    by_node: dict[str, float] = {}
    for s in samples:
        by_node[s["node"]] = max(by_node.get(s["node"], 0.0), s["cpu_seconds"])
    assert set(by_node) == set(doc["attempts"][0]["nodes"])  # read on each node by its worker
    assert all(cpu > 0.5 for cpu in by_node.values()), by_node


def test_a_job_no_node_combination_can_hold_is_refused_at_submit(tmp_path):
    job = write_job(tmp_path, "num_nodes: 4\nresources: {accelerators: A100:4}\nrun: 'true'\n")
    proc = cli("submit", str(job))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "num_nodes=4: 3 node(s) can hold" in proc.stderr
    assert cli_json("status", "--all")["jobs"] == []


@pytest.mark.slow  # about 35 s; the CI suite keeps the other preemption and resume tests
def test_las_preempts_across_nodes_and_the_job_resumes_from_its_checkpoint(
    tmp_path, suanli_home, monkeypatch
):
    monkeypatch.delenv("SUANLI_POLICY")
    (suanli_home / "scheduler.yaml").write_text("policy: tiresias\noptions: {queue_limits_gpu_s: [20]}\n")
    big = _submit(
        _job(tmp_path, f"name: big\nnum_nodes: {GPU_NODES}\ngrace_period: 5s\n"
             "resources: {cpus: 1, accelerators: A100:4}\nrun: python train.py 60\n", "big.yaml")
    )  # fmt: skip
    # Once it has used more than 20 GPU-seconds it is in Tiresias's second queue.
    wait_for(lambda: _status(big)["metrics"].get("step", 0) >= 20)
    small = _submit(
        _job(
            tmp_path,
            "name: small\nresources: {cpus: 1, accelerators: A100:4}\nrun: python train.py 5\n",
            "small.yaml",
        )
    )
    wait_for(lambda: _status(small)["status"] == "SUCCEEDED")
    done = wait_for(lambda: (s := _status(big))["status"] in ("SUCCEEDED", "FAILED") and s)
    assert done["status"] == "SUCCEEDED"
    first, second = done["attempts"][:2]
    assert first["reason"].startswith("preempted:")
    resumed = int(re.search(r"resumed at step (\d+)", Path(second["log_path"]).read_text()).group(1))
    assert resumed >= 20  # not from the start
    assert done["metrics"]["step"] == 60
    small_doc = _status(small)
    assert small_doc["attempts"][0]["start"] < second["start"]  # the least-served job went first
    text = cli("status", str(big), check=True).stdout
    assert "preempt" in text


def test_drf_quota_reclaims_borrowed_gpus_across_the_pool(tmp_path, suanli_home, monkeypatch):
    monkeypatch.delenv("SUANLI_POLICY")
    (suanli_home / "scheduler.yaml").write_text("policy: drf\noptions: {quotas: {a: 4, b: 8}}\n")
    long = "resources: {cpus: 1, accelerators: A100:4}\nrun: sleep 600\n"
    borrowers = [_submit(write_job(tmp_path, f"labels: {{team: a}}\n{long}", f"a{i}.yaml")) for i in range(3)]
    wait_for(lambda: all(_status(j)["status"] == "RUNNING" for j in borrowers))  # team a borrows b's quota
    claimer = _submit(write_job(tmp_path, f"labels: {{team: b}}\n{long}", "b.yaml"))
    wait_for(lambda: _status(claimer)["status"] == "RUNNING")
    states = {j: _status(j) for j in borrowers}
    preempted = [j for j, s in states.items() if s["status"] == "PENDING"]
    assert preempted == [borrowers[-1]]  # the newest borrowed job gives its GPUs back
    assert states[borrowers[-1]]["attempts"][0]["reason"].startswith("preempted:")
    rows = cli_json("queue")["jobs"]
    assert [r["id"] for r in rows] == [borrowers[-1]]
    assert "needs 4 GPUs" in rows[0]["reason"] or "quota" in rows[0]["reason"]
    cli("cancel", *map(str, [*borrowers, claimer]), check=True)


def test_a_node_that_leaves_fails_its_attempts_over_and_a_new_node_is_used(tmp_path, on_ray):
    job = write_job(
        tmp_path,
        "retries: 1\nresources: {cpus: 1, accelerators: A100:4}\n"
        "run: 'if [ \"$SUANLI_ATTEMPT\" = 1 ]; then sleep 600; fi; echo ran on $SUANLI_NODE'\n",
    )
    job_id = _submit(job)
    first = wait_for(lambda: (s := _status(job_id))["attempts"] and s["attempts"][0])
    lost = first["node"]
    node = next(n for n in on_ray.list_all_nodes() if n.node_id.startswith(lost.rsplit("-", 1)[1]))
    on_ray.remove_node(node)
    done = wait_for(lambda: (s := _status(job_id))["status"] in ("SUCCEEDED", "FAILED") and s)
    assert done["status"] == "SUCCEEDED", done
    assert done["attempts"][0]["reason"] == f"node lost: {lost}"
    assert done["attempts"][1]["node"] != lost
    wait_for(lambda: any(n["name"] == lost and n["status"] == "LOST" for n in cli_json("nodes")["nodes"]))
    # A node that joins is used at the next decision: a gang over three GPU nodes fits again.
    on_ray.add_node(num_cpus=2, num_gpus=4, resources={"accelerator_type:A100": 1})
    wait_for(lambda: len(_gpu_nodes()) == GPU_NODES)
    gang = write_job(
        tmp_path,
        f"num_nodes: {GPU_NODES}\nresources: {{cpus: 1, accelerators: A100:4}}\nrun: 'true'\n",
        "gang.yaml",
    )
    doc = json.loads(cli("run", str(gang), "--json", check=True, timeout=600).stdout)
    assert doc["status"] == "SUCCEEDED" and lost not in doc["attempts"][0]["nodes"]


def test_submissions_are_answered_while_a_job_waits_on_ray(tmp_path, on_ray, monkeypatch):
    """Something outside suanli holds every GPU: the job the policy placed waits for Ray to start its
    workers, and meanwhile the agent still answers every submission at once."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    monkeypatch.setenv("SUANLI_RAY_PLACEMENT_TIMEOUT_S", "600")
    ray.init(address=on_ray.address, namespace="outside", log_to_driver=False)
    try:
        held = placement_group([{"GPU": 4}] * GPU_NODES, strategy="STRICT_SPREAD")
        ray.get(held.ready(), timeout=120)
        first = _submit(write_job(tmp_path, "resources: {accelerators: A100:4}\nrun: echo ran\n"))
        wait_for(lambda: _status(first)["status"] == "RUNNING")  # placed; its workers cannot start
        later = [_submit(write_job(tmp_path, "run: 'true'\n", f"cpu{i}.yaml")) for i in range(3)]
        assert len(set(later)) == 3
        assert _status(first)["attempts"][0]["end"] is None
        remove_placement_group(held)
    finally:
        ray.shutdown()
    done = wait_for(lambda: (s := _status(first))["status"] in ("SUCCEEDED", "FAILED") and s)
    assert done["status"] == "SUCCEEDED" and len(done["attempts"]) == 1
    assert "ran" in Path(done["log_path"]).read_text()
    for job_id in later:
        assert (
            wait_for(lambda j=job_id: _status(j)["status"] in ("SUCCEEDED", "FAILED"))
            and _status(job_id)["status"] == "SUCCEEDED"
        )


def test_one_failed_worker_stops_the_gang_and_leaves_no_process(tmp_path):
    marker = "sleep 4321.25"
    job = write_job(
        tmp_path,
        "num_nodes: 2\ngrace_period: 1s\nresources: {cpus: 1, accelerators: A100:4}\n"
        f"run: 'if [ \"$RANK\" = 1 ]; then exit 3; fi; trap \"\" TERM; {marker}'\n",
    )
    doc = json.loads(cli("run", str(job), "--json", timeout=600).stdout)
    assert doc["status"] == "FAILED"
    assert doc["attempts"][0]["reason"] == "worker 1 exited with code 3"
    wait_for(lambda: not subprocess.run(["pgrep", "-f", marker], capture_output=True).stdout)
