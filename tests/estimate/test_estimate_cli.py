"""`suanli estimate train|infer` through Typer: JSON on stdout, one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobhelpers import invoke

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def run(*args: str) -> tuple[int, str, str]:
    r = invoke("estimate", *args)
    return r.exit_code, r.stdout, r.stderr


def test_train_json_from_params() -> None:
    code, out, _ = run(
        "train", "--params", "7B", "--tokens", "1T", "--accelerator", "A100-80GB", "--count", "64", "--json"
    )
    assert code == 0
    d = json.loads(out)
    for f in (
        "params",
        "flops",
        "memory_per_device_bytes",
        "layout",
        "mfu",
        "tokens_per_second",
        "wall_hours",
        "device_hours",
        "device_hours_low",
        "device_hours_high",
        "energy_kwh",
        "co2_kg",
        "assumptions",
    ):
        assert f in d
    assert any("scaling convention" in a for a in d["assumptions"])


def test_train_from_explicit_flags_with_moe_and_layout() -> None:
    code, out, _ = run(
        "train",
        "--layers",
        "32",
        "--hidden",
        "4096",
        "--heads",
        "32",
        "--kv-heads",
        "8",
        "--ffn-hidden",
        "14336",
        "--vocab",
        "32000",
        "--seq-len",
        "4096",
        "--experts",
        "8",
        "--experts-per-token",
        "2",
        "--tokens",
        "100B",
        "--accelerator",
        "H100",
        "--count",
        "64",
        "--tp",
        "2",
        "--pp",
        "1",
        "--zero",
        "1",
        "--recompute",
        "selective",
        "--json",
    )
    assert code == 0
    d = json.loads(out)
    assert d["layout"]["tp"] == 2 and d["layout"]["dp"] == 32 and d["layout"]["recompute"] == "selective"
    assert d["active_params"] < d["params"] / 3


def test_train_from_hf_config_and_table_output() -> None:
    code, out, _ = run(
        "train",
        "--model",
        str(CONFIGS / "mistral-7b.json"),
        "--seq-len",
        "4096",
        "--tokens",
        "1e11",
        "--accelerator",
        "H100",
        "--count",
        "16",
    )
    assert code == 0
    assert "device-hours" in out and "Assumptions" in out


def test_train_from_python_module_probe() -> None:
    pytest.importorskip("torch")
    code, out, _ = run(
        "train",
        "--python",
        "suanli.estimate.reference_models:tiny_gpt2",
        "--input-shape",
        "8,256",
        "--tokens",
        "1e9",
        "--accelerator",
        "L4",
        "--count",
        "2",
        "--json",
    )
    assert code == 0
    d = json.loads(out)
    assert d["params"] > 0 and d["flops"]["forward_per_sample"] > 0 and d["layout"]["dp"] == 2


def test_infer_json() -> None:
    code, out, _ = run(
        "infer",
        "--model",
        str(CONFIGS / "llama-2-70b.json"),
        "--accelerator",
        "H100",
        "--count",
        "4",
        "--batch",
        "8",
        "--prompt-tokens",
        "1000",
        "--output-tokens",
        "200",
        "--precision",
        "int8",
        "--price",
        "2.5",
        "--json",
    )
    assert code == 0
    d = json.loads(out)
    assert d["max_batch"] >= 8 and d["cost_per_million_tokens_usd"] > 0 and d["time_to_first_token_s"] > 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--layers", "2", "--hidden", "1000", "--heads", "3"], "hidden"),
        (["--layers", "2", "--hidden", "4096", "--heads", "32", "--kv-heads", "5"], "kv_heads"),
        (["--params", "7B", "--tokens", "0"], "tokens"),
        (["--params", "7B", "--tokens", "1T", "--accelerator", "H1OO"], "accelerator"),
        (["--params", "70B", "--tokens", "1T", "--accelerator", "A100-80GB", "--count", "4"], "count"),
        (["--params", "7B", "--tokens", "1T", "--precision", "int3"], "precision"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(args: list[str], field: str) -> None:
    if "--tokens" not in args:
        args = [*args, "--tokens", "1e9"]
    code, out, message = run("train", *args, "--json")
    assert code == 2
    assert out == ""
    assert "\n" not in message.strip() and message.startswith(f"error: {field}")


def test_unknown_accelerator_suggests_a_near_name() -> None:
    code, _, message = run("infer", "--params", "7B", "--accelerator", "H1OO")
    assert code == 2 and "did you mean: H100" in message


def test_train_with_steps_batch_and_fsdp() -> None:
    code, out, _ = run(
        "train", "--model", str(CONFIGS / "qwen2-7b.json"), "--steps", "1000", "--batch", "512",
        "--accelerator", "H100", "--count", "32", "--fsdp", "--json",
    )  # fmt: skip
    assert code == 0
    d = json.loads(out)
    assert d["tokens"] == 1000 * 512 * 4096  # config allows 32768; 4096 assumed and said so
    assert any("sequence length 4096 assumed" in a for a in d["assumptions"])
    assert d["layout"]["fsdp"] and d["layout"]["zero"] == 3 and d["global_batch"] == 512


def test_infer_bad_batch_and_precision_are_exit_2() -> None:
    code, _, message = run("infer", "--params", "7B", "--accelerator", "L4", "--batch", "100000")
    assert code == 2 and message.startswith("error: batch") and "at most" in message
    code, _, message = run("infer", "--params", "7B", "--precision", "fp4")
    assert code == 2 and message.startswith("error: precision")


# ---- a new user's mistakes -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["train", "--params", "7", "--tokens", "1T"],
            "error: params=7: must be between 1e+05 and 1e+15 parameters (did you mean 7B?)",
        ),
        (
            ["train", "--params", "7B", "--tokens", "2"],
            "error: tokens=2: must be between 1e+04 and 1e+16 tokens (did you mean 2T?)",
        ),
        (
            ["infer", "--params", "70"],
            "error: params=70: must be between 1e+05 and 1e+15 parameters (did you mean 70B?)",
        ),
        (["train", "--params", "1e30", "--tokens", "1T"], "error: params=1e30: must be between"),
        (["train", "--params", "nan", "--tokens", "1T"], "error: params=nan: must be a number such as"),
        (
            ["train", "--params", "7B", "--tokens", "1T", "--pue", "nan"],
            "error: pue=nan: must be a finite number >= 1",
        ),
        (["train", "--params", "7B", "--tokens", "1T", "--network-gbps", "inf"], "error: network_gbps=inf"),
        (
            ["train", "--params", "7B", "--tokens", "1T", "--power-fraction", "-2"],
            "error: power_fraction=-2.0",
        ),
        (
            ["train", "--layers", "0", "--hidden", "4096", "--heads", "32", "--tokens", "1T"],
            "error: layers=0",
        ),
        (["train", "--params", "7B", "--tokens", "1T", "--seq-len", "0"], "error: seq_len=0"),
        (["infer", "--params", "7B", "--price", "-1"], "error: price=-1: must be greater than zero"),
        (["infer", "--model", "no-such-config.json"], "error: model=no-such-config.json: does not exist"),
    ],
)
def test_implausible_sizes_and_non_finite_numbers_are_one_line(args: list[str], expected: str) -> None:
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert err.startswith(expected) and len(err.strip().splitlines()) == 1, err


def test_price_takes_dollars_and_magnitudes() -> None:
    docs = [json.loads(run("infer", "--params", "7B", "--price", p, "--json")[1]) for p in ("2.5", "$2.50")]
    assert docs[0]["cost_per_million_tokens_usd"] == docs[1]["cost_per_million_tokens_usd"] > 0


def test_tables_fit_80_columns() -> None:
    for args in (["train", "--params", "7B", "--tokens", "1T"], ["infer", "--params", "7B"]):
        code, out, _ = run(*args)
        assert code == 0 and max(len(line.rstrip()) for line in out.splitlines()) <= 80, out
