"""Write the digits data for compression: eval.npz (the examples/digits test split) and calib.npz (its
training split, no labels needed), with x as (n, 1, 8, 8) float32 in [0, 1] and y as int64 labels."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default=".", help="directory for eval.npz and calib.npz")
    p.add_argument("--seed", type=int, default=0, help="the seed examples/digits/train.py split with")
    a = p.parse_args()
    digits = load_digits()
    x = (digits.images[:, None] / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=a.seed, stratify=y)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "eval.npz", x=x_test, y=y_test)
    np.savez(out / "calib.npz", x=x_train, y=y_train)
    print(f"wrote {out / 'eval.npz'} ({len(x_test)} rows) and {out / 'calib.npz'} ({len(x_train)} rows)")


if __name__ == "__main__":
    main()
