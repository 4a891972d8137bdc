"""The job spec: SkyPilot task files load unchanged; each bad input names its field, value and line."""

from pathlib import Path

import pytest

from suanli.core.errors import BadInput
from suanli.jobs import JobState, check_transition, load_spec
from suanli.jobs.states import TRANSITIONS, IllegalTransition

SKYPILOT_TASK = """\
# A SkyPilot task file, as its docs write them.
name: train-llm

resources:
  accelerators: A100:8
  cpus: 32+
  memory: 128+
  use_spot: true
  disk_size: 256
  cloud: gcp
  region: us-central1

num_nodes: 2

workdir: .

setup: |
  pip install -r requirements.txt

run: |
  torchrun --nproc_per_node=8 train.py

envs:
  MODEL_NAME: llama
  BATCH: 32
  DEBUG: false
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return load_spec(path)


def test_skypilot_task_loads_unchanged(tmp_path):
    spec = load(tmp_path, SKYPILOT_TASK)
    assert spec.name == "train-llm"
    assert spec.resources.accelerators == {"A100": 8}
    assert spec.resources.cpus == 32
    assert spec.resources.memory_bytes == 128 * 2**30
    assert spec.resources.use_spot and spec.resources.cloud == "gcp"
    assert spec.num_nodes == 2 and spec.world_size == 2
    assert spec.workdir == str(tmp_path)
    assert spec.envs == {"MODEL_NAME": "llama", "BATCH": "32", "DEBUG": "false"}
    assert "torchrun" in spec.run


def test_accelerator_forms_and_case(tmp_path):
    spec = load(tmp_path, "run: x\nresources:\n  accelerators: {a100-80gb: 4}\n")
    assert spec.resources.accelerators == {"A100-80GB": 4}
    spec = load(tmp_path, "run: x\nresources:\n  accelerators: h100\n")
    assert spec.resources.accelerators == {"H100": 1}


def test_defaults(tmp_path):
    spec = load(tmp_path, "run: echo hi\n")
    assert spec.name == "job"
    assert spec.resources.cpus == 1 and spec.resources.memory_bytes == 0
    assert spec.retries == 0 and spec.priority == 0 and spec.num_workers == 1
    assert spec.workdir == str(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nrun: [\n", ":3: yaml: not valid YAML"),
        ("name: x\nrun: a\nresorces:\n  cpus: 2\n", ":3: resorces="),
        ("run: a\nresources:\n  cpu: 2\n", "did you mean: cpus"),
        ("run: a\nresources:\n  cpus: -2\n", ":3: resources.cpus=-2: must be a number of CPUs > 0"),
        ("run: a\nresources:\n  cpus: 0\n", "resources.cpus=0"),
        ("run: a\nresources:\n  memory: 0GB\n", "resources.memory=0GB"),
        ("run: a\nresources:\n  accelerators: A100:0\n", "resources.accelerators.A100=0"),
        ("run: a\nresources:\n  accelerators: A1000:2\n", "did you mean: A100"),
        ("run: a\nworkdir: nowhere\n", ":2: workdir=nowhere: must be an existing directory"),
        ("run: a\nnum_nodes: 0\n", "num_nodes=0: must be greater than or equal to 1"),
        ("run: a\nretries: -1\n", "retries=-1"),
        ("name: x\n", "run=(missing): is required"),
        ("- a\n- b\n", "spec=list: must be a mapping"),
        ("run: a\nenvs:\n  TOKEN:\n", "envs.TOKEN"),
        ("run: a\nbackend: slurm\n", "backend=slurm"),
    ],
)
def test_bad_specs_name_field_value_and_line(tmp_path, text, expected):
    with pytest.raises(BadInput) as e:
        load(tmp_path, text)
    message = str(e.value)
    assert expected in message
    assert "\n" not in message
    assert e.value.exit_code == 2


def test_unknown_field_suggests_nearest(tmp_path):
    with pytest.raises(BadInput) as e:
        load(tmp_path, "run: a\nretires: 3\n")
    assert "did you mean: retries" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")


def test_transitions_are_enforced_in_one_place():
    check_transition(1, JobState.PENDING, JobState.RUNNING)
    check_transition(1, JobState.RUNNING, JobState.PENDING)  # retry or preemption
    for terminal in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
        assert terminal.is_terminal and not TRANSITIONS[terminal]
        with pytest.raises(IllegalTransition):
            check_transition(1, terminal, JobState.RUNNING)
    with pytest.raises(IllegalTransition):
        check_transition(1, JobState.PENDING, JobState.SUCCEEDED)
