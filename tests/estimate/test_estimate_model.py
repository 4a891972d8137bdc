"""Reading Hugging Face configs, scaling conventions, and refusing bad architectures."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.core.errors import BadInput
from suanli.estimate.model import Architecture, from_hf_config, from_params, parse_count

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"

# Published parameter counts (total, active), from each model's card or paper.
PUBLISHED = {
    "llama-2-7b.json": (6.74e9, None),
    "llama-2-70b.json": (68.98e9, None),
    "mistral-7b.json": (7.24e9, None),
    "mixtral-8x7b.json": (46.7e9, 12.9e9),
    "qwen2-7b.json": (7.6e9, None),
    "gpt2.json": (124e6, None),
    "pythia-1.4b.json": (1.41e9, None),
    "falcon-7b.json": (6.92e9, None),
    "deepseek-v2-lite.json": (15.7e9, 2.4e9),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_hf_configs_give_published_parameter_counts(name: str) -> None:
    arch = from_hf_config(CONFIGS / name)
    total, active = PUBLISHED[name]
    assert arch.params() == pytest.approx(total, rel=0.01)
    if active:
        assert arch.active_params() == pytest.approx(
            active, rel=0.12
        )  # cards count active without embeddings


def test_families_map_their_specific_fields() -> None:
    mixtral = from_hf_config(CONFIGS / "mixtral-8x7b.json")
    assert (mixtral.experts, mixtral.experts_per_token, mixtral.kv_heads) == (8, 2, 8)
    falcon = from_hf_config(CONFIGS / "falcon-7b.json")
    assert falcon.kv_heads == 1 and not falcon.gated_ffn
    ds = from_hf_config(CONFIGS / "deepseek-v2-lite.json")
    assert ds.is_mla and ds.kv_bytes_per_token(2) == 27 * (512 + 64) * 2


def test_unknown_family_and_missing_file_are_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "bert", "hidden_size": 768}')
    with pytest.raises(BadInput, match="supported"):
        from_hf_config(bad)
    with pytest.raises(BadInput, match="not found"):
        from_hf_config(tmp_path / "missing.json")


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
