"""`suanli estimate train|infer`: parse flags, one library call, print (a Rich table or one JSON document)."""

from __future__ import annotations

import json
import math

import typer

from suanli.cli import workload as W

app = typer.Typer(
    help="How much compute a workload needs and how long it takes (FLOPs, memory, layout, time, energy).",
    no_args_is_help=True,
)


@app.command()
def train(
    params: W.Params = None,
    layers: W.Layers = None,
    hidden: W.Hidden = None,
    heads: W.Heads = None,
    kv_heads: W.KvHeads = None,
    ffn_hidden: W.FfnHidden = None,
    vocab: W.Vocab = None,
    seq_len: W.SeqLen = None,
    experts: W.Experts = None,
    experts_per_token: W.ExpertsPerToken = None,
    active_params: W.ActiveParams = None,
    model: W.Model = None,
    python: str | None = typer.Option(None, "--python", help="MODULE:FACTORY returning a torch nn.Module."),
    input_shape: str | None = typer.Option(None, "--input-shape", help="Probe input, e.g. 8,2048."),
    input_dtype: str = typer.Option("auto", "--input-dtype", help="auto, long (token ids) or float."),
    tokens: str | None = typer.Option(None, "--tokens", help="Training tokens, e.g. 1T or 2e12."),
    steps: int | None = typer.Option(None, "--steps"),
    batch: int | None = typer.Option(None, "--batch", help="Global batch in sequences."),
    accelerator: str = typer.Option("H100", "--accelerator"),
    count: int | None = typer.Option(None, "--count", help="Number of devices (default 8)."),
    precision: str = typer.Option("bf16", "--precision", help="bf16, fp16, fp8 or fp32."),
    tp: int | None = typer.Option(None, "--tp"),
    pp: int | None = typer.Option(None, "--pp"),
    dp: int | None = typer.Option(None, "--dp"),
    zero: int | None = typer.Option(None, "--zero", help="ZeRO stage 0-3."),
    fsdp: bool = typer.Option(False, "--fsdp", help="Fully sharded data parallel (= ZeRO 3)."),
    microbatch: int | None = typer.Option(None, "--microbatch"),
    recompute: str | None = typer.Option(None, "--recompute", help="none, selective or full."),
    flash_attention: bool = typer.Option(True, "--flash-attention/--no-flash-attention"),
    sequence_parallel: bool = typer.Option(
        True, "--sequence-parallel/--no-sequence-parallel", help="With tensor parallelism."
    ),
    network_gbps: float | None = typer.Option(None, "--network-gbps", help="Inter-node Gb/s per device."),
    pue: float | None = typer.Option(None, "--pue"),
    region: str = typer.Option("world", "--region", help="Grid for CO2, e.g. world, france, china."),
    grid_gco2_per_kwh: float | None = typer.Option(None, "--grid-gco2-per-kwh"),
    power_fraction: float = typer.Option(1.0, "--power-fraction", help="Average power as a share of TDP."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Estimate a training run: FLOPs, memory per device, best layout, time, device-hours, energy, CO2."""
    from suanli.core.units import check_range, parse_tokens
    from suanli.estimate.energy import DEFAULT_PUE

    model, params, active_params = _model_size(model, params, active_params)
    n_tokens = None if tokens is None else parse_tokens(tokens, "tokens")
    _check_shape(layers, hidden, heads, kv_heads, ffn_hidden, vocab, seq_len, experts, experts_per_token)
    check_range(network_gbps, "network_gbps", lo=0, lo_open=True)
    check_range(pue, "pue", lo=1)
    check_range(grid_gco2_per_kwh, "grid_gco2_per_kwh", lo=0)
    check_range(power_fraction, "power_fraction", lo=0, hi=1, lo_open=True)
    from suanli.estimate.train import estimate_train, estimate_train_probe

    energy = {
        "pue": DEFAULT_PUE if pue is None else pue,
        "region": region,
        "grid_gco2_per_kwh": grid_gco2_per_kwh,
        "power_fraction": power_fraction,
    }
    if python is not None:
        from suanli.core.errors import BadInput
        from suanli.estimate.probe import probe

        if input_shape is None:
            raise BadInput("input_shape", None, "is needed with --python (e.g. --input-shape 8,2048)")
        typer.echo(f"probing {python} on the meta device ...", err=True)
        result = probe(python, input_shape, input_dtype)
        est = estimate_train_probe(
            result,
            tokens=n_tokens,
            steps=steps,
            batch=batch,
            accelerator=accelerator,
            count=count or 1,
            precision=precision,
            zero=3 if fsdp else zero,
            **energy,
        )
    else:
        est = estimate_train(
            model=model,
            params=params,
            seq_len=seq_len,
            tokens=n_tokens,
            steps=steps,
            batch=batch,
            accelerator=accelerator,
            count=count,
            precision=precision,
            tp=tp,
            pp=pp,
            dp=dp,
            zero=zero,
            fsdp=fsdp,
            microbatch=microbatch,
            recompute=recompute,
            flash_attention=flash_attention,
            sequence_parallel=sequence_parallel,
            network_gbps=network_gbps,
            **energy,
            **W.arch_flags(
                layers, hidden, heads, kv_heads, ffn_hidden, vocab, experts, experts_per_token, active_params
            ),
        )
    doc = est.to_json()
    if as_json:
        typer.echo(json.dumps(doc, default=_jsonable))
        return
    _print_train(doc)


@app.command()
def infer(
    params: W.Params = None,
    layers: W.Layers = None,
    hidden: W.Hidden = None,
    heads: W.Heads = None,
    kv_heads: W.KvHeads = None,
    ffn_hidden: W.FfnHidden = None,
    vocab: W.Vocab = None,
    experts: W.Experts = None,
    experts_per_token: W.ExpertsPerToken = None,
    active_params: W.ActiveParams = None,
    model: W.Model = None,
    accelerator: str = typer.Option("H100", "--accelerator"),
    count: int = typer.Option(1, "--count", help="Devices, tensor parallel."),
    batch: int = typer.Option(1, "--batch", help="Concurrent sequences."),
    prompt_tokens: int = typer.Option(512, "--prompt-tokens"),
    output_tokens: int = typer.Option(256, "--output-tokens"),
    precision: str = typer.Option("bf16", "--precision", help="Weights: bf16, fp16, fp8, int8, int4, fp32."),
    kv_precision: str | None = typer.Option(None, "--kv-precision", help="KV cache: bf16 (default) or fp8."),
    price: str | None = typer.Option(
        None, "--price", help='USD per device-hour (e.g. 2.5 or "$2.50"), for cost per 1M tokens.'
    ),
    compressed: str | None = typer.Option(
        None,
        "--compressed",
        help="An output directory of `suanli compress`: original vs compressed, measured.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Estimate serving: weights + KV-cache memory, largest batch, time to first token, decode speed, cost.

    With --compressed DIR: the inference cost of the original and the compressed model side by side."""
    from suanli.core.units import parse_usd

    usd = None if price is None else parse_usd(price, "price")
    if compressed is not None:
        _compressed(compressed, usd, as_json)
        return
    from suanli.estimate.infer import estimate_infer

    model, params, active_params = _model_size(model, params, active_params)
    _check_shape(layers, hidden, heads, kv_heads, ffn_hidden, vocab, None, experts, experts_per_token)

    est = estimate_infer(
        model=model,
        params=params,
        accelerator=accelerator,
        count=count,
        batch=batch,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        precision=precision,
        kv_precision=kv_precision,
        price_per_device_hour=usd,
        seq_len=prompt_tokens + output_tokens,
        **W.arch_flags(
            layers, hidden, heads, kv_heads, ffn_hidden, vocab, experts, experts_per_token, active_params
        ),
    )
    doc = est.to_json()
    if as_json:
        typer.echo(json.dumps(doc, default=_jsonable))
        return
    _print_infer(doc)


def _model_size(
    model: str | None, params: str | None, active_params: str | None
) -> tuple[str | None, float | None, float | None]:
    """The model flags checked before any work: `--model` an existing config file (a model folder
    gets its config.json as a hint), parameter counts plausible ("--params 7" hints 7B)."""
    from suanli.core.errors import input_file, read_text
    from suanli.core.units import parse_params

    if model is not None:
        read_text(input_file(model, "model", inside="config.json"), "model")
    return (
        model,
        None if params is None else parse_params(params, "params"),
        None if active_params is None else parse_params(active_params, "active_params"),
    )


def _check_shape(*values: int | None) -> None:
    """The architecture flags (layers, hidden, heads, kv_heads, ffn_hidden, vocab, seq_len, experts,
    experts_per_token), each a whole number >= 1 when given."""
    from suanli.core.errors import BadInput

    names = ("layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab", "seq_len", "experts")
    for name, value in zip((*names, "experts_per_token"), values, strict=True):
        if value is not None and value < 1:
            raise BadInput(name, value, "must be a whole number >= 1")


def _compressed(out_dir: str, price: float | None, as_json: bool) -> None:
    from suanli.compress.cost import inference_cost

    doc = inference_cost(out_dir, price)
    if as_json:
        typer.echo(json.dumps(doc, default=_jsonable))
        return
    a, b = doc["original"], doc["compressed"]

    def cost(side: dict) -> str:
        value = side["cost_per_million_inferences_usd"]
        return "pass --price" if value is None else f"{value:.4g} USD"

    rows = [
        ("model", f"{doc['model']} ({doc['task']})"),
        ("candidate", f"{a['name']}  ->  {b['name']}"),
        (
            "size",
            f"{a['size_bytes'] / 1e6:.2f} MB -> {b['size_bytes'] / 1e6:.2f} MB ({doc['size_ratio']:.1f}x)",
        ),
        (
            "latency, batch 1 (p50)",
            f"{a['latency_b1_p50_ms']:.2f} ms -> {b['latency_b1_p50_ms']:.2f} ms "
            f"({doc['latency_b1_speedup']:.2f}x)",
        ),
        (
            "throughput, batch 32",
            f"{a['throughput_b32_per_s']:.0f}/s -> {b['throughput_b32_per_s']:.0f}/s "
            f"({doc['throughput_b32_speedup']:.2f}x)",
        ),
        ("quality (held-out)", f"{a['quality_heldout']:.4f} -> {b['quality_heldout']:.4f}"),
        ("cost per 1M inferences", f"{cost(a)} -> {cost(b)}"),
    ]
    _table("suanli estimate infer --compressed", rows, doc["assumptions"])


# ---- printing --------------------------------------------------------------------------------------
def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _si(x: float, unit: str = "") -> str:
    for div, p in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g} {p}{unit}"
    return f"{x:.3g} {unit}".strip()


def _gib(x: float) -> str:
    return f"{x / 1024**3:.1f} GiB"


def _table(title: str, rows: list[tuple[str, str]], notes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from suanli.cli.tables import print_wrapped

    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("", style="bold")
    t.add_column("")
    for k, v in rows:
        t.add_row(k, v)
    console = Console()
    console.print(t)
    console.print("[bold]Assumptions[/bold]")
    for n in notes:
        print_wrapped(console, n, indent="  - ", hang="    ")


def _print_train(d: dict) -> None:
    f = d["flops"]
    pt = f.get("per_token", {})
    mem = d["memory_breakdown_bytes"]
    lay = d["layout"]
    rows = [
        ("model", str(d["architecture"].get("description", d["architecture"].get("family")))),
        ("parameters", f"{_si(d['params'])} (active {_si(d['active_params'])})"),
        ("tokens", _si(d["tokens"])),
        ("FLOPs total", f"{f['total']:.3g} FLOP (6ND rule: {f.get('six_n_d', f['model_total']):.3g})"),
    ]
    if pt:
        rows.append(
            (
                "FLOPs per token",
                f"fwd {_si(pt['forward'])}, bwd {_si(pt['backward'])}, recompute {_si(pt['recompute'])}; "
                f"of fwd: attention {_si(pt['attention_forward'])}, "
                f"output layer {_si(pt['output_layer_forward'])}",
            )
        )
    rows += [
        (
            "memory per device",
            f"{_gib(d['memory_per_device_bytes'])} of {_gib(d['memory_capacity_bytes'])}: "
            + ", ".join(f"{k} {_gib(v)}" for k, v in mem.items()),
        ),
        (
            "layout" + (" (searched)" if d["layout_searched"] else ""),
            f"tp={lay['tp']} pp={lay['pp']} dp={lay['dp']} zero={lay['zero']} microbatch={lay['microbatch']} "
            f"recompute={lay['recompute']}"
            + (f" on {lay['recompute_layers']} layers per stage" if lay.get("recompute_layers") else "")
            + (f" interleave={lay['interleave']}" if lay.get("interleave", 1) > 1 else ""),
        ),
        ("devices", f"{d['count']}x {d['accelerator']} ({d['precision']})"),
        ("throughput", f"{d['tokens_per_second_per_device']:.0f} tokens/s per device (whole run)"),
        ("MFU", f"{d['mfu']:.1%} steady state, {d['mfu_whole_run']:.1%} whole run"),
        ("wall time", f"{d['wall_hours']:.1f} h ({d['wall_hours_low']:.1f} - {d['wall_hours_high']:.1f})"),
        (
            "device-hours",
            f"{d['device_hours']:.4g} ({d['device_hours_low']:.4g} - {d['device_hours_high']:.4g})",
        ),
        ("energy", "not sourced" if d["energy_kwh"] is None else f"{d['energy_kwh']:.4g} kWh"),
        ("CO2", "not sourced" if d["co2_kg"] is None else f"{d['co2_kg']:.4g} kg"),
    ]
    _table("suanli estimate train", rows, d["assumptions"])


def _print_infer(d: dict) -> None:
    mem = d["memory_breakdown_bytes"]
    cost = d["cost_per_million_tokens_usd"]
    rows = [
        ("parameters", f"{_si(d['params'])} (active {_si(d['active_params'])})"),
        ("devices", f"{d['count']}x {d['accelerator']}, weights {d['precision']}, KV {d['kv_precision']}"),
        (
            "memory per device",
            f"{_gib(d['memory_per_device_bytes'])} of {_gib(d['memory_capacity_bytes'])}: "
            + ", ".join(f"{k} {_gib(v)}" for k, v in mem.items()),
        ),
        ("KV cache per token", f"{d['kv_cache_bytes_per_token'] / 1024:.1f} KiB"),
        ("largest batch", f"{d['max_batch']} sequences of {d['prompt_tokens'] + d['output_tokens']} tokens"),
        ("time to first token", f"{d['time_to_first_token_s'] * 1000:.1f} ms (batch {d['batch']})"),
        (
            "decode",
            f"{d['decode_tokens_per_second']:.0f} tokens/s total, "
            f"{d['decode_tokens_per_second_per_sequence']:.1f} per sequence ({d['decode_regime']})",
        ),
        ("request time", f"{d['request_seconds']:.2f} s"),
        ("cost per 1M output tokens", "pass --price" if cost is None else f"{cost:.3g} USD"),
    ]
    _table("suanli estimate infer", rows, d["assumptions"])
