"""Compute shared between owners: what each owner (a project) gave to the pool and what it took.

- Contributed = each of its nodes' capacity x the time the node was offered (UP, heartbeats coming),
  from the node periods the store keeps (store.NodePeriod), in CPU-hours and GPU-hours.
- Consumed = what its jobs held (each attempt's placement: CPUs and GPUs) x their wall time, the same
  figure `suanli report` gives a project; a job without a project is counted as "(no project)".
- Balance = contributed - consumed; share = the owner's part of all that was contributed, by the
  dominant resource (GPU-hours when the pool had GPUs, else CPU-hours).

Both are clipped to the window [since, until]. Each complete accounting period (a day by default) is
appended to the provenance ledger by the agent, signed, so that no owner can rewrite it afterwards;
`suanli ledger log` lists those entries and `suanli ledger verify` checks the log they are in.

The DRF policy can weight fair shares by contribution (`options: {weights_from: contribution}` in
scheduler.yaml): an owner's weight is its share of what was contributed in the last 30 days x the
number of owners that contributed (1 for an average contributor), at least FLOOR_WEIGHT, so that an
owner who gives twice the average gets twice the share of a contended pool, and one who gives nothing
still gets a little.
"""

from __future__ import annotations

import time
from typing import Any

from suanli.core.units import parse_duration
from suanli.monitor.report import _held, _rows
from suanli.store.store import Store

NO_PROJECT = "(no project)"
UNOWNED = "(unowned)"
FLOOR_WEIGHT = 0.1
WEIGHT_WINDOW_S = 30 * 86400.0
DEFAULT_PERIOD_S = 86400.0


def _overlap(start: float, end: float, since: float | None, until: float) -> float:
    lo = start if since is None else max(start, since)
    return max(0.0, min(end, until) - lo)


def owners_report(store: Store, *, since: float | None = None, until: float | None = None) -> dict:
    """Per owner: nodes, CPU- and GPU-hours contributed and consumed, balance and share, in [since, until]."""
    until = time.time() if until is None else until
    rows: dict[str, dict[str, Any]] = {}

    def row(owner: str) -> dict[str, Any]:
        return rows.setdefault(owner, {
            "owner": owner, "nodes": [], "contributed_cpu_hours": 0.0, "contributed_gpu_hours": 0.0,
            "consumed_cpu_hours": 0.0, "consumed_gpu_hours": 0.0, "flags": 0,
        })  # fmt: skip

    now = time.time()
    for node, owner, cpus, gpus, _accel, started, last_seen, closed in store.node_periods(since, until):
        end = last_seen if closed else max(last_seen, min(until, now))  # an open period goes on until now
        hours = _overlap(started, end, since, until) / 3600.0
        r = row(owner or UNOWNED)
        if node not in r["nodes"]:
            r["nodes"].append(node)
        r["contributed_cpu_hours"] += cpus * hours
        r["contributed_gpu_hours"] += gpus * hours
    for a in _rows(store, since=since):
        if a.a_started is None or a.a_started > until:
            continue
        hours = _overlap(a.a_started, a.a_ended if a.a_ended is not None else until, since, until) / 3600.0
        r = row(a.project or NO_PROJECT)
        for gpus, cpus, _mem in _held(a, a.placement):
            r["consumed_cpu_hours"] += cpus * hours
            r["consumed_gpu_hours"] += gpus * hours
    for owner, n in flag_counts(store).items():
        row(owner)["flags"] = n
    gpu_pool = any(r["contributed_gpu_hours"] > 0 for r in rows.values())
    key = "contributed_gpu_hours" if gpu_pool else "contributed_cpu_hours"
    total = sum(r[key] for r in rows.values())
    out = []
    for r in sorted(rows.values(), key=lambda r: (-r[key], r["owner"])):
        for kind in ("cpu", "gpu"):
            r[f"balance_{kind}_hours"] = r[f"contributed_{kind}_hours"] - r[f"consumed_{kind}_hours"]
        r["share"] = r[key] / total if total else 0.0
        out.append({k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()})
    return {
        "since": since, "until": until, "dominant": "gpu" if gpu_pool else "cpu", "owners": out,
        "assumptions": [
            "contributed: node capacity x time offered (from its registration or a change of owner or "
            "capacity to its last heartbeat); consumed: what each attempt held x its wall time",
        ],
    }  # fmt: skip


def flag_counts(store: Store) -> dict[str, int]:
    """How many verification verdicts flagged each owner (indexed by the ledger: run/verify.py)."""
    from sqlalchemy import func, select

    from suanli.store import models as m

    R = m.LedgerRef
    with store._read() as s:
        q = select(R.value, func.count(R.entry)).where(R.field == "flagged").group_by(R.value)
        return {str(owner): int(n) for owner, n in s.execute(q)}


def contribution_weights(store: Store, now: float | None = None) -> dict[str, float]:
    """DRF weights by contribution over the last WEIGHT_WINDOW_S (see the module's docstring)."""
    now = time.time() if now is None else now
    owners = [
        o for o in owners_report(store, since=now - WEIGHT_WINDOW_S, until=now)["owners"]
        if o["owner"] not in (UNOWNED, NO_PROJECT)
    ]  # fmt: skip
    givers = [o for o in owners if o["share"] > 0]
    return {o["owner"]: max(FLOOR_WEIGHT, o["share"] * len(givers)) for o in owners}


_weights_cache: dict[int, tuple[float, dict[str, float]]] = {}
WEIGHTS_TTL_S = 60.0


def cached_contribution_weights(store: Store, now: float) -> dict[str, float]:
    """`contribution_weights`, recomputed at most once a minute (the scheduler asks on every pass)."""
    at, weights = _weights_cache.get(id(store), (-1e18, {}))
    if now - at > WEIGHTS_TTL_S:
        weights = contribution_weights(store, now)
        _weights_cache[id(store)] = (now, weights)
    return weights


def period_bounds(now: float, period_s: float) -> tuple[float, float]:
    """The last complete accounting period before `now` (periods are aligned to the Unix epoch: days
    start at midnight UTC)."""
    end = (now // period_s) * period_s
    return end - period_s, end


def accounting_period_s() -> float:
    """SUANLI_ACCOUNTING_PERIOD ("1d", "6h", "3600"), default one day."""
    import os

    value = os.environ.get("SUANLI_ACCOUNTING_PERIOD")
    return parse_duration(value, "SUANLI_ACCOUNTING_PERIOD") if value else DEFAULT_PERIOD_S


def record_period(store: Store, since: float, until: float, ledger: Any = None) -> int:
    """Append the owners' accounting of [since, until] to the ledger, signed (once: a period already
    recorded keeps its entry); its index."""
    from suanli.ledger import provenance as P
    from suanli.store.ledger import Item, LedgerLog

    ledger = ledger or LedgerLog(store)
    report = owners_report(store, since=since, until=until)
    name = f"owners/{since:.0f}-{until:.0f}"
    doc = P.provenance(
        "accounting", {name: P.spec_digest(report)}, external=report, builder="suanli accounting",
        invocation=name, finished=until,
    )  # fmt: skip
    return ledger.append_statements([Item("accounting", doc, source=f"owners:{since:.0f}:{until:.0f}")])[0]
