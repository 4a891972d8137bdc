"""Job traces: suanli's generic CSV, the published GPU-cluster traces, and a seeded synthetic trace.

Generic CSV (header required; extra columns are ignored):
    job_id,submit_time_s,num_gpus,duration_s[,user][,gpu_type][,priority][,model][,estimate_s]
`duration_s` is the job's run time alone on the GPUs it asked for; `gpu_type` makes the type a hard
requirement; `estimate_s` is what the user told the scheduler (like Slurm's --time), which
non-clairvoyant policies may use instead of a guess from history.

Published formats: Tiresias's `*_job.csv` (job_id,num_gpu,submit_time,...,duration), the
Philly-derived `philly.csv` from Pollux's artifact (timestamp,duration,num_gpus,gpu_time,cluster; one
virtual cluster with `vc=`), and Gavel's tab-separated `.trace` files (7 fields for the per-VC
Philly traces, 10 for the physical-cluster ones), whose job lengths are steps: they need Gavel's
throughput table to become seconds. Alibaba's GPU cluster trace 2023 (`openb_pod_list_*.csv`, one
row per pod: name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,
deletion_time,scheduled_time) becomes the pods that asked for GPUs and were scheduled, with the QoS
class as the user (see `load_alibaba`).
"""

from __future__ import annotations

import ast
import contextlib
import csv
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from suanli.core.errors import BadInput, input_file, read_text, reading
from suanli.schedule.policy import JobRequest, NodeState, RunningJob, Slice

FORMATS = ("auto", "generic", "tiresias", "philly", "gavel", "alibaba")
ALIBABA_COLUMNS = ("name", "num_gpu", "gpu_milli", "qos", "creation_time", "deletion_time", "scheduled_time")
GENERIC_COLUMNS = ("job_id", "submit_time_s", "num_gpus", "duration_s")
REFERENCE_GPU = "V100"  # Gavel's traces count steps at the V100 rate (its reference worker type)
MAX_SYNTHETIC_JOBS = 1_000_000  # checked before generating: about 7 min and 1.5 GB to replay with one policy


@dataclass(slots=True)
class TraceJob:
    """One job of a trace. `line` is where it came from, for error messages."""

    id: str
    submit_s: float
    gpus: int
    duration_s: float
    user: str = "default"
    gpu_type: str | None = None
    priority: int = 0
    model: str | None = None
    throughput: tuple[tuple[str, float], ...] = ()
    line: int | None = None
    estimate_s: float | None = None


@dataclass(slots=True)
class Trace:
    jobs: list[TraceJob]
    source: str
    invalid: list[str] = field(default_factory=list)  # "line N: why", for --skip-invalid


def _num(text: str, line: int, column: str, source: str, bad: list[str]) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        bad.append(f"line {line}: {column}={text!r} is not a number")
        return None
    if math.isnan(value) or math.isinf(value):
        bad.append(f"line {line}: {column}={text!r} is not a finite number")
        return None
    return value


def _check(
    job_id: str, submit: float | None, gpus: float | None, dur: float | None, line: int, bad: list[str]
) -> bool:
    ok = submit is not None and gpus is not None and dur is not None
    if dur is not None and dur < 0:
        bad.append(f"line {line}: job {job_id} has a negative duration ({dur:g} s)")
        ok = False
    if submit is not None and submit < 0:
        bad.append(f"line {line}: job {job_id} has a negative submit time ({submit:g} s)")
        ok = False
    if gpus is not None and (gpus < 1 or gpus != int(gpus)):
        bad.append(f"line {line}: job {job_id} asks for {gpus:g} GPUs (needs a whole number >= 1)")
        ok = False
    return ok


def _need_columns(header: list[str] | None, needed: tuple[str, ...], source: str, fmt: str) -> None:
    have = [h.strip() for h in header or []]
    missing = [c for c in needed if c not in have]
    if missing:
        raise BadInput(
            "trace",
            source,
            f"{fmt} trace is missing column(s) {', '.join(missing)} on line 1",
            hint=f"the {fmt} format needs: {', '.join(needed)}",
        )


def load_generic(path: Path) -> Trace:
    """suanli's documented CSV."""
    source = str(path)
    jobs, bad = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        _need_columns(reader.fieldnames, GENERIC_COLUMNS, source, "generic")
        for line, row in enumerate(reader, start=2):
            jid = (row.get("job_id") or "").strip() or f"line{line}"
            submit = _num(row["submit_time_s"], line, "submit_time_s", source, bad)
            gpus = _num(row["num_gpus"], line, "num_gpus", source, bad)
            dur = _num(row["duration_s"], line, "duration_s", source, bad)
            prio = _num(row.get("priority") or "0", line, "priority", source, bad)
            est_text = (row.get("estimate_s") or "").strip()
            est = _num(est_text, line, "estimate_s", source, bad) if est_text else None
            if not _check(jid, submit, gpus, dur, line, bad) or prio is None or (est_text and est is None):
                continue
            jobs.append(
                TraceJob(
                    jid,
                    submit,
                    int(gpus),
                    dur,
                    user=(row.get("user") or "default").strip() or "default",
                    gpu_type=((row.get("gpu_type") or "").strip().upper() or None),
                    priority=int(prio),
                    model=(row.get("model") or "").strip() or None,
                    line=line,
                    estimate_s=est,
                )
            )
    return Trace(jobs, source, bad)


def load_tiresias(path: Path) -> Trace:
    """Tiresias's job CSV (`job_id,num_gpu,submit_time,iterations,model_name,duration,interval`)."""
    source = str(path)
    jobs, bad = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        _need_columns(reader.fieldnames, ("job_id", "num_gpu", "submit_time", "duration"), source, "tiresias")
        for line, row in enumerate(reader, start=2):
            jid = (row.get("job_id") or "").strip() or f"line{line}"
            submit = _num(row["submit_time"], line, "submit_time", source, bad)
            gpus = _num(row["num_gpu"], line, "num_gpu", source, bad)
            dur = _num(row["duration"], line, "duration", source, bad)
            if _check(jid, submit, gpus, dur, line, bad):
                jobs.append(
                    TraceJob(jid, submit, int(gpus), dur, model=row.get("model_name") or None, line=line)
                )
    return Trace(jobs, source, bad)


def load_philly(path: Path, vc: str | None = None) -> Trace:
    """Pollux's `philly.csv`; `vc` keeps one virtual cluster (None or "all": every VC, user = VC)."""
    source = str(path)
    rows, bad = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        _need_columns(reader.fieldnames, ("timestamp", "duration", "num_gpus", "cluster"), source, "philly")
        vcs = set()
        for line, row in enumerate(reader, start=2):
            cluster = row.get("cluster") or ""
            vcs.add(cluster)
            if vc not in (None, "all") and cluster != vc:
                continue
            try:
                ts = datetime.fromisoformat(row.get("timestamp") or "").timestamp()
            except ValueError:
                bad.append(f"line {line}: timestamp={row['timestamp']!r} is not a date-time")
                continue
            gpus = _num(row["num_gpus"], line, "num_gpus", source, bad)
            dur = _num(row["duration"], line, "duration", source, bad)
            if _check(f"line{line}", ts, gpus, dur, line, bad):
                rows.append((ts, line, int(gpus), dur, cluster))
    if vc not in (None, "all") and vc not in vcs:
        raise BadInput("vc", vc, f"must be one of {', '.join(sorted(vcs))} or all", source=source)
    rows.sort()
    t0 = rows[0][0] if rows else 0.0
    jobs = [TraceJob(f"{c}-{line}", ts - t0, g, d, user=c, line=line) for ts, line, g, d, c in rows]
    return Trace(jobs, source, bad)


def load_throughputs(path: Path) -> dict[str, dict[str, float]]:
    """Gavel's `simulation_throughputs.json` -> {"<job type>|<scale>": {GPU TYPE: steps/s alone}}."""
    text = read_text(path, "throughputs")
    try:
        raw = json.loads(text)
    except ValueError as err:
        raise BadInput("throughputs", str(path), f"must be a Gavel throughput JSON ({err})") from None
    if not isinstance(raw, dict):
        raise BadInput("throughputs", str(path), "must be a JSON object {worker type: {job: rates}}")
    table: dict[str, dict[str, float]] = {}
    for worker, jobs in raw.items():
        if "unconsolidated" in worker or not isinstance(jobs, dict):
            continue
        for key, value in jobs.items():
            try:
                job_type, scale = ast.literal_eval(key)
            except (ValueError, SyntaxError):
                continue
            alone = value.get("null") if isinstance(value, dict) else None
            if isinstance(alone, int | float) and alone > 0:
                table.setdefault(f"{job_type}|{int(scale)}", {})[worker.upper()] = float(alone)
    return table


def gavel_rates(table: dict[str, dict[str, float]], job_type: str, scale: int) -> dict[str, float] | None:
    """Steps/s per GPU type for `job_type` on `scale` GPUs; scales beyond the table (16, 32, ...) are
    extrapolated linearly from the largest measured one (an assumption, stated in the docs)."""
    exact = table.get(f"{job_type}|{scale}")
    if exact:
        return exact
    measured = sorted(int(k.rsplit("|", 1)[1]) for k in table if k.rsplit("|", 1)[0] == job_type)
    if not measured:
        return None
    base = max(s for s in measured if s <= scale) if any(s <= scale for s in measured) else measured[0]
    return {t: v * scale / base for t, v in table[f"{job_type}|{base}"].items()}


def with_throughputs(jobs: list[TraceJob], table: dict[str, dict[str, float]]) -> None:
    """Attach relative speeds (vs the reference GPU) to jobs whose model is in `table`."""
    for job in jobs:
        if not job.model:
            continue
        rates = gavel_rates(table, job.model, job.gpus)
        if rates and rates.get(REFERENCE_GPU):
            ref = rates[REFERENCE_GPU]
            job.throughput = tuple(sorted((t, v / ref) for t, v in rates.items()))


def load_gavel(path: Path, table: dict[str, dict[str, float]] | None) -> Trace:
    """Gavel's tab-separated `.trace` (7 or 10 fields); steps become seconds at the V100 rate."""
    source = str(path)
    if table is None:
        raise BadInput(
            "throughputs",
            "(none)",
            "Gavel .trace files count steps, not seconds; a throughput table is needed",
            hint="pass --throughputs simulation_throughputs.json (Gavel's file)",
        )
    jobs, bad = [], []
    with open(path, encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            fields = text.rstrip("\n").split("\t")
            if not text.strip():
                continue
            if len(fields) == 7:
                job_type, steps_t, arrival_t, scale_t = fields[0], fields[4], fields[5], fields[6]
            elif len(fields) == 10:
                job_type, steps_t, scale_t, arrival_t = fields[0], fields[5], fields[6], fields[9]
            else:
                bad.append(f"line {line}: {len(fields)} tab-separated fields (Gavel traces have 7 or 10)")
                continue
            steps = _num(steps_t, line, "total_steps", source, bad)
            arrival = _num(arrival_t, line, "arrival_time", source, bad)
            scale = _num(scale_t, line, "scale_factor", source, bad)
            if steps is None or arrival is None or scale is None:
                continue
            if scale == 0:  # Gavel's own parser skips these rows
                bad.append(f"line {line}: scale_factor is 0 (no GPUs)")
                continue
            rates = gavel_rates(table, job_type, int(scale))
            if not rates or REFERENCE_GPU not in rates:
                bad.append(f"line {line}: job type {job_type!r} is not in the throughput table")
                continue
            dur = steps / rates[REFERENCE_GPU]
            if not _check(f"line{line}", arrival, scale, dur, line, bad):
                continue
            ref = rates[REFERENCE_GPU]
            jobs.append(
                TraceJob(
                    f"{Path(path).stem}-{line}",
                    arrival,
                    int(scale),
                    dur,
                    model=job_type,
                    throughput=tuple(sorted((t, v / ref) for t, v in rates.items())),
                    line=line,
                )
            )
    jobs.sort(key=lambda j: (j.submit_s, j.line))
    return Trace(jobs, source, bad)


def load_alibaba(path: Path) -> Trace:
    """Alibaba's GPU cluster trace 2023 (`cluster-trace-gpu-v2023/csv/openb_pod_list_*.csv`; the
    `default` and `gpuspec33` files hold the same 8,152 pods, differing only in `gpu_spec`).

    A job is a pod with `num_gpu` >= 1 and a `scheduled_time` (6,203 of the 8,152: the 1,088 CPU-only
    pods and the 861 GPU pods never scheduled are not jobs of this replay and are left out without a
    message). submit = `creation_time`; duration = `deletion_time - scheduled_time` (how long it
    held its GPUs; for pods still `Running` at the end of the trace, until then); user = `qos` (LS,
    BE, Burstable, Guaranteed: the trace names no users). A pod sharing a GPU (`gpu_milli` < 1000,
    2,573 of the jobs) is counted as one whole GPU: the simulator's GPUs are exclusive. `gpu_spec`
    (the GPU models a pod accepts) is ignored: replays are on one GPU type."""
    source = str(path)
    jobs, bad = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        _need_columns(reader.fieldnames, ALIBABA_COLUMNS, source, "alibaba")
        for line, row in enumerate(reader, start=2):
            if not (row.get("scheduled_time") or "").strip():
                continue  # never scheduled
            gpus = _num(row["num_gpu"], line, "num_gpu", source, bad)
            if gpus is not None and gpus == 0:
                continue  # a CPU-only pod
            jid = (row.get("name") or "").strip() or f"line{line}"
            submit = _num(row["creation_time"], line, "creation_time", source, bad)
            start = _num(row["scheduled_time"], line, "scheduled_time", source, bad)
            end = _num(row["deletion_time"], line, "deletion_time", source, bad)
            dur = end - start if start is not None and end is not None else None
            if _check(jid, submit, gpus, dur, line, bad):
                user = (row.get("qos") or "").strip() or "default"
                jobs.append(TraceJob(jid, submit, int(gpus), dur, user=user, line=line))
    jobs.sort(key=lambda j: (j.submit_s, j.line))
    return Trace(jobs, source, bad)


def busy_moment(
    nodes: int = 1000, pending: int = 10_000
) -> tuple[list[NodeState], list[RunningJob], list[JobRequest]]:
    """One moment of a large, busy pool for timing a live scheduling decision: `nodes` 8-GPU nodes,
    nine in ten full and the rest half full, and `pending` jobs of 1-8 GPUs from 20 users."""
    free = [0 if i % 10 else 4 for i in range(nodes)]
    node_list = [NodeState(f"n{i:04d}", 8, 64, 512 * 1024**3, free_gpus=free[i]) for i in range(nodes)]
    running = [
        RunningJob(JobRequest(f"r{i}", 0, gpus=8 - free[i]), (Slice(f"n{i:04d}", 8 - free[i], 0, 0),), 0.0)
        for i in range(nodes)
    ]
    waiting = [JobRequest(f"p{i}", float(i), gpus=1 + i % 8, user=f"u{i % 20}") for i in range(pending)]
    return node_list, running, waiting


def synthetic(n: int, *, seed: int = 0, gpus_total: int = 64, load: float = 0.9, users: int = 8) -> Trace:
    """A seeded trace from the Philly-like distributions Gavel's simulator samples (durations
    60·10^U(1.5,3) s w.p. 0.8 else 60·10^U(3,4) s; 1/2/4/8 GPUs w.p. .70/.10/.15/.05), with Poisson
    arrivals at the rate that gives `load` on `gpus_total` GPUs."""
    rng = random.Random(seed)
    mean_gpu_s = (
        0.8 * 60 * (10**3 - 10**1.5) / (1.5 * math.log(10)) + 0.2 * 60 * (10**4 - 10**3) / math.log(10)
    ) * (0.70 * 1 + 0.10 * 2 + 0.15 * 4 + 0.05 * 8)
    rate = load * gpus_total / mean_gpu_s
    t, jobs = 0.0, []
    for i in range(n):
        t += rng.expovariate(rate)
        dur = 60 * 10 ** (rng.uniform(1.5, 3) if rng.random() < 0.8 else rng.uniform(3, 4))
        r = rng.random()
        gpus = 1 if r < 0.70 else 2 if r < 0.80 else 4 if r < 0.95 else 8
        jobs.append(TraceJob(str(i), round(t, 3), gpus, round(dur, 3), user=f"u{rng.randrange(users)}"))
    return Trace(jobs, f"synthetic:{n}")


def synthetic_size(spec: str) -> int:
    """N of `synthetic:N` (also 10k, "10,000"), a whole number from 1 to MAX_SYNTHETIC_JOBS."""
    from suanli.core.units import parse_count

    text = spec.split(":", 1)[1]
    allowed = f"synthetic traces are written synthetic:N with N from 1 to {MAX_SYNTHETIC_JOBS:,} jobs"
    try:
        n = parse_count(text, "trace")
    except BadInput:
        raise BadInput("trace", spec, allowed) from None
    if n != int(n) or n > MAX_SYNTHETIC_JOBS:
        raise BadInput("trace", spec, allowed)
    return int(n)


def detect_format(path: Path) -> str:
    """The trace format from the file's name and first line."""
    if path.suffix == ".trace":
        return "gavel"
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
    except OSError as err:
        raise BadInput("trace", str(path), f"cannot be read ({err.strerror})") from None
    header = {h.strip() for h in first.split(",")}
    if {"num_gpu", "gpu_milli", "qos", "scheduled_time"} <= header:
        return "alibaba"
    if {"timestamp", "cluster"} <= header:
        return "philly"
    if {"num_gpu", "submit_time"} <= header:
        return "tiresias"
    return "generic"


@contextlib.contextmanager
def _csv_errors(spec: str) -> Iterator[None]:
    try:
        yield
    except csv.Error as e:
        raise BadInput("trace", spec, f"is not a CSV this reader accepts ({e})") from None


def load_trace(
    spec: str,
    *,
    fmt: str = "auto",
    vc: str | None = None,
    throughputs: dict[str, dict[str, float]] | None = None,
    seed: int = 0,
    gpus_total: int = 64,
) -> Trace:
    """Load a trace file (or `synthetic:N`, sized for 90% load on `gpus_total` GPUs)."""
    if spec.startswith("synthetic:"):
        return synthetic(synthetic_size(spec), seed=seed, gpus_total=gpus_total)
    path = Path(spec)
    if not path.exists():
        raise BadInput("trace", spec, "no such file", hint="a CSV trace, a Gavel .trace, or synthetic:N")
    input_file(path, "trace")
    if fmt not in FORMATS:
        raise BadInput("format", fmt, f"must be one of {', '.join(FORMATS)}")
    # A file that is not UTF-8, or a CSV the reader refuses (a field over its 128 KiB limit, a NUL
    # byte): one line naming it and why.
    with reading(path, "trace"), _csv_errors(spec):
        if fmt == "auto":
            fmt = detect_format(path)
        if fmt == "gavel":
            trace = load_gavel(path, throughputs)
        elif fmt == "philly":
            trace = load_philly(path, vc)
        elif fmt == "tiresias":
            trace = load_tiresias(path)
        elif fmt == "alibaba":
            trace = load_alibaba(path)
        else:
            trace = load_generic(path)
    if throughputs is not None and fmt != "gavel":
        with_throughputs(trace.jobs, throughputs)
    return trace
