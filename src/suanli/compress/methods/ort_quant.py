"""ONNX Runtime quantisation for CPU deployment: dynamic int8, static int8 (calibrated, QDQ) and
int4 weight-only (MatMulNBits). Sensitive layers can be kept in fp32 by node name."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from suanli.compress.methods import NotApplicable

QUANT_OPS = ("MatMul", "Gemm", "Conv")


def _quiet() -> None:
    logging.getLogger().setLevel(logging.ERROR)


def int8_dynamic(src: Path, dst: Path, *, per_channel: bool = False, exclude: Sequence[str] = ()) -> Path:
    """Weights int8 ahead of time (embedding tables too), activations quantised on the fly per batch."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _quiet()
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        nodes_to_exclude=list(exclude),
    )
    return dst


def int8_static(
    src: Path,
    dst: Path,
    feeds: Sequence[dict[str, np.ndarray]],
    *,
    per_channel: bool = False,
    exclude: Sequence[str] = (),
) -> Path:
    """Weights and activations int8 with activation ranges calibrated on `feeds` (QDQ format)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    _quiet()

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = iter(feeds)

    quantize_static(
        str(src),
        str(dst),
        _Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=list(exclude),
        op_types_to_quantize=list(QUANT_OPS),
    )
    return dst


def int4_weight(src: Path, dst: Path, *, exclude: Sequence[str] = (), block_size: int = 32) -> Path:
    """4-bit block-wise weights for MatMul (activations stay fp32): mostly a size win."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    _quiet()
    model = onnx.load(str(src))
    quant = MatMulNBitsQuantizer(
        model, block_size=block_size, is_symmetric=True, nodes_to_exclude=list(exclude)
    )
    quant.process()
    if not any(n.op_type == "MatMulNBits" for n in quant.model.model.graph.node):
        raise NotApplicable("no MatMul with constant weights to quantise to int4 (Conv/Gemm stay fp32)")
    quant.model.save_model_to_file(str(dst), use_external_data_format=False)
    return dst


def sensitivity(src: Path) -> list[str]:
    """Quantisable nodes, most sensitive first: relative error of their weights under per-tensor int8."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    scored = []
    for node in model.graph.node:
        if node.op_type not in QUANT_OPS:
            continue
        weights = [inits[n] for n in node.input if n in inits]
        if not weights:
            continue
        w = numpy_helper.to_array(max(weights, key=lambda t: np.prod(t.dims))).astype(np.float64)
        scale = max(np.abs(w).max() / 127.0, 1e-12)
        err = np.linalg.norm(w - np.round(w / scale) * scale) / max(np.linalg.norm(w), 1e-12)
        scored.append((err, node.name))
    return [name for _, name in sorted(scored, reverse=True)]
