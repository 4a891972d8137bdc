"""The robust aggregation rules: each one's defining property on small hand-made inputs, the limits they
declare, and a quick robustness check against four attacks on synthetic updates."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
import torch

from suanli.core.errors import BadInput
from suanli.federate import attacks
from suanli.federate.aggregate import (
    AGGREGATORS,
    SECAGG_COMPATIBLE,
    aggregate,
    bucketing,
    bulyan,
    centered_clipping,
    check_tolerates,
    drop_nonfinite,
    flatten,
    krum,
    mean,
    median,
    multikrum,
    recommend,
    trimmed_mean,
    unflatten,
)


def rows(*values: list[float]) -> list[torch.Tensor]:
    return [torch.tensor(v, dtype=torch.float64) for v in values]


def close(a: torch.Tensor, b: torch.Tensor | list[float]) -> bool:
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64))


# --- each rule's defining property -----------------------------------------------------------------------


def test_weighted_mean_is_the_fedavg_formula():
    x = rows([1.0, 2.0], [3.0, -1.0], [0.0, 5.0])
    n_k = [10, 30, 60]
    expected = sum(w * v for w, v in zip(n_k, x, strict=True)) / sum(n_k)
    assert close(mean(x, weights=n_k), expected)
    assert close(mean(x), torch.stack(x).mean(0))


def test_median_ignores_an_outlier():
    x = rows([1, 10], [2, 20], [3, 30], [4, 40], [1e9, -1e9])
    assert close(median(x, f=2), [3, 20])
    assert close(median(x[:4]), [2.5, 25])  # even n: the mean of the two middle values


def test_trimmed_mean_with_beta_zero_is_the_mean():
    x = rows([1, -4], [2, 8], [7, 0], [0, 3])
    assert close(trimmed_mean(x, beta=0.0), torch.stack(x).mean(0))
    assert close(trimmed_mean(x), torch.stack(x).mean(0))  # f = 0 trims nothing


def test_trimmed_mean_drops_f_from_each_end():
    x = rows([1, 100], [2, 5], [3, 6], [4, 7], [-1e9, -1e9])
    # per coordinate: drop the smallest and the largest, average the middle three
    assert close(trimmed_mean(x, f=1), [(1 + 2 + 3) / 3, (5 + 6 + 7) / 3])
    assert close(trimmed_mean(x, f=1, beta=0.2), trimmed_mean(x, f=1))  # floor(0.2 * 5) = 1
    with pytest.raises(BadInput, match=r"f <= floor\(beta \* n\) = 1 .* at most f = 1"):
        trimmed_mean(x, f=2, beta=0.2)


def test_krum_picks_the_honest_cluster():
    x = rows([0, 0], [0.1, 0], [0, 0.1], [-0.1, 0], [10, 10])
    # scores (sum of squared distances to the n - f - 2 = 2 closest): 0.02 for the origin, 0.03 for the
    # three others of the cluster, huge for the outlier
    assert close(krum(x, f=1), [0, 0])
    many = rows([0, 0], [0.1, 0], [0, 0.1], [-0.1, 0], [10, 10], [10, 10.1], [10.1, 10])
    assert close(krum(many, f=2), [0, 0])  # the 4-cluster beats the 3-cluster of attackers


def test_multikrum_averages_the_m_best():
    x = rows([0, 0], [0.1, 0], [0, 0.1], [-0.1, 0], [10, 10])
    assert close(multikrum(x, f=1, m=1), krum(x, f=1))
    assert close(multikrum(x, f=1), torch.stack(x[:4]).mean(0))  # m = n - f: the four honest
    with pytest.raises(BadInput, match="m=5: MultiKrum averages 1 to n - f = 4"):
        multikrum(x, f=1, m=5)


def test_bulyan_selects_by_krum_then_trims_around_the_median():
    # n = 7, f = 1: Krum selects theta = 5 of them (0..4 here, never the 1000), then per coordinate the
    # beta = 3 closest to the median 2 are 1, 2, 3
    x = rows(*[[v, 10 * v] for v in (0, 1, 2, 3, 4, 5, 1000)])
    assert close(bulyan(x, f=1), [2, 20])
    assert close(bulyan(x, f=0), torch.stack(x).mean(0))  # f = 0 keeps all: the mean


def test_bulyan_refuses_fewer_than_4f_plus_3_clients_naming_the_limit():
    x = rows(*[[float(i)] for i in range(10)])
    with pytest.raises(BadInput) as e:
        bulyan(x, f=2)
    assert str(e.value) == "f=2: Bulyan needs n >= 4f + 3: with n = 10 clients it tolerates at most f = 1"
    assert e.value.exit_code == 2
    assert close(bulyan(x, f=1), bulyan(x, f=1))  # f = 1 runs


@pytest.mark.parametrize(("tau", "iterations"), [(0.1, 1), (0.5, 3), (2.0, 5)])
def test_centered_clipping_moves_at_most_tau_times_l_from_the_reference(tau, iterations):
    g = torch.Generator().manual_seed(1)
    x = [torch.randn(8, generator=g) * 5 + 3 for _ in range(9)] + [torch.full((8,), 1e6)]
    ref = torch.randn(8, generator=g)
    v = centered_clipping(x, f=1, tau=tau, iterations=iterations, reference=ref)
    assert float((v - ref).norm()) <= tau * iterations * (1 + 1e-6)


def test_centered_clipping_with_a_large_tau_is_the_mean():
    x = rows([1, 2], [3, 4], [-5, 0])
    v = centered_clipping(x, tau=1e9, iterations=1, reference=torch.tensor([7.0, -7.0]))
    assert close(v, torch.stack(x).mean(0))
    assert close(centered_clipping(x, tau=1e9), torch.stack(x).mean(0))  # no reference: from zero
    with pytest.raises(BadInput, match="tau: centered clipping needs the clipping radius"):
        centered_clipping(x)


@pytest.mark.parametrize(
    ("inner", "options"),
    [
        ("mean", {}),
        ("median", {}),
        ("trimmed_mean", {}),
        ("krum", {}),
        ("multikrum", {"m": 3}),
        ("bulyan", {}),
        ("centered_clipping", {"tau": 0.5, "iterations": 2}),
    ],
)
def test_bucketing_with_buckets_of_one_is_the_inner_rule(inner, options):
    g = torch.Generator().manual_seed(2)
    x = [torch.randn(6, generator=g, dtype=torch.float64) for _ in range(7)]
    weights = [1, 2, 3, 4, 5, 6, 7]
    f = 0 if inner == "mean" else 1
    got = bucketing(x, weights, f=f, inner=inner, s=1, seed=3, **options)
    assert close(got, aggregate(inner, x, weights, f=f, **options))
    assert close(aggregate(f"bucketing+{inner}", x, weights, f=f, s=1, seed=3, **options), got)


def test_bucketing_averages_random_buckets_reproducibly_from_the_seed():
    g = torch.Generator().manual_seed(4)
    x = [torch.randn(5, generator=g, dtype=torch.float64) for _ in range(10)]
    # buckets of 2 averaged, then the mean of the five bucket means: the plain mean, whatever the order
    assert close(bucketing(x, inner="mean", s=2, seed=0), torch.stack(x).mean(0))
    # one bucket of all 10: its mean, whatever the inner rule
    assert close(bucketing(x, inner="median", s=10, seed=0), torch.stack(x).mean(0))
    a = bucketing(x, f=1, inner="krum", s=2, seed=11)
    assert close(a, bucketing(x, f=1, inner="krum", s=2, seed=11))
    bucketing(x, f=1, inner="krum", s=2)  # no seed: a fresh one from the OS


def test_bucketing_limit_applies_to_the_number_of_buckets():
    check_tolerates("krum", 25, 11)  # 25 >= 2 * 11 + 3
    check_tolerates("bucketing", 25, 5, inner="krum", s=2)  # 13 buckets >= 2 * 5 + 3
    with pytest.raises(BadInput) as e:
        check_tolerates("bucketing+krum", 25, 6, s=2)
    assert str(e.value) == (
        "f=6: bucketing (s = 2) + Krum needs b >= 2f + 3 over its b = ceil(n/s) buckets: "
        "with n = 25 clients in b = 13 buckets it tolerates at most f = 5"
    )


# --- declared limits and names --------------------------------------------------------------------------

# (rule, n, the most Byzantine clients it tolerates)
LIMITS = [
    ("mean", 25, 0),
    ("median", 25, 12),
    ("median", 10, 4),
    ("trimmed_mean", 25, 12),
    ("krum", 25, 11),
    ("krum", 10, 3),
    ("multikrum", 25, 11),
    ("bulyan", 25, 5),
    ("bulyan", 10, 1),
    ("centered_clipping", 25, 12),
    ("bucketing+median", 25, 6),
    ("bucketing+centered_clipping", 25, 6),
    ("bucketing+krum", 25, 5),
    ("bucketing+bulyan", 25, 2),
]


@pytest.mark.parametrize(("name", "n", "most"), LIMITS)
def test_each_rule_refuses_more_byzantine_clients_than_it_tolerates(name, n, most):
    check_tolerates(name, n, most)
    with pytest.raises(BadInput, match=rf"^f={most + 1}: .* it tolerates at most f = {most}$") as e:
        check_tolerates(name, n, most + 1)
    assert e.value.field == "f"


def test_too_few_clients_for_any_f_names_the_minimum():
    with pytest.raises(
        BadInput, match=r"^n=2: Krum needs n >= 2f \+ 3: at least 3 clients, even with f = 0$"
    ):
        krum(rows([0.0], [1.0]))
    with pytest.raises(BadInput, match="at least 5 clients"):
        check_tolerates("bucketing+krum", 4, 0)


def test_an_unknown_name_gets_a_did_you_mean():
    x = rows([0.0], [1.0], [2.0])
    with pytest.raises(BadInput, match=r"aggregator=krun: must be one of .*\(did you mean: krum\?\)"):
        aggregate("krun", x)
    with pytest.raises(BadInput, match=r"inner=meadian: .*did you mean: median"):
        aggregate("bucketing", x, inner="meadian")
    with pytest.raises(BadInput, match=r"option=tua: centered_clipping takes iterations, reference, tau"):
        aggregate("centered_clipping", x, tua=1.0)
    with pytest.raises(BadInput, match="f=-1: must be a whole number >= 0"):
        aggregate("median", x, f=-1)


def test_every_rule_is_in_the_secagg_table_and_only_the_mean_runs_on_masked_updates():
    assert set(SECAGG_COMPATIBLE) == set(AGGREGATORS)
    assert [name for name, (ok, _) in SECAGG_COMPATIBLE.items() if ok] == ["mean"]
    assert all(why for _, why in SECAGG_COMPATIBLE.values())


def test_recommend():
    assert recommend(25, 0, iid=False) == "mean"
    assert recommend(25, 5, iid=True) == "trimmed_mean"
    assert recommend(25, 5, iid=False) == "bucketing+centered_clipping"  # 5 of 13 buckets: a minority
    assert recommend(25, 8, iid=False) == "centered_clipping"  # 8 of 13 buckets would be a majority
    for n, f in [(25, 5), (25, 8), (7, 3)]:
        for iid in (True, False):
            name = recommend(n, f, iid)
            check_tolerates(name, n, f, **({"tau": 1.0} if "clipping" in name else {}))
    with pytest.raises(BadInput, match="no rule survives a Byzantine majority"):
        recommend(10, 5, iid=True)


# --- updates as models ----------------------------------------------------------------------------------


def test_flatten_and_unflatten_round_trip_a_models_parameters():
    params = [torch.randn(3, 4), torch.randn(4), torch.tensor(7, dtype=torch.int64)]
    flat, layout = flatten(params)
    assert flat.shape == (17,) and flat.dtype == torch.float32
    back = unflatten(flat, layout)
    assert [p.shape for p in back] == [p.shape for p in params]
    assert [p.dtype for p in back] == [p.dtype for p in params]
    assert all(torch.equal(a, b) for a, b in zip(back, params, strict=True))


def test_numpy_parameter_lists_aggregate_to_numpy_parameter_lists():
    clients = [[np.full((2, 2), float(i)), np.array([i, 2 * i], dtype=np.int64)] for i in range(5)]
    out = aggregate("median", clients, f=2)
    assert isinstance(out, list) and all(isinstance(p, np.ndarray) for p in out)
    assert out[0].shape == (2, 2) and out[1].dtype == np.int64
    assert np.allclose(out[0], 2.0) and out[1].tolist() == [2, 4]
    with pytest.raises(BadInput, match=r"updates\[1\]=2 tensors, 5 values: must match updates\[0\]"):
        mean([clients[0], [np.zeros((2, 2)), np.zeros(1)]])


def test_non_finite_updates_are_refused_by_index_and_can_be_dropped():
    x = rows([0.0, 1.0], [float("nan"), 1.0], [2.0, 3.0])
    with pytest.raises(BadInput, match=r"updates\[1\]=non-finite"):
        median(x)
    kept, weights, dropped = drop_nonfinite(x, [1, 2, 3])
    assert dropped == [1] and weights == [1.0, 3.0] and len(kept) == 2
    with pytest.raises(BadInput, match="weights"):
        mean(kept, weights=[1, -1])


# --- attacks --------------------------------------------------------------------------------------------


def test_attacks_follow_their_formulas():
    honest = rows([1.0, 2.0], [3.0, 2.0], [2.0, 8.0])
    assert close(attacks.sign_flip(honest, scale=2.0)[1], [-6.0, -4.0])
    assert all(close(b, [-0.2, -0.4]) for b in attacks.ipm(honest, f=2, epsilon=0.1))
    # ALIE: s = floor(25/2 + 1) - 5 = 8 supporters, z = Phi^-1((25 - 8) / 25)
    assert attacks.alie_z(25, 5) == pytest.approx(NormalDist().inv_cdf(17 / 25))
    z = attacks.alie_z(5, 2)
    x = torch.stack(honest)
    bad = attacks.alie(honest, f=2)
    assert len(bad) == 2 and close(bad[0], x.mean(0) - z * x.std(0))
    noise = attacks.gaussian(honest[0], f=3, std=200.0, seed=0)
    assert len(noise) == 3 and noise[0].shape == (2,)


# --- robustness: 25 clients, 5 Byzantine ----------------------------------------------------------------

N, F, D = 25, 5, 100
ROBUST = [
    ("median", {}),
    ("trimmed_mean", {}),
    ("krum", {}),
    ("multikrum", {}),
    ("bulyan", {}),
    ("centered_clipping", {"iterations": 3}),
    ("bucketing+krum", {"seed": 0}),
    ("bucketing+median", {"seed": 0}),
    ("bucketing+centered_clipping", {"iterations": 3, "seed": 0}),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("attack", ["alie", "sign_flip", "gaussian", "ipm"])
def test_robust_rules_stay_near_the_honest_mean_while_the_mean_is_pulled_away(attack, seed):
    """20 honest updates around a true mean (coordinates +-1, noise 0.05 per coordinate, d = 100), 5
    Byzantine ones. R = the median distance of an honest update from the honest mean (about 0.5): every
    robust rule must land within 1.5 R of the honest mean (Krum returns one honest update, so about 0.9 R).
    The plain mean must be pulled beyond 3 R by sign flip, Gaussian noise (std 200) and IPM (epsilon 0.1).
    ALIE is built to stay inside the honest spread: it moves the mean by only f/n * z * std (about 0.1 R)
    and the robust rules by up to about 0.5 R, so only the 1.5 R bound is checked for it."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.where(torch.rand(D, generator=g) < 0.5, -1.0, 1.0)
    honest = [mu + 0.05 * torch.randn(D, generator=g) for _ in range(N - F)]
    center = torch.stack(honest).mean(0)
    r = float(torch.stack([(h - center).norm() for h in honest]).median())
    previous = center + 0.05 * torch.randn(D, generator=g)  # last round's aggregate, one spread off
    byzantine = {
        "alie": lambda: attacks.alie(honest, F),
        "sign_flip": lambda: attacks.sign_flip(honest[:F]),
        "gaussian": lambda: attacks.gaussian(honest[0], F, std=200.0, seed=seed),
        "ipm": lambda: attacks.ipm(honest, F, epsilon=0.1),
    }[attack]()
    updates = honest + byzantine

    far = {}
    for name, options in ROBUST:
        if "centered_clipping" in name:
            options = {**options, "tau": r, "reference": previous}
        far[name] = float((aggregate(name, updates, f=F, **options) - center).norm()) / r
    assert max(far.values()) < 1.5, far
    pulled = float((mean(updates) - center).norm()) / r
    if attack == "alie":
        assert pulled < 0.5
    else:
        assert pulled > 3.0
