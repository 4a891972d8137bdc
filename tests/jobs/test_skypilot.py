"""SkyPilot's task fields on a pool: accelerator choices, secrets, file mounts, notes, refusals, the
SKYPILOT_* variables, and the mounts a job is given."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from suanli.core.errors import BadInput, SuanliError
from suanli.core.specfile import near_field
from suanli.jobs.skypilot import (
    RESOURCE_FIELDS,
    TASK_FIELDS,
    Status,
    fields_reference,
    mount_places,
    prepare_mounts,
    skypilot_env,
)
from suanli.jobs.spec import FileMount, JobSpec, ResourcesSpec, load_spec, parse_spec, redacted

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, text: str, **kwargs: object) -> JobSpec:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return load_spec(path, **kwargs)  # type: ignore[arg-type]


def refused(tmp_path: Path, text: str, **kwargs: object) -> str:
    with pytest.raises(BadInput) as e:
        load(tmp_path, text, **kwargs)
    message = str(e.value)
    assert "\n" not in message and e.value.exit_code == 2
    return message


# ---- did you mean --------------------------------------------------------------------------------


def test_skypilot_fields_are_not_taken_for_typos(tmp_path):
    spec = load(tmp_path, "run: a\nservice: {replicas: 2}\nsecrets: {TOKEN: t}\n")
    assert spec.secrets == {"TOKEN": "t"}
    assert any(n.startswith("service: ignored on a pool") for n in spec.notes)
    for typo in ("servce", "secrts", "volumez", "confg"):
        message = refused(tmp_path, f"run: a\n{typo}: 1\n")
        assert "did you mean: user" not in message and "did you mean: retries" not in message, message
    assert "did you mean: retries" in refused(tmp_path, "run: a\nretires: 3\n")
    assert "did you mean: num_nodes" in refused(tmp_path, "run: a\nnum_node: 3\n")


def test_near_field_needs_a_close_name():
    names = ["name", "run", "setup", "user", "retries", "resources", "num_nodes"]
    assert near_field("service", names) is None
    assert near_field("secrets", names) is None
    assert near_field("resorces", names) == "did you mean: resources?"


# ---- accelerators --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accelerators", "choices", "preference"),
    [
        ("A100:8", [{"A100": 8}], "ordered"),
        ("{L4: 8, A100: 8}", [{"L4": 8}, {"A100": 8}], "any"),
        ("{L4:8, a10g:8}", [{"L4": 8}, {"A10G": 8}], "any"),  # YAML reads these keys with null values
        ("{L4, A10}", [{"L4": 1}, {"A10": 1}], "any"),
        ("['V100:1', 'T4:1']", [{"V100": 1}, {"T4": 1}], "ordered"),
        ("{A100-80GB:8, A100-80GB:4, A100-80GB:8}", [{"A100-80GB": 8}, {"A100-80GB": 4}], "any"),
        ("tpu-v5p-8", [{"tpu-v5p": 4}], "ordered"),  # 8 TensorCores, 2 per chip
        ("tpu-v6e-8", [{"tpu-v6e": 8}], "ordered"),  # named by chips
    ],
)
def test_accelerator_forms(tmp_path, accelerators, choices, preference):
    res = load(tmp_path, f"run: a\nresources:\n  accelerators: {accelerators}\n").resources
    assert res.accelerator_choices == choices
    assert res.accelerators == choices[0]  # the preferred choice, as before
    assert res.accelerator_preference == preference


def test_each_choice_is_a_request(tmp_path):
    res = load(tmp_path, "run: a\nresources:\n  cpus: 8\n  accelerators: {L4: 8, A100: 4}\n").resources
    assert [(r.cpus, r.accelerators) for r in res.choice_resources()] == [(8, {"L4": 8}), (8, {"A100": 4})]
    assert [r.accelerators for r in ResourcesSpec().choice_resources()] == [{}]


def test_gpus_is_another_name_for_accelerators(tmp_path):
    assert load(tmp_path, "run: a\nresources: {gpus: H100:8}\n").resources.accelerators == {"H100": 8}
    assert "give one of them" in refused(tmp_path, "run: a\nresources: {gpus: H100, accelerators: L4}\n")


def test_alternatives_become_choices(tmp_path):
    text = """\
run: a
resources:
  cpus: 4+
  {key}:
    - {{accelerators: A100:8, cloud: gcp, cpus: 16}}
    - {{accelerators: H100:8, use_spot: true, memory: 256}}
"""
    any_of = load(tmp_path, text.format(key="any_of"))
    assert any_of.resources.accelerator_choices == [{"A100": 8}, {"H100": 8}]
    assert any_of.resources.accelerator_preference == "any"
    assert any_of.resources.cpus == 16 and any_of.resources.memory_bytes == 256 * 2**30
    notes = "\n".join(any_of.notes)
    assert "the alternatives' cloud, use_spot ignored on a pool" in notes
    assert "different cpus; 16 is reserved for every choice" in notes
    ordered = load(tmp_path, text.format(key="ordered"))
    assert ordered.resources.accelerator_preference == "ordered"
    both = "run: a\nresources:\n  any_of: [{accelerators: L4}]\n  ordered: [{accelerators: T4}]\n"
    assert "cannot be given with resources.any_of" in refused(tmp_path, both)
    assert "cannot be nested" in refused(tmp_path, "run: a\nresources:\n  any_of: [{ordered: []}]\n")
    assert "is not a known resources field" in refused(
        tmp_path, "run: a\nresources:\n  any_of: [{colud: gcp}]\n"
    )
    assert "must be a list of resource mappings" in refused(tmp_path, "run: a\nresources:\n  any_of: gcp\n")


def test_accelerators_a_pool_cannot_hold_are_refused(tmp_path):
    assert "choice by GPU memory" in refused(tmp_path, "run: a\nresources: {accelerators: 24GB+:1}\n")
    assert "whole COUNT" in refused(tmp_path, "run: a\nresources: {accelerators: A100:0.5}\n")
    assert "did you mean: A100" in refused(tmp_path, "run: a\nresources: {accelerators: [T4:1, A1000:1]}\n")


def test_a_stored_spec_keeps_its_choices():
    stored = {"accelerators": {"L4": 8}, "accelerator_choices": [{"L4": 8}, {"A100": 8}]}
    res = ResourcesSpec.model_validate({**stored, "accelerator_preference": "any"})
    assert res.accelerator_choices == [{"L4": 8}, {"A100": 8}] and res.accelerators == {"L4": 8}
    with pytest.raises(BadInput, match=r"must be the first of resources\.accelerator_choices"):
        ResourcesSpec.model_validate({**stored, "accelerators": {"A100": 8}})


# ---- secrets -------------------------------------------------------------------------------------


def test_secrets_are_kept_apart_and_redacted(tmp_path):
    spec = load(
        tmp_path, "run: a\nenvs: {MODEL: m}\nsecrets: {HF_TOKEN: null}\n", env_overrides={"HF_TOKEN": "hf_x"}
    )
    assert spec.secrets == {"HF_TOKEN": "hf_x"} and spec.envs == {"MODEL": "m"}
    doc = redacted(spec)
    assert doc["secrets"] == {"HF_TOKEN": "***"} and "hf_x" not in json.dumps(doc)
    assert spec.secrets == {"HF_TOKEN": "hf_x"}  # redacting does not change the spec


def test_a_secret_without_a_value_is_one_line(tmp_path):
    message = refused(tmp_path, "run: a\nsecrets:\n  HF_TOKEN: null\n")
    assert ":3: secrets.HF_TOKEN=null: needs a value" in message and "--env HF_TOKEN" in message


def test_secrets_that_suanli_cannot_hold_are_refused(tmp_path):
    assert "either an env or a secret" in refused(tmp_path, "run: a\nenvs: {T: 1}\nsecrets: {T: 2}\n")
    assert "SkyPilot API server" in refused(tmp_path, "run: a\nsecrets: [my-token]\n")
    assert "managed_secrets: is not supported on a pool" in refused(
        tmp_path, "run: a\nmanaged_secrets: [t]\n"
    )


# ---- what a pool cannot run ----------------------------------------------------------------------


def test_fields_a_pool_cannot_run_are_refused_with_why(tmp_path):
    assert "pool: is not supported on a pool" in refused(tmp_path, "run: a\npool: {workers: 2}\n")
    message = refused(tmp_path, "run: a\nworkdir:\n  url: https://github.com/x/y.git\n  ref: main\n")
    assert ":2: workdir=https://github.com/x/y.git" in message and "clone it" in message
    message = refused(tmp_path, "name: a\nrun: a\n---\nname: b\nrun: b\n")
    assert "SkyPilot pipeline or job group" in message and ":3:" in message
    with pytest.raises(BadInput, match="written by suanli"):
        parse_spec({"run": "a", "notes": ["x"]})


def test_every_refused_or_ignored_field_says_why():
    for table in (TASK_FIELDS, RESOURCE_FIELDS):
        for name, rule in table.items():
            assert len(rule.why) > 10, name
    assert {r.status for r in TASK_FIELDS.values()} == set(Status) - {Status.PLANNER}


def test_the_cli_reference_lists_the_fields():
    assert fields_reference() in (REPO / "docs" / "cli.md").read_text()


# ---- file mounts ---------------------------------------------------------------------------------


def test_file_mounts_are_resolved_and_checked(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "cfg.yaml").write_text("x: 1\n")
    spec = load(
        tmp_path,
        "run: a\nenvs: {SIZE: 8B}\nfile_mounts:\n  /configs/${SIZE}: ./data\n  local.yaml: cfg.yaml\n"
        "  /bucket: s3://b/p\n  /out: {name: ckpt, mode: MOUNT}\n  /up: {source: ./data, store: s3}\n",
    )
    assert [(m.target, m.source) for m in spec.mounts] == [
        ("/configs/8B", str(tmp_path / "data")),
        ("local.yaml", str(tmp_path / "cfg.yaml")),
        ("/up", str(tmp_path / "data")),
    ]
    notes = "\n".join(spec.notes)
    assert "file_mounts./bucket: ignored on a pool: s3://b/p" in notes
    assert "file_mounts./out: ignored on a pool: SkyPilot mounts the bucket ckpt" in notes
    assert "file_mounts./up: the s3 bucket is ignored on a pool; its local source ./data is mounted" in notes
    assert "file_mounts./configs/8B: suanli does not write into /" in notes
    assert "must be an existing local file or folder" in refused(
        tmp_path, "run: a\nfile_mounts: {/x: ./nope}\n"
    )
    assert "inside the workdir" in refused(tmp_path, "run: a\nfile_mounts: {../up: ./data}\n")
    assert "your own home folder" in refused(tmp_path, "run: a\nfile_mounts: {'~root/x': ./data}\n")
    assert "must be a local path" in refused(tmp_path, "run: a\nfile_mounts: {/x: [a, b]}\n")


def test_a_relative_source_falls_back_to_the_current_folder_as_skypilot_reads_it(tmp_path, monkeypatch):
    (tmp_path / "repo" / "examples" / "app").mkdir(parents=True)
    job_dir = tmp_path / "repo" / "examples" / "jobs"
    job_dir.mkdir()
    (job_dir / "job.yaml").write_text("run: a\nworkdir: examples/app\nfile_mounts: {/app: examples/app}\n")
    monkeypatch.chdir(tmp_path / "repo")
    spec = load_spec(job_dir / "job.yaml")
    assert spec.workdir == str(tmp_path / "repo" / "examples" / "app")
    assert spec.mounts[0].source == spec.workdir
    assert any("from the current folder" in n for n in spec.notes)


@pytest.fixture
def mount_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[JobSpec, Path]:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "key").write_text("k")
    (home / ".netrc").write_text("n")
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    (work / "configs").mkdir(parents=True)
    (work / "sft").mkdir()
    text = (
        "run: a\nworkdir: .\nfile_mounts:\n  /sft: ./sft\n  ~/.ssh/id_rsa: ~/.ssh/key\n"
        "  ~/.netrc: ~/.netrc\n  data/cfg: ./configs\n"
    )
    (work / "job.yaml").write_text(text)
    return load_spec(work / "job.yaml"), tmp_path / "run"


def test_prepare_mounts_links_inside_the_workdir_and_run_folder_only(mount_job):
    spec, run_dir = mount_job
    work, home = Path(spec.workdir), Path(os.environ["HOME"])
    before_home = sorted(p.name for p in home.rglob("*"))
    env = prepare_mounts(spec, run_dir)
    mapping = json.loads(env["SUANLI_FILE_MOUNTS"])
    mounts = run_dir.resolve() / "mounts"
    assert env["SUANLI_MOUNTS_DIR"] == str(mounts)
    assert mapping == {
        "/sft": str(mounts / "root" / "sft"),
        "~/.ssh/id_rsa": str(mounts / "home" / ".ssh" / "id_rsa"),
        "~/.netrc": str(home / ".netrc"),  # already there: the same file
        "data/cfg": str(work / "data" / "cfg"),
    }
    assert (mounts / "root" / "sft").resolve() == work / "sft"
    assert (mounts / "home" / ".ssh" / "id_rsa").read_text() == "k"
    assert (work / "data" / "cfg").is_symlink() and (work / "data" / "cfg").resolve() == work / "configs"
    assert sorted(p.name for p in home.rglob("*")) == before_home  # nothing written in the home folder
    assert prepare_mounts(spec, run_dir) == env  # the next attempt finds its links made
    assert prepare_mounts(spec.model_dump(mode="json"), run_dir) == env  # or the spec as stored
    assert [p.link for p in mount_places(spec, run_dir)].count(None) == 1


def test_prepare_mounts_never_replaces_or_escapes(mount_job, tmp_path):
    spec, run_dir = mount_job
    work = Path(spec.workdir)
    (work / "data").mkdir()
    (work / "data" / "cfg").write_text("mine")
    with pytest.raises(SuanliError, match="already exists"):
        prepare_mounts(spec, run_dir)
    assert (work / "data" / "cfg").read_text() == "mine"
    (work / "data" / "cfg").unlink()
    (work / "data").rmdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (work / "data").symlink_to(outside)  # a folder in the workdir that leads elsewhere
    with pytest.raises(SuanliError, match="leads outside"):
        prepare_mounts(spec, run_dir)
    deeper = spec.model_copy(
        update={"mounts": [FileMount(target="data/sub/cfg", source=str(work / "configs"))]}
    )
    with pytest.raises(SuanliError, match="leads outside"):
        prepare_mounts(deeper, run_dir)
    assert list(outside.iterdir()) == []  # not even the folder `sub`


# ---- SkyPilot's variables ------------------------------------------------------------------------


def test_skypilot_env_for_one_node_of_two():
    env = skypilot_env(7, 2, 1, ["10.0.0.1", "10.0.0.2"], 8, user="ana")
    assert env["SKYPILOT_NODE_RANK"] == env["SKYPILOT_SETUP_NODE_RANK"] == "1"
    assert env["SKYPILOT_NODE_IPS"] == env["SKYPILOT_SETUP_NODE_IPS"] == "10.0.0.1\n10.0.0.2"
    assert env["SKYPILOT_NUM_NODES"] == "2" and env["SKYPILOT_NUM_GPUS_PER_NODE"] == "8"
    assert env["SKYPILOT_TASK_ID"] == "suanli-job-7" and env["SKYPILOT_USER"] == "ana"
    assert json.loads(env["SKYPILOT_CLUSTER_INFO"])["cloud"] == "suanli"
    assert env["SKYPILOT_NUM_JOBS"] == "1" and env["SKYPILOT_JOB_RANK"] == "0"
    assert all(isinstance(v, str) for v in env.values())
    with pytest.raises(ValueError, match="one IP per node"):
        skypilot_env(7, 2, 0, ["10.0.0.1"], 8)
    with pytest.raises(ValueError, match="node_rank"):
        skypilot_env(7, 2, 2, ["a", "b"], 8)
