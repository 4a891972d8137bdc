"""Robust aggregation of client updates, shared by federated learning (Flower strategies) and cross-owner
model fusion, so both defend against the same attacks with the same, tested rules.

An update is one array (a torch tensor or a numpy array, any shape) or a list of them (a model's
parameters; Flower's NDArrays). Every rule works on the flattened (n, d) matrix and gives back the kind
and shapes it was given (`flatten` / `unflatten`).

Each rule declares how many Byzantine clients f it tolerates among n and refuses more (`check_tolerates`),
so a deployment cannot silently run a rule past its breakdown: its paper's condition on n and f (for
centered clipping, whose rate is proven for f/n <= 0.1, an honest majority).

Weights (numbers of examples) are reported by the clients themselves, and a Byzantine client can inflate
its own; so only `mean` (FedAvg) and the averaging inside `bucketing`'s buckets use them. The robust rules
give every client one vote, as in their papers.

An update with NaN or infinite values is refused with its index: drop it first (`drop_nonfinite`) and
count its sender among the f Byzantine clients.
"""

from __future__ import annotations

import math
import numbers
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from suanli.core.errors import BadInput, did_you_mean

Array = torch.Tensor | np.ndarray
Update = torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray]


# ---------------------------------------------------------------------------------------------------------
# Updates as vectors


@dataclass(frozen=True)
class Layout:
    """How a flat vector turns back into the update it came from: the parts' shapes and dtypes, numpy or
    torch, and whether it was one array or a list."""

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[Any, ...]
    numpy: bool
    single: bool

    @property
    def size(self) -> int:
        """The number of values in the flat vector."""
        return sum(math.prod(s) for s in self.shapes)

    def describe(self) -> str:
        """The shape in words, for an error message."""
        if self.single:
            return f"shape {list(self.shapes[0])}"
        return f"{len(self.shapes)} tensors, {self.size} values"


def flatten(update: Update) -> tuple[torch.Tensor, Layout]:
    """One update as a flat float vector (float64 if any part is, else float32) and the layout that undoes
    it: every rule works on vectors, so a model's parameter list and a single tensor aggregate alike."""
    single = isinstance(update, torch.Tensor | np.ndarray)
    parts = [update] if single else list(update)
    if not parts:
        raise BadInput("update", "[]", "is an empty parameter list")
    flats, shapes, dtypes = [], [], []
    for part in parts:
        if isinstance(part, np.ndarray):
            if part.dtype.kind not in "iuf":
                raise BadInput("update", str(part.dtype), "must hold integers or floats")
            t = torch.from_numpy(np.ascontiguousarray(part))
        elif isinstance(part, torch.Tensor):
            if part.is_complex() or part.dtype == torch.bool:
                raise BadInput("update", str(part.dtype), "must hold integers or floats")
            t = part.detach()
        else:
            raise BadInput(
                "update", type(part).__name__, "must be a torch tensor, a numpy array or a list of them"
            )
        shapes.append(tuple(t.shape))
        dtypes.append(part.dtype)
        flats.append(t.reshape(-1))
    dtype = torch.float64 if any(t.dtype == torch.float64 for t in flats) else torch.float32
    device = flats[0].device
    flat = torch.cat([t.to(device=device, dtype=dtype) for t in flats])
    return flat, Layout(tuple(shapes), tuple(dtypes), isinstance(parts[0], np.ndarray), single)


def unflatten(flat: torch.Tensor, layout: Layout) -> Update:
    """A flat vector back as the update `layout` came from: same shapes, dtypes (integers rounded) and kind,
    so a Flower strategy gets NDArrays back and a torch caller gets tensors."""
    if flat.numel() != layout.size:
        raise BadInput("flat", flat.numel(), f"has that many values; the layout needs {layout.size}")
    out: list[Array] = []
    start = 0
    for shape, dtype in zip(layout.shapes, layout.dtypes, strict=True):
        k = math.prod(shape)
        part = flat[start : start + k].reshape(shape)
        start += k
        if layout.numpy:
            arr = part.detach().cpu().numpy()
            np_dtype = np.dtype(dtype)
            out.append((np.rint(arr) if np_dtype.kind in "iu" else arr).astype(np_dtype))
        else:
            out.append((part if dtype.is_floating_point else part.round()).to(dtype))
    return out[0] if layout.single else out


def drop_nonfinite(
    updates: Sequence[Update], weights: Sequence[float] | None = None
) -> tuple[list[Update], list[float] | None, list[int]]:
    """The updates without any that hold NaN or infinite values (and their weights), plus the dropped
    indices: one such update would poison every rule, and its sender is by definition faulty, so the caller
    drops it and counts it among the f Byzantine clients."""
    kept, kept_w, dropped = [], [] if weights is not None else None, []
    for i, u in enumerate(updates):
        flat, _ = flatten(u)
        if bool(torch.isfinite(flat).all()):
            kept.append(u)
            if kept_w is not None:
                kept_w.append(float(weights[i]))  # type: ignore[index]
        else:
            dropped.append(i)
    return kept, kept_w, dropped


def stack(updates: Sequence[Update]) -> tuple[torch.Tensor, Layout]:
    """The updates as one (n, d) float matrix and their layout, checked to share a shape and hold only
    finite values: what every rule (and a benchmark measuring distances) works on."""
    items = list(updates)
    if not items:
        raise BadInput("updates", "", "need at least one client update")
    flats: list[torch.Tensor] = []
    layout: Layout | None = None
    for i, u in enumerate(items):
        try:
            flat, lay = flatten(u)
        except BadInput as e:
            raise BadInput(f"updates[{i}]", e.value, e.allowed) from None
        if layout is None:
            layout = lay
        elif lay.shapes != layout.shapes:
            raise BadInput(f"updates[{i}]", lay.describe(), f"must match updates[0] ({layout.describe()})")
        flats.append(flat)
    assert layout is not None
    dtype = torch.float64 if any(t.dtype == torch.float64 for t in flats) else torch.float32
    x = torch.stack([t.to(device=flats[0].device, dtype=dtype) for t in flats])
    bad = ~torch.isfinite(x).all(dim=1)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise BadInput(
            f"updates[{i}]",
            "non-finite",
            "holds NaN or infinite values: drop it (drop_nonfinite), its sender counts among the f Byzantine",
        )
    return x, layout


def _weights(
    weights: Sequence[float] | np.ndarray | torch.Tensor | None, x: torch.Tensor
) -> torch.Tensor | None:
    """Client weights as a vector on x's device, checked: n of them, finite, non-negative, not all zero."""
    if weights is None:
        return None
    try:
        arr = np.asarray(
            weights.detach().cpu() if isinstance(weights, torch.Tensor) else weights, dtype=float
        )
    except (TypeError, ValueError):
        raise BadInput("weights", repr(weights), "must be numbers (examples per client)") from None
    n = x.shape[0]
    if arr.shape != (n,):
        raise BadInput("weights", f"{arr.size} values", f"must be one number per update ({n})")
    if not np.isfinite(arr).all() or (arr < 0).any() or arr.sum() <= 0:
        raise BadInput("weights", repr(arr.tolist()), "must be finite, >= 0 and not all zero")
    return torch.as_tensor(arr, dtype=x.dtype, device=x.device)


def _check_f(f: object) -> int:
    if isinstance(f, bool) or not isinstance(f, int | np.integer) or f < 0:
        raise BadInput("f", f if isinstance(f, int | float | str) else repr(f), "must be a whole number >= 0")
    return int(f)


# ---------------------------------------------------------------------------------------------------------
# The rules, on the (n, d) matrix


def _mean(x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    if w is None:
        return x.mean(dim=0)
    return (w @ x) / w.sum()


def _median(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    lo = x.kthvalue((n + 1) // 2, dim=0).values
    if n % 2:
        return lo
    return (lo + x.kthvalue(n // 2 + 1, dim=0).values) / 2


def _trimmed(x: torch.Tensor, k: int) -> torch.Tensor:
    n = x.shape[0]
    if k == 0:
        return x.mean(dim=0)
    return x.sort(dim=0).values[k : n - k].mean(dim=0)


def _sqdist(x: torch.Tensor) -> torch.Tensor:
    """Pairwise squared distances, computed as differences (not through a Gram matrix, which cancels badly
    when a Byzantine update is huge)."""
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist") ** 2


def _krum_scores(d2: torch.Tensor, f: int) -> torch.Tensor:
    """Blanchard et al.'s score: each update's summed squared distance to its n - f - 2 closest others."""
    n = d2.shape[0]
    k = max(0, n - f - 2)
    if k == 0:
        return torch.zeros(n, dtype=d2.dtype, device=d2.device)
    others = d2.clone()
    others.fill_diagonal_(math.inf)
    return others.topk(k, dim=1, largest=False).values.sum(dim=1)


def _krum_order(x: torch.Tensor, f: int) -> torch.Tensor:
    """Indices by Krum score, best first; ties go to the lower index, so the choice is deterministic."""
    return torch.argsort(_krum_scores(_sqdist(x), f), stable=True)


def _run_mean(x: torch.Tensor, w: torch.Tensor | None, f: int) -> torch.Tensor:
    return _mean(x, w)


def _run_median(x: torch.Tensor, w: torch.Tensor | None, f: int) -> torch.Tensor:
    return _median(x)


def _trim_count(n: int, f: int, beta: float | None) -> int:
    return f if beta is None else math.floor(beta * n + 1e-9)


def _run_trimmed(x: torch.Tensor, w: torch.Tensor | None, f: int, beta: float | None = None) -> torch.Tensor:
    return _trimmed(x, _trim_count(x.shape[0], f, beta))


def _run_krum(x: torch.Tensor, w: torch.Tensor | None, f: int) -> torch.Tensor:
    return x[int(_krum_order(x, f)[0])]


def _run_multikrum(x: torch.Tensor, w: torch.Tensor | None, f: int, m: int | None = None) -> torch.Tensor:
    m = x.shape[0] - f if m is None else m
    return x[_krum_order(x, f)[:m]].mean(dim=0)


def _run_bulyan(x: torch.Tensor, w: torch.Tensor | None, f: int) -> torch.Tensor:
    n = x.shape[0]
    theta, beta = n - 2 * f, n - 4 * f
    d2 = _sqdist(x)
    # Ties (all scores are 0 once Krum has n - f - 2 = 0 neighbours, as in the last selection for f = 1)
    # go to the better Krum score over all n, then the lower index, so the input order does not matter.
    overall = _krum_scores(d2, f).tolist()
    remaining, chosen = list(range(n)), []
    for _ in range(theta):
        scores = _krum_scores(d2[remaining][:, remaining], f).tolist()
        best = min(range(len(remaining)), key=lambda j: (scores[j], overall[remaining[j]], remaining[j]))
        chosen.append(remaining.pop(best))
    s = x[chosen]
    closest = (s - _median(s)).abs().topk(beta, dim=0, largest=False).indices
    return s.gather(0, closest).mean(dim=0)


def _norms(d: torch.Tensor) -> torch.Tensor:
    """Row norms that do not overflow to inf for a huge Byzantine update (scaled by each row's max)."""
    big = d.abs().amax(dim=1).clamp_min(torch.finfo(d.dtype).tiny)
    return big * (d / big[:, None]).norm(dim=1)


def _run_clipping(
    x: torch.Tensor,
    w: torch.Tensor | None,
    f: int,
    tau: float | None = None,
    iterations: int = 1,
    reference: Update | None = None,
) -> torch.Tensor:
    if tau is None or isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not 0 < tau < math.inf:
        raise BadInput(
            "tau",
            "" if tau is None else float(tau) if isinstance(tau, numbers.Real) else repr(tau),
            "centered clipping needs the clipping radius tau > 0, on the scale of the honest updates' spread",
        )
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise BadInput("iterations", iterations, "must be a whole number >= 1")
    if reference is None:
        v = torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)
    else:
        flat, lay = flatten(reference)
        if flat.numel() != x.shape[1] or not bool(torch.isfinite(flat).all()):
            raise BadInput("reference", lay.describe(), f"must be a finite update of {x.shape[1]} values")
        v = flat.to(device=x.device, dtype=x.dtype)
    for _ in range(iterations):
        d = x - v
        scale = (tau / _norms(d).clamp_min(torch.finfo(x.dtype).tiny)).clamp(max=1.0)
        v = v + (d * scale[:, None]).mean(dim=0)
    return v


def _run_bucketing(
    x: torch.Tensor,
    w: torch.Tensor | None,
    f: int,
    inner: str | None = None,
    s: int = 2,
    seed: int | None = None,
    **inner_options: Any,
) -> torch.Tensor:
    agg = AGGREGATORS[str(inner)]
    n = x.shape[0]
    if seed is None:
        seed = secrets.randbits(63)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).to(x.device)
    means, bucket_w = [], []
    for start in range(0, n, s):
        idx = perm[start : start + s]
        wb = None if w is None or float(w[idx].sum()) <= 0 else w[idx]
        means.append(_mean(x[idx], wb))
        bucket_w.append(w[idx].sum() if w is not None else None)
    bw = torch.stack(bucket_w) if w is not None else None
    if bw is not None and float(bw.sum()) <= 0:
        bw = None
    return agg.run(torch.stack(means), bw, f, **inner_options)


# ---------------------------------------------------------------------------------------------------------
# The registry: what each rule tolerates


@dataclass(frozen=True)
class Aggregator:
    """One rule: its name, the paper's condition on n and f, the options it takes and its run on the
    (n, d) matrix."""

    name: str
    title: str
    rule: str  # the condition with {n} for the number of inputs, e.g. "{n} >= 2f + 3"
    max_f: Callable[[int], int]  # the most Byzantine inputs tolerated among n (negative: none, not even 0)
    options: tuple[str, ...]
    paper: str
    run: Callable[..., torch.Tensor]


AGGREGATORS: dict[str, Aggregator] = {
    a.name: a
    for a in (
        Aggregator(
            "mean",
            "mean (FedAvg)",
            "f = 0 (one update moves the mean anywhere)",
            lambda n: 0,
            (),
            "McMahan et al. 2017",
            _run_mean,
        ),
        Aggregator(
            "median",
            "coordinate-wise median",
            "2f < {n}",
            lambda n: (n - 1) // 2,
            (),
            "Yin et al. 2018",
            _run_median,
        ),
        Aggregator(
            "trimmed_mean",
            "coordinate-wise trimmed mean",
            "2f < {n}",
            lambda n: (n - 1) // 2,
            ("beta",),
            "Yin et al. 2018",
            _run_trimmed,
        ),
        Aggregator(
            "krum", "Krum", "{n} >= 2f + 3", lambda n: (n - 3) // 2, (), "Blanchard et al. 2017", _run_krum
        ),
        Aggregator(
            "multikrum",
            "MultiKrum",
            "{n} >= 2f + 3",
            lambda n: (n - 3) // 2,
            ("m",),
            "Blanchard et al. 2017",
            _run_multikrum,
        ),
        Aggregator(
            "bulyan",
            "Bulyan",
            "{n} >= 4f + 3",
            lambda n: (n - 3) // 4,
            (),
            "El Mhamdi et al. 2018",
            _run_bulyan,
        ),
        Aggregator(
            "centered_clipping",
            "centered clipping",
            "2f < {n}",
            lambda n: (n - 1) // 2,
            ("tau", "iterations", "reference"),
            "Karimireddy, He, Jaggi 2021",
            _run_clipping,
        ),
        Aggregator(
            "bucketing",
            "bucketing",
            "the inner rule's condition over the buckets",
            lambda n: (n - 1) // 2,
            ("inner", "s", "seed"),
            "Karimireddy, He, Jaggi 2022",
            _run_bucketing,
        ),
    )
}


def _unknown(name: object) -> BadInput:
    names = list(AGGREGATORS)
    return BadInput(
        "aggregator",
        str(name),
        "must be one of " + ", ".join(names) + " (or bucketing+<rule>)",
        hint=did_you_mean(str(name), [*names, *(f"bucketing+{n}" for n in names if n != "bucketing")]),
    )


def _resolve(name: str, options: dict[str, Any]) -> tuple[Aggregator, dict[str, Any]]:
    """The rule a name means (`bucketing+krum` is bucketing with inner="krum") and its checked options."""
    if not isinstance(name, str):
        raise _unknown(name)
    options = dict(options)
    if name.startswith("bucketing+"):
        if "inner" in options:
            raise BadInput("inner", options["inner"], f"is given twice: {name} already names the inner rule")
        name, options["inner"] = "bucketing", name.removeprefix("bucketing+")
    agg = AGGREGATORS.get(name)
    if agg is None:
        raise _unknown(name)
    allowed = set(agg.options)
    inner = None
    if agg.name == "bucketing":
        if options.get("inner") is None:
            raise BadInput(
                "inner", "", "bucketing needs the rule it feeds the bucket means to, e.g. inner='krum'"
            )
        inner = AGGREGATORS.get(options["inner"]) if isinstance(options["inner"], str) else None
        if inner is None or inner.name == "bucketing":
            raise BadInput(
                "inner",
                str(options["inner"]),
                "must be one of " + ", ".join(n for n in AGGREGATORS if n != "bucketing"),
                hint=did_you_mean(str(options["inner"]), [n for n in AGGREGATORS if n != "bucketing"]),
            )
        allowed |= set(inner.options)
        s = options.get("s", 2)
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise BadInput(
                "s", s if isinstance(s, int | float | str) else repr(s), "must be a whole number >= 1"
            )
        seed = options.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise BadInput(
                "seed", repr(seed), "must be a whole number (or None for a fresh unpredictable one)"
            )
    for key in options:
        if key not in allowed:
            raise BadInput(
                "option",
                key,
                f"{agg.name} takes " + (", ".join(sorted(allowed)) or "no options"),
                hint=did_you_mean(key, allowed),
            )
    return agg, options


def _limit(agg: Aggregator, n: int, options: dict[str, Any]) -> tuple[int, str]:
    """The most Byzantine clients `agg` tolerates among n, and the message's sentence saying why."""
    if agg.name == "bucketing":
        inner, s = AGGREGATORS[options["inner"]], options.get("s", 2)
        b = -(-n // s)
        most, _ = _limit(inner, b, {k: v for k, v in options.items() if k in inner.options})
        why = (
            f"bucketing (s = {s}) + {inner.title} needs {inner.rule.format(n='b')} over its b = ceil(n/s) "
            f"buckets: with n = {n} clients in b = {b} buckets"
        )
        return most, why
    most = agg.max_f(n)
    rule = agg.rule.format(n="n")
    if agg.name == "trimmed_mean" and options.get("beta") is not None:
        beta = options["beta"]
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 0.5:
            raise BadInput(
                "beta", beta if isinstance(beta, int | float | str) else repr(beta), "must be in [0, 0.5)"
            )
        k = _trim_count(n, 0, beta)
        if 2 * k >= n:
            raise BadInput("beta", beta, f"trims {k} from each end of n = {n}: nothing would be left")
        most = min(most, k)
        rule = f"f <= floor(beta * n) = {k} (the number it trims from each end)"
    return most, f"{agg.title} needs {rule}: with n = {n} clients"


def _min_clients(agg: Aggregator, options: dict[str, Any]) -> int:
    """The fewest clients `agg` can run on at all (with f = 0)."""
    if agg.name == "bucketing":
        inner = AGGREGATORS[options["inner"]]
        fewest_buckets = next(b for b in range(1, 16) if inner.max_f(b) >= 0)
        return options.get("s", 2) * (fewest_buckets - 1) + 1
    return next(m for m in range(1, 16) if agg.max_f(m) >= 0)


def check_tolerates(name: str, n: int, f: int, **options: Any) -> None:
    """Refuse (BadInput naming the limit) a rule asked to survive more Byzantine clients than it can,
    e.g. "Bulyan needs n >= 4f + 3: with n = 10 clients it tolerates at most f = 1"; with bucketing the
    limit applies to the number of buckets, since each Byzantine client spoils at most one."""
    agg, options = _resolve(name, options)
    _check(agg, n, f, options)


def _check(agg: Aggregator, n: int, f: int, options: dict[str, Any]) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BadInput("n", n if isinstance(n, int | float | str) else repr(n), "must be a whole number >= 1")
    f = _check_f(f)
    most, why = _limit(agg, n, options)
    if most < 0:
        need = _min_clients(agg, options)
        raise BadInput("n", n, f"{why.rsplit(': with', 1)[0]}: at least {need} clients, even with f = 0")
    if f > most:
        raise BadInput("f", f, f"{why} it tolerates at most f = {most}")
    inputs = -(-n // options.get("s", 2)) if agg.name == "bucketing" else n
    symbol = "b" if agg.name == "bucketing" else "n"
    if "multikrum" in (agg.name, options.get("inner")) and options.get("m") is not None:
        m = options["m"]
        if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= inputs - f:
            shown = m if isinstance(m, int | float | str) else repr(m)
            raise BadInput(
                "m", shown, f"MultiKrum averages 1 to {symbol} - f = {inputs - f} of the best-scored updates"
            )


def _aggregate(name: str, updates: Sequence[Update], weights: Any, f: int, options: dict[str, Any]) -> Update:
    agg, options = _resolve(name, options)
    x, layout = stack(updates)
    w = _weights(weights, x)
    _check(agg, x.shape[0], f, options)
    return unflatten(agg.run(x, w, int(f), **options), layout)


def aggregate(
    name: str,
    updates: Sequence[Update],
    weights: Sequence[float] | None = None,
    f: int = 0,
    **options: Any,
) -> Update:
    """Aggregate the clients' updates with the rule `name` (a key of AGGREGATORS, or "bucketing+<rule>"),
    after checking it tolerates f Byzantine clients among them: the one entry point a Flower strategy or a
    fusion job calls with a rule named in its configuration."""
    return _aggregate(name, updates, weights, f, options)


# ---------------------------------------------------------------------------------------------------------
# The rules by name


def mean(updates: Sequence[Update], weights: Sequence[float] | None = None, f: int = 0) -> Update:
    """FedAvg (McMahan et al. 2017): sum_k n_k x_k / sum_k n_k, weights n_k the clients' example counts
    (equal when None). The most efficient rule with honest clients and the only one that runs on SecAgg+
    masked updates, but one Byzantine client moves it anywhere, so it tolerates f = 0."""
    return _aggregate("mean", updates, weights, f, {})


def median(updates: Sequence[Update], weights: Sequence[float] | None = None, f: int = 0) -> Update:
    """Coordinate-wise median (Yin, Chen, Ramchandran, Bartlett 2018, "Byzantine-robust distributed
    learning: towards optimal statistical rates"); the mean of the two middle values for even n. Each
    coordinate is decided by the middle client, so up to 2f < n outliers cannot drag it. Weights ignored."""
    return _aggregate("median", updates, weights, f, {})


def trimmed_mean(
    updates: Sequence[Update], weights: Sequence[float] | None = None, f: int = 0, beta: float | None = None
) -> Update:
    """Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate drop the k largest and k smallest
    values and average the n - 2k left, with k = floor(beta * n) or, when beta is None, k = f. It needs
    k >= f (every Byzantine value can be trimmed) and 2k < n; beta = 0 is the plain mean. Weights ignored."""
    return _aggregate("trimmed_mean", updates, weights, f, {"beta": beta})


def krum(updates: Sequence[Update], weights: Sequence[float] | None = None, f: int = 0) -> Update:
    """Krum (Blanchard, El Mhamdi, Guerraoui, Stainer 2017, "Machine learning with adversaries: Byzantine
    tolerant gradient descent"): the one update whose summed squared distance to its n - f - 2 closest
    others is smallest, i.e. the most central member of the largest tight cluster. Needs n >= 2f + 3.
    Weights ignored (it selects, it does not average)."""
    return _aggregate("krum", updates, weights, f, {})


def multikrum(
    updates: Sequence[Update], weights: Sequence[float] | None = None, f: int = 0, m: int | None = None
) -> Update:
    """MultiKrum (Blanchard et al. 2017): the plain average of the m updates with the best Krum scores
    (m = n - f when None), which keeps Krum's selection but recovers most of the mean's variance
    reduction. m = 1 is Krum. Needs n >= 2f + 3 and m <= n - f."""
    return _aggregate("multikrum", updates, weights, f, {"m": m})


def bulyan(updates: Sequence[Update], weights: Sequence[float] | None = None, f: int = 0) -> Update:
    """Bulyan (El Mhamdi, Guerraoui, Rouault 2018, "The hidden vulnerability of distributed learning in
    Byzantium"): select theta = n - 2f updates by running Krum again and again on those not yet selected,
    then per coordinate average the beta = theta - 2f selected values closest to their median. Krum alone
    leaves an attacker O(sqrt(d)) room in single coordinates; the second step takes it away. Needs
    n >= 4f + 3. Weights ignored."""
    return _aggregate("bulyan", updates, weights, f, {})


def centered_clipping(
    updates: Sequence[Update],
    weights: Sequence[float] | None = None,
    f: int = 0,
    tau: float | None = None,
    iterations: int = 1,
    reference: Update | None = None,
) -> Update:
    """Centered clipping (Karimireddy, He, Jaggi 2021, "Learning from history for Byzantine robust
    optimization"): from v = `reference` repeat L = `iterations` times
    v <- v + (1/n) sum_i (x_i - v) min(1, tau / ||x_i - v||). Each step moves v by at most tau, so f
    Byzantine clients move it by at most tau f / n per step, and it costs O(n d), not Krum's O(n^2 d).

    The reference should be the previous round's aggregate (the server momentum in the paper); None
    starts from zero, as the paper's code does on its first round. tau is required: it must be on the
    scale of the honest updates' spread (too large and attackers are not clipped, too small and v crawls).
    The paper proves its rate for f/n <= 0.1; it tolerates here what clipping can survive at all, an honest
    majority 2f < n, as in the paper's experiments (5 Byzantine of 25). Weights ignored."""
    return _aggregate(
        "centered_clipping",
        updates,
        weights,
        f,
        {"tau": tau, "iterations": iterations, "reference": reference},
    )


def bucketing(
    updates: Sequence[Update],
    weights: Sequence[float] | None = None,
    f: int = 0,
    *,
    inner: str,
    s: int = 2,
    seed: int | None = None,
    **inner_options: Any,
) -> Update:
    """Bucketing (Karimireddy, He, Jaggi 2022, "Byzantine-robust learning on heterogeneous datasets via
    bucketing"): permute the n updates at random, average them in ceil(n/s) buckets of s (the last may be
    smaller; weighted by `weights` inside a bucket), then apply the rule `inner` to the bucket means with
    the same f. Averaging s honest clients shrinks their non-IID differences, so the robust rule stops
    mistaking honest-but-different clients for attackers; each Byzantine client still spoils at most one
    bucket, so the inner rule's limit applies to the number of buckets.

    The permutation must be one the clients cannot predict: pass a fresh secret `seed` each round (record
    it to reproduce the round); None draws one from the OS."""
    return _aggregate(
        "bucketing", updates, weights, f, {"inner": inner, "s": s, "seed": seed, **inner_options}
    )


# ---------------------------------------------------------------------------------------------------------
# Which rule, and which run under secure aggregation


SECAGG_COMPATIBLE: dict[str, tuple[bool, str]] = {
    "mean": (
        True,
        "SecAgg+ reveals only the sum of the masked updates, which is all FedAvg needs: each client sends "
        "n_k * x_k and n_k, and the server divides the two sums",
    ),
    "median": (False, "a per-coordinate order statistic: it needs every client's plaintext value"),
    "trimmed_mean": (False, "which values to trim depends on every client's plaintext value per coordinate"),
    "krum": (False, "scores are distances between individual updates, which the masks hide"),
    "multikrum": (
        False,
        "selects by Krum scores: distances between individual updates, which the masks hide",
    ),
    "bulyan": (False, "Krum selection and per-coordinate trimming both need the individual updates"),
    "centered_clipping": (
        False,
        "clipping needs each ||x_i - v||; clients clipping themselves before masking would not bind a "
        "Byzantine client, so the server must see each update",
    ),
    "bucketing": (
        False,
        "the inner rule needs plaintext bucket means; a SecAgg+ round per bucket of s = 2 would reveal each "
        "member's update to the other and pairs' averages to the server",
    ),
}


def recommend(n: int, f: int, iid: bool) -> str:
    """The rule to run for n clients of which up to f may be Byzantine, as a name `aggregate` takes.

    - f = 0: "mean" (FedAvg): nothing to defend against, the best statistical efficiency, and the only
      rule that runs on SecAgg+ masked updates.
    - IID data: "trimmed_mean" trimming f from each end: order-optimal error for IID data (Yin et al.
      2018), no hyperparameter, O(n d log n), tolerates any 2f < n. Krum and Bulyan cost O(n^2 d) and
      Krum keeps one client's noise.
    - Non-IID data: honest updates differ systematically, and every rule that trims or selects then
      discards honest-but-different clients (Karimireddy et al. 2022). "bucketing+centered_clipping"
      (buckets of s = 2) while the ceil(n/2) buckets keep an honest majority (2f < ceil(n/2));
      else "centered_clipping" alone (2f < n). Both need tau, and the previous aggregate as `reference`.
    - 2f >= n: BadInput, as no rule survives a Byzantine majority.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BadInput("n", n if isinstance(n, int | float | str) else repr(n), "must be a whole number >= 1")
    f = _check_f(f)
    if 2 * f >= n:
        most = (n - 1) // 2
        raise BadInput(
            "f", f, f"no rule survives a Byzantine majority: with n = {n} clients at most f = {most}"
        )
    if f == 0:
        return "mean"
    if iid:
        return "trimmed_mean"
    if 2 * f < -(-n // 2):
        return "bucketing+centered_clipping"
    return "centered_clipping"
