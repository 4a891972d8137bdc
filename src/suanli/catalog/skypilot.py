"""Import SkyPilot catalog CSVs (`catalogs/v*/<cloud>/vms.csv` of skypilot-org/skypilot-catalog).

Columns are found by name, so both column orders SkyPilot has used load (`...,Price,Region,GpuInfo,SpotPrice`
and `...,GpuInfo,Region,SpotPrice,Price,...`), with CRLF or LF line ends. Every file is validated whole
before anything is written: a malformed row raises BadInput naming the file, line and column, and nothing
is imported. Rows without an accelerator (CPU instances) and accelerators suanli does not know are
skipped and counted in the result, never silently.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import date as _date
from pathlib import Path

from suanli.catalog.offers import Offer, write_offer_csv
from suanli.core.errors import BadInput

NEEDED = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "Region")
# GPU marketplaces: hosts belong to many owners, so a price comes with a reliability, not an SLA.
MARKETPLACES = {"vast"}


@dataclass(slots=True)
class ImportResult:
    """What one import read, kept and skipped (with reasons), and where it was written."""

    offers: list[Offer]
    files: list[str]
    rows_read: int = 0
    skipped_cpu_only: int = 0
    skipped_unknown_accelerator: dict[str, int] = field(default_factory=dict)
    skipped_no_spot_price: int = 0
    written: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "files": self.files,
            "rows_read": self.rows_read,
            "offers": len(self.offers),
            "providers": sorted({o.provider for o in self.offers}),
            "accelerators": sorted({o.accelerator for o in self.offers}),
            "skipped_cpu_only": self.skipped_cpu_only,
            "skipped_unknown_accelerator": self.skipped_unknown_accelerator,
            "skipped_zero_or_missing_spot_price": self.skipped_no_spot_price,
            "written": self.written,
        }


def _num(raw: str, name: str, line: int, col: str, *, required: bool) -> float | None:
    raw = raw.strip()
    if raw == "":
        if required:
            raise BadInput(col, "", "is empty (a number is required)", source=f"{name}:{line}")
        return None
    try:
        x = float(raw)
    except ValueError:
        raise BadInput(col, raw, "must be a number", source=f"{name}:{line}") from None
    if not math.isfinite(x) or x < 0:
        raise BadInput(
            col, raw, "must be a finite number >= 0 (negative prices are refused)", source=f"{name}:{line}"
        )
    return x


def read_vms_csv(
    path: Path | str, provider: str | None = None, *, source: str | None = None, date: str | None = None
) -> ImportResult:
    """Offers (on-demand or marketplace, and spot where a real spot price is listed) of one vms.csv."""
    from suanli.catalog.accelerators import ACCELERATOR_NAMES

    path = Path(path)
    provider = (provider or path.parent.name).lower()
    name = "/".join(path.parts[-3:])
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise BadInput("catalog", str(path), f"cannot be read ({e.strerror})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise BadInput("header", "", "the file is empty", source=f"{name}:1")
    idx = {h.strip(): i for i, h in enumerate(header)}
    for col in NEEDED:
        if col not in idx:
            raise BadInput(
                col,
                "",
                "column is missing from the header",
                source=f"{name}:1",
                hint="needs " + ", ".join(NEEDED),
            )
    spot_i = idx.get("SpotPrice")
    known = {n.lower(): n for n in ACCELERATOR_NAMES}
    res = ImportResult(offers=[], files=[name])
    src = source or f"SkyPilot catalog {name} (github.com/skypilot-org/skypilot-catalog)"
    day = date or _date.today().isoformat()
    mode = "marketplace" if provider in MARKETPLACES else "on-demand"
    # (instance, accelerator, count, mode, price) -> regions, in file order
    groups: dict[tuple, list[str]] = {}
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        res.rows_read += 1
        if len(row) != len(header):
            raise BadInput(
                "row", f"{len(row)} fields", f"the header has {len(header)}", source=f"{name}:{line}"
            )
        acc = row[idx["AcceleratorName"]].strip()
        count = _num(row[idx["AcceleratorCount"]], name, line, "AcceleratorCount", required=False)
        price = _num(row[idx["Price"]], name, line, "Price", required=bool(acc))
        spot = _num(row[spot_i], name, line, "SpotPrice", required=False) if spot_i is not None else None
        if not acc or not count:
            res.skipped_cpu_only += 1
            continue
        if count != int(count):
            raise BadInput(
                "AcceleratorCount",
                row[idx["AcceleratorCount"]],
                "must be a whole number",
                source=f"{name}:{line}",
            )
        canon = known.get(acc.lower())
        if canon is None:
            res.skipped_unknown_accelerator[acc] = res.skipped_unknown_accelerator.get(acc, 0) + 1
            continue
        inst = row[idx["InstanceType"]].strip()
        if not inst:
            raise BadInput("InstanceType", "", "is empty", source=f"{name}:{line}")
        region = row[idx["Region"]].strip()
        groups.setdefault((inst, canon, int(count), mode, price), []).append(region)
        if spot is not None and spot > 0 and mode != "marketplace":
            groups.setdefault((inst, canon, int(count), "spot", spot), []).append(region)
        elif spot_i is not None:
            res.skipped_no_spot_price += 1
    for (inst, acc, count, m, price), regions in groups.items():
        res.offers.append(
            Offer(
                provider=provider,
                instance_type=inst,
                accelerator=acc,
                accelerator_count=count,
                mode=m,
                source=src,
                date=day,
                price_usd_per_hour=price,
                regions=tuple(dict.fromkeys(regions)),
                origin=f"imported:{name}",
            )
        )
    return res


def find_vms_files(directory: Path | str) -> dict[str, Path]:
    """provider -> its vms.csv under `directory` (the newest catalog version when several exist)."""
    directory = Path(directory)
    if directory.is_file():
        return {directory.parent.name.lower(): directory}
    if not directory.is_dir():
        raise BadInput("directory", str(directory), "does not exist")
    found: dict[str, tuple[int, Path]] = {}
    for p in sorted(directory.rglob("vms.csv")):
        ver = p.parent.parent.name
        v = int(ver[1:]) if ver.startswith("v") and ver[1:].isdigit() else 0
        prov = p.parent.name.lower()
        if prov not in found or v > found[prov][0]:
            found[prov] = (v, p)
    if not found:
        raise BadInput(
            "directory",
            str(directory),
            "holds no SkyPilot vms.csv files",
            hint="expected <dir>/v7/<cloud>/vms.csv",
        )
    return {k: v[1] for k, v in sorted(found.items())}


def import_skypilot(
    directory: Path | str, store_dir: Path | str | None = None, *, date: str | None = None
) -> ImportResult:
    """Read every vms.csv under `directory`; if all are valid, write one CSV per provider to `store_dir`.

    All files are validated before the first is written, so a bad row imports nothing.
    """
    files = find_vms_files(directory)
    results = [read_vms_csv(p, prov, date=date) for prov, p in files.items()]
    total = ImportResult(offers=[], files=[])
    for r in results:
        total.offers += r.offers
        total.files += r.files
        total.rows_read += r.rows_read
        total.skipped_cpu_only += r.skipped_cpu_only
        total.skipped_no_spot_price += r.skipped_no_spot_price
        for k, v in r.skipped_unknown_accelerator.items():
            total.skipped_unknown_accelerator[k] = total.skipped_unknown_accelerator.get(k, 0) + v
    if store_dir is not None:
        out = Path(store_dir)
        for prov, r in zip(files, results, strict=True):
            target = out / f"skypilot-{prov}.csv"
            write_offer_csv(target, r.offers)
            total.written.append(target.name)
    return total
