"""Reading Hugging Face configs, scaling conventions, and refusing bad architectures."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.core.errors import BadInput
from suanli.estimate.model import Architecture, from_hf_config, from_params, parse_count

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"
# Published counts per real config: tests/estimate/test_estimate_hf_configs.py


def test_unknown_family_and_missing_file_are_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "bert", "hidden_size": 768}')
    with pytest.raises(BadInput, match="supported: ") as e:
        from_hf_config(bad)
    assert e.value.field == "model_type" and e.value.source == str(bad)
    with pytest.raises(BadInput, match="not found"):
        from_hf_config(tmp_path / "missing.json")
    bad.write_text("[1, 2]")
    with pytest.raises(BadInput, match="JSON object"):
        from_hf_config(bad)


def test_explicit_shapes_keep_their_plain_counts() -> None:
    """Flags describe a bias-free pre-norm block, so its count is the textbook sum."""
    a = Architecture(layers=2, hidden=64, heads=4, kv_heads=2, ffn_hidden=128, vocab=100)
    per_layer = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128 + 2 * 64
    assert a.params() == 2 * per_layer + 2 * 100 * 64 + 64 == a.active_params()


@pytest.mark.parametrize(
    ("field", "value"), [("norm", "batch"), ("qk_norm", "yes"), ("attn_bias", "qk"), ("norms_per_layer", -1)]
)
def test_bad_small_weight_fields_name_the_field(field: str, value: object) -> None:
    base = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 4, "ffn_hidden": 128, "vocab": 100}
    with pytest.raises(BadInput) as e:
        Architecture(**{**base, field: value})
    assert e.value.field == field


def test_params_alone_fill_in_a_llama_shape_and_say_so() -> None:
    arch = from_params(7e9)
    assert arch.hidden == 4096 and arch.hidden % arch.heads == 0
    assert arch.params() == pytest.approx(7e9, rel=0.03)
    assert "scaling convention" in arch.notes[0]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hidden": 1000, "heads": 3}, "hidden"),
        ({"heads": 32, "kv_heads": 5}, "kv_heads"),
        ({"experts": 8, "experts_per_token": 9}, "experts_per_token"),
        ({"layers": 0}, "layers"),
    ],
)
def test_bad_architectures_name_the_field(kwargs: dict, field: str) -> None:
    base = {"layers": 2, "hidden": 4096, "heads": 32, "kv_heads": 32, "ffn_hidden": 11008, "vocab": 32000}
    with pytest.raises(BadInput) as e:
        Architecture(**{**base, **kwargs})
    assert e.value.field == field
    assert e.value.exit_code == 2


def test_counts_accept_suffixes() -> None:
    assert parse_count("1.4T", "tokens") == 1.4e12
    assert parse_count("7B", "params") == 7e9
    with pytest.raises(BadInput):
        parse_count("0", "tokens")
