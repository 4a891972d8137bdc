"""Real SkyPilot task files (tests/jobs/skypilot/, see SOURCE.md) load and dry-run unchanged through
`suanli run FILE --dry-run --json`; the few a pool cannot run are refused with one line, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from jobhelpers import invoke
from suanli.jobs.spec import load_spec
from suanli.store.store import Store

HERE = Path(__file__).parent / "skypilot"
FILES = sorted(p.relative_to(HERE).as_posix() for p in HERE.rglob("*.yaml"))
# The files a pool cannot run, and the words of the one line that says why.
REFUSED = {
    "examples/elastic_training/job.yaml": "SkyPilot pipeline or job group",
    "llm/gpt-2/gpt2-pipeline.yaml": "SkyPilot pipeline or job group",
    "llm/fairseq2/multinode.sky.yaml": "git repository",
    "examples/amd/amd_pytorch_mnist.yaml": "is not a known accelerator",  # MI300: the catalog knows MI300X
}


@pytest.fixture
def skypilot_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run as the files' own usage lines do: from the repository root, with the SSH key SkyPilot makes."""
    home = tmp_path / "user"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "sky-key").write_text("not a key\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(HERE)
    return HERE


def null_values(path: str) -> list[str]:
    """--env flags for what the file leaves null (envs and secrets), as its usage line passes them."""
    try:
        data = yaml.safe_load((HERE / path).read_text())
    except yaml.YAMLError:
        return []
    flags = []
    for section in ("envs", "secrets"):
        values = data.get(section) if isinstance(data, dict) else None
        if isinstance(values, dict):
            flags += [f"--env={name}=value-of-{name}" for name, v in values.items() if v is None]
    return flags


def register_pool(paths: list[str]) -> None:
    """Enough nodes of each accelerator the loadable files ask for first (what the pool check reads)."""
    wanted: dict[str | None, int] = {}
    for path in paths:
        env = dict(flag.removeprefix("--env=").split("=", 1) for flag in null_values(path))
        try:
            spec = load_spec(path, env_overrides=env)
        except Exception:
            continue
        name = next(iter(spec.resources.accelerators), None)
        wanted[name] = max(wanted.get(name, 0), spec.num_nodes)
    store = Store()
    for name, count in wanted.items():
        for i in range(count):
            store.register_node(f"{name or 'cpu'}-{i}", 256, 4 * 2**40, name, 16 if name else 0)


def test_the_shipped_files_are_the_ones_source_md_names():
    listed = {line.split("|")[1].strip() for line in (HERE / "SOURCE.md").read_text().splitlines()
              if line.startswith("| ") and line.split("|")[1].strip().endswith(".yaml")}  # fmt: skip
    assert listed == set(FILES)
    assert len(FILES) >= 40


def test_nine_in_ten_real_task_files_load_and_dry_run(skypilot_checkout):
    register_pool(FILES)
    loaded, refused = [], {}
    for path in FILES:
        result = invoke("run", path, "--dry-run", "--json", *null_values(path))
        if result.exit_code == 0:
            doc = json.loads(result.stdout)
            assert doc["dry_run"] is True and doc["would_start_now"] is not None, path
            loaded.append(path)
        else:
            message = result.stderr.strip().splitlines()
            assert result.exit_code == 2, (path, result.stderr)
            assert len(message) == 1 and message[0].startswith(f"error: {path}"), (path, message)
            refused[path] = message[0]
    share = len(loaded) / len(FILES)
    assert share >= 0.9, refused
    assert set(refused) <= set(REFUSED), refused
    for path, line in refused.items():
        assert REFUSED[path] in line, line


def test_accelerator_sets_lists_and_alternatives_become_choices(skypilot_checkout):
    spec = load_spec("llm/llama-3_1/llama-3_1.yaml", env_overrides={"HF_TOKEN": "t"})
    res = spec.resources
    assert res.accelerators == {"L4": 8} and res.accelerator_preference == "any"
    assert res.accelerator_choices[:3] == [{"L4": 8}, {"A10G": 8}, {"A10": 8}]
    assert len(res.accelerator_choices) == 8
    ordered = load_spec("examples/serve/spot_policy/multi_accelerators.yaml").resources
    assert ordered.accelerator_choices == [{"V100": 1}, {"T4": 1}]
    assert ordered.accelerator_preference == "ordered"
    any_of = load_spec("llm/deepseek-r1/deepseek-r1-671B.yaml").resources  # a set, any_of on use_spot
    assert any_of.accelerator_choices == [{"H200": 8}, {"H100": 8}, {"A100-80GB": 8}]
    candidates = load_spec("examples/benchmark/timm.yaml").resources
    assert candidates.accelerator_choices == [{"T4": 4}, {"V100": 4}]
    assert candidates.accelerator_preference == "any"
    assert load_spec("examples/tpu/tpuvm_mnist.yaml").resources.accelerators == {"tpu-v2": 4}


def test_cloud_only_fields_are_notes(skypilot_checkout):
    spec = load_spec("llm/kimi-k2/kimi-k2.sky.yaml", env_overrides={"HF_TOKEN": "t"})
    notes = "\n".join(spec.notes)
    assert "service: ignored on a pool" in notes
    assert "resources.network_tier: ignored on a pool" in notes
    assert "resources.image_id: kept for the planner" in notes
    assert spec.secrets == {"HF_TOKEN": "t"} and "HF_TOKEN" not in spec.envs
    config = load_spec("examples/aws_efa/nccl_efa.yaml")
    assert any(n.startswith("config: ignored on a pool") for n in config.notes)


def test_local_file_mounts_are_resolved_and_buckets_noted(skypilot_checkout):
    spec = load_spec("llm/llama-3_1-finetuning/lora.yaml", env_overrides={"HF_TOKEN": "t"})
    assert [(m.target, m.source) for m in spec.mounts] == [
        ("/configs", str(HERE / "llm" / "llama-3_1-finetuning" / "configs"))
    ]
    assert any(
        "file_mounts./output: ignored on a pool" in n and "sky-llama-31-checkpoints" in n for n in spec.notes
    )
    gpt2 = load_spec("llm/gpt-2/gpt2-train.yaml")
    assert gpt2.mounts == [] and any("gs://gpt2-data-skypilot" in n for n in gpt2.notes)


def test_a_refused_file_is_one_line_on_stderr_and_nothing_on_stdout(skypilot_checkout):
    from jobhelpers import cli

    proc = cli("run", str(HERE / "llm" / "gpt-2" / "gpt2-pipeline.yaml"), "--dry-run", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "gpt2-pipeline.yaml:26: yaml: holds more than one YAML document" in lines[0]
    assert "put each task in a file of its own" in lines[0]
