"""Quantities with units as people write them: "16GB", "2h", "A100:8"."""

from __future__ import annotations

import re

from suanli.core.errors import BadInput

_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_DURATION_UNITS = {
    "": 1,
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hr": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "mo": 30 * 86400,
    "y": 365 * 86400,
}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*(\+?)\s*$")


def _split(value: str, field: str, allowed: str) -> tuple[float, str]:
    m = _NUMBER_UNIT.match(value)
    if not m:
        raise BadInput(field, value, allowed)
    return float(m.group(1)), m.group(2).lower()


def parse_bytes(value: str | int | float, field: str = "memory") -> int:
    """Bytes from "16GB", "512MiB" or a bare number, read as GiB as SkyPilot task files write memory."""
    allowed = 'must be a positive size such as 16, "16GB" or "512MiB"'
    if isinstance(value, bool):
        raise BadInput(field, value, allowed)
    if isinstance(value, int | float):
        number, unit = float(value), "gib"
    else:
        number, unit = _split(str(value), field, allowed)
        unit = unit or "gib"
    if unit not in _BYTE_UNITS:
        raise BadInput(field, value, allowed)
    result = int(number * _BYTE_UNITS[unit])
    if result <= 0:
        raise BadInput(field, value, allowed)
    return result


def parse_duration(value: str | int | float, field: str = "duration") -> float:
    """Seconds from "90s", "30m", "2h", "30d", "12mo" or a number of seconds."""
    allowed = 'must be a positive duration such as 90, "30m", "2h" or "30d"'
    if isinstance(value, bool):
        raise BadInput(field, value, allowed)
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        number, unit = _split(str(value), field, allowed)
    if unit not in _DURATION_UNITS or number <= 0:
        raise BadInput(field, value, allowed)
    return number * _DURATION_UNITS[unit]


def parse_accelerators(value: object, field: str = "resources.accelerators") -> dict[str, int]:
    """{name: count} from "A100:8", "A100", {"A100": 8} or None; the catalog checks the names."""
    allowed = 'must be NAME, "NAME:COUNT" or {NAME: COUNT} with a whole COUNT >= 1'
    if value is None or value == {} or value == "":
        return {}
    if isinstance(value, str):
        name, _, count = value.partition(":")
        name = name.strip()
        if not name:
            raise BadInput(field, value, allowed)
        try:
            n = int(count) if count.strip() else 1
        except ValueError:
            raise BadInput(field, value, allowed) from None
        items = {name: n}
    elif isinstance(value, dict):
        items = {}
        for name, count in value.items():
            if isinstance(count, bool) or not isinstance(count, int | float) or count != int(count):
                raise BadInput(f"{field}.{name}", count, allowed)
            items[str(name)] = int(count)
    else:
        raise BadInput(field, value, allowed)
    if len(items) != 1:
        raise BadInput(field, value, "must name exactly one accelerator type")
    for name, n in items.items():
        if n < 1:
            raise BadInput(f"{field}.{name}", n, "accelerator count must be a whole number >= 1")
    return items
