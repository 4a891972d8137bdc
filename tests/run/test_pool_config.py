"""The pool's configuration: Ray addresses, pool.yaml and Ray's node table read as pool nodes; bad input
is one line, exit code 2, and nothing is stored or started."""

from __future__ import annotations

import socket

import pytest

from jobhelpers import cli, cli_json, write_job
from suanli.run.ray_pool import read_nodes


def _one_line_2(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


def test_unreachable_ray_address_is_one_line_and_starts_nothing(suanli_home):
    address = f"127.0.0.1:{_closed_port()}"
    proc = cli("agent", "start", "--ray-address", address)
    _one_line_2(proc, f"--ray-address={address}: no Ray cluster answers there")
    assert not (suanli_home / "agent.json").exists()


@pytest.mark.parametrize("address", ["not an address", "http://x:1", "host:"])
def test_malformed_ray_address_is_refused(address, suanli_home):
    _one_line_2(cli("agent", "start", "--ray-address", address), "must be HOST:PORT, ray://HOST:PORT or auto")


def test_ray_address_from_the_environment_is_checked_before_anything_is_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    job = write_job(tmp_path, "run: 'true'\n")
    _one_line_2(cli("submit", str(job)), "no Ray cluster answers there")
    monkeypatch.delenv("RAY_ADDRESS")
    assert cli_json("status", "--all")["jobs"] == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("pool:\n  rya: 127.0.0.1:6379\n", "rya"),
        ("pool:\n  ray: 127.0.0.1:6379\n  accelerators: {node-1: Z100}\n", "pool.accelerators.node-1=Z100"),
        ("pool:\n  ray: [1, 2]\n", "pool.yaml"),
        ("pool: [\n", "pool.yaml"),
    ],
)
def test_pool_yaml_mistakes_are_one_line(text, needle, tmp_path, suanli_home):
    (suanli_home / "pool.yaml").write_text(text)
    job = write_job(tmp_path, "run: 'true'\n")
    _one_line_2(cli("submit", str(job)), needle)
    (suanli_home / "pool.yaml").unlink()
    assert cli_json("status", "--all")["jobs"] == []


@pytest.mark.parametrize("grace", ["-5s", "-1", "soon", "null"])
def test_negative_or_unreadable_grace_period_is_refused(grace, tmp_path):
    job = write_job(tmp_path, f"grace_period: {grace}\nrun: 'true'\n")
    _one_line_2(cli("submit", str(job)), "grace_period=", "must be a duration >= 0")
    assert cli_json("status", "--all")["jobs"] == []


def _entry(node_id: str, alive: bool = True, **resources: float) -> dict:
    return {"NodeID": node_id, "Alive": alive, "NodeManagerAddress": "10.0.0.5", "Resources": resources,
            "Labels": {}}  # fmt: skip


def test_ray_node_table_becomes_pool_nodes_with_catalog_gpu_types():
    entries = [
        _entry("a" * 56, CPU=8, GPU=8, memory=64 * 2**30, **{"accelerator_type:A100-80G": 1}),
        _entry("b" * 56, CPU=4, memory=2**30),
        _entry("c" * 56, alive=False, CPU=8, GPU=4, **{"accelerator_type:H100": 1}),
        {**_entry("d" * 56, CPU=8, GPU=2), "Labels": {"accelerator": "l4"}},
        _entry("e" * 56, CPU=8, GPU=1),
    ]
    nodes = read_nodes(entries, {"10.0.0.5-eeeeeeee": "T4"})
    assert [(n.name, n.gpus, n.accelerator, n.alive) for n in nodes] == [
        ("10.0.0.5-aaaaaaaa", 8, "A100-80GB", True),
        ("10.0.0.5-bbbbbbbb", 0, None, True),
        ("10.0.0.5-cccccccc", 4, "H100", False),
        ("10.0.0.5-dddddddd", 2, "L4", True),
        ("10.0.0.5-eeeeeeee", 1, "T4", True),
    ]
    assert nodes[0].memory_bytes == 64 * 2**30 and nodes[0].cpus == 8.0
