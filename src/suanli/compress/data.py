"""Evaluation and calibration data: arrays (.npz with x and y) or sentence pairs (STS-style CSV/TSV).

Loaded with numpy only; split into a validation part (the search tunes on it) and a held-out part
(only checked, never tuned on). Written to one file the evaluation processes read.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suanli.core.errors import BadInput, read_text


@dataclass
class Data:
    """Either arrays (`x`, optional `y`) or sentences (`a`, optional pair `b`, optional scores `y`)."""

    kind: str  # "tensor" or "text"
    x: np.ndarray | None = None
    a: list[str] | None = None
    b: list[str] | None = None
    y: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x) if self.kind == "tensor" else len(self.a or [])

    def take(self, idx: np.ndarray) -> Data:
        """The rows at `idx`."""
        y = None if self.y is None else self.y[idx]
        if self.kind == "tensor":
            return Data("tensor", x=self.x[idx], y=y)
        b = None if self.b is None else [self.b[i] for i in idx]
        return Data("text", a=[self.a[i] for i in idx], b=b, y=y)

    def sentences(self) -> list[str]:
        """Every sentence once per occurrence (a then b), for embedding fidelity and distillation."""
        return list(self.a or []) + list(self.b or [])

    def to_json(self) -> dict:
        if self.kind == "tensor":
            raise TypeError("tensor data is stored as .npz")
        return {"a": self.a, "b": self.b, "y": None if self.y is None else self.y.tolist()}

    @staticmethod
    def from_json(doc: dict) -> Data:
        y = None if doc.get("y") is None else np.asarray(doc["y"], dtype=np.float64)
        return Data("text", a=doc["a"], b=doc.get("b"), y=y)


def load_data(path: str | Path, field: str = "eval") -> Data:
    """Read `.npz` (arrays `x`, `y`), `.csv`/`.tsv` (STS layout or a header with sentence1, sentence2, score)
    or `.txt` (one sentence a line)."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(field, str(path), "is not a file")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return _load_npz(p, field)
    if suffix in (".csv", ".tsv"):
        return _load_table(p, field)
    if suffix == ".txt":
        lines = [ln.strip() for ln in read_text(p, field).splitlines() if ln.strip()]
        if not lines:
            raise BadInput(field, str(path), "has no sentences")
        return Data("text", a=lines)
    raise BadInput(
        field, str(path), "must be .npz (x, y arrays), .csv/.tsv (sentence pairs) or .txt (sentences)"
    )


def _load_npz(p: Path, field: str) -> Data:
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:
        raise BadInput(field, str(p), f"cannot be read as .npz ({e})") from None
    if "x" not in arrays:
        raise BadInput(field, str(p), f"needs an array named x (found: {', '.join(arrays) or 'none'})")
    x = arrays["x"]
    y = arrays.get("y")
    if y is not None and len(y) != len(x):
        raise BadInput(field, str(p), f"x has {len(x)} rows but y has {len(y)}")
    if x.dtype.kind == "f":
        x = x.astype(np.float32)
    if len(x) < 2:
        raise BadInput(field, str(p), "needs at least 2 rows")
    return Data("tensor", x=x, y=y)


def _load_table(p: Path, field: str) -> Data:
    delimiter = "\t" if p.suffix.lower() == ".tsv" else None
    text = read_text(p, field)
    first = text.split("\n", 1)[0]
    if delimiter is None:
        delimiter = "\t" if "\t" in first else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter, quoting=csv.QUOTE_NONE))
    rows = [r for r in rows if r]
    if not rows:
        raise BadInput(field, str(p), "is empty")
    header = [h.strip().lower() for h in rows[0]]
    a: list[str] = []
    b: list[str] = []
    y: list[float] = []
    if "sentence1" in header:
        i1 = header.index("sentence1")
        i2 = header.index("sentence2") if "sentence2" in header else None
        iy = next((header.index(k) for k in ("score", "label", "y") if k in header), None)
        width = 1 + max(i for i in (i1, i2, iy) if i is not None)
        for n, r in enumerate(rows[1:], start=2):
            if len(r) < width:
                raise BadInput(field, str(p), f"row {n} has {len(r)} field(s); the header names {width}")
            a.append(r[i1])
            if i2 is not None:
                b.append(r[i2])
            if iy is not None:
                y.append(_number(r[iy], p, field))
    elif len(rows[0]) >= 7:  # STS Benchmark: genre file year id score sentence1 sentence2 [extra]
        for r in rows:
            if len(r) < 7:
                raise BadInput(field, str(p), "rows need 7 tab-separated fields (STS Benchmark layout)")
            y.append(_number(r[4], p, field))
            a.append(r[5])
            b.append(r[6])
    else:
        raise BadInput(
            field, str(p), "needs a header with sentence1 (sentence2, score) or the STS Benchmark layout"
        )
    if len(a) < 2:
        raise BadInput(field, str(p), "needs at least 2 rows")
    return Data("text", a=a, b=b or None, y=np.asarray(y, dtype=np.float64) if y else None)


def _number(text: str, p: Path, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadInput(field, str(p), f"score {text!r} is not a number") from None
    if not math.isfinite(value):
        raise BadInput(field, str(p), f"score {text!r} is not a finite number")
    return value


def split(data: Data, seed: int = 0) -> tuple[Data, Data]:
    """Half for validation (tuned on), half held out (only checked), by a seeded shuffle."""
    order = np.random.default_rng(seed).permutation(len(data))
    half = len(order) // 2
    return data.take(np.sort(order[:half])), data.take(np.sort(order[half:]))


def save_eval(path: Path, val: Data, hold: Data) -> Path:
    """One file with both splits, for the evaluation processes."""
    if val.kind == "tensor":
        arrays = {"val_x": val.x, "hold_x": hold.x}
        if val.y is not None:
            arrays["val_y"] = val.y
            arrays["hold_y"] = hold.y
        target = path.with_suffix(".npz")
        np.savez(target, **arrays)
        return target
    target = path.with_suffix(".json")
    target.write_text(json.dumps({"val": val.to_json(), "hold": hold.to_json()}))
    return target


def load_eval(path: Path) -> tuple[Data, Data]:
    """Read what `save_eval` wrote."""
    if path.suffix == ".npz":
        with np.load(path) as f:
            val = Data("tensor", x=f["val_x"], y=f["val_y"] if "val_y" in f.files else None)
            hold = Data("tensor", x=f["hold_x"], y=f["hold_y"] if "hold_y" in f.files else None)
        return val, hold
    doc = json.loads(path.read_text())
    return Data.from_json(doc["val"]), Data.from_json(doc["hold"])
