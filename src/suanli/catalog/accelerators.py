"""The accelerator names suanli knows, following SkyPilot's catalog spelling.

Names are checked here so that a typo in a job spec fails at submit time with near names,
instead of leaving a job pending forever for hardware that does not exist.
"""

from __future__ import annotations

import re

from suanli.core.errors import BadInput, did_you_mean

# SkyPilot catalog names (catalogs/v7/common/accelerators.csv) plus the export-market parts.
ACCELERATOR_NAMES: tuple[str, ...] = (
    "A10", "A10G", "A100", "A100-80GB", "A100-80GB-SXM", "A40", "A4000", "A6000", "A800",
    "B200", "GB200", "GH200", "Gaudi2", "Gaudi HL-205",
    "H100", "H100-MEGA", "H100-NVL", "H100-SXM", "H20", "H200", "H200-SXM", "H800",
    "K80", "L4", "L40", "L40S", "M60", "MI250X", "MI300X", "MI325X", "P100", "P4",
    "RTX3060", "RTX3080", "RTX3090", "RTX4000-Ada", "RTX4080", "RTX4090", "RTX5090",
    "RTX6000", "RTX6000-Ada", "RTXA4000", "RTXA4500", "RTXA5000", "RTXA6000",
    "T4", "T4g", "V100", "V100-32GB",
    "tpu-v2", "tpu-v3", "tpu-v4", "tpu-v5e", "tpu-v5litepod", "tpu-v5p", "tpu-v6e",
)  # fmt: skip

_BY_LOWER = {name.lower(): name for name in ACCELERATOR_NAMES}


def accelerator_names() -> tuple[str, ...]:
    return ACCELERATOR_NAMES


def canonical_accelerator(name: str, field: str = "resources.accelerators") -> str:
    """The catalog spelling of `name` (case-insensitive), or BadInput with near names."""
    found = _BY_LOWER.get(name.strip().lower())
    if found is None:
        raise BadInput(
            field,
            name,
            "is not a known accelerator",
            hint=did_you_mean(name, ACCELERATOR_NAMES) or "see `suanli catalog list` for the names",
        )
    return found


_DEVICE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"H100.*NVL", "H100-NVL"),
    (r"H100", "H100"),
    (r"H200", "H200"),
    (r"H800", "H800"),
    (r"H20\b", "H20"),
    (r"GH200", "GH200"),
    (r"B200", "B200"),
    (r"A100.*80", "A100-80GB"),
    (r"A100", "A100"),
    (r"A800", "A800"),
    (r"A10G", "A10G"),
    (r"A10\b", "A10"),
    (r"A40\b", "A40"),
    (r"RTX A6000", "RTXA6000"),
    (r"RTX 6000 Ada", "RTX6000-Ada"),
    (r"RTX 4090", "RTX4090"),
    (r"RTX 3090", "RTX3090"),
    (r"L40S", "L40S"),
    (r"L40\b", "L40"),
    (r"\bL4\b", "L4"),
    (r"V100.*32", "V100-32GB"),
    (r"V100", "V100"),
    (r"\bT4\b", "T4"),
)


def accelerator_from_device_name(device_name: str) -> str:
    """Map a driver's device name ("NVIDIA H100 80GB HBM3") to the catalog name; unknown parts keep theirs."""
    for pattern, name in _DEVICE_PATTERNS:
        if re.search(pattern, device_name):
            return name
    return device_name.replace("NVIDIA ", "").strip()
