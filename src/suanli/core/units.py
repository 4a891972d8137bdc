"""Quantities with units as people write them: "16GB", "2h", "A100:8"."""

from __future__ import annotations

import math
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


# Counts and money: 7B, 1.4T, 300M, 250k, "$250k", "250,000", 2e12. B and G are both 1e9 (parameter and
# token counts, not bytes); M is a million here (durations read m as minutes).
_MAGNITUDES = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_COUNT = re.compile(
    r"^\s*(?P<usd>\$)?\s*(?P<num>[+-]?(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d[\d_]*\.?\d*|\.\d+)(?:e[+-]?\d+)?)"
    r"\s*(?P<mag>[kmbgt]?)\s*(?P<unit>usd)?\s*$",
    re.IGNORECASE,
)
COUNT_EXAMPLES = "a number such as 7e9, 7B, 300M, 250k or 1.4T"
USD_EXAMPLES = 'an amount of USD such as 250000, 250k, "$250k", 1.5M or "250,000"'
# Plausible sizes: outside these a flag was most likely given without its magnitude (7 for 7B).
PARAMS_RANGE = (1e5, 1e15)
TOKENS_RANGE = (1e4, 1e16)


def _magnitude(value: str | int | float, field: str, allowed: str, *, money: bool) -> tuple[float, bool]:
    """(the number, whether a magnitude suffix was written)."""
    if isinstance(value, bool):
        raise BadInput(field, value, f"must be {allowed}")
    if isinstance(value, int | float):
        return float(value), False
    m = _COUNT.match(str(value))
    if not m or ((m.group("usd") or m.group("unit")) and not money):
        raise BadInput(field, value, f"must be {allowed}")
    number = float(m.group("num").replace(",", "").replace("_", ""))
    return number * _MAGNITUDES[m.group("mag").lower()], bool(m.group("mag"))


def _checked(n: float, value: object, field: str, what: str, *, allow_zero: bool = False) -> float:
    if not math.isfinite(n):
        raise BadInput(field, value, f"must be a finite {what}")
    if n < 0 or (n == 0 and not allow_zero):
        raise BadInput(field, value, f"must be {'>= 0' if allow_zero else 'greater than zero'}")
    return n


def parse_count(value: str | int | float, field: str, *, allow_zero: bool = False) -> float:
    """A count from "7B", "1.4T", "300M", "250k", "250,000", "2e12" or a number; finite and > 0
    (>= 0 with `allow_zero`)."""
    n, _ = _magnitude(value, field, COUNT_EXAMPLES, money=False)
    return _checked(n, value, field, "number", allow_zero=allow_zero)


def parse_usd(value: str | int | float, field: str = "budget") -> float:
    """US dollars from "$250k", "250k", "250,000", "1.5M USD" or a number; finite and > 0."""
    n, _ = _magnitude(value, field, USD_EXAMPLES, money=True)
    return _checked(n, value, field, "amount of USD")


def _plausible(
    value: str | int | float, field: str, bounds: tuple[float, float], unit: str, suggest: str
) -> float:
    n, suffixed = _magnitude(value, field, COUNT_EXAMPLES, money=False)
    _checked(n, value, field, "number")
    lo, hi = bounds
    if lo <= n <= hi:
        return n
    hint = f"did you mean {n:g}{suggest}?" if n < lo and not suffixed else None
    raise BadInput(field, value, f"must be between {lo:.0e} and {hi:.0e} {unit}", hint=hint)


def parse_params(value: str | int | float, field: str = "params") -> float:
    """A model's parameter count ("7B", 7e9), refused outside PARAMS_RANGE ("7" hints "did you mean 7B?")."""
    return _plausible(value, field, PARAMS_RANGE, "parameters", "B")


def parse_tokens(value: str | int | float, field: str = "tokens") -> float:
    """A token count ("1T", 2e12), refused outside TOKENS_RANGE ("2" hints "did you mean 2T?", "300"
    "did you mean 300B?")."""
    n, suffixed = _magnitude(value, field, COUNT_EXAMPLES, money=False)
    return _plausible(value, field, TOKENS_RANGE, "tokens", "T" if not suffixed and 0 < n < 10 else "B")


def check_range(
    value: float | None,
    field: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> float | None:
    """`value` unchanged when it is None or a finite number in [lo, hi] ((lo, hi] with `lo_open`);
    otherwise BadInput saying the range. For flags a parser accepts as floats, NaN and inf included."""
    if value is None:
        return None
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"<= {hi:g}")
    allowed = "must be a finite number" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(field, value, allowed)
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise BadInput(field, value, allowed)
    if hi is not None and value > hi:
        raise BadInput(field, value, allowed)
    return value
