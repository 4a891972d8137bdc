"""Fusion of whole models as a user sees it, on scikit-learn's digits: averaging owners' models from a
common start, a robust rule against Byzantine owners, an ensemble distilled into one student, and the
inputs that are refused (one line, exit code 2, nothing written)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jobhelpers import invoke
from suanli.core.errors import BadInput
from suanli.fuse import Ensemble, distill_ensemble, fuse_models, load_state_dict

# --- digits and small models ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x = torch.tensor(x[order] / 16.0, dtype=torch.float32)
    y = torch.tensor(y[order], dtype=torch.int64)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def mlp(seed: int, batchnorm: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    mid = [nn.BatchNorm1d(32)] if batchnorm else []
    return nn.Sequential(nn.Linear(64, 32), *mid, nn.ReLU(), nn.Linear(32, 10))


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 0.5) -> nn.Module:
    """Full-batch gradient descent: deterministic and fast."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model.eval()(x).argmax(1) == y).float().mean())


def loaded(state: dict[str, torch.Tensor], batchnorm: bool = False) -> nn.Module:
    model = mlp(0, batchnorm)
    model.load_state_dict(state)
    return model.eval()


@pytest.fixture(scope="module")
def owners(digits):
    """A common start (briefly trained on 100 examples) and 7 owners who trained it on their own shard."""
    x, y, _, _ = digits
    start = fit(mlp(0), x[:100], y[:100], 20)
    shards = np.array_split(np.arange(100, 1400), 7)
    models = [fit(copy.deepcopy(start), x[s], y[s], 60) for s in shards]
    return start.state_dict(), [m.state_dict() for m in models]


# --- fusion of whole models -----------------------------------------------------------------------------


def test_averaging_models_from_a_common_start_is_at_least_as_good_as_the_worst(digits, owners):
    _, _, xt, yt = digits
    start, models = owners
    each = [accuracy(loaded(m), xt, yt) for m in models]
    fused = fuse_models(models, "mean", common_start=start)
    assert accuracy(loaded(fused), xt, yt) >= min(each)
    assert accuracy(loaded(fused), xt, yt) > accuracy(loaded(start), xt, yt) + 0.05
    # without the start, the mean of the weights is the same model: the mean commutes with a shift
    plain = fuse_models(models, "mean")
    assert all(torch.allclose(plain[k], fused[k], atol=1e-6) for k in fused)


def byzantine(start, model, how: str) -> dict[str, torch.Tensor]:
    """An owner's model with its change from the start reversed and scaled, or scaled up."""
    factor = {"sign_flip": -5.0, "scaled": 20.0}[how]
    return {k: start[k] + factor * (model[k] - start[k]) for k in model}


@pytest.mark.parametrize("how", ["sign_flip", "scaled"])
@pytest.mark.parametrize(
    ("rule", "options"),
    [
        ("median", {}),
        ("trimmed_mean", {}),
        ("multikrum", {}),
        ("centered_clipping", {"tau": 2.0, "iterations": 10}),  # L * tau covers the honest change (~5)
    ],
)
def test_a_robust_rule_stays_near_the_honest_fusion_while_the_mean_is_pulled_away(
    digits, owners, rule, options, how
):
    _, _, xt, yt = digits
    start, models = owners
    honest = accuracy(loaded(fuse_models(models[2:], "mean", common_start=start)), xt, yt)
    attacked = [byzantine(start, models[0], how), byzantine(start, models[1], how), *models[2:]]
    robust = accuracy(loaded(fuse_models(attacked, rule, f=2, common_start=start, **options)), xt, yt)
    averaged = accuracy(loaded(fuse_models(attacked, "mean", common_start=start)), xt, yt)
    assert robust >= honest - 0.03, (robust, honest)
    assert averaged < honest - 0.10, (averaged, honest)


def test_integer_buffers_keep_their_dtype_and_take_an_existing_value(digits):
    x, y, _, _ = digits
    steps = (3, 5, 8, 9, 4)
    models = [fit(mlp(0, batchnorm=True), x[i * 200 : (i + 1) * 200], y[i * 200 : (i + 1) * 200], s)
              for i, s in enumerate(steps)]  # fmt: skip
    states = [m.state_dict() for m in models]
    states[4]["1.num_batches_tracked"] = torch.tensor(1000)  # one owner claims 1000 batches
    fused = fuse_models(states, "median", f=2)
    counter = fused["1.num_batches_tracked"]
    assert counter.dtype == torch.int64 and int(counter) == 8  # the median count; the 1000 cannot move it
    assert fused["1.running_var"].dtype == torch.float32
    loaded(fused, batchnorm=True)  # loads into the architecture


# --- distillation of an ensemble ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def members(digits) -> list[nn.Module]:
    """Three owners, three initialisations, a third of the data each."""
    x, y, _, _ = digits
    return [fit(mlp(seed), x[i::3], y[i::3], 150) for i, seed in enumerate((1, 2, 3))]


def test_an_ensemble_of_unrelated_models_distils_into_a_student_near_its_accuracy(digits, members):
    x, _, xt, yt = digits
    # their weights cannot be averaged (permuted hidden units), their outputs can
    ensemble = accuracy(Ensemble(members), xt, yt)
    averaged = fuse_models([m.state_dict() for m in members], "mean")
    assert accuracy(loaded(averaged), xt, yt) < ensemble - 0.1  # why distillation, not averaging
    student = distill_ensemble(members, mlp(9), x.numpy(), epochs=15, batch=64)
    assert accuracy(student, xt, yt) >= ensemble - 0.025, (accuracy(student, xt, yt), ensemble)


def test_a_robust_ensemble_ignores_a_byzantine_member(digits, members):
    x, y, xt, yt = digits
    liar = fit(mlp(4), x, (y + 1) % 10, 150)  # confidently wrong on every input
    honest = accuracy(Ensemble(members), xt, yt)
    crowd = [*members, members[0], liar]  # 4 honest opinions (one repeated) and one liar
    assert accuracy(Ensemble(crowd, robust=True), xt, yt) >= honest - 0.03
    student = distill_ensemble(crowd, mlp(9), x.numpy(), robust=True, f=1, epochs=15, batch=64)
    assert accuracy(student, xt, yt) >= honest - 0.04
    with pytest.raises(BadInput, match="f=1: the mean of the members' outputs tolerates f = 0"):
        distill_ensemble(crowd, mlp(9), x.numpy(), f=1)
    with pytest.raises(BadInput, match="at most f = 2"):
        distill_ensemble(crowd, mlp(9), x.numpy(), robust=True, f=3)


# --- refused inputs -------------------------------------------------------------------------------------


def test_a_rule_that_cannot_tolerate_f_names_its_limit(owners):
    _, models = owners
    with pytest.raises(BadInput) as e:
        fuse_models(models, "bulyan", f=2)
    assert str(e.value) == "f=2: Bulyan needs n >= 4f + 3: with n = 7 clients it tolerates at most f = 1"
    assert e.value.exit_code == 2


def test_centred_clipping_without_a_common_start_is_refused_saying_why(owners):
    _, models = owners
    for rule in ("centered_clipping", "bucketing+centered_clipping"):
        with pytest.raises(BadInput, match=r"^start: .* clips each model's distance from a reference"):
            fuse_models(models, rule, f=1, tau=1.0)


def test_mismatched_models_name_the_first_mismatch(owners):
    start, models = owners
    a = dict(models[0])
    wider = {**a, "2.weight": torch.zeros(10, 33)}
    with pytest.raises(BadInput, match=r"^models\[1\]\['2.weight'\]=shape \[10, 33\]: must match"):
        fuse_models([a, wider], "mean")
    with pytest.raises(BadInput, match=r"^models\[1\]=3 tensors: lacks '2.bias'"):
        fuse_models([a, {k: v for k, v in a.items() if k != "2.bias"}], "mean")
    with pytest.raises(BadInput, match=r"^models\[1\]\['0.bias'\]=torch.float64: must match models\[0\]"):
        fuse_models([a, {**a, "0.bias": a["0.bias"].double()}], "mean")
    with pytest.raises(BadInput, match=r"^start=5 tensors: has 'extra'"):
        fuse_models([a, a], "mean", common_start={**start, "extra": torch.zeros(1)})
    with pytest.raises(BadInput, match=r"^models\[1\]=non-finite"):
        fuse_models([a, {**a, "0.bias": torch.full_like(a["0.bias"], float("nan"))}], "median")


# --- the command ----------------------------------------------------------------------------------------


def save(folder: Path, states: list[dict]) -> list[str]:
    paths = []
    for i, s in enumerate(states):
        p = folder / f"owner{i}.pt"
        torch.save(s, p)
        paths.append(str(p))
    return paths


def one_line(args: list[str]) -> str:
    r = invoke(*args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert r.stdout == "" and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_the_command_fuses_files_and_reports_each_models_distance(tmp_path, digits, owners):
    _, _, xt, yt = digits
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    start, models = owners
    attacked = [byzantine(start, models[0], "sign_flip"), *models[1:]]
    paths = save(tmp_path, attacked)
    torch.save(start, tmp_path / "start.pt")
    out = tmp_path / "fused.pt"
    r = invoke("fuse", *paths, "--rule", "bucketing+centered_clipping", "--f", "1", "--start",
               str(tmp_path / "start.pt"), "-o", "tau=1.0", "-o", "iterations=3", "-o", "seed=7",
               "--out", str(out), "--json")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    import json

    doc = json.loads(r.stdout)
    distances = [m["distance_to_fused"] for m in doc["models"]]
    assert distances.index(max(distances)) == 0  # the sign-flipped owner is the farthest
    fused = load_state_dict(out)
    direct = fuse_models(attacked, "bucketing+centered_clipping", f=1, common_start=start, tau=1.0,
                         iterations=3, seed=7)  # fmt: skip
    assert all(torch.equal(fused[k], direct[k]) for k in direct)
    assert accuracy(loaded(fused), xt, yt) > accuracy(loaded(start), xt, yt)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(Path(p).name for p in paths), "start.pt",
                                                                 "fused.pt"])  # fmt: skip


def test_the_command_refuses_bad_input_in_one_line_writing_nothing(tmp_path, owners):
    _, models = owners
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    paths = save(tmp_path, models)
    out = tmp_path / "fused.pt"
    before = sorted(tmp_path.iterdir())
    line = one_line(["fuse", *paths, "--rule", "krum", "--f", "3", "--out", str(out)])
    assert line == "error: f=3: Krum needs n >= 2f + 3: with n = 7 clients it tolerates at most f = 2"
    line = one_line(["fuse", *paths, "--rule", "centered_clipping", "--f", "1", "-o", "tau=1", "--out",
                     str(out)])  # fmt: skip
    assert line.startswith("error: start: centered_clipping clips each model's distance")
    (tmp_path / "notes.pt").write_text("not a model")
    line = one_line(["fuse", *paths[:2], str(tmp_path / "notes.pt"), "--rule", "mean", "--out", str(out)])
    assert line.startswith(f"error: models[2]={tmp_path / 'notes.pt'}: is not a torch state dict")
    torch.save({"weights": models[0], "hook": Path("/")}, tmp_path / "pickled.pt")  # not weights only
    line = one_line(["fuse", paths[0], str(tmp_path / "pickled.pt"), "--rule", "mean", "--out", str(out)])
    assert line.startswith(f"error: models[1]={tmp_path / 'pickled.pt'}: is not a torch state dict")
    line = one_line(["fuse", paths[0], str(tmp_path / "missing.pt"), "--rule", "mean", "--out", str(out)])
    assert line == f"error: models[1]={tmp_path / 'missing.pt'}: does not exist"
    torch.save({**models[1], "0.weight": torch.zeros(32, 65)}, tmp_path / "wide.pt")
    line = one_line(["fuse", paths[0], str(tmp_path / "wide.pt"), "--rule", "mean", "--out", str(out)])
    assert line == "error: models[1]['0.weight']=shape [32, 65]: must match models[0] (shape [32, 64])"
    line = one_line(["fuse", *paths, "--rule", "median", "-o", "tua=1", "--out", str(out)])
    assert line.startswith("error: option=tua: median takes no options")
    line = one_line(["fuse", *paths, "--rule", "mean", "--out", str(tmp_path / "no" / "fused.pt")])
    assert "does not exist" in line
    after = sorted(p for p in tmp_path.iterdir() if p.name not in ("notes.pt", "pickled.pt", "wide.pt"))
    assert after == before  # nothing written, no temporary file left
