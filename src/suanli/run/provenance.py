"""The ledger entry of an attempt's end, appended by the agent without the user doing anything.

It says what the attempt made (its checkpoints, the job's `artifacts`, its output log), from what
(the workdir's code digest and git commit, the `datasets` and mounted files, the job spec's digest),
on what hardware, between which times, with what metrics and at what cost; statements that the job's
own processes spooled (each checkpoint written through suanli.train) are signed and appended with it,
attributed to the job. Folders are re-hashed incrementally from the manifest of their last hash.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from pathlib import Path

from suanli.core.errors import BadInput
from suanli.ledger import provenance as P
from suanli.monitor.watch import job_cost_usd
from suanli.run.worker_env import checkpoint_dir, job_spool
from suanli.store.ledger import Item, LedgerLog, cosign, witness_config
from suanli.store.records import AttemptRecord, JobRecord

logger = logging.getLogger(__name__)


def _hashed(log: LedgerLog, path: Path, name: str | None = None) -> tuple[dict[str, str], str] | None:
    try:
        subjects, hashed = log.hash_artifact(path, name)
    except BadInput:  # gone, unreadable, or not a file: the entry says what it could hash
        return None
    return subjects, hashed.digest


def attempt_item(log: LedgerLog, job: JobRecord, attempt: AttemptRecord, outcome: dict, pool: str,
                 log_path: Path | None, ended_at: float | None = None) -> Item:  # fmt: skip
    """The statement of one attempt's end."""
    spec = job.spec
    ended_at = ended_at or time.time()
    workdir = Path(spec.workdir or ".")
    # The job's outputs are not its code, and its private data is not read: both are left out of its digest.
    inside = [
        os.path.relpath((workdir / a).resolve(), workdir.resolve()) for a in [*spec.artifacts, *spec.private]
    ]
    exclude = [rel for rel in inside if rel != ".." and not rel.startswith("../")]
    exclude += log.private_under(workdir)  # SUANLI_HOME inside the workdir (a test, a notebook folder)
    code, hashed = P.code_dependency(workdir, log.manifest(workdir.resolve()), exclude=exclude)
    if hashed is not None:
        log.save_manifest(workdir.resolve(), hashed.manifest)
    deps = [code]
    for source in [*spec.datasets, *(mnt.source for mnt in spec.mounts)]:
        found = _hashed(log, Path(source))
        if found is not None:
            deps.append(P.dependency(f"dataset:{Path(source).name}", found[1], P.path_uri(source)))
    # Subjects are named by where they are: the job's checkpoints, and artifacts as the spec writes them.
    subjects: dict[str, str] = {}
    outputs = [(checkpoint_dir(job.id), f"job-{job.id}/checkpoints")]
    outputs += [(workdir / a, os.path.normpath(a)) for a in spec.artifacts]
    for path, name in outputs:
        found = _hashed(log, path, name) if path.exists() else None
        if found:
            subjects.update(found[0])
    if log_path is not None and log_path.is_file():
        subjects[f"job-{job.id}/attempt-{attempt.number}/output.log"] = P.artifact(log_path)[0][log_path.name]
    spec_sha = P.spec_digest(job.spec_data)
    if not subjects:
        subjects[f"job-{job.id}/spec.json"] = spec_sha
    ended = dataclasses.replace(attempt, ended_at=ended_at)
    cost = job_cost_usd(dataclasses.replace(job, attempts=[ended]), ended_at)
    doc = P.provenance(
        "run",
        subjects,
        external={
            "job_id": job.id,
            "attempt": attempt.number,
            "name": job.name,
            "user": job.user,
            "project": job.project,
            "spec_sha256": spec_sha,
            "run": spec.run[:4096],
        },
        dependencies=deps,
        builder=f"suanli pool {pool}",
        invocation=f"job/{job.id}/attempt/{attempt.number}",
        started=attempt.started_at,
        finished=ended_at,
        byproducts={
            "hardware": {
                "nodes": attempt.nodes,
                "accelerator": job.accelerator,
                "gpus": job.gpus,
                "gpu_indices": attempt.gpu_indices,
                "cpus": job.cpus,
                "memory_bytes": job.memory_bytes,
            },
            "outcome": outcome,
            "metrics": dict(job.metrics),
            "cost": {
                "cost_usd": round(cost, 6),
                "wall_hours": round((ended_at - attempt.started_at) / 3600, 6),
            },
        },
    )
    return Item("run", doc, source=f"attempt:{job.id}:{attempt.number}")


def record_attempt(log: LedgerLog, job: JobRecord, attempt: AttemptRecord, outcome: dict, pool: str,
                   log_path: Path | None) -> list[int]:  # fmt: skip
    """Append the job's spooled statements, then the attempt's own; their indices."""
    indices = log.ingest(job_spool(job.id), job_id=job.id, user=job.user)
    return indices + log.append_statements([attempt_item(log, job, attempt, outcome, pool, log_path)])


class Cosigner:
    """Asks the witnesses of SUANLI_HOME/ledger.yaml to cosign the newest checkpoint, on a thread of
    its own, so a slow or unreachable witness never holds up the agent's loop."""

    def __init__(self, log: LedgerLog) -> None:
        self.log = log
        self.wanted = threading.Event()
        self.thread: threading.Thread | None = None
        self.last: dict[str, str] = {}

    def request(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="ledger-cosigner", daemon=True)
            self.thread.start()
        self.wanted.set()

    def _run(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            try:
                witnesses, _ = witness_config()
                answers = cosign(self.log, witnesses, timeout=5) if witnesses else {}
            except Exception as e:  # a bad ledger.yaml or a store error: said once, tried again next time
                answers = {"ledger.yaml": str(e)}
            for name, answer in answers.items():
                if answer != "cosigned" and self.last.get(name) != answer:
                    logger.warning("ledger witness %s did not cosign: %s", name, answer)
            self.last = answers
