"""The federation's process (a suanli job): Flower's simulation engine with the resources suanli granted,
and the checks that need torch or Flower (run in a child process before anything starts).

    python -m suanli.federate.runner          # run; the spec in SUANLI_FED_SPEC, the grant in SUANLI_FED_CPUS
    python -m suanli.federate.runner check    # one JSON line: {"ok": true} or {"bad_input": {...}}

A user's own ClientApp finds its participant's data with `data_path(context)` and its settings with
`app_config()`; suanli's built-in app uses the same two calls.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from suanli.core.childcheck import answer
from suanli.core.errors import BadInput
from suanli.federate.spec import BuiltinApp, FedSpec

SPEC_ENV = "SUANLI_FED_SPEC"
CPUS_ENV = "SUANLI_FED_CPUS"
OBJECT_STORE_BYTES = 256 * 1024**2  # Ray's default takes 30% of the node's memory (flwr #5855)


_deployed: FedSpec | None = None  # set by a deployed app (deploy.py), whose spec travels in its bundle


def current_spec() -> FedSpec:
    if _deployed is not None:
        return _deployed
    return FedSpec.model_validate_json(os.environ[SPEC_ENV])


def data_path(context: Any, spec: FedSpec | None = None) -> tuple[int, str]:
    """(participant index, its data path) for the ClientApp running in `context`: on a SuperNode the
    node's own `data-path`; in simulation, the participant of its partition. Nothing else is given."""
    config = context.node_config
    if "data-path" in config:
        return int(config.get("participant-index", 0)), str(config["data-path"])
    spec = spec or current_spec()
    pid = int(config["partition-id"])
    return pid, str(spec.path(spec.participants[pid].data))


def app_config() -> dict:
    """The `app.config` of a user's Flower app (its run config)."""
    app = current_spec().app
    return dict(getattr(app, "config", {}))


def resolve_apps(spec: FedSpec, *, report: bool = False) -> tuple[Any, Any, Any]:
    """(ServerApp, ClientApp, Outcome or None). With `report`, the built-in ServerApp itself saves the
    model and prints the federation's result when its rounds end (deployed, no runner is around it)."""
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp

    from suanli.federate import builtin

    if isinstance(spec.app, BuiltinApp):
        for field in ("model", "dataset"):
            _load(spec, f"app.{field}", getattr(spec.app, field), callable, "a function")
        outcome = builtin.Outcome()
        on_end = (
            (lambda: print(json.dumps({"federation": finish(spec, outcome)}), flush=True)) if report else None
        )
        server = builtin.server_app(spec, outcome, on_end)
        client = builtin.client_app(spec, lambda ctx: data_path(ctx, spec))
        return server, client, outcome
    server = _load(
        spec, "app.server_app", spec.app.server_app, lambda o: isinstance(o, ServerApp), "a ServerApp"
    )
    client = _load(
        spec, "app.client_app", spec.app.client_app, lambda o: isinstance(o, ClientApp), "a ClientApp"
    )
    return server, client, None


def _load(spec: FedSpec, field: str, ref: str, ok: Any, what: str) -> Any:
    from suanli.federate.builtin import resolve

    try:
        obj = resolve(ref, spec.base_dir)
    except Exception as e:  # the user's code: any error in importing it is theirs to see
        raise BadInput(field, ref, "cannot be imported", hint=f"{type(e).__name__}: {e}"[:300]) from None
    if not ok(obj):
        raise BadInput(field, ref, f"must name {what}", hint=f"it is a {type(obj).__name__}")
    return obj


def check(spec: FedSpec) -> None:
    """The checks that import torch, Flower or the user's code: BadInput when one fails."""
    from suanli.federate import strategy

    strategy.check_aggregator(spec)
    resolve_apps(spec)
    if spec.privacy is not None and spec.privacy.mode != "local":
        import opacus.accountants  # noqa: F401  (the accountant must be there before round 1)


def run(spec: FedSpec, cpus: float) -> dict:
    """The federation in Flower's simulation engine, at most cpus / cpus_per_client clients at once."""
    import logging

    from flwr.simulation import run_simulation

    server, client, outcome = resolve_apps(spec)
    os.environ.pop("RAY_ADDRESS", None)  # the grant is on this node: a local Ray of exactly that size
    backend = {
        "client_resources": {"num_cpus": spec.simulation.cpus_per_client, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": max(1, int(cpus)), "num_gpus": 0, "object_store_memory": OBJECT_STORE_BYTES,
            "include_dashboard": False, "logging_level": logging.WARNING,
        },
    }  # fmt: skip
    run_simulation(server, client, num_supernodes=len(spec.participants), backend_config=backend)
    return finish(spec, outcome)


def finish(spec: FedSpec, outcome: Any) -> dict:
    """The federation's result (and its final model saved) once the built-in app's rounds are over."""
    if outcome is None:
        return {"rounds": 0}
    if outcome.arrays is None:
        raise RuntimeError("no round completed (see the log above)")
    result = {
        "rounds": outcome.rounds, "accuracy": outcome.accuracy, "epsilon": outcome.epsilon,
        "stopped_because": outcome.stopped_because,
    }  # fmt: skip
    if spec.output:
        save(outcome.arrays, spec.path(spec.output))
        result["output"] = str(spec.path(spec.output))
    return result


def save(arrays: Any, path: Path) -> None:
    """The final model's state dict, written to a temporary name and renamed."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(arrays.to_torch_state_dict(), tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    spec = current_spec()
    if argv[:1] == ["check"]:
        return answer(lambda: check(spec))
    result = run(spec, float(os.environ.get(CPUS_ENV, "1")))
    print(json.dumps({"federation": result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
