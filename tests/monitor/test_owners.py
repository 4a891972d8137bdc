"""Compute shared between owners: each owner is credited for what its nodes offered and charged for what
its jobs held; DRF can weight shares by contribution; each accounting period is a signed ledger entry."""

from __future__ import annotations

import json
import time

import pytest

from jobhelpers import invoke, wait_for, write_job
from suanli.core.errors import BadInput
from suanli.ledger.statement import open_envelope
from suanli.monitor.owners import contribution_weights, owners_report, period_bounds, record_period
from suanli.schedule import ClusterState, JobRequest, NodeState
from suanli.schedule.policies.drf import DominantResourceFair
from suanli.store.ledger import LedgerLog
from suanli.store.store import Store

H = 3600.0


def two_owners(store: Store, t0: float) -> None:
    """vision offers an 8-CPU node for 4 h; nlp a 2-CPU node with 1 A100 for 4 h, then changes owner."""
    store.register_nodes([("a", 8.0, 2**30, None, 0)], owners={"a": "vision"}, now=t0)
    store.register_nodes([("b", 2.0, 2**30, "A100", 1)], owners={"b": "nlp"}, now=t0)
    store.heartbeat("a", also=["b"], now=t0 + 4 * H)
    store.register_nodes([("b", 2.0, 2**30, "A100", 1)], owners={"b": "vision"}, now=t0 + 4 * H)
    store.heartbeat("b", now=t0 + 5 * H)
    store.register_nodes([], lost=["a", "b"])
    store.heartbeat("a", now=t0 + 9 * H)  # a lost node's period stays closed


def offered(home, vision_cpus: float, nlp_cpus: float) -> tuple[Store, float]:
    """vision's node a and nlp's node b, offered for the last 4 hours."""
    store, now = Store(f"sqlite:///{home / 'suanli.db'}"), time.time()
    store.register_nodes([("a", vision_cpus, 2**34, None, 0)], owners={"a": "vision"}, now=now - 4 * H)
    store.register_nodes([("b", nlp_cpus, 2**34, None, 0)], owners={"b": "nlp"}, now=now - 4 * H)
    store.heartbeat("a", also=["b"], now=now)
    return store, now


def test_owners_are_credited_for_the_time_their_nodes_were_offered(db_url):
    store = Store(db_url)
    t0 = time.time() - 10 * H
    two_owners(store, t0)
    doc = owners_report(store, until=t0 + 10 * H)
    by = {o["owner"]: o for o in doc["owners"]}
    assert doc["dominant"] == "gpu"
    assert by["vision"]["contributed_cpu_hours"] == pytest.approx(8 * 4 + 2 * 1)
    assert by["vision"]["contributed_gpu_hours"] == pytest.approx(1.0)
    assert by["nlp"]["contributed_cpu_hours"] == pytest.approx(2 * 4)
    assert by["nlp"]["contributed_gpu_hours"] == pytest.approx(4.0)
    assert by["nlp"]["share"] == pytest.approx(0.8) and by["vision"]["share"] == pytest.approx(0.2)
    assert sorted(by["vision"]["nodes"]) == ["a", "b"]
    # A window clips the periods: the last hour of b's (vision's) and nothing of a's.
    late = {o["owner"]: o for o in owners_report(store, since=t0 + 4.5 * H, until=t0 + 10 * H)["owners"]}
    assert late["vision"]["contributed_gpu_hours"] == pytest.approx(0.5)
    assert late["vision"]["contributed_cpu_hours"] == pytest.approx(1.0)


def test_contribution_weights_give_more_to_those_who_give_more(suanli_home):
    store, now = offered(suanli_home, 8.0, 2.0)
    weights = contribution_weights(store, now)
    assert weights == pytest.approx({"vision": 1.6, "nlp": 0.4})  # 80% and 20% of what was given, x 2

    # A contended 4-GPU node, four 1-GPU jobs from each owner: DRF by contribution gives vision three.
    pending = [JobRequest(f"{g[0]}{i}", 0, gpus=1, team=g) for g in ("vision", "nlp") for i in range(4)]
    cluster = ClusterState([NodeState("n", 4, 32, 2**36, None)])
    fair = DominantResourceFair().decide(pending, cluster, 0)
    weighted = DominantResourceFair(weights=weights).decide(pending, cluster, 0)

    def started(decisions) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in decisions.starts:
            counts[str(s.job_id)[0]] = counts.get(str(s.job_id)[0], 0) + 1
        return counts

    assert started(fair) == {"v": 2, "n": 2}
    assert started(weighted) == {"v": 3, "n": 1}


def test_each_period_is_a_signed_ledger_entry_recorded_once(suanli_home):
    store = Store(f"sqlite:///{suanli_home / 'suanli.db'}")
    since, until = period_bounds(time.time(), 86400.0)
    two_owners(store, since)
    log = LedgerLog(store)
    index = record_period(store, since, until, log)
    assert record_period(store, since, until, log) == index  # a period is recorded once
    entry = log.entry(index)
    assert entry["kind"] == "accounting"
    doc = open_envelope(json.loads(entry["body"]), [log.signer.verifier()])
    figures = doc["predicate"]["buildDefinition"]["externalParameters"]
    assert {o["owner"]: o["contributed_gpu_hours"] for o in figures["owners"]} == pytest.approx(
        {"nlp": 4.0, "vision": 1.0}
    )


def test_the_agent_records_periods_and_report_owners_shows_what_each_gave_and_took(tmp_path, monkeypatch):
    monkeypatch.setenv("SUANLI_NODE_OWNER", "vision")
    monkeypatch.setenv("SUANLI_ACCOUNTING_PERIOD", "1")
    job = write_job(tmp_path, "name: work\nrun: python3 -c 'print(1)'\nproject: vision\n")
    assert invoke("run", str(job), "--json").exit_code == 0
    doc = invoke("report", "--owners", "--json").json()
    vision = {o["owner"]: o for o in doc["owners"]}["vision"]
    assert vision["contributed_cpu_hours"] > 0 and vision["consumed_cpu_hours"] > 0 and vision["nodes"]

    def periods() -> list[dict]:
        return [e for e in invoke("ledger", "log", "--json").json()["entries"] if e["kind"] == "accounting"]

    assert wait_for(periods), "the agent appended no accounting period"
    bad = invoke("report", "--owners", "--user", "x", "--json")
    assert bad.exit_code == 2 and bad.stdout == "" and "--owners" in bad.stderr


def test_the_live_scheduler_weights_drf_by_contribution(suanli_home):
    from suanli.jobs.spec import parse_spec
    from suanli.run.schedconfig import SchedulerConfig, make_policy
    from suanli.run.scheduling import decide_now

    store, now = offered(suanli_home, 4.0, 1.0)
    for project in ("nlp", "vision"):
        store.submit_many([parse_spec({"run": "true", "project": project}) for _ in range(5)])

    def starts(options: dict) -> dict[str, int]:
        policy = make_policy(SchedulerConfig(policy="drf", options=options))
        done = decide_now(store, policy, store.nodes(), now=now)
        counts: dict[str, int] = {}
        for s in done.decisions.starts:
            project = store.get(s.job_id).project
            counts[project] = counts.get(project, 0) + 1
        return counts

    assert starts({}) == {"nlp": 3, "vision": 2}  # equal shares of 5 CPUs (a tie goes to nlp)
    assert starts({"weights_from": "contribution"}) == {"nlp": 1, "vision": 4}  # vision gave 4 of 5
    with pytest.raises(BadInput, match="weights_from=share: must be contribution"):
        make_policy(SchedulerConfig(policy="drf", options={"weights_from": "share"}))
