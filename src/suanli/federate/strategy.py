"""Flower strategies by name, with suanli's round control around them: compute-aware selection, a
per-round deadline, robust aggregation, the emulated attackers of a simulation, and DP wrappers.

The strategy's own methods still run (its sampling, its configuration of each round, its aggregation
when no robust rule replaces it); suanli re-addresses the round's messages to the clients it chose and
filters and aggregates the replies. Names and options are checked here before anything starts.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Iterable
from typing import Any

from suanli.core.errors import BadInput, did_you_mean
from suanli.federate.spec import FedSpec

NOT_STRATEGIES = {"Result", "Strategy"}
DP_WRAPPERS = "DifferentialPrivacy"
OPTION_TYPES = (bool, int, float, str)
log = logging.getLogger(__name__)


def strategy_names() -> list[str]:
    import flwr.serverapp.strategy as S

    return [n for n in S.__all__ if n not in NOT_STRATEGIES and not n.startswith(DP_WRAPPERS)]


def strategy_class(name: str) -> type:
    """The Flower strategy class called `name` (case-insensitive); BadInput with near names otherwise."""
    import flwr.serverapp.strategy as S

    names = strategy_names()
    match = next((n for n in names if n.lower() == str(name).lower()), None)
    if match is None:
        hint = did_you_mean(str(name), names) or "known: " + ", ".join(names)
        if str(name).startswith(DP_WRAPPERS):
            hint = "differential privacy is set in the `privacy:` block, around any strategy"
        raise BadInput("strategy.name", name, "must be a Flower strategy", hint=hint)
    return getattr(S, match)


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options as the strategy's constructor takes them: known names, values of its defaults' types."""
    cls = strategy_class(name)
    params = {
        p.name: p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    out: dict[str, Any] = {}
    for key, value in options.items():
        field = f"strategy.options.{key}"
        if key not in params:
            hint = did_you_mean(key, params) or "known: " + ", ".join(params)
            raise BadInput(field, key, f"is not an option of {cls.__name__}", hint=hint)
        default = params[key].default
        kind = type(default) if isinstance(default, OPTION_TYPES) else None
        if default is inspect.Parameter.empty or (default is None and key.endswith("_fn")):
            raise BadInput(field, value, "is set by suanli or from Python, not from the file")
        if kind is None:
            if not isinstance(value, OPTION_TYPES):
                raise BadInput(field, repr(value), "must be a number, a string or true/false")
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BadInput(field, value, f"must be {kind.__name__} (the default is {default!r})")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInput(field, value, "must be a finite number")
        out[key] = value
    return out


def clients_per_round(spec: FedSpec) -> int:
    """k, as Flower's FedAvg samples: fraction_train of the clients, at least min_train_nodes."""
    n = len(spec.participants)
    fraction = float(spec.strategy.options.get("fraction_train", 1.0))
    least = int(spec.strategy.options.get("min_train_nodes", 2))
    return max(1, min(n, max(int(n * fraction), least)))


def check(spec: FedSpec) -> None:
    """The strategy, its options and the clients a round needs (imports Flower, not torch)."""
    if not spec.builtin:
        return
    check_options(spec.strategy.name, spec.strategy.options)
    n = len(spec.participants)
    for key in ("min_available_nodes", "min_train_nodes"):
        need = spec.strategy.options.get(key)
        if isinstance(need, int) and need > n:
            raise BadInput(f"strategy.options.{key}", need, f"must be at most the {n} participants")


def check_aggregator(spec: FedSpec) -> None:
    """The aggregator tolerates the f it is told to expect among a round's clients (imports torch)."""
    if spec.aggregator is None:
        return
    from suanli.federate import aggregate as A

    A.check_tolerates(
        spec.aggregator.name, clients_per_round(spec), spec.aggregator.f, **spec.aggregator.options
    )


# ---------------------------------------------------------------------------------------------------------
# Round control


class RoundControl:
    """Mixed in before a Flower strategy class: selection, deadline, emulated attacks, robust aggregation.
    `last` holds what the round did, for its metrics."""

    suanli: dict[str, Any]

    def _setup(self, spec: FedSpec) -> None:
        from suanli.federate.selection import ComputeAwareSelector

        sel = spec.selection
        self.suanli = {
            "spec": spec,
            "selector": (
                ComputeAwareSelector(
                    sel.deadline_s or math.inf,
                    explore=sel.explore,
                    max_staleness_rounds=sel.max_staleness_rounds,
                    seed=spec.seed,
                )
                if sel.policy == "compute-aware"
                else None
            ),
            "global": None,
            "last": {},
        }

    @property
    def last(self) -> dict[str, Any]:
        return self.suanli["last"]

    def configure_train(self, server_round: int, arrays: Any, config: Any, grid: Any) -> Iterable[Any]:
        from flwr.app import ConfigRecord, Message, MessageType, RecordDict

        messages = list(super().configure_train(server_round, arrays, config, grid))  # type: ignore[misc]
        self.suanli["global"] = arrays
        self.suanli["last"] = {}
        selector = self.suanli["selector"]
        if selector is None or not messages:
            return messages
        template = messages[0].content
        picks = selector.choose(list(grid.get_node_ids()), len(messages), server_round)
        out = []
        for pick in picks:
            record = RecordDict(dict(template.items()))
            cfg = ConfigRecord(dict(template[self.configrecord_key].items()))
            if pick.max_steps is not None:
                cfg["max-steps"] = pick.max_steps
            record[self.configrecord_key] = cfg
            out.append(Message(content=record, message_type=MessageType.TRAIN, dst_node_id=pick.node_id))
        return out

    def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> tuple[Any, Any]:
        spec: FedSpec = self.suanli["spec"]
        replies = [r for r in replies if not r.has_error()]
        deadline = spec.selection.deadline_s
        durations = [_metric(r, "duration-s", 0.0) for r in replies]
        on_time = [r for r, d in zip(replies, durations, strict=True) if deadline is None or d <= deadline]
        selector = self.suanli["selector"]
        if selector is not None:
            for r in replies:
                selector.observe(
                    r.metadata.src_node_id, server_round, duration_s=_metric(r, "duration-s", 0.0),
                    steps=int(_metric(r, "steps", 1)), full_steps=int(_metric(r, "full-steps", 1)),
                    loss=_metric(r, "train-loss", math.nan),
                    examples=int(_metric(r, "num-examples", 1)),
                )  # fmt: skip
        late = len(replies) - len(on_time)
        slowest = max(durations, default=0.0)
        self.last.update(
            clients_used=len(on_time),
            clients_late=late,
            round_time_s=min(deadline, slowest) if deadline is not None and late else slowest,
            bytes=sum(2 * r.content[self.arrayrecord_key].count_bytes() for r in replies),
            train_loss=_mean([_metric(r, "train-loss", math.nan) for r in on_time]),
            partitions=[int(_metric(r, "partition-id", -1)) for r in on_time],
        )
        if not on_time:
            return None, None
        self._attack(on_time)
        if spec.aggregator is None:
            return super().aggregate_train(server_round, on_time)  # type: ignore[misc]
        return self._robust(server_round, on_time)

    def _deltas(self, replies: list[Any]) -> tuple[list[list[Any]], list[Any]]:
        import numpy as np

        base = [np.asarray(a) for a in self.suanli["global"].to_numpy_ndarrays()]
        deltas = [
            [np.asarray(a, dtype=np.float64) - b for a, b in zip(
                r.content[self.arrayrecord_key].to_numpy_ndarrays(), base, strict=True)]
            for r in replies
        ]  # fmt: skip
        return deltas, base

    def _set(self, reply: Any, base: list[Any], delta: list[Any]) -> None:
        from flwr.app import ArrayRecord

        keys = list(reply.content[self.arrayrecord_key].keys())
        arrays = [(b + d).astype(b.dtype) for b, d in zip(base, delta, strict=True)]
        reply.content[self.arrayrecord_key] = ArrayRecord(dict(zip(keys, _arrays(arrays), strict=True)))

    def _attack(self, replies: list[Any]) -> None:
        """Emulated Byzantine participants (simulation only): their replies are replaced by the attack."""
        from suanli.federate import attacks

        spec: FedSpec = self.suanli["spec"]
        kinds = [spec.participants[int(_metric(r, "partition-id", 0))].attack for r in replies]
        bad = [i for i, k in enumerate(kinds) if k not in ("none", "label_flip")]
        if not bad:
            return
        deltas, base = self._deltas(replies)
        honest = [d for i, d in enumerate(deltas) if i not in bad] or deltas
        for i in bad:
            kind = kinds[i]
            if kind == "sign_flip":
                new = attacks.sign_flip([deltas[i]])[0]
            elif kind == "gaussian":
                new = attacks.gaussian(deltas[i], 1, seed=spec.seed + i)[0]
            elif kind == "alie":
                new = attacks.alie(honest, len(bad), n=len(replies))[0]
            else:
                new = attacks.ipm(honest, len(bad))[0]
            self._set(replies[i], base, [_np(a) for a in new])

    def _robust(self, server_round: int, replies: list[Any]) -> tuple[Any, Any]:
        from flwr.app import ArrayRecord

        from suanli.federate import aggregate as A

        spec: FedSpec = self.suanli["spec"]
        agg = spec.aggregator
        assert agg is not None
        deltas, base = self._deltas(replies)
        weights = [_metric(r, self.weighted_by_key, 1.0) for r in replies]
        options = dict(agg.options)
        if "centered_clipping" in agg.name and self.suanli.get("previous") is not None:
            options.setdefault("reference", self.suanli["previous"])  # the paper's momentum: last aggregate
        f = min(agg.f, max(0, len(replies) - 1))
        try:
            combined = A.aggregate(agg.name, deltas, weights, f, **options)
        except BadInput:  # fewer replies than the rule needs for f: tolerate what it can, if anything
            most = _most_tolerated(agg.name, len(replies))
            if most is None:  # too few to run the rule at all: the round keeps the model it started with
                log.warning("round %d: %d replies are too few for %s; model unchanged", server_round,
                            len(replies), agg.name)  # fmt: skip
                return None, None
            combined = A.aggregate(agg.name, deltas, weights, most, **options)
        self.suanli["previous"] = [_np(d) for d in combined]
        arrays = [(b + _np(d)).astype(b.dtype) for b, d in zip(base, combined, strict=True)]
        keys = list(self.suanli["global"].keys())
        metrics = self.train_metrics_aggr_fn([r.content for r in replies], self.weighted_by_key)
        return ArrayRecord(dict(zip(keys, _arrays(arrays), strict=True))), metrics


def _most_tolerated(name: str, n: int) -> int | None:
    """The largest f the rule tolerates among n updates; None when it cannot run on n at all."""
    from suanli.federate import aggregate as A

    for f in range(n, -1, -1):
        try:
            A.check_tolerates(name, n, f)
            return f
        except BadInput:
            continue
    return None


def _np(a: Any) -> Any:
    import numpy as np

    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def _arrays(arrays: list[Any]) -> list[Any]:
    from flwr.app import Array

    return [Array(a) for a in arrays]


def _metric(reply: Any, key: str, default: float) -> float:
    for record in reply.content.metric_records.values():
        if key in record:
            return float(record[key])
    return default


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def build(spec: FedSpec) -> Any:
    """The strategy the built-in ServerApp runs: the named Flower class with suanli's round control,
    wrapped in Flower's DP wrapper when `privacy:` asks for central DP."""
    cls = strategy_class(spec.strategy.name)
    options = check_options(spec.strategy.name, spec.strategy.options)
    options.setdefault("min_available_nodes", min(len(spec.participants), 2))
    options.setdefault("min_train_nodes", min(len(spec.participants), 2))
    options.setdefault("fraction_evaluate", 0.0 if spec.app.server_data else 1.0)  # type: ignore[union-attr]
    if spec.privacy is not None and spec.privacy.mode != "local":
        options.setdefault("weighted_by_key", "unit-weight")  # DP's sensitivity assumes equal weights
    controlled = type(f"Suanli{cls.__name__}", (RoundControl, cls), {})
    strategy = controlled(
        **{k: v for k, v in options.items() if k in inspect.signature(cls.__init__).parameters}
    )
    strategy._setup(spec)
    if spec.privacy is None or spec.privacy.mode == "local":
        return strategy
    import flwr.serverapp.strategy as S

    wrapper = (
        S.DifferentialPrivacyServerSideFixedClipping
        if spec.privacy.mode == "central"
        else S.DifferentialPrivacyClientSideFixedClipping
    )
    dp = wrapper(strategy, spec.privacy.noise_multiplier, spec.privacy.clipping_norm, clients_per_round(spec))
    dp.inner = strategy
    return dp
