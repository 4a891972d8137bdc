"""Trace loaders and cluster specs, including the bad inputs a user will make."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.core.errors import BadInput
from suanli.schedule.simulate import load_throughputs, load_trace, parse_cluster


def write(tmp_path: Path, text: str, name: str = "t.csv") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_generic_csv_with_optional_columns(tmp_path):
    path = write(
        tmp_path, "job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\nj1,0,2,60,ann,a100\nj2,5,1,30,,\n"
    )
    trace = load_trace(path)
    assert [(j.id, j.gpus, j.duration_s, j.user, j.gpu_type) for j in trace.jobs] == [
        ("j1", 2, 60.0, "ann", "A100"),
        ("j2", 1, 30.0, "default", None),
    ]
    assert trace.invalid == []


def test_missing_columns_are_named(tmp_path):
    path = write(tmp_path, "job_id,submit_time_s,duration_s\nj1,0,60\n")
    with pytest.raises(BadInput) as err:
        load_trace(path)
    assert "num_gpus" in str(err.value) and err.value.exit_code == 2


def test_bad_rows_are_reported_with_line_numbers(tmp_path):
    path = write(
        tmp_path, "job_id,submit_time_s,num_gpus,duration_s\nok,0,1,10\nneg,1,1,-5\nnan,2,x,10\nzero,3,0,10\n"
    )
    trace = load_trace(path)
    assert [j.id for j in trace.jobs] == ["ok"]
    assert trace.invalid[0].startswith("line 3: job neg has a negative duration")
    assert trace.invalid[1].startswith("line 4: num_gpus='x'")
    assert trace.invalid[2].startswith("line 5: job zero asks for 0 GPUs")


@pytest.mark.parametrize(
    ("spec", "nodes", "gpus", "types"),
    [
        ("16x4", 16, 64, {None}),
        ("16x8xA100,8x4xV100", 24, 160, {"A100", "V100"}),
        (" 2 x 8 x h100 ", 2, 16, {"H100"}),
    ],
)
def test_cluster_specs(spec, nodes, gpus, types):
    parsed = parse_cluster(spec)
    assert len(parsed) == nodes
    assert sum(n.gpus for n in parsed) == gpus
    assert {n.gpu_type for n in parsed} == types
    assert len({n.name for n in parsed}) == nodes


@pytest.mark.parametrize("spec", ["16y4", "x4", "16x4x", "0x4", "4x0", ""])
def test_unparseable_cluster_specs(spec):
    with pytest.raises(BadInput) as err:
        parse_cluster(spec)
    assert str(err.value).startswith("cluster") and err.value.exit_code == 2


def test_cluster_yaml(tmp_path):
    path = write(
        tmp_path,
        "nodes:\n"
        "  - {count: 2, gpus: 8, gpu_type: a100, cpus: 96, memory_gb: 1024}\n"
        "  - {count: 1, gpus: 4}\n",
        "c.yaml",
    )
    nodes = parse_cluster(path)
    assert [(n.gpus, n.gpu_type, n.cpus) for n in nodes] == [
        (8, "A100", 96.0),
        (8, "A100", 96.0),
        (4, None, 32.0),
    ]
    assert nodes[0].memory_bytes == 1024 * 1024**3
    bad = write(tmp_path, "nodes:\n  - {count: 2, gpu: 8}\n", "bad.yaml")
    with pytest.raises(BadInput, match="allowed keys"):
        parse_cluster(bad)


def test_tiresias_trace(traces_dir):
    trace = load_trace(str(traces_dir / "tiresias" / "60_job.csv"))
    assert len(trace.jobs) == 60
    assert sum(j.gpus * j.duration_s for j in trace.jobs) == 26624  # SOURCE.md: 26,624 GPU-s


def test_philly_one_vc_or_all(traces_dir):
    path = str(traces_dir / "pollux" / "philly.csv")
    one = load_trace(path, vc="103959")
    assert len(one.jobs) == 1934 and one.jobs[0].submit_s == 0
    assert all(a.submit_s <= b.submit_s for a, b in zip(one.jobs, one.jobs[1:], strict=False))
    with pytest.raises(BadInput, match="must be one of"):
        load_trace(path, vc="nope")


def test_gavel_trace_needs_and_uses_throughputs(traces_dir):
    path = str(traces_dir / "gavel" / "msr" / "seed_0" / "103959.trace")
    with pytest.raises(BadInput, match="throughput"):
        load_trace(path)
    table = load_throughputs(traces_dir / "gavel" / "simulation_throughputs.json")
    trace = load_trace(path, throughputs=table)
    assert len(trace.jobs) == 986
    j = trace.jobs[0]
    assert dict(j.throughput)["V100"] == pytest.approx(1.0)
    assert dict(j.throughput)["K80"] < 1.0


ALIBABA_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,"
    "scheduled_time\n"
)


def test_alibaba_pod_list_keeps_scheduled_gpu_pods(tmp_path):
    path = write(
        tmp_path,
        ALIBABA_HEADER
        + "p0,12000,16384,1,1000,,LS,Running,100,5000,400\n"  # waited 300 s, held its GPU 4,600 s
        + "p1,6000,12288,1,460,,BE,Failed,50,90,60\n"  # a shared GPU counts as a whole one
        + "p2,4000,8192,0,0,,LS,Running,10,900,10\n"  # CPU-only: not a GPU job
        + "p3,4000,8192,1,1000,,BE,Pending,20,500,\n"  # never scheduled
        + "p4,88000,327680,8,1000,G2,Burstable,Succeeded,70,970,70\n",
        name="openb_pod_list_default.csv",
    )
    trace = load_trace(path)  # the header is recognised: no --format needed
    assert [(j.id, j.submit_s, j.gpus, j.duration_s, j.user) for j in trace.jobs] == [
        ("p1", 50.0, 1, 30.0, "BE"),
        ("p4", 70.0, 8, 900.0, "Burstable"),
        ("p0", 100.0, 1, 4600.0, "LS"),
    ]
    assert trace.invalid == []


def test_alibaba_bad_rows_are_reported(tmp_path):
    path = write(tmp_path, ALIBABA_HEADER + "p0,1,1,1,1000,,LS,Running,100,50,400\n")
    trace = load_trace(path, fmt="alibaba")
    assert trace.jobs == [] and "negative duration" in trace.invalid[0]


def test_the_alibaba_2023_trace_has_6203_scheduled_gpu_tasks(traces_dir):
    for name in ("openb_pod_list_default.csv", "openb_pod_list_gpuspec33.csv"):
        trace = load_trace(str(traces_dir / "alibaba" / "gpu-v2023" / name))
        assert len(trace.jobs) == 6203 and trace.invalid == []
        assert {j.user for j in trace.jobs} == {"LS", "BE", "Burstable", "Guaranteed"}
