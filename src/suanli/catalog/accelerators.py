"""The accelerator names suanli knows, following SkyPilot's catalog spelling.

Names are checked here so that a typo in a job spec fails at submit time with near names,
instead of leaving a job pending forever for hardware that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from suanli.core.errors import BadInput, did_you_mean

# SkyPilot catalog names (catalogs/v7/common/accelerators.csv) plus the export-market parts.
ACCELERATOR_NAMES: tuple[str, ...] = (
    "A10", "A10G", "A100", "A100-80GB", "A100-80GB-SXM", "A40", "A4000", "A6000", "A800",
    "B200", "GB200", "GH200", "Gaudi2", "Gaudi HL-205",
    "H100", "H100-MEGA", "H100-NVL", "H100-SXM", "H20", "H200", "H200-SXM", "H800",
    "K80", "L4", "L40", "L40S", "M4000", "M60", "MI250X", "MI300X", "MI325X", "P100", "P4", "P4000",
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


# ---------------------------------------------------------------------------------------------
# Spec table: dense peak FLOP/s per precision, memory, bandwidths, power, each row with a source.
# A figure nobody sourced is None and is refused when an estimate needs it (never guessed).
# ---------------------------------------------------------------------------------------------

_T = 1e12  # TFLOP/s
_GB = 1e9  # decimal GB (vendor convention for capacity and bandwidth)
_RETRIEVED = "2026-11-22"  # when the sources below were read

# Source tags (the long form is in docs/estimator.md and the project's hardware facts reference).
_SOURCES = {
    "S1": "glennklockwood.com/garden/processors/A100 (NVIDIA A100 datasheet, Ampere whitepaper)",
    "S1b": "thundercompute.com A100 specs guide",
    "S1c": "fudzilla.com 'Nvidia unveils the A100 Tensor Core GPU'",
    "S2": "glennklockwood.com/garden/processors/h100",
    "S3": "glennklockwood.com/garden/processors/B200",
    "S5": "github.com/cli99/llm-analysis gpu_configs (commit d841e40)",
    "S6": "NVIDIA L40/L40S datasheet table (mullet.se reproduction)",
    "S7": "NVIDIA L4 figures via store.sourcecode.com / fpsbench.com",
    "S8": "hmc-tech.com / sysrqmts.com T4 vs V100 (TechPowerUp-style data)",
    "S9": "developer.nvidia.com 'Programming Tensor Cores in CUDA 9'",
    "S10": "sysrqmts.com 'RTX A6000 vs Tesla P40'",
    "S11": "tomshardware.com RTX 4090 launch coverage",
    "S12": "aiwiki.ai/wiki/nvidia_h200; AnandTech SC23 H200 article",
    "S13": "NVIDIA HGX B200 spec table (zdszero.github.io, docs.vultr.com)",
    "S14": "spheron.network GH200 guide",
    "S15": "technews.lt MI250X; llm-analysis mi250x-128gb.json",
    "S16": "jaredwatkins.com MI300 entry; public get_peak_flops table (mi300x 1.3074e15)",
    "S17": "cloud.google.com/tpu/docs/v4, /v5e, /v5p",
    "S18": "Intel Gaudi 3 Hot Chips 2024 deck (Gaudi2 column); pcguia.pt; yobitel.com",
    "G1": "github.com/astroC86/gpu-datasheet README (links NVIDIA A10/A40/H800 datasheets)",
    "G2": "github.com/citsjtu2020/LLM-Prof hardware_spec.md (A800, H800, H20 rows)",
}


@dataclass(frozen=True, slots=True)
class AcceleratorSpec:
    """One device's sourced figures. Peak FLOP/s are dense (no 2:4 sparsity); bandwidths in bytes/s."""

    name: str
    vendor: str
    generation: str
    peak_flops: dict[str, float | None]  # precision -> dense FLOP/s
    memory_bytes: int | None
    memory_bw: float | None  # bytes/s
    intra_node_bw: float | None  # bytes/s per device, bidirectional (NVLink, xGMI, ICI, PCIe)
    inter_node_bw: float | None  # bytes/s per device, bidirectional, when the part fixes it
    tdp_w: float | None
    devices_per_node: int
    source: str
    date: str = _RETRIEVED

    def peak(self, precision: str) -> float | None:
        return self.peak_flops.get(precision)


def _spec(
    name: str,
    vendor: str,
    gen: str,
    *,
    fp32: float | None = None,
    tf32: float | None = None,
    bf16: float | None = None,
    fp16: float | None = None,
    fp8: float | None = None,
    int8: float | None = None,
    int4: float | None = None,
    mem_gb: float | None,
    bw_gbs: float | None,
    intra_gbs: float | None = None,
    inter_gbs: float | None = None,
    tdp: float | None = None,
    per_node: int = 8,
    src: str,
) -> AcceleratorSpec:
    def t(x: float | None) -> float | None:
        return None if x is None else x * _T

    peaks = {
        "fp32": t(fp32),
        "tf32": t(tf32),
        "bf16": t(bf16),
        "fp16": t(fp16 if fp16 is not None else bf16),
        "fp8": t(fp8),
        "int8": t(int8),
        "int4": t(int4),
    }
    sources = "; ".join(f"[{s}] {_SOURCES[s]}" for s in src.split())
    return AcceleratorSpec(
        name=name,
        vendor=vendor,
        generation=gen,
        peak_flops=peaks,
        memory_bytes=None if mem_gb is None else int(mem_gb * _GB),
        memory_bw=None if bw_gbs is None else bw_gbs * _GB,
        intra_node_bw=None if intra_gbs is None else intra_gbs * _GB,
        inter_node_bw=None if inter_gbs is None else inter_gbs * _GB,
        tdp_w=tdp,
        devices_per_node=per_node,
        source=sources,
    )


_V100 = {"fp32": 15.7, "fp16": 125, "int8": 62.7, "bw_gbs": 900, "intra_gbs": 300, "tdp": 300}
_A100 = {"fp32": 19.5, "tf32": 156, "bf16": 312, "int8": 624, "intra_gbs": 600, "tdp": 400}
_H100 = {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp8": 1978.9, "int8": 1978.9, "intra_gbs": 900}
_A6000 = {"fp32": 38.7, "bf16": 154.8, "int8": 309.6, "mem_gb": 48, "bw_gbs": 768, "intra_gbs": 56.25}

_SPECS: tuple[AcceleratorSpec, ...] = (
    _spec("V100", "NVIDIA", "volta", **_V100, mem_gb=16, src="S8 S9 S1c"),
    _spec("V100-32GB", "NVIDIA", "volta", **_V100, mem_gb=32, src="S8 S9 S1c"),
    _spec("T4", "NVIDIA", "turing", fp32=8.1, fp16=65, int8=130, mem_gb=16, bw_gbs=320, tdp=70, src="S8"),
    _spec("A10G", "NVIDIA", "ampere", bf16=70, int8=140, mem_gb=24, bw_gbs=600, intra_gbs=32, src="S5"),
    _spec("A10", "NVIDIA", "ampere", bf16=125, int8=250, mem_gb=24, bw_gbs=600, src="G1"),
    _spec("A40", "NVIDIA", "ampere", bf16=149.7, int8=299.3, mem_gb=48, bw_gbs=696, src="G1"),
    _spec("A6000", "NVIDIA", "ampere", **_A6000, tdp=300, src="S10 S5"),
    _spec("RTXA6000", "NVIDIA", "ampere", **_A6000, tdp=300, src="S10 S5"),
    _spec("A100", "NVIDIA", "ampere", **_A100, mem_gb=40, bw_gbs=1555, src="S1 S1c S5"),
    _spec("A100-80GB", "NVIDIA", "ampere", **_A100, mem_gb=80, bw_gbs=2039, src="S1 S1b S5"),
    _spec("A100-80GB-SXM", "NVIDIA", "ampere", **_A100, mem_gb=80, bw_gbs=2039, src="S1 S1b S5"),
    _spec(
        "A800", "NVIDIA", "ampere", bf16=312, int8=624, mem_gb=80, bw_gbs=2039, intra_gbs=400, src="G2"
    ),
    _spec("L4", "NVIDIA", "ada", fp32=30.3, tf32=60, bf16=121, fp8=242.5, int8=242.5,
          mem_gb=24, bw_gbs=300, tdp=72, src="S7"),
    _spec("L40S", "NVIDIA", "ada", fp32=91.6, tf32=183, bf16=362, fp8=733, mem_gb=48, bw_gbs=864,
          intra_gbs=64, tdp=350, src="S6"),
    _spec("RTX4090", "NVIDIA", "ada", fp32=82.6, mem_gb=24, bw_gbs=1008, tdp=450, src="S11"),
    _spec("H100", "NVIDIA", "hopper", **_H100, mem_gb=80, bw_gbs=3350, tdp=700, src="S2"),
    _spec("H100-SXM", "NVIDIA", "hopper", **_H100, mem_gb=80, bw_gbs=3350, tdp=700, src="S2"),
    _spec("H200", "NVIDIA", "hopper", **_H100, mem_gb=141, bw_gbs=4800, tdp=700, src="S12 S2"),
    _spec("H200-SXM", "NVIDIA", "hopper", **_H100, mem_gb=141, bw_gbs=4800, tdp=700, src="S12 S2"),
    _spec("H800", "NVIDIA", "hopper", bf16=989, fp8=1979, int8=1979, mem_gb=80, bw_gbs=3350,
          intra_gbs=400, src="G2 G1"),
    _spec("H20", "NVIDIA", "hopper", bf16=148, int8=296, mem_gb=96, bw_gbs=4022, intra_gbs=900, src="G2"),
    _spec("B200", "NVIDIA", "blackwell", fp32=80, tf32=1100, bf16=2250, fp8=4500, int8=4500, int4=9000,
          mem_gb=180, bw_gbs=7700, intra_gbs=1800, tdp=1000, src="S3 S13"),
    _spec("GH200", "NVIDIA", "hopper", mem_gb=96, bw_gbs=None, per_node=1, src="S14"),
    _spec("MI250X", "AMD", "cdna2", bf16=383, mem_gb=128, bw_gbs=3200, intra_gbs=400, tdp=560, src="S15"),
    _spec("MI300X", "AMD", "cdna3", bf16=1307.4, fp8=2600, mem_gb=192, bw_gbs=5300, tdp=750, src="S16"),
    # TPU "node" = the ICI-connected pod. v4 intra: all-reduce bandwidth per pod 1.1 PB/s over 4,096 chips,
    # stored bidirectional (2 x 268.6 GB/s); tdp: measured mean power (min 90, max 192 W).
    _spec("tpu-v4", "Google", "tpu-v4", bf16=275, int8=275, mem_gb=32 * 1.073741824, bw_gbs=1200,
          intra_gbs=2 * 1.1e6 / 4096, tdp=170, per_node=4096, src="S17"),
    _spec("tpu-v5e", "Google", "tpu-v5", bf16=197, int8=393, mem_gb=16, bw_gbs=819, intra_gbs=400,
          per_node=256, src="S17"),
    _spec("tpu-v5p", "Google", "tpu-v5", bf16=459, mem_gb=95, bw_gbs=2765, intra_gbs=600, per_node=8960,
          src="S17"),
    _spec("Gaudi2", "Intel", "gaudi2", bf16=432, fp8=835, mem_gb=96, bw_gbs=2450, intra_gbs=600,
          inter_gbs=600, tdp=600, src="S18"),
)  # fmt: skip

_SPEC_BY_NAME = {s.name: s for s in _SPECS}

_FIELD_TEXT = {
    "memory_bytes": "memory size",
    "memory_bw": "memory bandwidth",
    "intra_node_bw": "intra-node interconnect bandwidth",
    "inter_node_bw": "inter-node bandwidth",
    "tdp_w": "power (TDP)",
}


def accelerator_specs() -> tuple[AcceleratorSpec, ...]:
    """Every device with a spec row (a subset of the names: a name without figures has no row)."""
    return _SPECS


def accelerator_spec(
    name: str,
    *,
    need: tuple[str, ...] = (),
    precision: str | None = None,
    field: str = "accelerator",
) -> AcceleratorSpec:
    """The spec of `name`; BadInput naming the device when a figure the caller needs is not sourced.

    `need` lists AcceleratorSpec fields the caller will use; `precision` asks for a peak FLOP/s.
    """
    canon = canonical_accelerator(name, field=field)
    spec = _SPEC_BY_NAME.get(canon)
    if spec is None:
        with_specs = ", ".join(s.name for s in _SPECS)
        raise BadInput(
            field, canon, "has no sourced spec in the catalog", hint=f"devices with specs: {with_specs}"
        )
    for f in need:
        if getattr(spec, f) is None:
            raise BadInput(
                field,
                canon,
                f"has no sourced {_FIELD_TEXT.get(f, f)} figure, so suanli will not guess it",
                hint="pick another accelerator",
            )
    if precision is not None and spec.peak(precision) is None:
        have = ", ".join(p for p, v in spec.peak_flops.items() if v is not None) or "none"
        raise BadInput(
            field,
            canon,
            f"has no sourced dense {precision} peak FLOP/s, so suanli will not guess it",
            hint=f"sourced precisions for {canon}: {have}",
        )
    return spec
