"""The accelerator spec table: sourced, complete enough, and refusing what it does not know."""

from __future__ import annotations

import pytest

from suanli.catalog.accelerators import (
    ACCELERATOR_NAMES,
    accelerator_from_device_name,
    accelerator_spec,
    accelerator_specs,
    canonical_accelerator,
)
from suanli.core.errors import BadInput

REQUIRED = (
    "A100",
    "A100-80GB",
    "H100",
    "H200",
    "B200",
    "V100",
    "V100-32GB",
    "T4",
    "L4",
    "A10G",
    "L40S",
    "A6000",
    "RTX4090",
    "MI300X",
    "tpu-v4",
    "tpu-v5e",
    "tpu-v5p",
    "A800",
    "H800",
    "H20",
)


def test_at_least_20_devices_each_with_source_and_date() -> None:
    specs = accelerator_specs()
    assert len(specs) >= 20
    for s in specs:
        assert s.name in ACCELERATOR_NAMES
        assert s.source and s.date
        assert s.memory_bytes and s.memory_bytes > 1e9


@pytest.mark.parametrize("name", REQUIRED)
def test_required_devices_are_present(name: str) -> None:
    assert accelerator_spec(name).name == name


def test_known_figures() -> None:
    h100 = accelerator_spec("h100")
    assert h100.peak("bf16") == pytest.approx(989.4e12)
    assert h100.peak("fp8") == pytest.approx(2 * h100.peak("bf16"), rel=0.01)
    assert accelerator_spec("A100-80GB").memory_bw == pytest.approx(2.039e12)
    assert accelerator_spec("H800").intra_node_bw < h100.intra_node_bw  # export part: cut NVLink


def test_unsourced_figure_is_refused_not_guessed() -> None:
    with pytest.raises(BadInput, match="no sourced dense bf16") as e:
        accelerator_spec("RTX4090", precision="bf16")
    assert e.value.value == "RTX4090"
    with pytest.raises(BadInput, match="power"):
        accelerator_spec("H20", need=("tdp_w",))


def test_unknown_names_suggest_near_names() -> None:
    with pytest.raises(BadInput, match="did you mean: H100"):
        accelerator_spec("H1OO")
    assert canonical_accelerator("a100-80gb") == "A100-80GB"
    assert accelerator_from_device_name("NVIDIA H100 80GB HBM3") == "H100"
