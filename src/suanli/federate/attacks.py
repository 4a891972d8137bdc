"""Model-poisoning attacks, for tests and benchmarks of the aggregation rules: what f Byzantine clients
send in a round, given (where the attack is omniscient) the honest clients' updates.

Each returns f updates of the honest ones' kind and shape. Label flipping is a data attack, not an update
attack: a caller trains its Byzantine clients on flipped labels and sends what comes out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import torch

from suanli.core.errors import BadInput
from suanli.federate.aggregate import Update, flatten, stack, unflatten


def _count(f: int) -> int:
    if isinstance(f, bool) or not isinstance(f, int) or f < 0:
        raise BadInput("f", f if isinstance(f, int | float | str) else repr(f), "must be a whole number >= 0")
    return f


def sign_flip(updates: Sequence[Update], scale: float = 1.0) -> list[Update]:
    """Each Byzantine client sends its own honest update negated (times `scale`): the simplest attack that
    drags the mean backwards, against the descent direction."""
    x, layout = stack(updates)
    return [unflatten(-scale * row, layout) for row in x]


def gaussian(
    like: Update, f: int, std: float = 200.0, seed: int = 0, center: Update | None = None
) -> list[Update]:
    """f updates drawn from an isotropic Gaussian N(center, std^2 I) (center zero when None), the Gaussian
    Byzantine workers of Blanchard et al. 2017 (their experiments use std 200): noise with no knowledge of
    the honest updates, which any robust rule should shrug off."""
    f = _count(f)
    flat, layout = flatten(like)
    mu = torch.zeros_like(flat) if center is None else flatten(center)[0].to(flat)
    gen = torch.Generator().manual_seed(seed)
    return [
        unflatten(
            mu + std * torch.randn(flat.numel(), generator=gen, dtype=flat.dtype).to(flat.device), layout
        )
        for _ in range(f)
    ]


def alie_z(n: int, f: int) -> float:
    """z_max of "A little is enough" (Baruch, Baruch, Goldberg 2019): with s = floor(n/2 + 1) - f the
    non-Byzantine supporters the attackers need for a majority, the largest z with Phi(z) < (n - s)/n, so
    that enough honest values lie farther from the mean than the attackers' value for coordinate-wise and
    distance-based rules to prefer it."""
    s = math.floor(n / 2 + 1) - f
    p = (n - s) / n
    if not 0 < p < 1:
        raise BadInput(
            "f", f, f"ALIE needs 0 < (n - s)/n < 1 with s = floor(n/2 + 1) - f; n = {n} gives {p:.3g}"
        )
    return NormalDist().inv_cdf(p)


def alie(honest: Sequence[Update], f: int, n: int | None = None, z: float | None = None) -> list[Update]:
    """ "A little is enough" (Baruch et al. 2019): all f Byzantine clients send mean - z * std of the honest
    updates, per coordinate, with z = alie_z(n, f) for n clients in all (len(honest) + f when None). The
    shift stays inside the honest spread, so median, Krum and trimmed mean accept it, and repeated every
    round it steers training; in one round it barely moves the plain mean (by f/n * z * std)."""
    f = _count(f)
    x, layout = stack(honest)
    total = len(x) + f if n is None else n
    z = alie_z(total, f) if z is None else z
    std = x.std(dim=0, correction=1) if len(x) > 1 else torch.zeros_like(x[0])
    bad = x.mean(dim=0) - z * std
    return [unflatten(bad.clone(), layout) for _ in range(f)]


def ipm(honest: Sequence[Update], f: int, epsilon: float = 0.1) -> list[Update]:
    """Inner-product manipulation (Xie, Koyejo, Gupta 2020, "Fall of empires"): all f Byzantine clients
    send -epsilon times the mean of the honest updates, so the aggregate's inner product with the true
    direction turns small or negative. A small epsilon (0.1, the default) hides among the honest updates
    and defeats Krum and median; a large one (epsilon > (n - f)/f) reverses the plain mean."""
    f = _count(f)
    x, layout = stack(honest)
    bad = -epsilon * x.mean(dim=0)
    return [unflatten(bad.clone(), layout) for _ in range(f)]
