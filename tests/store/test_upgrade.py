"""A database written by the previous release (before attempt placements, node pools and grace periods)
opens, gains the new columns, and its stored jobs load and schedule as before."""

from __future__ import annotations

import json
import sqlite3

from suanli.jobs.spec import JobSpec
from suanli.run.scheduling import cluster_state, job_request
from suanli.store.store import Store

PREVIOUS_SCHEMA = """
CREATE TABLE jobs (id INTEGER NOT NULL, name VARCHAR(255) NOT NULL, user VARCHAR(255) NOT NULL,
  priority INTEGER NOT NULL, state VARCHAR(16) NOT NULL, spec JSON NOT NULL, cpus FLOAT NOT NULL,
  memory_bytes BIGINT NOT NULL, accelerator VARCHAR(64), gpus INTEGER NOT NULL, num_nodes INTEGER NOT NULL,
  num_workers INTEGER NOT NULL, retries INTEGER NOT NULL, submitted_at FLOAT NOT NULL, started_at FLOAT,
  ended_at FLOAT, cancel_requested BOOLEAN NOT NULL, reason TEXT, idempotency_key VARCHAR(128),
  secrets TEXT, PRIMARY KEY (id));
CREATE INDEX ix_jobs_state ON jobs (state);
CREATE UNIQUE INDEX ix_jobs_idempotency_key ON jobs (idempotency_key);
CREATE TABLE nodes (name VARCHAR(255) NOT NULL, cpus FLOAT NOT NULL, memory_bytes BIGINT NOT NULL,
  accelerator VARCHAR(64), gpus INTEGER NOT NULL, status VARCHAR(16) NOT NULL, registered_at FLOAT NOT NULL,
  heartbeat_at FLOAT NOT NULL, PRIMARY KEY (name));
CREATE TABLE attempts (id INTEGER NOT NULL, job_id INTEGER NOT NULL, number INTEGER NOT NULL,
  node VARCHAR(255) NOT NULL, pid INTEGER, pid_started_at FLOAT, gpu_indices JSON NOT NULL,
  run_dir TEXT NOT NULL, started_at FLOAT NOT NULL, ended_at FLOAT, exit_code INTEGER, signal VARCHAR(16),
  reason TEXT, log_tail TEXT, PRIMARY KEY (id), FOREIGN KEY(job_id) REFERENCES jobs (id));
CREATE UNIQUE INDEX ix_attempts_job ON attempts (job_id, number);
CREATE TABLE events (id INTEGER NOT NULL, job_id INTEGER NOT NULL, at FLOAT NOT NULL,
  from_state VARCHAR(16), to_state VARCHAR(16) NOT NULL, reason TEXT, PRIMARY KEY (id),
  FOREIGN KEY(job_id) REFERENCES jobs (id));
CREATE INDEX ix_events_job ON events (job_id);
CREATE TABLE metrics (id INTEGER NOT NULL, job_id INTEGER NOT NULL, attempt INTEGER NOT NULL,
  name VARCHAR(255) NOT NULL, value FLOAT NOT NULL, step INTEGER, at FLOAT NOT NULL, PRIMARY KEY (id),
  FOREIGN KEY(job_id) REFERENCES jobs (id));
CREATE INDEX ix_metrics_job ON metrics (job_id, name);
"""

# A spec exactly as the previous release stored it (model_dump by alias): no grace_period.
PREVIOUS_SPEC = {
    "name": "old", "run": "python train.py", "setup": None, "workdir": "/tmp", "envs": {}, "secrets": {},
    "resources": {"cpus": 2.0, "memory": 0, "accelerators": {"A100": 1}, "accelerator_choices": [{"A100": 1}],
                  "accelerator_preference": "ordered", "cloud": None, "infra": None, "region": None,
                  "zone": None, "instance_type": None, "use_spot": False, "disk_size": None,
                  "disk_tier": None, "image_id": None, "ports": None, "accelerator_args": None,
                  "job_recovery": None},
    "num_nodes": 1, "num_workers": 1, "priority": 0, "expected_duration": 7200.0, "retries": 0, "user": "ada",
    "labels": {"team": "a"}, "backend": "local", "ray_address": None,
    "train": {"gradient_compression": "none", "powersgd_rank": 2, "local_sgd_steps": 0, "grad_accum_steps": 1,
              "mixed_precision": "auto", "seed": 0},
    "workload": {"params": 7e9, "tokens": 1e9}, "mounts": [], "notes": [],
}  # fmt: skip


def test_previous_release_database_opens_and_its_jobs_load(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(PREVIOUS_SCHEMA)
        db.execute("INSERT INTO nodes VALUES ('box', 8, 1073741824, 'A100', 2, 'UP', 1.0, 1.0)")
        for job_id, state in ((1, "RUNNING"), (2, "PENDING")):
            db.execute(
                "INSERT INTO jobs VALUES (?, 'old', 'ada', 0, ?, ?, 2.0, 0, 'A100', 1, 1, 1, 0, 10.0, NULL,"
                " NULL, 0, NULL, NULL, NULL)",
                (job_id, state, json.dumps(PREVIOUS_SPEC)),
            )
        db.execute("INSERT INTO attempts VALUES (1, 1, 1, 'box', 42, 11.0, '[0]', '/tmp/r', 11.0, NULL,"
                   " NULL, NULL, NULL, NULL)")  # fmt: skip
    store = Store(f"sqlite:///{path}")
    job = store.get(2)
    assert isinstance(job.spec, JobSpec)
    assert job.spec.labels == {"team": "a"} and job.spec.grace_period_s == 10.0
    request = job_request(job)
    assert request.estimated_duration_s == 7200.0 and request.team == "a"
    ((_, attempt),) = store.running()
    assert attempt.nodes == ["box"] and attempt.placement == []
    (node,) = store.nodes()
    assert (node.pool, node.used_gpus, node.used_cpus) == ("local", 1, 2.0)  # the job's request, on its node
    cluster = cluster_state(store.nodes(usage=False), store.running())
    assert cluster.nodes[0].free_gpus == 1
