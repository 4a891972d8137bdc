"""SkyPilot task files on a suanli pool: which fields mean what here, declared as data.

A SkyPilot task file loads unchanged. `translate` turns its fields into suanli's own spec fields:
what a pool can honour is kept (accelerator choices, local file mounts, secrets), what only configures
SkyPilot's clouds or serving layer is dropped with a note the dry run prints, and what a pool cannot do
at all is refused with one line that says why. The tables below are the single source for all three,
and for the section of docs/cli.md that lists them (`fields_reference`).

Two more things make a SkyPilot `run:` script work on a pool, both called by the executor:
`skypilot_env` (SKYPILOT_NODE_RANK, SKYPILOT_NODE_IPS, ...) and `prepare_mounts` (the local
file_mounts, as links the job can reach without suanli writing outside its run folder or workdir).
"""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suanli.core.errors import BadInput, SuanliError, did_you_mean
from suanli.core.specfile import shorten
from suanli.core.units import parse_bytes

if TYPE_CHECKING:
    from suanli.jobs.spec import JobSpec


class Status(Enum):
    SUPPORTED = "supported"  # means on a pool what it means on SkyPilot
    PLANNER = "kept for the planner"  # kept on the spec for `suanli plan`; nothing on a pool reads it
    IGNORED = "ignored"  # accepted and dropped, with a note
    REFUSED = "refused"  # the file cannot run on a pool: one line says why


@dataclass(frozen=True)
class Rule:
    status: Status
    why: str


def supported(why: str) -> Rule:
    return Rule(Status.SUPPORTED, why)


def planner(why: str) -> Rule:
    return Rule(Status.PLANNER, why)


def ignored(why: str) -> Rule:
    return Rule(Status.IGNORED, why)


def refused(why: str) -> Rule:
    return Rule(Status.REFUSED, why)


TASK_FIELDS: dict[str, Rule] = {
    "name": supported("the job's name"),
    "run": supported("run once per node (num_workers: 1), in the workdir"),
    "setup": supported("run before `run` on every attempt"),
    "workdir": supported(
        "a local folder, read relative to the job file (else to the current folder, as "
        "SkyPilot does); a git repository (url/ref) is refused"
    ),
    "num_nodes": supported("nodes of the pool the job spans"),
    "resources": supported("see the resources fields below"),
    "envs": supported("the job's environment; a null value must be given with --env"),
    "secrets": supported("like envs, but kept apart so that stored specs and outputs show *** instead"),
    "file_mounts": supported(
        "a local source is linked where the job can reach it (see below); a bucket "
        "source is ignored with a note"
    ),
    "service": ignored(
        "it configures SkyPilot's serving layer (replicas, readiness probe, autoscaling, "
        "load balancer); on a pool `run` starts the server once, on its node"
    ),
    "config": ignored(
        "it overrides SkyPilot's own settings for this task (Kubernetes pod specs, "
        "provisioning, docker options); nothing on a pool reads them"
    ),
    "volumes": ignored("it attaches SkyPilot-managed cloud volumes; a job on a pool sees its node's disks"),
    "volume_mounts": ignored("SkyPilot fills it in itself"),
    "file_mounts_mapping": ignored("SkyPilot fills it in itself"),
    "_metadata": ignored("SkyPilot fills it in itself"),
    "event_callback": ignored("SkyPilot runs it on job events; `suanli status` shows a job's events"),
    "inputs": ignored("it tells SkyPilot's optimizer how much data the task reads, to price egress"),
    "outputs": ignored("it tells SkyPilot's optimizer how much data the task writes, to price egress"),
    "api_server_access": ignored("it lets the task call a SkyPilot API server"),
    "pool": refused(
        "it defines a SkyPilot worker pool (`sky jobs pool apply`), not a job; suanli's pool "
        "is its nodes (`suanli nodes`)"
    ),
    "managed_secrets": refused(
        "it names secrets kept by a SkyPilot API server, which suanli cannot read; "
        "list them under `secrets:` and give their values with --env NAME"
    ),
}

_PLACEMENT = "it chooses where SkyPilot launches; a pool runs the job on its own nodes"
RESOURCE_FIELDS: dict[str, Rule] = {
    "cpus": supported("CPUs reserved per node; 4+ (at least) reserves 4"),
    "memory": supported("memory reserved per node, a number in GiB or a size; 32+ reserves 32 GiB"),
    "accelerators": supported(
        "NAME:COUNT, {NAME: COUNT}; a set {A: n, B: m} or a list [A:n, B:m] gives "
        "choices (any of them / in this order); TPU slices such as tpu-v5p-8 are chips"
    ),
    "gpus": supported("SkyPilot's other name for accelerators"),
    "any_of": supported(
        "alternatives: their accelerators become choices, any of them; their other "
        "fields are ignored with a note; the largest cpus/memory is reserved"
    ),
    "ordered": supported("like any_of, but the choices are tried in this order"),
    "candidates": supported("an older name for any_of"),
    "cloud": planner(_PLACEMENT),
    "infra": planner(_PLACEMENT),
    "region": planner(_PLACEMENT),
    "zone": planner(_PLACEMENT),
    "instance_type": planner(_PLACEMENT),
    "use_spot": planner("a pool has no spot market; `suanli plan` prices spot"),
    "disk_size": planner("it sizes the cloud VM's disk; a job on a pool uses its node's disk"),
    "disk_tier": planner("it picks the cloud VM's disk type; a job on a pool uses its node's disk"),
    "image_id": planner(
        "a pool runs jobs in its nodes' own environment, not in this VM or container (docker:) image"
    ),
    "ports": planner("it opens cloud firewall ports; a job on a pool listens on its node directly"),
    "accelerator_args": planner("TPU runtime options for SkyPilot's provisioner"),
    "job_recovery": planner("SkyPilot's managed-job recovery; suanli retries a failed job `retries` times"),
    "spot_recovery": ignored("SkyPilot's old name for job_recovery; suanli retries a job `retries` times"),
    "network_tier": ignored(
        "it asks the cloud for fast interconnect (InfiniBand, EFA, GPUDirect); a pool's "
        "network is what its nodes have"
    ),
    "autostop": ignored("it stops idle cloud clusters; a pool's nodes stay up"),
    "labels": ignored(
        "they label SkyPilot's cloud instances or pods; suanli's own labels are the top-level `labels:` field"
    ),
    "priority": ignored("SkyPilot's managed-job priority; suanli's is the top-level `priority:` field"),
    "priority_class": ignored("a Kubernetes priority class for SkyPilot's pods"),
    "volumes": ignored("it attaches cloud volumes to SkyPilot's VMs; a job on a pool sees its node's disks"),
    "local_disk": ignored("it asks the cloud for a local NVMe disk"),
    "ephemeral_storage": ignored("SkyPilot's old name for disk_size"),
    "max_hourly_cost": ignored("it caps what SkyPilot pays per hour; a pool's nodes are already paid for"),
    "_no_missing_accel_warnings": ignored("SkyPilot-internal"),
    "_docker_login_config": ignored("SkyPilot-internal"),
    "_docker_username_for_runpod": ignored("SkyPilot-internal"),
    "_is_image_managed": ignored("SkyPilot-internal"),
    "_requires_fuse": ignored("SkyPilot-internal"),
    "_cluster_config_overrides": ignored("SkyPilot-internal"),
}

ALTERNATIVES = ("any_of", "ordered", "candidates")
PIPELINE_HINT = (
    "a SkyPilot pipeline or job group: suanli runs one task per file; put each task in a file of its own "
    "and submit them in order"
)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
GIT_WORKDIR = "a git repository (url/ref) is not fetched: clone it and set workdir to the folder"
SECRETS_LIST = (
    "a list names secrets kept by a SkyPilot API server, which suanli cannot read: write "
    "`secrets: {NAME: null}` and give the value with --env NAME"
)


def _note(field: str, rule: Rule) -> str:
    if rule.status is Status.PLANNER:
        return f"{field}: kept for the planner, not used on a pool: {rule.why}"
    return f"{field}: ignored on a pool: {rule.why}"


def _refuse(field: str, why: str, value: object = "") -> BadInput:
    return BadInput(field, shorten(value) if value != "" else "", f"is not supported on a pool: {why}")


# ---- translating a task file ------------------------------------------------------------------------


def translate(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(suanli's spec fields, notes) for a task file's top-level mapping; BadInput for what a pool
    cannot run. Fields that are neither SkyPilot's nor special here pass through for the model to check."""
    out: dict[str, Any] = {}
    notes: list[str] = []
    if "file_mounts" in data and "mounts" in data:
        raise BadInput("mounts", "", "cannot be given with file_mounts; use one of them")
    for key, value in data.items():
        rule = TASK_FIELDS.get(key) if isinstance(key, str) else None
        if rule is not None and rule.status is Status.REFUSED:
            raise _refuse(key, rule.why)
        if rule is not None and rule.status is Status.IGNORED:
            notes.append(_note(key, rule))
        elif key == "resources":
            out["resources"] = _resources(value, notes)
        elif key == "file_mounts":
            out["mounts"] = _file_mounts(value, data.get("envs"), notes)
        elif key == "workdir" and isinstance(value, dict):
            raise _refuse("workdir", GIT_WORKDIR, value.get("url", value))
        elif key == "secrets" and isinstance(value, list):
            raise _refuse("secrets", SECRETS_LIST, value)
        else:
            out[key] = value
    return out, notes


def _resources(value: object, notes: list[str]) -> object:
    """The resources mapping with SkyPilot-only fields noted and dropped and any_of/ordered/candidates
    turned into accelerator choices."""
    if not isinstance(value, dict):
        return {} if value is None else value  # the model names what is wrong
    res: dict[str, Any] = {}
    alternatives: tuple[str, object] | None = None
    for key, v in value.items():
        rule = RESOURCE_FIELDS.get(key) if isinstance(key, str) else None
        if rule is None:
            res[key] = v
        elif rule.status is Status.IGNORED:
            notes.append(_note(f"resources.{key}", rule))
        elif rule.status is Status.PLANNER:
            notes.append(_note(f"resources.{key}", rule))
            res[key] = v
        elif key in ALTERNATIVES:
            if alternatives is not None:
                allowed = f"cannot be given with resources.{alternatives[0]}; use one of them"
                raise BadInput(f"resources.{key}", "", allowed)
            alternatives = (key, v)
        elif key == "gpus":
            if "accelerators" in value:
                raise BadInput("resources.gpus", "", "is another name for accelerators; give one of them")
            res["accelerators"] = v
        else:
            res[key] = v
    if alternatives is not None:
        _alternatives(res, *alternatives, notes)
    return res


def _cpus(value: object, field: str) -> float:
    try:
        n = float(str(value).strip().rstrip("+"))
    except ValueError:
        raise BadInput(field, shorten(value), 'must be a number of CPUs > 0, such as 2 or "4+"') from None
    if isinstance(value, bool) or not 0 < n < float("inf"):
        raise BadInput(field, shorten(value), 'must be a number of CPUs > 0, such as 2 or "4+"')
    return n


def _memory(value: object, field: str) -> int:
    try:
        return parse_bytes(str(value).strip().rstrip("+"), field)
    except OverflowError:
        raise BadInput(field, shorten(value), "is too large") from None


def _alternatives(res: dict[str, Any], key: str, entries: object, notes: list[str]) -> None:
    """Fold SkyPilot's resource alternatives into `res`: their accelerators (or the base ones) become
    `accelerator_choices`; any_of and candidates leave the choice to the scheduler, ordered keeps the
    order; the largest cpus and memory asked by any alternative are reserved for all."""
    field = f"resources.{key}"
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        allowed = (
            "must be a list of resource mappings, such as [{accelerators: A100:8}, {accelerators: H100:8}]"
        )
        raise BadInput(field, shorten(entries), allowed)
    base = res.pop("accelerators", None)
    choices: list[object] = []
    cpus: list[tuple[float, object]] = (
        [(_cpus(res["cpus"], "resources.cpus"), res["cpus"])] if "cpus" in res else []
    )
    memory: list[tuple[int, object]] = (
        [(_memory(res["memory"], "resources.memory"), res["memory"])] if "memory" in res else []
    )
    dropped: set[str] = set()
    for i, entry in enumerate(entries):
        for k, v in entry.items():
            where = f"{field}.{i}.{shorten(k, 40)}"
            if k in ALTERNATIVES:
                raise BadInput(where, "", "cannot be nested inside another list of alternatives")
            if k == "cpus":
                cpus.append((_cpus(v, where), v))
            elif k == "memory":
                memory.append((_memory(v, where), v))
            elif k not in ("accelerators", "gpus"):
                if k not in RESOURCE_FIELDS:
                    known = [n for n in RESOURCE_FIELDS if n not in ALTERNATIVES]
                    raise BadInput(
                        where, "", "is not a known resources field", hint=did_you_mean(str(k), known)
                    )
                dropped.add(str(k))
        choices.append(entry.get("accelerators", entry.get("gpus", base)))
    res["accelerator_choices"] = choices
    ordered = key == "ordered" or isinstance(base, list)
    res["accelerator_preference"] = "ordered" if ordered else "any"
    how = "tried in this order" if ordered else "any of them, as the scheduler finds them free"
    notes.append(
        f"{field}: {len(entries)} alternatives; their accelerators (else the base ones) are the job's "
        f"choices ({how})"
    )
    if dropped:
        notes.append(
            f"{field}: the alternatives' {', '.join(sorted(dropped))} ignored on a pool: {_PLACEMENT}"
        )
    for name, asked in (("cpus", cpus), ("memory", memory)):
        if len({n for n, _ in asked}) > 1:
            largest = max(asked, key=lambda pair: pair[0])[1]
            notes.append(
                f"{field}: the alternatives ask for different {name}; {largest} is reserved for every choice"
            )
        if asked:
            res[name] = max(asked, key=lambda pair: pair[0])[1]


def _file_mounts(value: object, envs: object, notes: list[str]) -> list[dict[str, str]]:
    """Local file_mounts as suanli mounts ({target, source}, source not yet resolved); bucket sources
    dropped with a note. ${VAR} in targets and sources is filled from envs, as SkyPilot does."""
    if value is None:
        return []
    if not isinstance(value, dict):
        allowed = "must be a mapping of TARGET: SOURCE (a local path, a bucket URL or a storage mapping)"
        raise BadInput("file_mounts", shorten(value), allowed)
    known = {str(k): str(v) for k, v in envs.items() if v is not None} if isinstance(envs, dict) else {}

    def fill(text: str) -> str:
        return string.Template(text).safe_substitute(known)

    mounts: list[dict[str, str]] = []
    for raw_target, source in value.items():
        target = fill(str(raw_target))
        field = f"file_mounts.{shorten(target)}"
        if isinstance(source, dict):  # a SkyPilot storage: a bucket, made from a local folder or not
            local = source.get("source")
            store = shorten(f"{fill(str(source['store']))} bucket" if source.get("store") else "bucket")
            if isinstance(local, str) and not _URL.match(fill(local)):
                notes.append(
                    f"{field}: the {store} is ignored on a pool; its local source {shorten(local)} is mounted"
                )
                mounts.append({"target": target, "source": fill(local)})
            else:
                what = fill(str(source.get("name") or local or ""))
                notes.append(
                    f"{field}: ignored on a pool: SkyPilot mounts the {store} {shorten(what)} there on its "
                    "VMs; copy the data to the nodes or fetch it in setup"
                )
            continue
        if not isinstance(source, str) or not source.strip():
            allowed = "must be a local path, a bucket URL (s3://, gs://, ...) or a storage mapping"
            raise BadInput(field, shorten(source), allowed)
        source = fill(source)
        if _URL.match(source):
            notes.append(
                f"{field}: ignored on a pool: {shorten(source)} is a cloud bucket that SkyPilot copies "
                "to its VMs; copy the data to the nodes or fetch it in setup"
            )
            continue
        mounts.append({"target": target, "source": source})
    return mounts


# ---- the environment SkyPilot gives a task ----------------------------------------------------------


def skypilot_env(
    job_id: int,
    num_nodes: int,
    node_rank: int,
    node_ips: Sequence[str],
    gpus_per_node: int,
    *,
    user: str = "",
    cluster: str = "suanli",
) -> dict[str, str]:
    """The variables SkyPilot sets for a task's `setup` and `run` (docs/source/running-jobs/
    environment-variables.rst), for one node of a job on a pool, so that task files which build their
    torchrun/MPI/Ray command lines from them run unchanged. Both the setup-time and the run-time names are
    given: suanli runs setup and run on the same nodes.

    SKYPILOT_TASK_ID is stable across the job's attempts (like a managed job's), so a resumed run keeps
    its rendezvous id and W&B run. SKYPILOT_NUM_JOBS/SKYPILOT_JOB_RANK (SkyPilot pools' batch jobs) say
    this is the only job of its batch.
    """
    ips = [str(ip) for ip in node_ips]
    if num_nodes < 1 or len(ips) != num_nodes:
        raise ValueError(f"need one IP per node: {num_nodes} nodes, {len(ips)} IPs")
    if not 0 <= node_rank < num_nodes:
        raise ValueError(f"node_rank {node_rank} is not in 0..{num_nodes - 1}")
    if any(not ip or "\n" in ip for ip in ips):
        raise ValueError(f"node IPs must be non-empty single lines: {ips!r}")
    task_id = f"suanli-job-{job_id}"
    info = {"cluster_name": cluster, "cloud": "suanli", "region": None, "zone": None}
    return {
        "SKYPILOT_TASK_ID": task_id,
        "SKYPILOT_TASK_IDS": task_id,
        "SKYPILOT_NUM_NODES": str(num_nodes),
        "SKYPILOT_NODE_RANK": str(node_rank),
        "SKYPILOT_NODE_IPS": "\n".join(ips),
        "SKYPILOT_NUM_GPUS_PER_NODE": str(gpus_per_node),
        "SKYPILOT_SETUP_NODE_RANK": str(node_rank),
        "SKYPILOT_SETUP_NODE_IPS": "\n".join(ips),
        "SKYPILOT_SETUP_NUM_GPUS_PER_NODE": str(gpus_per_node),
        "SKYPILOT_CLUSTER_INFO": json.dumps(info),
        "SKYPILOT_USER": user,
        "SKYPILOT_NUM_JOBS": "1",
        "SKYPILOT_JOB_RANK": "0",
    }


# ---- local file mounts ------------------------------------------------------------------------------

MOUNTS_DIR = "mounts"


@dataclass(frozen=True)
class MountPlace:
    """Where the job finds one mount, and the link suanli makes for it (None: nothing to make)."""

    target: str  # as the task file wrote it
    source: str  # the file or folder on this machine
    path: str  # where the job finds it
    link: str | None


def _inside(path: Path, folder: Path) -> bool:
    return os.path.commonpath([path, folder]) == str(folder)


def _mounts_of(spec: JobSpec | Mapping[str, Any]) -> tuple[Path, list[tuple[str, str]]]:
    """(workdir, [(target, source)]) of a JobSpec or of the dict the store keeps of one."""
    if isinstance(spec, Mapping):
        pairs = [(str(m["target"]), str(m["source"])) for m in spec.get("mounts") or []]
        workdir = spec.get("workdir")
    else:
        pairs = [(m.target, m.source) for m in spec.mounts]
        workdir = spec.workdir
    return Path(workdir or ".").resolve(), pairs


def mount_places(spec: JobSpec | Mapping[str, Any], run_dir: str | Path) -> list[MountPlace]:
    """Where each of the spec's mounts goes (pure: nothing is touched). The rule:

    - a relative target (data, ./configs) is a link at that path in the workdir, where the job runs;
    - a target that already is the source (~/.netrc: ~/.netrc, the same machine) needs nothing;
    - any other target (/sft, ~/.cache/x) is a link under RUN_DIR/mounts/ (root/sft, home/.cache/x):
      suanli does not write into / or the home folder, so the job finds it through $SUANLI_FILE_MOUNTS
      (a JSON map of target to path) or $SUANLI_MOUNTS_DIR, and the load notes say so.
    """
    workdir, pairs = _mounts_of(spec)
    folder = Path(run_dir).resolve() / MOUNTS_DIR
    places = []
    for written, source in pairs:
        if written.startswith("~") or os.path.isabs(written):
            target = Path(os.path.expanduser(written))
            if os.path.realpath(target) == os.path.realpath(source):
                places.append(MountPlace(written, source, str(target), None))
                continue
            under_home = written.startswith("~")
            rel = os.path.relpath(target, Path.home()) if under_home else os.path.relpath(target, "/")
            link = folder / ("home" if under_home else "root") / rel
        else:
            link = workdir / written
        link = Path(os.path.normpath(link))
        places.append(MountPlace(written, source, str(link), str(link)))
    return places


def _make_parents(link: Path, allowed: Path, target: str) -> None:
    """Create the missing folders above `link`, one level at a time, each existing one checked to lead
    nowhere outside `allowed` before anything is made inside it."""
    current = allowed
    for part in link.parent.relative_to(allowed).parts:
        current = current / part
        if current.is_symlink() or current.exists():
            if not _inside(Path(os.path.realpath(current)), allowed) or not current.is_dir():
                raise SuanliError(
                    f"file_mounts.{target}: {current} leads outside {allowed} or is not a folder; suanli "
                    "writes only inside it"
                )
        else:
            current.mkdir()


def prepare_mounts(spec: JobSpec | Mapping[str, Any], run_dir: str | Path) -> dict[str, str]:
    """Make the spec's local mounts reachable by the job (see mount_places) and return the variables to
    add to its environment: SUANLI_MOUNTS_DIR and SUANLI_FILE_MOUNTS ({target: path}, JSON).

    Writes only symlinks, only inside the workdir or RUN_DIR/mounts (a folder inside either that is a
    link to somewhere else is refused), and never replaces a file: a path that exists and is not already
    the right link is a SuanliError. Safe to call again for the next attempt."""
    workdir = _mounts_of(spec)[0]
    run_root = Path(run_dir).resolve()
    places = mount_places(spec, run_root)
    if places:
        run_root.mkdir(mode=0o700, parents=True, exist_ok=True)  # the executor normally made it
    mapping: dict[str, str] = {}
    for place in places:
        mapping[place.target] = place.path
        if place.link is None:
            continue
        link = Path(place.link)
        allowed = run_root if _inside(link, run_root / MOUNTS_DIR) else workdir
        if not _inside(link, allowed) or link == allowed:
            raise SuanliError(
                f"file_mounts.{place.target}: {link} is outside {allowed}; suanli writes only there"
            )
        try:
            _make_parents(link, allowed, place.target)
            if link.is_symlink() and os.readlink(link) == place.source:
                continue
            if link.exists() or link.is_symlink():
                raise SuanliError(
                    f"file_mounts.{place.target}: {link} already exists; suanli does not replace it with a "
                    f"link to {place.source} (remove it, or change the target)"
                )
            link.symlink_to(place.source, target_is_directory=os.path.isdir(place.source))
        except OSError as e:
            raise SuanliError(f"file_mounts.{place.target}: cannot make {link} ({e.strerror or e})") from None
    return {
        "SUANLI_MOUNTS_DIR": str(run_root / MOUNTS_DIR),
        "SUANLI_FILE_MOUNTS": json.dumps(mapping, sort_keys=True),
    }


def mount_notes(mounts: Sequence[Any]) -> list[str]:
    """The load notes for mounts whose target suanli cannot create (absolute, or under ~ and not the
    source itself): the job finds them through $SUANLI_FILE_MOUNTS instead."""
    notes = []
    for m in mounts:
        if (m.target.startswith("~") or os.path.isabs(m.target)) and os.path.realpath(
            os.path.expanduser(m.target)
        ) != os.path.realpath(m.source):
            notes.append(
                f"file_mounts.{m.target}: suanli does not write into / or your home folder; the job finds "
                f"{m.source} under $SUANLI_MOUNTS_DIR (the map is in $SUANLI_FILE_MOUNTS)"
            )
    return notes


# ---- the reference --------------------------------------------------------------------------------


def fields_reference() -> str:
    """The docs/cli.md section that lists SkyPilot's task fields by what suanli does with them."""
    lines = [
        "## SkyPilot task files",
        "",
        "`suanli run` and `suanli submit` read a SkyPilot task file unchanged. Fields that only configure",
        "SkyPilot's clouds or serving layer are dropped with a note (`suanli run FILE --dry-run` prints",
        "them); fields a pool cannot honour are refused with one line that says why (exit code 2). A file",
        "with several YAML documents (a SkyPilot pipeline or job group) is refused: put each task in a file",
        "of its own. SkyPilot's variables (SKYPILOT_NODE_RANK, SKYPILOT_NODE_IPS, SKYPILOT_NUM_NODES,",
        "SKYPILOT_NUM_GPUS_PER_NODE, SKYPILOT_TASK_ID, ...) are set for every node.",
        "",
    ]
    for title, table in (("Task fields", TASK_FIELDS), ("`resources` fields", RESOURCE_FIELDS)):
        lines += [f"### {title}", "", "| field | on a pool | why |", "|---|---|---|"]
        for status in Status:
            for name, rule in table.items():
                if rule.status is status:
                    lines.append(f"| `{name}` | {status.value} | {rule.why} |")
        lines.append("")
    lines += [
        "Also refused, each with one line: a `workdir` that is a git repository (url/ref), `secrets` as a",
        "list (secrets kept by a SkyPilot API server), accelerators chosen by GPU memory (`24GB+`) and",
        "fractional accelerator counts (`A100:0.5`). A secret or env whose value is null must be given",
        "on the command line (`--env NAME=VALUE`, or `--env NAME` to pass yours); a name the file lists",
        "under `secrets:` stays a secret.",
        "",
        "Local `file_mounts`: the source is read relative to the job file (else to the current folder)",
        "and must exist at submit time. A relative target is a link in the workdir; a target that is",
        "the source itself needs nothing; any other target (absolute, or under `~`) is a link under the",
        "attempt's `mounts/` folder, which the job finds through `$SUANLI_FILE_MOUNTS` (a JSON map of",
        "target to path) and `$SUANLI_MOUNTS_DIR`: suanli writes only inside the workdir and the",
        "attempt's folder.",
        "",
    ]
    return "\n".join(lines)
