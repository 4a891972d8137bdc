"""Printing: one JSON document on stdout with --json; Rich tables otherwise; progress on stderr."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    sys.stdout.flush()


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: object) -> str:
    """Text from users and jobs (names, reasons) as Rich shows it literally: markup escaped, control
    characters (ANSI escapes included) replaced, so nothing in a name can crash or repaint a terminal."""
    return escape(_CONTROL.sub("?", str(text)))


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def clock(ts: float | None) -> str:
    """Local wall-clock time of a Unix timestamp, for tables (JSON carries full ISO times)."""
    if ts is None:
        return "-"
    from datetime import datetime

    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def size(value: float) -> str:
    return f"{value / 1024**3:.1f} GiB"


def metrics_line(metrics: dict[str, float]) -> str:
    return " ".join(f"{safe(k)}={v:.4g}" for k, v in metrics.items())
