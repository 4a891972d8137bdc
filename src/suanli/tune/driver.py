"""The tune driver: an Optuna study whose trials are suanli jobs, kept in suanli's own database.

One loop: finish or prune the running trials from their jobs' metrics, then start new ones while
the trial count, the parallelism the pool allows and the device-hour budget permit. Optuna is imported
here, inside functions, so the CLI starts without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from suanli.api import Client
from suanli.core.errors import BadInput, SuanliError
from suanli.jobs.spec import JobSpec, load_spec
from suanli.ledger import provenance as P
from suanli.run.pool import check_fits_pool, node_resources
from suanli.store.ledger import Item, LedgerLog
from suanli.store.records import JobRecord, NodeRecord
from suanli.tune.spec import CategoricalParam, FloatParam, TuneSpec, param_env, render

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import optuna

POLL_SECONDS = 0.25
JOB_ID_ATTR = "suanli_job_id"
HOURS_ATTR = "device_hours"
REASON_ATTR = "reason"

ProgressFn = Callable[["TuneProgress"], None]


@dataclass(frozen=True)
class TuneProgress:
    """What a progress display needs after each poll."""

    done: int
    total: int
    running: int
    device_hours_used: float
    best_value: float | None


@dataclass(frozen=True)
class TrialResult:
    number: int
    job_id: int | None
    params: dict[str, Any]
    value: float | None
    state: str
    device_hours: float
    reason: str | None = None

    def to_json(self) -> dict:
        return {
            "number": self.number,
            "job_id": self.job_id,
            "params": self.params,
            "value": self.value,
            "state": self.state,
            "device_hours": round(self.device_hours, 6),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class TuneResult:
    study: str
    metric: str
    direction: str
    parallel: int
    trials: list[TrialResult]
    best: TrialResult | None
    device_hours_used: float
    budget_device_hours: float | None
    stopped_because: str  # "trials" | "budget" | "interrupted"
    storage: str = field(default="", repr=False)

    def to_json(self) -> dict:
        best = self.best
        return {
            "study": self.study,
            "objective": {"metric": self.metric, "direction": self.direction},
            "best": None
            if best is None
            else {"number": best.number, "params": best.params, "value": best.value},
            "trials": [t.to_json() for t in self.trials],
            "device_hours_used": round(self.device_hours_used, 6),
            "budget_device_hours": self.budget_device_hours,
            "parallel": self.parallel,
            "stopped_because": self.stopped_because,
        }


@dataclass
class _Running:
    trial: optuna.trial.Trial
    job_id: int
    params: dict[str, Any]
    last_step: int = -1
    pruned: bool = False


# ---- pure helpers ----------------------------------------------------------------------------------


def device_hours(job: JobRecord) -> float:
    """GPUs x wall hours x nodes; CPUs x wall hours x nodes for a job that asks for no GPU."""
    wall = job.wall_seconds or 0.0
    devices = job.gpus if job.gpus else job.cpus
    return devices * job.num_nodes * wall / 3600.0


def pool_capacity(spec: JobSpec, nodes: Sequence[NodeRecord]) -> int:
    """How many copies of the job the pool could run at once, if nothing else ran."""
    want = spec.resources.to_resources()
    slots = 0
    for node in nodes:
        has = node_resources(node)
        counts = [int(has.cpus // want.cpus) if want.cpus > 0 else 10**6]
        if want.memory_bytes:
            counts.append(has.memory_bytes // want.memory_bytes)
        for name, n in want.accelerators.items():
            counts.append(has.accelerators.get(name, 0) // n)
        slots += min(counts)
    return slots // spec.num_nodes


def trial_job(base: JobSpec, study: str, number: int, params: dict[str, Any]) -> JobSpec:
    """The trial's job: placeholders substituted, SUANLI_PARAM_* set, named and labelled for the study."""
    return base.model_copy(
        update={
            "name": f"{study}-trial-{number}",
            "run": render(base.run, params),
            "setup": render(base.setup, params),
            "envs": {**base.envs, **param_env(params)},
            "labels": {**base.labels, "tune_study": study, "tune_trial": str(number)},
        }
    )


def objective_points(history: list[dict], metric: str) -> list[tuple[int, float]]:
    """(step, value) of the objective metric in the job's latest attempt; missing steps count up."""
    points = [p for p in history if p["name"] == metric]
    if not points:
        return []
    last_attempt = max(p["attempt"] for p in points)
    out: list[tuple[int, float]] = []
    for i, p in enumerate(p for p in points if p["attempt"] == last_attempt):
        out.append((int(p["step"]) if p["step"] is not None else i, float(p["value"])))
    return out


# ---- Optuna ----------------------------------------------------------------------------------------


def storage_for(url: str) -> optuna.storages.RDBStorage:
    """Optuna's tables in suanli's database; SQLite waits long for the lock instead of failing."""
    import optuna

    sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 120}} if sqlite else {"pool_pre_ping": True}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def _sampler(spec: TuneSpec, previous_trials: int) -> optuna.samplers.BaseSampler:
    """Seeded samplers; a resumed study shifts the seed so it does not repeat the first run's draws."""
    import optuna

    seed = None if spec.seed is None else spec.seed + previous_trials
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(spec: TuneSpec) -> optuna.pruners.BasePruner:
    import optuna

    p = spec.pruner
    if p.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_steps)
    if p.type == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=p.min_resource, reduction_factor=p.reduction_factor
        )
    return optuna.pruners.NopPruner()


def _suggest(trial: optuna.trial.Trial, spec: TuneSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, p in spec.params.items():
        if isinstance(p, CategoricalParam):
            out[name] = trial.suggest_categorical(name, p.choices)
        elif isinstance(p, FloatParam):
            out[name] = trial.suggest_float(name, p.low, p.high, log=p.log, step=p.step)
        else:
            out[name] = trial.suggest_int(name, p.low, p.high, log=p.log, step=p.step)
    return out


def _check_existing_study(storage: optuna.storages.RDBStorage, spec: TuneSpec) -> int:
    """The number of trials the study already has (0 for a new one); refuses a changed direction."""
    try:
        study_id = storage.get_study_id_from_name(spec.study)
    except KeyError:
        return 0
    existing = storage.get_study_directions(study_id)[0].name.lower()
    if existing != spec.objective.direction:
        raise BadInput(
            "objective.direction",
            spec.objective.direction,
            f"study {spec.study!r} already exists and was created to {existing}",
            hint="use another study name to start afresh",
        )
    return len(storage.get_all_trials(study_id, deepcopy=False))


def _result(study: optuna.study.Study) -> tuple[list[TrialResult], TrialResult | None]:
    from optuna.trial import TrialState

    trials = []
    for t in study.get_trials(deepcopy=False):
        value = t.value
        if value is None and t.state is TrialState.PRUNED and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        trials.append(
            TrialResult(
                number=t.number,
                job_id=t.user_attrs.get(JOB_ID_ATTR),
                params=dict(t.params),
                value=value,
                state=t.state.name,
                device_hours=float(t.user_attrs.get(HOURS_ATTR, 0.0)),
                reason=t.user_attrs.get(REASON_ATTR),
            )
        )
    complete = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    best = None
    if complete:
        pick = max if study.direction.name == "MAXIMIZE" else min
        best = pick(complete, key=lambda t: t.value)  # type: ignore[arg-type,return-value]
    return trials, best


# ---- the loop --------------------------------------------------------------------------------------


def record_trial(ledger: LedgerLog, spec: TuneSpec, number: int, job_id: int, params: dict[str, Any],
                 state: str, value: float | None, hours: float, reason: str | None) -> None:  # fmt: skip
    """The trial's ledger entry: its parameters and result, tied to its job (whose attempts' entries
    say what code and data it ran). A ledger that cannot be written is a warning, never a lost trial."""
    result = {"study": spec.study, "trial": number, "job_id": job_id, "params": params, "state": state,
              "value": value}  # fmt: skip
    doc = P.provenance(
        "trial",
        {f"{spec.study}/trial-{number}": P.spec_digest(result)},
        external={**result, "metric": spec.objective.metric, "direction": spec.objective.direction},
        builder="suanli tune",
        invocation=f"study/{spec.study}/trial/{number}",
        finished=time.time(),
        byproducts={"cost": {"device_hours": hours}, **({"outcome": {"reason": reason}} if reason else {})},
    )
    try:
        ledger.append_statements([Item("trial", doc, source=f"trial:{spec.study}:{number}:{job_id}")])
    except Exception as e:
        log.warning("trial %s of %s not recorded in the ledger: %s", number, spec.study, e)


def tune(
    spec: TuneSpec,
    *,
    client: Client | None = None,
    on_progress: ProgressFn | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> TuneResult:
    """Run (or resume) the study until `spec.trials` trials are finished or the budget is spent.

    `spec.job` must be a resolved path (as `load_tune_spec` returns). Ctrl-C cancels the running
    trial jobs, marks their trials FAIL and returns with stopped_because="interrupted".
    """
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    client = client or Client()
    base = load_spec(spec.job)
    nodes = client.pool()
    check_fits_pool(base, nodes)  # before anything is stored
    parallel = max(1, min(spec.parallel, pool_capacity(base, nodes)))

    storage = storage_for(client.store.url)
    ledger = LedgerLog(client.store)
    previous = _check_existing_study(storage, spec)
    study = optuna.create_study(
        study_name=spec.study,
        storage=storage,
        sampler=_sampler(spec, previous),
        pruner=_pruner(spec),
        direction=spec.objective.direction,
        load_if_exists=True,
    )
    for point in spec.enqueue:
        study.enqueue_trial(point, skip_if_exists=True)

    metric = spec.objective.metric
    finished_hours = 0.0
    done = 0
    running: dict[int, _Running] = {}
    for t in study.get_trials(deepcopy=False):
        if t.state.is_finished():
            done += 1
            finished_hours += float(t.user_attrs.get(HOURS_ATTR, 0.0))
        elif t.state is TrialState.RUNNING:  # left by a driver that stopped: adopt its job
            trial = optuna.trial.Trial(study, t._trial_id)
            job_id = t.user_attrs.get(JOB_ID_ATTR)
            if job_id is None:
                trial.set_user_attr(REASON_ATTR, "its driver stopped before submitting a job")
                study.tell(trial, state=TrialState.FAIL)
                done += 1
                continue
            last = max(t.intermediate_values) if t.intermediate_values else -1
            running[t.number] = _Running(trial, int(job_id), dict(t.params), last_step=last)

    def finish(r: _Running, state: TrialState, value: float | None, reason: str | None) -> None:
        nonlocal finished_hours, done
        hours = device_hours(client.get(r.job_id))
        r.trial.set_user_attr(HOURS_ATTR, hours)
        if reason:
            r.trial.set_user_attr(REASON_ATTR, reason)
        study.tell(r.trial, value if state is TrialState.COMPLETE else None, state=state)
        record_trial(ledger, spec, r.trial.number, r.job_id, r.params, state.name, value, hours, reason)
        finished_hours += hours
        done += 1
        del running[r.trial.number]

    def poll(r: _Running) -> float:
        """Report new objective values, prune or finish; returns the trial's device-hours so far."""
        job = client.get(r.job_id)
        points = objective_points(client.metric_history(r.job_id), metric)
        for step, value in points:
            if step > r.last_step:
                r.trial.report(value, step)
                r.last_step = step
        if not job.is_terminal and points and spec.pruner.type != "none" and r.trial.should_prune():
            client.cancel(r.job_id, wait=True, timeout_s=60)
            finish(r, TrialState.PRUNED, None, f"pruned at step {r.last_step}")
            return 0.0
        if job.is_terminal:
            if job.state == "SUCCEEDED" and points:
                finish(r, TrialState.COMPLETE, points[-1][1], None)
            elif job.state == "SUCCEEDED":
                finish(r, TrialState.FAIL, None, f"the job printed no {metric} metric")
            else:
                finish(r, TrialState.FAIL, None, f"job {job.state.lower()}: {job.reason or ''}".rstrip(": "))
            return 0.0
        return device_hours(job)

    def start() -> None:
        trial = study.ask()
        params = _suggest(trial, spec)
        try:
            job_id = client.submit(trial_job(base, spec.study, trial.number, params))
        except SuanliError as e:
            trial.set_user_attr(REASON_ATTR, f"could not submit: {e}")
            study.tell(trial, state=TrialState.FAIL)
            raise
        trial.set_user_attr(JOB_ID_ATTR, job_id)
        running[trial.number] = _Running(trial, job_id, params)

    stopped = "trials"
    used = finished_hours
    try:
        while True:
            in_flight = sum(poll(r) for r in list(running.values()))  # may finish some: read after
            used = finished_hours + in_flight
            over_budget = spec.budget_device_hours is not None and used >= spec.budget_device_hours
            while not over_budget and len(running) < parallel and done + len(running) < spec.trials:
                start()
            if on_progress is not None:
                best = _best_value(study)
                on_progress(TuneProgress(done, spec.trials, len(running), used, best))
            if not running:
                stopped = "budget" if over_budget and done < spec.trials else "trials"
                break
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        stopped = "interrupted"
        for r in list(running.values()):
            client.cancel(r.job_id, wait=True, timeout_s=60)
            finish(r, TrialState.FAIL, None, "interrupted (Ctrl-C)")
        used = finished_hours
    trials, best = _result(study)
    return TuneResult(
        study=spec.study,
        metric=metric,
        direction=spec.objective.direction,
        parallel=parallel,
        trials=trials,
        best=best,
        device_hours_used=used,
        budget_device_hours=spec.budget_device_hours,
        stopped_because=stopped,
        storage=client.store.url,
    )


def _best_value(study: optuna.study.Study) -> float | None:
    try:
        return study.best_value
    except ValueError:
        return None
