"""The workload flags shared by `suanli estimate` and `suanli plan`, defined once."""

from __future__ import annotations

from typing import Annotated, Any

import typer

Params = Annotated[
    str | None,
    typer.Option(
        "--params", help="Model size, e.g. 7B or 7e9 (architecture filled in by scaling convention)."
    ),
]
Layers = Annotated[int | None, typer.Option("--layers")]
Hidden = Annotated[int | None, typer.Option("--hidden")]
Heads = Annotated[int | None, typer.Option("--heads")]
KvHeads = Annotated[int | None, typer.Option("--kv-heads")]
FfnHidden = Annotated[int | None, typer.Option("--ffn-hidden")]
Vocab = Annotated[int | None, typer.Option("--vocab")]
SeqLen = Annotated[int | None, typer.Option("--seq-len")]
Experts = Annotated[int | None, typer.Option("--experts")]
ExpertsPerToken = Annotated[int | None, typer.Option("--experts-per-token")]
ActiveParams = Annotated[str | None, typer.Option("--active-params")]
Model = Annotated[
    str | None, typer.Option("--model", help="A Hugging Face config.json (read, never downloaded).")
]


def arch_flags(
    layers: int | None,
    hidden: int | None,
    heads: int | None,
    kv_heads: int | None,
    ffn_hidden: int | None,
    vocab: int | None,
    experts: int | None,
    experts_per_token: int | None,
    active_params: str | None,
) -> dict[str, Any]:
    """The architecture flags as the estimator's keyword arguments."""
    return {
        "layers": layers,
        "hidden": hidden,
        "heads": heads,
        "kv_heads": kv_heads,
        "ffn_hidden": ffn_hidden,
        "vocab": vocab,
        "experts": experts,
        "experts_per_token": experts_per_token,
        "active_params": active_params,
    }
