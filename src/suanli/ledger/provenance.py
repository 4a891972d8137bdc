"""What a ledger entry says: an in-toto Statement v1 whose predicate is SLSA Provenance v1.

Every entry names what it is about (its subjects, by SHA-256) and how it was made: a build type (a
job attempt, a checkpoint, a compression, a tuning trial, or a file added by hand), the parameters
(the job spec's digest, the study's parameters), the resolved dependencies (the code with its digest
and git commit, input datasets, the model a compression started from), the run's times, and what it
measured (hardware, metrics, cost) as byproducts. Lineage follows dependencies back to the entries
whose subjects they are.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from suanli.ledger import digest as D
from suanli.ledger.statement import statement

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPES = {
    "run": "urn:suanli:build:attempt:v1",
    "checkpoint": "urn:suanli:build:checkpoint:v1",
    "model": "urn:suanli:build:model:v1",
    "dataset": "urn:suanli:build:dataset:v1",
    "trial": "urn:suanli:build:trial:v1",
    "accounting": "urn:suanli:build:accounting:v1",  # an owners' accounting period (monitor/owners.py)
    "verification": "urn:suanli:build:verification:v1",  # a replicated job's verdict (run/verify.py)
}
# What a job may spool: accounting and verdicts are the pool's alone to write.
KINDS = tuple(k for k in BUILD_TYPES if k not in ("accounting", "verification"))
MAX_FILE_SUBJECTS = 1000
# Folders that are tools' caches or environments, not the code a run used.
CODE_SKIP = (".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache",
             ".ruff_cache", ".ipynb_checkpoints")  # fmt: skip
MAX_CODE_FILES = 20_000


def rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat().replace("+00:00", "Z")


def spec_digest(doc: dict) -> str:
    """The digest of a job spec (or any JSON document) in canonical form."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def artifact(
    path: str | Path,
    previous: dict[str, dict] | None = None,
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
    exclude: Sequence[str] = (),
) -> tuple[dict[str, str], D.Hashed]:
    """Subjects for a file or a folder: a file by its digest; a folder by its manifest digest ("NAME/")
    and each of its files ("NAME/REL"), the first MAX_FILE_SUBJECTS of them. NAME is the path's last
    part unless `name` is given; `exclude` (paths relative to a folder) are left out."""
    path = Path(path)
    name = name or path.name or str(path)
    if path.is_dir():
        hashed = D.hash_dir(path, previous, exclude=exclude, progress=progress)
        subjects = {f"{name}/": hashed.digest}
        for rel in sorted(hashed.manifest)[:MAX_FILE_SUBJECTS]:
            subjects[f"{name}/{rel}"] = hashed.manifest[rel]["sha256"]
        return subjects, hashed
    st = path.stat()
    sha = D.file_sha256(path, progress)
    return {name: sha}, D.Hashed(digest=sha, files_read=1, bytes_read=st.st_size)


def git_state(folder: str | Path) -> dict | None:
    """{"commit", "dirty"} of the git work tree `folder` is in; None outside one or without git."""
    try:

        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                                  timeout=10, check=True, stdin=subprocess.DEVNULL).stdout  # fmt: skip

        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty} if len(commit) in (40, 64) else None


def dependency(name: str, sha256: str, uri: str | None = None, **annotations: object) -> dict:
    """A SLSA ResourceDescriptor."""
    dep: dict = {"name": name, "digest": {"sha256": sha256}}
    if uri:
        dep["uri"] = uri
    if annotations:
        dep["annotations"] = annotations
    return dep


def code_dependency(
    workdir: str | Path, previous: dict[str, dict] | None = None, exclude: Sequence[str] = ()
) -> tuple[dict, D.Hashed | None]:
    """The workdir as the run's code: its digest (tools' caches and the paths in `exclude`, relative to
    the workdir, left out) and git commit. Taken when the attempt ends."""
    uri = Path(workdir).resolve().as_uri()
    git = git_state(workdir)
    try:
        hashed = D.hash_dir(workdir, previous, skip=CODE_SKIP, exclude=exclude, max_files=MAX_CODE_FILES)
    except (OSError, D.TooManyFiles) as e:
        dep: dict = {"name": "code", "uri": uri, "digest": {},
                     "annotations": {"not_hashed": str(e)}}  # fmt: skip
        hashed = None
    else:
        dep = dependency("code", hashed.digest, uri, files=len(hashed.manifest))
    if git:
        dep["digest"]["gitCommit"] = git["commit"]
        dep.setdefault("annotations", {})["git_dirty"] = git["dirty"]
    return dep, hashed


def provenance(
    kind: str,
    subjects: dict[str, str],
    *,
    external: dict | None = None,
    dependencies: list[dict] | None = None,
    builder: str = "suanli",
    invocation: str | None = None,
    started: float | None = None,
    finished: float | None = None,
    byproducts: dict[str, dict] | None = None,
) -> dict:
    """An in-toto Statement v1 with a SLSA Provenance v1 predicate."""
    if kind not in BUILD_TYPES:
        raise ValueError(f"kind {kind!r}: must be one of {', '.join(BUILD_TYPES)}")
    metadata = {k: v for k, v in (("invocationId", invocation), ("startedOn", rfc3339(started)),
                                  ("finishedOn", rfc3339(finished))) if v is not None}  # fmt: skip
    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPES[kind],
            "externalParameters": external or {},
            "resolvedDependencies": dependencies or [],
        },
        "runDetails": {
            "builder": {"id": builder},
            "metadata": metadata,
            "byproducts": [{"name": k, "annotations": v} for k, v in sorted((byproducts or {}).items())],
        },
    }
    return statement(subjects, PREDICATE_TYPE, predicate)


def _named_digests(descriptors: object) -> list[tuple[str, str]]:
    out = []
    for d in descriptors if isinstance(descriptors, list) else []:
        digest = d.get("digest") if isinstance(d, dict) else None
        if isinstance(digest, dict) and isinstance(digest.get("sha256"), str):
            out.append((str(d.get("name", "")), digest["sha256"]))
    return out


def inputs_of(doc: dict) -> list[tuple[str, str]]:
    """(name, sha256) of each resolved dependency of a statement that has a SHA-256."""
    pred = doc.get("predicate")
    build = pred.get("buildDefinition") if isinstance(pred, dict) else None
    return _named_digests(build.get("resolvedDependencies") if isinstance(build, dict) else None)


def subjects_of(doc: dict) -> list[tuple[str, str]]:
    return _named_digests(doc.get("subject"))


def path_uri(path: str | Path) -> str:
    return Path(os.path.abspath(path)).as_uri()
