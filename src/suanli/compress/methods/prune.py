"""Structured pruning that removes whole channels / neurons, so size and latency really fall
(`torch.nn.utils.prune` only masks). Conv/Linear chains are found with torch.fx; transformer encoders
lose feed-forward neurons. Importance is the L2 norm of the weights in and out of a unit."""

from __future__ import annotations

import copy
from typing import Any

from suanli.compress.methods import NotApplicable

PASS_MODULES = (
    "ReLU",
    "ReLU6",
    "GELU",
    "SiLU",
    "Tanh",
    "Sigmoid",
    "LeakyReLU",
    "Dropout",
    "Dropout2d",
    "Identity",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "MaxPool1d",
    "AvgPool1d",
)
PASS_FUNCS = (
    "relu",
    "gelu",
    "silu",
    "tanh",
    "sigmoid",
    "dropout",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
)


def prune(module: Any, ratio: float, io: str) -> tuple[Any, dict]:
    """A copy of `module` with `ratio` of its prunable units removed; raises NotApplicable when none."""
    model = copy.deepcopy(module)
    if io == "text" or (hasattr(model, "encoder") and hasattr(getattr(model, "encoder", None), "layer")):
        return model, _prune_ffn(model, ratio)
    return model, _prune_chains(model, ratio)


def _slice_out(m: Any, idx: Any) -> None:
    import torch

    m.weight = torch.nn.Parameter(m.weight.data[idx].clone())
    if m.bias is not None:
        m.bias = torch.nn.Parameter(m.bias.data[idx].clone())
    if hasattr(m, "out_features"):
        m.out_features = len(idx)
    else:
        m.out_channels = len(idx)


def _slice_in(m: Any, idx: Any) -> None:
    import torch

    m.weight = torch.nn.Parameter(m.weight.data[:, idx].clone())
    if hasattr(m, "in_features"):
        m.in_features = len(idx)
    else:
        m.in_channels = len(idx)


def _keep(scores: Any, ratio: float) -> Any:
    import torch

    n = len(scores)
    k = max(1, round(n * (1 - ratio)))
    return torch.sort(torch.topk(scores, k).indices).values


def _prune_ffn(model: Any, ratio: float) -> dict:
    removed = 0
    for layer in model.encoder.layer:
        up, down = layer.intermediate.dense, layer.output.dense
        score = up.weight.detach().norm(dim=1) * down.weight.detach().norm(dim=0)
        idx = _keep(score, ratio)
        removed += up.out_features - len(idx)
        _slice_out(up, idx)
        _slice_in(down, idx)
    return {"removed_neurons": removed}


def _prune_chains(model: Any, ratio: float) -> dict:
    import torch
    from torch import fx, nn

    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as e:
        raise NotApplicable(f"the model cannot be traced for structured pruning ({e})") from None
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.Conv2d | nn.Linear):
            continue
        producer = modules[node.target]
        if isinstance(producer, nn.Conv2d) and producer.groups != 1:
            continue
        cur, norms, flatten = node, [], False
        consumer = None
        while True:
            users = list(cur.users)
            if len(users) != 1:
                break
            u = users[0]
            if u.op == "call_module":
                m = modules[u.target]
                if isinstance(m, nn.Conv2d | nn.Linear):
                    consumer = m
                    break
                if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                    norms.append(m)
                elif isinstance(m, nn.Flatten):
                    flatten = True
                elif type(m).__name__ not in PASS_MODULES:
                    break
            elif u.op in ("call_function", "call_method"):
                name = getattr(u.target, "__name__", str(u.target))
                if name == "flatten":
                    flatten = True
                elif name not in PASS_FUNCS:
                    break
            else:
                break
            cur = u
        if consumer is None or (isinstance(consumer, nn.Conv2d) and (consumer.groups != 1 or flatten)):
            continue
        if isinstance(producer, nn.Linear) and isinstance(consumer, nn.Conv2d):
            continue
        pairs.append((producer, consumer, norms, flatten))
    if not pairs:
        raise NotApplicable("no Conv/Linear chain to prune structurally")
    removed = 0
    for producer, consumer, norms, flatten in pairs:
        out_ch = producer.weight.shape[0]
        score = producer.weight.detach().reshape(out_ch, -1).norm(dim=1)
        idx = _keep(score, ratio)
        if flatten:
            per = consumer.in_features // out_ch
            if per * out_ch != consumer.in_features:
                continue
            cols = (idx.unsqueeze(1) * per + torch.arange(per).unsqueeze(0)).reshape(-1)
        else:
            cols = idx
        removed += out_ch - len(idx)
        _slice_out(producer, idx)
        _slice_in(consumer, cols)
        for bn in norms:
            bn.weight = nn.Parameter(bn.weight.data[idx].clone())
            bn.bias = nn.Parameter(bn.bias.data[idx].clone())
            bn.running_mean = bn.running_mean[idx].clone()
            bn.running_var = bn.running_var[idx].clone()
            bn.num_features = len(idx)
    return {"removed_channels": removed}
