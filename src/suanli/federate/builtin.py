"""suanli's built-in Flower app: federates an ordinary PyTorch model and dataset, as `suanli.train`
trains one. The user gives two functions, `model()` returning a torch.nn.Module and `dataset(path)`
returning a torch Dataset of (x, y); each client trains on the dataset at its own participant's path,
and only there.

The ServerApp runs the rounds itself (the strategy's configure/aggregate methods, Flower's Grid) so that
it can stop at a target accuracy or at the privacy budget, and report every round as suanli metrics.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from suanli.federate.spec import BuiltinApp, FedSpec

CLIENT_THREADS = 1


def resolve(ref: str, base_dir: str) -> Any:
    """`file.py:name` (relative to the federation file) or `module:name`, imported as a module on the
    path (the file's folder, or the federation's, added to sys.path and PYTHONPATH), so that Flower's
    Ray workers can import what is pickled to them by reference."""
    target, _, attr = ref.rpartition(":")
    folder = base_dir
    if target.endswith(".py"):
        path = Path(target) if Path(target).is_absolute() else Path(base_dir) / target
        folder, target = str(path.parent), path.stem
    if folder not in sys.path:
        sys.path.insert(0, folder)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if folder not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([folder, *filter(None, paths)])
    obj: Any = importlib.import_module(target)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def emit(name: str, value: float, step: int | None = None) -> None:
    """A suanli metric (a round without a value, such as no loss, reports none)."""
    from suanli.train import metric

    if math.isfinite(value):
        metric(name, value, step)


# ---------------------------------------------------------------------------------------------------------
# The client


class Trainer:
    """One participant's side: its data (loaded once per process), local training and evaluation."""

    def __init__(self, spec: FedSpec, data_path: Callable[[Any], tuple[int, str]]) -> None:
        self.spec = spec
        self.app: BuiltinApp = spec.app  # type: ignore[assignment]
        self.data_path = data_path
        self._data: dict[str, Any] = {}

    def __getstate__(self) -> dict:  # sent to Ray's workers without the data it has loaded
        return {**self.__dict__, "_data": {}}

    def dataset(self, path: str) -> Any:
        if path not in self._data:
            self._data[path] = resolve(self.app.dataset, self.spec.base_dir)(path)
        return self._data[path]

    def model(self, arrays: Any) -> Any:
        model = resolve(self.app.model, self.spec.base_dir)()
        model.load_state_dict(arrays.to_torch_state_dict())
        return model

    def train(self, msg: Any, context: Any) -> Any:
        import torch
        from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

        torch.set_num_threads(CLIENT_THREADS)
        pid, path = self.data_path(context)
        participant = self.spec.participants[pid]
        config = msg.content["config"]
        round_ = int(config.get("server-round", 0))
        model = self.model(msg.content["arrays"])
        data = self.dataset(path)
        gen = torch.Generator().manual_seed(self.spec.seed * 1_000_003 + round_ * 10_007 + pid)
        app = self.app
        batch = len(data) if app.full_batch else app.batch_size
        loader = torch.utils.data.DataLoader(
            data, batch_size=batch, shuffle=not app.full_batch, generator=gen
        )
        full = 1 if app.full_batch else max(1, math.ceil(app.local_epochs * len(loader)))
        steps = min(full, int(config.get("max-steps", full)))
        optimizer = (
            torch.optim.SGD(model.parameters(), lr=app.lr, momentum=app.momentum)
            if app.optimizer == "sgd"
            else torch.optim.Adam(model.parameters(), lr=app.lr)
        )
        model.train()
        done, loss_sum = 0, 0.0
        start = time.perf_counter()
        while done < steps:
            for x, y in loader:
                out = model(x)
                if participant.attack == "label_flip":
                    y = out.shape[1] - 1 - y
                loss = torch.nn.functional.cross_entropy(out, y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach())
                done += 1
                if done >= steps:
                    break
        measured = time.perf_counter() - start
        duration = done * participant.step_s if participant.step_s else measured * participant.slowdown
        metrics = {
            "num-examples": len(data), "unit-weight": 1, "train-loss": loss_sum / max(done, 1),
            "duration-s": duration, "steps": done, "full-steps": full, "partition-id": pid,
        }  # fmt: skip
        content = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": MetricRecord(metrics)})
        return Message(content=content, reply_to=msg)

    def evaluate(self, msg: Any, context: Any) -> Any:
        from flwr.app import Message, MetricRecord, RecordDict

        pid, path = self.data_path(context)
        loss, acc, n = evaluate(self.model(msg.content["arrays"]), self.dataset(path))
        metrics = {
            "eval-loss": loss,
            "accuracy": acc,
            "num-examples": n,
            "unit-weight": 1,
            "partition-id": pid,
        }
        return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)


def evaluate(model: Any, data: Any, batch_size: int = 1000) -> tuple[float, float, int]:
    """Mean cross-entropy and accuracy of `model` on `data`."""
    import torch

    model.eval()
    loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(data, batch_size=batch_size):
            out = model(x)
            loss += float(torch.nn.functional.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
            n += len(y)
    return loss / max(n, 1), correct / max(n, 1), n


def client_app(spec: FedSpec, data_path: Callable[[Any], tuple[int, str]]) -> Any:
    from flwr.clientapp import ClientApp

    mods = []
    if spec.privacy is not None and spec.privacy.mode == "central-client-clipping":
        from flwr.clientapp.mod import fixedclipping_mod

        mods.append(fixedclipping_mod)
    elif spec.privacy is not None and spec.privacy.mode == "local":
        from flwr.clientapp.mod import LocalDpMod

        p = spec.privacy
        mods.append(LocalDpMod(p.clipping_norm, p.clipping_norm, p.epsilon_per_round, p.delta))
    trainer = Trainer(spec, data_path)
    app = ClientApp(mods=mods)
    app.train()(trainer.train)
    app.evaluate()(trainer.evaluate)
    return app


# ---------------------------------------------------------------------------------------------------------
# The server


class Outcome:
    """What the server's rounds produced: the final arrays and why it stopped."""

    def __init__(self) -> None:
        self.arrays: Any = None
        self.stopped_because = "rounds"
        self.rounds = 0
        self.accuracy: float | None = None
        self.epsilon: float | None = None


def run_rounds(spec: FedSpec, grid: Any, outcome: Outcome, *, timeout_s: float = 3600.0) -> None:
    """The federation's rounds on `grid`: train, aggregate, evaluate, account, report; stop early at the
    target accuracy or before a round that would exceed the privacy budget."""
    import torch
    from flwr.app import ArrayRecord, ConfigRecord

    from suanli.federate import strategy as S
    from suanli.federate.privacy import PrivacyAccount

    app: BuiltinApp = spec.app  # type: ignore[assignment]
    torch.manual_seed(spec.seed)
    model = resolve(app.model, spec.base_dir)()
    arrays = ArrayRecord(model.state_dict())
    strategy = S.build(spec)
    control = getattr(strategy, "inner", strategy)
    server_data = (
        resolve(app.dataset, spec.base_dir)(str(spec.path(app.server_data))) if app.server_data else None
    )
    k = S.clients_per_round(spec)
    wait_for_nodes(grid, len(spec.participants), spec.deployment.wait_s)
    account = PrivacyAccount(spec.privacy, len(spec.participants)) if spec.privacy else None
    started = time.perf_counter()
    clock = 0.0
    for rnd in range(1, spec.rounds + 1):
        if account is not None and not account.fits(k, list(range(k))):
            outcome.stopped_because = "privacy_budget"
            break
        t0 = time.perf_counter()
        messages = strategy.configure_train(rnd, arrays, ConfigRecord(), grid)
        replies = list(grid.send_and_receive(messages=messages, timeout=timeout_s))
        new, _ = strategy.aggregate_train(rnd, replies)
        last = dict(control.last)
        if new is not None:
            arrays = new
            if account is not None:
                outcome.epsilon = account.spend(last.get("clients_used", k), last.get("partitions"))
        clock += last.get("round_time_s", 0.0)
        if server_data is not None:
            loss, acc, _ = evaluate(_load(model, arrays), server_data)
        else:
            ev = strategy.configure_evaluate(rnd, arrays, ConfigRecord(), grid)
            metrics = strategy.aggregate_evaluate(
                rnd, list(grid.send_and_receive(messages=ev, timeout=timeout_s))
            )
            loss = float(metrics["eval-loss"]) if metrics else math.nan
            acc = float(metrics["accuracy"]) if metrics else math.nan
        outcome.rounds, outcome.accuracy, outcome.arrays = rnd, acc, arrays
        for name, value in (
            ("accuracy", acc), ("loss", loss), ("train_loss", last.get("train_loss", math.nan)),
            ("clients_used", last.get("clients_used", 0)), ("clients_late", last.get("clients_late", 0)),
            ("round_time_s", last.get("round_time_s", 0.0)), ("clock_s", clock),
            ("round_wall_s", time.perf_counter() - t0), ("wall_s", time.perf_counter() - started),
            ("bytes", last.get("bytes", 0)),
        ):  # fmt: skip
            emit(name, value, rnd)
        if outcome.epsilon is not None:
            emit("epsilon", outcome.epsilon, rnd)
        if spec.target_accuracy is not None and acc >= spec.target_accuracy:
            outcome.stopped_because = "target_accuracy"
            break


def wait_for_nodes(grid: Any, n: int, timeout_s: float) -> int:
    """Wait until every participant's node has connected (deployed SuperNodes start as the scheduler
    places them), at most `timeout_s`; the rounds then go on with those connected."""
    deadline = time.monotonic() + timeout_s
    while len(ids := list(grid.get_node_ids())) < n and time.monotonic() < deadline:
        time.sleep(1.0)
    return len(ids)


def _load(model: Any, arrays: Any) -> Any:
    model.load_state_dict(arrays.to_torch_state_dict())
    return model


def server_app(spec: FedSpec, outcome: Outcome, on_end: Callable[[], None] | None = None) -> Any:
    from flwr.serverapp import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid: Any, context: Any) -> None:
        run_rounds(spec, grid, outcome)
        if on_end is not None:
            on_end()

    return app
