"""Efficiency reports (`suanli report`), `suanli top` and `suanli alerts` on real jobs: one agent sampling
every 0.5 s (and flagging a job idle below 50% of its CPUs for 1 s) serves the module; a job burns one
CPU for about 2 s, another waits, idle, for a file the test makes. Then a group report over 10,000
finished jobs written straight into a store, its totals checked against sums made here (its speed is
benchmarks/bench_report.py's)."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobhelpers import cleanup_home, cli, cli_json, invoke, wait_for

BURN = f"""name: burn
resources:
  cpus: 1
  memory: 4
run: |
  {sys.executable} -c "
  import time
  held = bytearray(64 * 2**20)
  t = time.time()
  while time.time() - t < 2:
      pass
  "
"""


@dataclass
class Rig:
    home: Path
    env: dict[str, str]
    url: str
    burn: int
    waiting: int
    gate: Path


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Rig:
    base = tmp_path_factory.mktemp("report")
    home = base / "home"
    home.mkdir(mode=0o700)
    (home / "alerts.yaml").write_text(
        "sample_interval: 0.5s\nrules:\n  - name: idle\n    threshold: 0.5\n    window: 1s\n"
    )
    url = f"sqlite:///{home / 'suanli.db'}"
    env = {"SUANLI_HOME": str(home), "SUANLI_DB_URL": url, "SUANLI_USER": "ana"}
    gate = base / "go"
    (base / "burn.yaml").write_text(BURN)
    (base / "wait.yaml").write_text(
        f"name: waiter\nresources:\n  cpus: 0.5\nrun: while [ ! -e {gate} ]; do sleep 0.1; done\n"
    )
    try:
        burn = cli_json("submit", str(base / "burn.yaml"), env=env)["id"]
        waiting = cli_json("submit", str(base / "wait.yaml"), env=env)["id"]
        yield Rig(home, env, url, burn, waiting, gate)
    finally:
        gate.touch()
        cleanup_home(home)


def _done(rig: Rig, job_id: int) -> dict:
    from suanli.api import Client

    return Client(rig.url, start_agent=False).wait(job_id, timeout_s=120).to_json()


def _invoke(rig: Rig, monkeypatch: pytest.MonkeyPatch, *args: str):
    """`suanli ARGS` in this process (quicker than a new one) on the rig's store and agent."""
    from suanli.cli import state

    monkeypatch.setenv("SUANLI_HOME", str(rig.home))
    state._client.clear()  # the CLI keeps its client for the process: one for this store
    try:
        return invoke("--db", rig.url, *args)
    finally:
        state._client.clear()


def _one_error_line(result, field: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}"), result.stderr


def test_report_of_a_finished_job_is_seffs_with_advice(rig):
    assert _done(rig, rig.burn)["status"] == "SUCCEEDED"
    doc = cli_json("report", str(rig.burn), env=rig.env)
    assert doc["id"] == rig.burn and doc["state"] == "SUCCEEDED" and doc["attempts"] == 1
    assert doc["cpu_source"] == "rusage"  # the kernel's account of the ended attempt
    assert doc["cpus"] == 1 and doc["wall_seconds"] > 1.5
    # seff: CPU time / (wall time x cores held)
    assert doc["cpu_seconds"] > 0.5
    assert doc["cpu_efficiency"] == pytest.approx(
        doc["cpu_seconds"] / (doc["wall_seconds"] * doc["cpus"]), rel=1e-3
    )
    assert 0.2 < doc["cpu_efficiency"] <= 1.05
    assert doc["memory_requested_bytes"] == 4 * 2**30
    assert 64 * 2**20 <= doc["memory_peak_bytes"] < 1 * 2**30
    assert doc["memory_efficiency"] == pytest.approx(doc["memory_peak_bytes"] / 2**30 / 4)
    assert any("of the 4.0 GiB it asked for; ask for" in n for n in doc["notes"]), doc["notes"]
    assert doc["gpus"] == 0 and doc["gpu_hours_used"] is None and doc["energy_kwh"] is None
    assert doc["cost_usd"] > 0 and any("energy" in a for a in doc["assumptions"])
    from suanli.store.monitoring import MonitorStore
    from suanli.store.store import Store

    assert MonitorStore(Store(rig.url)).samples(rig.burn), "no sample was stored (0.5 s interval)"

    shown = cli("report", str(rig.burn), env=rig.env, check=True).stdout
    assert (
        f"CPU Efficiency: {100 * doc['cpu_efficiency']:.1f}% of 00:00:0" in shown and "core-walltime" in shown
    )
    assert "Memory Efficiency:" in shown and "ask for" in shown


def test_plots_of_a_job_and_of_a_group(rig, tmp_path, monkeypatch):
    _done(rig, rig.burn)
    png = tmp_path / "burn.png"
    result = _invoke(rig, monkeypatch, "report", str(rig.burn), "--plot", str(png), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["plot"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "group.svg"
    result = _invoke(rig, monkeypatch, "report", "--user", "ana", "--plot", str(svg))
    assert result.exit_code == 0, result.stderr
    assert svg.read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == [
        "burn.png",
        "group.svg",
    ]  # no .tmp


def test_unknown_job_user_project_and_bad_input_are_one_line_exit_2(rig, monkeypatch):
    for args, field in [
        (["report", "9999"], "job id=9999"),
        (["report", "--user", "nobody"], "user=nobody"),
        (["report", "--project", "nowhere"], "project=nowhere"),
        (["report", "--since", "last tuesday"], "since="),
        (["report", str(rig.burn), "--plot", "report.txt"], "plot="),
        (["top", "--interval", "0"], "interval="),
        (["alerts", "--job", "9999"], "job id=9999"),
    ]:
        _one_error_line(_invoke(rig, monkeypatch, *args), field)


def test_top_status_and_alerts_show_the_idle_job_and_a_group_report_counts_both(rig, monkeypatch):
    def idle() -> dict | None:
        doc = cli_json("top", env=rig.env)
        row = next((j for j in doc["jobs"] if j["id"] == rig.waiting), None)
        return row if row and row["cpu_cores"] is not None and "idle" in row["marks"] else None

    row = wait_for(idle, timeout=120, interval=0.5)  # the rig's idle rule: under 50% for 1 s
    assert row["name"] == "waiter" and row["cpus"] == 0.5 and row["rss_bytes"] > 0
    assert row["cost_usd"] >= 0 and row["elapsed_seconds"] > 0 and row["memory_requested_bytes"] >= 0
    shown = _invoke(rig, monkeypatch, "top", "--once")  # not a terminal: one table, then exit
    assert shown.exit_code == 0 and "waiter" in shown.stdout and "IDLE" in shown.stdout, shown.stdout
    assert "alert: idle" in _invoke(rig, monkeypatch, "status").stdout
    assert "alert idle: job" in _invoke(rig, monkeypatch, "status", str(rig.waiting)).stdout
    found = _invoke(rig, monkeypatch, "alerts", "--json").json()["alerts"]
    assert ("idle", rig.waiting, True) in [(a["rule"], a["job_id"], a["open"]) for a in found]

    _done(rig, rig.burn)
    group = _invoke(rig, monkeypatch, "report", "--user", "ana", "--json").json()
    assert group["totals"]["jobs"] == 2 and group["totals"]["running"] == 1
    assert {j["id"] for j in group["jobs"]} == {rig.burn, rig.waiting}
    assert [u["user"] for u in group["by_user"]] == ["ana"]
    assert {j["id"]: j["alerts_open"] for j in group["jobs"]} == {rig.burn: 0, rig.waiting: 1}
    rig.gate.touch()
    assert _done(rig, rig.waiting)["status"] == "SUCCEEDED"
    assert _invoke(rig, monkeypatch, "alerts", "--json").json() == {"alerts": []}  # closed with the job
    closed = _invoke(rig, monkeypatch, "alerts", "--all", "--job", str(rig.waiting), "--json").json()
    assert [a["open"] for a in closed["alerts"]] == [False]


# ---- 10,000 finished jobs, written straight into a store ------------------------------------------------

N = 10_000


def _bulk_store(url: str):
    """N finished jobs of project p (7 users; every third a 2-GPU H100 job), one attempt and one usage
    row each; returns the store and the rows written."""
    from suanli.store import models as m
    from suanli.store.store import Store

    store = Store(url)
    jobs, attempts, usage = [], [], []
    for i in range(1, N + 1):
        gpus = 2 if i % 3 == 0 else 0
        cpus, mem, wall, t0 = float(1 + i % 4), 2**30 * (1 + i % 8), 100.0 + i % 50, 1.7e9 + i
        jobs.append({
            "id": i, "name": f"j{i}", "user": f"u{i % 7}", "priority": 0, "state": "SUCCEEDED", "spec": {},
            "cpus": cpus, "memory_bytes": mem, "accelerator": "H100" if gpus else None, "gpus": gpus,
            "num_nodes": 1, "num_workers": 1, "retries": 0, "submitted_at": t0, "started_at": t0,
            "ended_at": t0 + wall, "cancel_requested": False, "project": "p",
        })  # fmt: skip
        attempts.append({
            "job_id": i, "number": 1, "node": "n", "gpu_indices": [], "run_dir": "/x", "started_at": t0,
            "ended_at": t0 + wall,
            "placement": [{"node": "n", "gpus": gpus, "cpus": cpus, "memory_bytes": mem}],
        })  # fmt: skip
        usage.append({
            "job_id": i, "attempt": 1, "first_at": t0, "last_at": t0 + wall, "samples": 10,
            "cpu_seconds": cpus * wall * (i % 10) / 10, "cpu_source": "rusage", "rss_peak_bytes": mem // 4,
            "gpu_seconds_used": gpus * wall * 0.25 if gpus else None, "gpu_memory_peak_bytes": None,
            "read_bytes": 0, "write_bytes": 0, "gpu_energy_j": 1000.0 if gpus else None,
        })  # fmt: skip
    with store._write_engine.begin() as conn:
        for table, rows in ((m.Job, jobs), (m.Attempt, attempts), (m.AttemptUsage, usage)):
            conn.execute(table.__table__.insert(), rows)
    return store, jobs, usage


def test_group_report_of_10000_finished_jobs_adds_up(db_url):
    from suanli.core.errors import BadInput
    from suanli.monitor.cost import hourly_usd
    from suanli.monitor.report import check_known, group_report

    store, jobs, usage = _bulk_store(db_url)  # SQLite, and PostgreSQL where CI runs one
    doc = group_report(store, projects=["p"], limit=25)
    t = doc["totals"]
    wall = {j["id"]: j["ended_at"] - j["started_at"] for j in jobs}
    core_s = sum(j["cpus"] * wall[j["id"]] for j in jobs)
    gpu_s = sum(j["gpus"] * wall[j["id"]] for j in jobs)
    cpu_s = sum(u["cpu_seconds"] for u in usage)
    gpu_used = sum(u["gpu_seconds_used"] or 0 for u in usage)
    cost = sum(hourly_usd(j["gpus"], j["accelerator"], j["cpus"]) * wall[j["id"]] / 3600 for j in jobs)
    assert (t["jobs"], t["attempts"], t["running"], t["measured_jobs"]) == (N, N, 0, N)
    assert t["core_hours_held"] == pytest.approx(core_s / 3600)
    assert t["cpu_hours_used"] == pytest.approx(cpu_s / 3600)
    assert t["cpu_efficiency"] == pytest.approx(cpu_s / core_s)
    assert t["gpu_hours_held"] == pytest.approx(gpu_s / 3600)
    assert t["gpu_hours_used"] == pytest.approx(gpu_used / 3600)
    assert t["gpu_utilization"] == pytest.approx(0.25)
    assert t["gpu_hours_wasted"] == pytest.approx((gpu_s - gpu_used) / 3600)
    assert t["memory_efficiency"] == pytest.approx(0.25, rel=1e-6)
    assert t["cost_usd"] == pytest.approx(cost, rel=1e-6) and cost > 0
    assert t["energy_kwh"] == pytest.approx(1000.0 * (N // 3) / 3.6e6)
    assert doc["jobs_total"] == N and [j["id"] for j in doc["jobs"]] == list(range(N, N - 25, -1))
    assert sorted(u["user"] for u in doc["by_user"]) == [f"u{k}" for k in range(7)]
    assert sum(u["jobs"] for u in doc["by_user"]) == N
    assert sum(u["cost_usd"] for u in doc["by_user"]) == pytest.approx(t["cost_usd"])
    worst = doc["worst"]
    assert len(worst) == 10 and worst == sorted(worst, key=lambda d: -d["wasted_usd"])
    assert all(math.isfinite(d["wasted_usd"]) for d in worst)
    json.dumps(doc, allow_nan=False)  # strict JSON

    one_user = group_report(store, users=["u3"], projects=["p"], limit=0)
    assert (
        one_user["totals"]["jobs"] == len([j for j in jobs if j["user"] == "u3"]) and one_user["jobs"] == []
    )
    since = jobs[-100]["ended_at"]
    recent = group_report(store, projects=["p"], since=since, limit=0)
    assert recent["totals"]["jobs"] == sum(1 for j in jobs if j["ended_at"] >= since) > 0
    with pytest.raises(BadInput, match=r"^user=nobody: no such user"):
        check_known(store, users=["nobody"])
    check_known(store, users=["u1"], projects=["p"])
    store.close()
