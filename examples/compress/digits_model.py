"""The digits CNN of examples/digits as a factory, for `suanli compress digits_model.py:build`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "digits"))

from train import DigitsCNN


def build() -> DigitsCNN:
    """An untrained DigitsCNN; suanli loads the trained state_dict given with --weights."""
    return DigitsCNN()
