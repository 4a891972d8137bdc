"""Energy and CO2 of device-hours: power x hours x PUE, times the grid's carbon intensity."""

from __future__ import annotations

from suanli.core.errors import BadInput, did_you_mean

# Uptime Institute: industry average PUE 1.58 (2023); modern AI facilities are assumed ~1.2 by public
# TCO tools; hyperscale 1.1-1.2. suanli assumes a modern facility unless told (--pue).
DEFAULT_PUE = 1.2
PUE_SOURCE = (
    "PUE 1.2 (modern AI data centre, aiinframap.com TCO assumption; Uptime 2023 industry average 1.58)"
)

# Lifecycle gCO2e/kWh of electricity generation, 2023: Ember via Our World in Data; world and
# India/Norway also Statista (Ember, July 2024).
GRID_GCO2_PER_KWH: dict[str, float] = {
    "world": 481,
    "norway": 30,
    "france": 56,
    "finland": 79,
    "brazil": 98,
    "austria": 111,
    "belgium": 138,
    "denmark": 152,
    "canada": 170,
    "ireland": 291,
    "germany": 381,
    "australia": 549,
    "china": 582,
    "india": 713,
}
GRID_SOURCE = "Ember 2023 via Our World in Data (ourworldindata.org carbon-intensity-electricity)"


def grid_intensity(region: str | None, override: float | None = None) -> tuple[float, str]:
    """(gCO2e/kWh, where it came from). An unknown region is refused with near names."""
    if override is not None:
        if override < 0:
            raise BadInput("grid_gco2_per_kwh", override, "must be >= 0")
        return override, f"grid intensity {override:g} gCO2e/kWh (given)"
    key = (region or "world").strip().lower()
    if key not in GRID_GCO2_PER_KWH:
        raise BadInput(
            "region",
            region,
            "has no sourced grid carbon intensity",
            hint=(did_you_mean(key, GRID_GCO2_PER_KWH) or "known: " + ", ".join(GRID_GCO2_PER_KWH))
            + "; or pass --grid-gco2-per-kwh",
        )
    g = GRID_GCO2_PER_KWH[key]
    return g, f"grid intensity {key} {g:g} gCO2e/kWh ({GRID_SOURCE})"


def energy_kwh(device_hours: float, power_w: float, pue: float, power_fraction: float = 1.0) -> float:
    """Facility energy: device power x hours x PUE."""
    return device_hours * power_w * power_fraction * pue / 1000.0
