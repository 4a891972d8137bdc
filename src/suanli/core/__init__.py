"""Bottom layer: units, resource quantities and the error hierarchy. Imports nothing of ours."""

from suanli.core.errors import BadInput, NotFound, SuanliError
from suanli.core.resources import Resources
from suanli.core.units import parse_accelerators, parse_bytes, parse_duration

__all__ = [
    "BadInput",
    "NotFound",
    "Resources",
    "SuanliError",
    "parse_accelerators",
    "parse_bytes",
    "parse_duration",
]
