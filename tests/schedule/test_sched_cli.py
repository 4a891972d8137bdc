"""`suanli simulate` as a user runs it: mounted on a throwaway Typer app that maps suanli errors the
way the main CLI does (message on stderr, exit code from the error)."""

from __future__ import annotations

import json

import pytest

from jobhelpers import invoke

JSON_FIELDS = {
    "policy",
    "jobs",
    "avg_jct_s",
    "median_jct_s",
    "p95_jct_s",
    "p99_jct_s",
    "avg_queue_s",
    "makespan_s",
    "utilization",
    "jain_fairness",
    "preemptions",
}

TRACE = "job_id,submit_time_s,num_gpus,duration_s,user\nA,0,2,10,ann\nB,1,4,5,bob\nC,2,1,3,ann\n"


@pytest.fixture
def trace_file(tmp_path):
    p = tmp_path / "trace.csv"
    p.write_text(TRACE)
    return str(p)


def test_json_is_one_document_with_the_documented_fields(trace_file):
    r = invoke(
        "simulate", "--trace", trace_file, "--cluster", "1x4", "--compare", "fifo,backfill,suanli", "--json"
    )
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [p["policy"] for p in doc["policies"]] == ["fifo", "backfill", "suanli"]
    for p in doc["policies"]:
        assert set(p) >= JSON_FIELDS
        assert p["jobs"] == 3
    fifo = doc["policies"][0]
    assert fifo["avg_jct_s"] == pytest.approx((10 + 14 + 16) / 3)  # A 0-10, B 10-15, C 15-18
    assert fifo["makespan_s"] == 18


def test_default_policy_and_table(trace_file):
    r = invoke("simulate", "--trace", trace_file, "--cluster", "1x4")
    assert r.exit_code == 0, r.stderr
    assert "suanli" in r.stdout and "avg" in r.stdout and "JCT" in r.stdout


def test_unknown_policy_lists_the_known_ones(trace_file):
    r = invoke("simulate", "--trace", trace_file, "--cluster", "1x4", "--policy", "fifx")
    assert r.exit_code == 2
    assert "policy=fifx" in r.stderr and "tiresias" in r.stderr and "did you mean: fifo" in r.stderr
    assert r.stdout == ""


def test_bad_cluster_spec(trace_file):
    r = invoke("simulate", "--trace", trace_file, "--cluster", "sixteen")
    assert r.exit_code == 2 and r.stderr.startswith("error: cluster=sixteen")
    assert len(r.stderr.strip().splitlines()) == 1


def test_invalid_jobs_stop_the_run_unless_skipped(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("job_id,submit_time_s,num_gpus,duration_s\nok,0,1,10\nneg,1,1,-5\nhuge,2,16,10\n")
    r = invoke("simulate", "--trace", str(p), "--cluster", "2x4")
    assert r.exit_code == 2
    assert "line 3: job neg has a negative duration" in r.stderr
    assert "line 4: job huge asks for 16 GPUs" in r.stderr
    r = invoke("simulate", "--trace", str(p), "--cluster", "2x4", "--skip-invalid", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["policies"][0]["jobs"] == 1 and len(doc["skipped"]) == 2
    assert "skipped 2 invalid job(s)" in r.stderr


def test_missing_columns(tmp_path):
    p = tmp_path / "cols.csv"
    p.write_text("job_id,submit_time_s,duration_s\nj,0,1\n")
    r = invoke("simulate", "--trace", str(p), "--cluster", "2x4")
    assert r.exit_code == 2 and "missing column(s) num_gpus" in r.stderr


def test_plots_are_written(trace_file, tmp_path):
    out = tmp_path / "plots"
    r = invoke(
        "simulate", "--trace", trace_file, "--cluster", "1x4", "--compare", "fifo,sjf", "--plot", str(out)
    )
    assert r.exit_code == 0, r.stderr
    assert (out / "jct_cdf.png").stat().st_size > 0 and (out / "utilization.png").stat().st_size > 0


def test_synthetic_trace_is_seeded():
    a = invoke("simulate", "--trace", "synthetic:200", "--cluster", "4x4", "--seed", "1", "--json")
    b = invoke("simulate", "--trace", "synthetic:200", "--cluster", "4x4", "--seed", "1", "--json")
    c = invoke("simulate", "--trace", "synthetic:200", "--cluster", "4x4", "--seed", "2", "--json")
    assert json.loads(a.stdout)["policies"] == json.loads(b.stdout)["policies"]
    assert json.loads(a.stdout)["policies"] != json.loads(c.stdout)["policies"]


def test_preemption_cost_and_placement_flags(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("job_id,submit_time_s,num_gpus,duration_s\nA,0,1,10\nB,2,1,3\n")
    r = invoke(
        "simulate",
        "--trace",
        str(p),
        "--cluster",
        "1x1",
        "--policy",
        "srtf-oracle",
        "--preemption-cost",
        "1.5",
        "--json",
    )
    doc = json.loads(r.stdout)["policies"][0]
    assert doc["preemptions"] == 1 and doc["makespan_s"] == 14.5
    r = invoke("simulate", "--trace", str(p), "--cluster", "1x1", "--placement", "spread")
    assert r.exit_code == 2 and "placement=spread" in r.stderr


# ---- sizes bounded before anything is allocated; unreadable inputs are one line --------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--trace", "synthetic:5", "--cluster", "1000000000x8"],
            "error: cluster=1000000000x8: must have at most 100000 nodes in all (this has 1000000000)",
        ),
        (
            ["--trace", "synthetic:5", "--cluster", "2x4096"],
            "error: cluster=2x4096: must have at most 1024 GPUs per node (this has 4096)",
        ),
        (
            ["--trace", "synthetic:100000000", "--cluster", "2x4"],
            "error: trace=synthetic:100000000: synthetic traces are written synthetic:N with N from 1 to "
            "1,000,000",
        ),
        (["--trace", "synthetic:0", "--cluster", "2x4"], "error: trace=synthetic:0"),
        (
            ["--trace", "synthetic:5", "--cluster", "2x4", "--preemption-cost", "inf"],
            "error: preemption-cost=inf",
        ),
    ],
)
def test_sizes_are_bounded_with_one_line(args, expected):
    r = invoke("simulate", *args)
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith(expected) and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_cluster_file_larger_than_the_limit_is_refused(tmp_path):
    f = tmp_path / "cluster.yaml"
    f.write_text("nodes:\n  - {count: 1000000000, gpus: 8}\n")
    r = invoke("simulate", "--trace", "synthetic:5", "--cluster", str(f))
    assert r.exit_code == 2 and "must have at most 100000 nodes" in r.stderr


def test_synthetic_size_takes_magnitudes_and_a_long_inline_cluster_is_not_a_path():
    cluster = ",".join(["1x4"] * 120)  # longer than a file name may be
    r = invoke("simulate", "--trace", "synthetic:1k", "--cluster", cluster, "--limit", "20", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["trace"] == "synthetic:1000"


def test_table_fits_80_columns_when_piped(trace_file):
    r = invoke("simulate", "--trace", trace_file, "--cluster", "1x4", "--compare", "fifo,tiresias")
    assert r.exit_code == 0
    assert max(len(line.rstrip()) for line in r.stdout.splitlines()) <= 80, r.stdout
