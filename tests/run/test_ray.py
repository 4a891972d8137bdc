"""The Ray backend against a real Ray cluster of this machine started by the test, named by address."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from jobhelpers import cli, cli_json, wait_for, write_job

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_address():
    """A one-node Ray cluster of this test's own (`ray stop` would stop every Ray on the machine)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    yield cluster.address
    cluster.shutdown()


def _procs(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return out.split()


def test_two_worker_job_runs_on_ray(tmp_path, ray_address):
    job = write_job(
        tmp_path,
        "num_workers: 2\nresources: {cpus: 2}\nsetup: echo setup-ran\n"
        'run: |\n  echo rank=$RANK world=$WORLD_SIZE\n  echo \'{"metric": "rank", "value": \'$RANK\'}\'\n',
    )
    proc = cli("run", str(job), "--backend", "ray", "--ray-address", ray_address, "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["status"] == "SUCCEEDED"
    ray_nodes = [n["name"] for n in cli_json("nodes")["nodes"] if n["pool"] == f"ray {ray_address}"]
    assert doc["attempts"][0]["nodes"] == ray_nodes  # the cluster's one node, as the pool lists it
    log = Path(doc["log_path"]).read_text()
    assert "rank=0 world=2" in log and "rank=1 world=2" in log
    assert log.count("setup-ran") == 1  # once per node
    assert doc["metrics"]["rank"] in (0.0, 1.0)


def test_cancel_leaves_no_worker_processes(tmp_path, ray_address):
    marker = "sleep 4321.5"
    job = write_job(tmp_path, f"num_workers: 2\nresources: {{cpus: 2}}\nrun: {marker}\n")
    job_id = cli_json("submit", str(job), "--backend", "ray", "--ray-address", ray_address)["id"]
    wait_for(lambda: len(_procs(marker)) == 2)
    assert cli_json("cancel", str(job_id))["jobs"] == [{"id": job_id, "status": "CANCELLED"}]
    wait_for(lambda: not _procs(marker), timeout=60)
    import ray

    ray.init(address=ray_address, namespace="test", log_to_driver=False)
    try:
        wait_for(lambda: ray.available_resources().get("CPU") == 2.0)  # its workers are gone
    finally:
        ray.shutdown()


def test_gang_larger_than_the_cluster_is_refused_at_submit(tmp_path, ray_address):
    job = write_job(tmp_path, "num_nodes: 2\nresources: {cpus: 1}\nrun: 'true'\n")
    proc = cli("submit", str(job), "--backend", "ray", "--ray-address", ray_address)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "num_nodes=2: 1 node(s) can hold 1 CPUs" in proc.stderr
    assert cli_json("status", "--all")["jobs"] == []
