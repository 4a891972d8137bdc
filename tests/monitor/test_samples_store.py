"""Samples as they age: merged into coarser rows that keep peaks, counters and time-weighted rates."""

from __future__ import annotations

import pytest


def _sample(job_id: int, at: float, cpu: float, cores: float, rss: int, span: float = 5.0) -> dict:
    return {
        "job_id": job_id, "attempt": 1, "node": "n1", "at": at, "span_s": span, "level": 0,
        "cpu_seconds": cpu, "cpu_cores": cores, "rss_bytes": rss, "rss_peak_bytes": rss, "gpu_util": None,
        "gpu_memory_bytes": None, "read_bytes": int(cpu), "write_bytes": 0, "net_bytes": None,
        "log_bytes": 10, "metric_points": 1, "gpu_energy_j": None,
    }  # fmt: skip


def test_aged_samples_merge_into_minutes_then_ten_minutes_keeping_totals(db_url, tmp_path):
    from suanli.jobs.spec import JobSpec
    from suanli.store.monitoring import MonitorStore
    from suanli.store.store import Store

    store = Store(db_url)
    job_id = store.submit(JobSpec(run="true"))
    db = MonitorStore(store)
    t0 = 1_800_000_000.0  # on a minute boundary
    # Two hours of 5 s samples: 1 core busy for the first minute of every ten, idle otherwise, and one
    # memory spike.
    rows = []
    for i in range(1, 1441):
        cores = 1.0 if (i - 1) % 120 < 12 else 0.0
        cpu = sum(1.0 if (k - 1) % 120 < 12 else 0.0 for k in range(1, i + 1)) * 5
        rows.append(_sample(job_id, t0 + 5 * i, cpu, cores, 2**30 if i == 700 else 2**20))
    db.record(rows, [])
    now = t0 + 7200 + 86400 + 1  # everything is over a day old
    while db.compact(now):
        pass
    merged = db.samples(job_id)
    assert {r["level"] for r in merged} == {2}
    assert len(merged) == 12  # ten-minute buckets
    assert max(r["rss_peak_bytes"] for r in merged) == 2**30  # the spike survives
    assert merged[-1]["cpu_seconds"] == rows[-1]["cpu_seconds"]  # the last counter
    assert sum(r["span_s"] for r in merged) == pytest.approx(7200)
    # Each ten minutes held one busy minute: a mean of 0.1 cores, span-weighted.
    assert all(r["cpu_cores"] == pytest.approx(0.1) for r in merged[1:-1])
    recent = [_sample(job_id, now - 10, 1.0, 1.0, 1)]
    db.record(recent, [])
    db.compact(now)
    assert [r["level"] for r in db.samples(job_id)][-1] == 0  # what is fresh stays raw
