"""SkyPilot task files run on the pool as they are: SkyPilot's variables are set, local file_mounts are
reachable, accelerator choices are decided against the pool, and cloud-only fields are noted."""

from __future__ import annotations

from jobhelpers import cli, cli_json, write_job


def done(job_id: int) -> dict:
    from suanli import Client

    Client(start_agent=False).wait(job_id, timeout_s=300)
    return cli_json("status", str(job_id))


def test_skypilot_variables_and_a_local_mount_reach_the_job(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "x.txt").write_text("mounted\n")
    job = write_job(
        tmp_path,
        "file_mounts:\n  data: ./shared\n"
        "run: |\n"
        "  echo $SKYPILOT_NODE_RANK $SKYPILOT_NUM_NODES $SKYPILOT_NODE_IPS $SKYPILOT_NUM_GPUS_PER_NODE\n"
        "  cat data/x.txt\n",
    )
    job_id = cli_json("submit", str(job))["id"]
    assert done(job_id)["status"] == "SUCCEEDED"
    assert cli("logs", str(job_id), check=True).stdout.split() == ["0", "1", "127.0.0.1", "0", "mounted"]


def test_accelerator_choices_are_decided_against_the_pool(tmp_path):
    """`{H100: 8, A100: 8}` on a pool without those GPUs is refused naming both choices; the dry run of a
    file with cloud-only fields lists what does not apply."""
    job = write_job(tmp_path, "resources:\n  accelerators: {H100: 8, A100: 8}\nrun: 'true'\n")
    proc = cli("submit", str(job))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "any of H100:8, A100:8" in proc.stderr and "none of these fits" in proc.stderr
    job = write_job(tmp_path, "service:\n  readiness_probe: /\n  replicas: 2\nrun: 'true'\n", "svc.yaml")
    doc = cli_json("run", str(job), "--dry-run")
    assert any(note.startswith("service") for note in doc["notes"])
    assert "note:    service" in cli("run", str(job), "--dry-run", check=True).stdout
