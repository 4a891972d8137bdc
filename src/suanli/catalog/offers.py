"""Price offers: what one instance of some hardware costs, how it is acquired, and where the figure came from.

One `Offer` is one (provider, instance type, acquisition mode) with its price, the regions that charge it,
and the source and date of the price. The catalog is a facade of query functions over three sources:
the shipped curated CSV files (`catalog/data/`), catalogs imported from SkyPilot (stored by the CLI under
SUANLI_HOME/catalogs/, passed in here as a directory), and a user's YAML of own offers and owned hardware.
Every file is validated whole: a bad row names the file, line and column, and nothing of it is used.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from suanli.core.errors import BadInput, did_you_mean
from suanli.core.specfile import load_yaml_text

MODES: tuple[str, ...] = ("on-demand", "spot", "reserved-1y", "reserved-3y", "marketplace", "owned", "edge")
RENTED_MODES = ("on-demand", "spot", "reserved-1y", "reserved-3y", "marketplace")
OWNED_MODES = ("owned", "edge")
TERM_MONTHS = {"reserved-1y": 12, "reserved-3y": 36}

DATA_DIR = Path(__file__).parent / "data"

# The columns of every offer file (shipped, imported, user CSV). Blank = not known / not applicable.
COLUMNS: tuple[str, ...] = (
    "provider",
    "instance_type",
    "accelerator",
    "accelerator_count",
    "mode",
    "price_usd_per_hour",
    "regions",
    "billing_increment_s",
    "reliability",
    "interruption_per_month",
    "purchase_usd",
    "depreciation_years",
    "power_w",
    "hosting_usd_per_month",
    "electricity_usd_per_kwh",
    "pue",
    "source",
    "date",
    "notes",
)
REQUIRED = ("provider", "instance_type", "accelerator", "accelerator_count", "mode", "source", "date")


@dataclass(frozen=True, slots=True)
class Offer:
    """One way to get `accelerator_count` x `accelerator` (one instance), and what it costs.

    Rented modes carry `price_usd_per_hour` per instance. Owned and edge carry the purchase price per
    instance, the depreciation period, power and electricity; hosting/operations when a source gives it.
    """

    provider: str
    instance_type: str
    accelerator: str
    accelerator_count: int
    mode: str
    source: str
    date: str
    price_usd_per_hour: float | None = None
    regions: tuple[str, ...] = ()
    billing_increment_s: float | None = None
    reliability: float | None = None  # marketplaces: share of rented time that is productive
    interruption_per_month: float | None = None  # spot: share of instances reclaimed per month
    purchase_usd: float | None = None
    depreciation_years: float | None = None
    power_w: float | None = None  # per instance, facility power excluded (PUE applies on top)
    hosting_usd_per_month: float | None = None
    electricity_usd_per_kwh: float | None = None
    pue: float | None = None
    notes: str = ""
    origin: str = field(default="shipped", compare=False)  # shipped | imported:<file> | user:<file>

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.provider, self.instance_type, self.mode)

    @property
    def term_months(self) -> int | None:
        return TERM_MONTHS.get(self.mode)

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["regions"] = list(self.regions)
        return out


# ---- reading and validating ---------------------------------------------------------------------------
def _bad(
    source: str, line: int, column: str, value: object, allowed: str, hint: str | None = None
) -> BadInput:
    return BadInput(column, value, allowed, hint=hint, source=f"{source}:{line}")


def _number(raw: str, source: str, line: int, column: str, *, lo: float = 0.0, strict: bool = False) -> float:
    try:
        x = float(raw)
    except ValueError:
        raise _bad(source, line, column, raw, "must be a number") from None
    if not math.isfinite(x) or x < lo or (strict and x <= lo):
        rel = ">" if strict else ">="
        raise _bad(source, line, column, raw, f"must be a finite number {rel} {lo:g}")
    return x


_FLOATS = {
    "price_usd_per_hour": (0.0, False),
    "billing_increment_s": (0.0, True),
    "reliability": (0.0, True),
    "interruption_per_month": (0.0, False),
    "purchase_usd": (0.0, False),
    "depreciation_years": (0.0, True),
    "power_w": (0.0, False),
    "hosting_usd_per_month": (0.0, False),
    "electricity_usd_per_kwh": (0.0, False),
    "pue": (1.0, False),
}


def offer_from_row(row: dict[str, object], source: str, line: int, origin: str = "shipped") -> Offer:
    """Validate one row (strings or YAML values) into an Offer; BadInput names file, line and column."""
    from suanli.catalog.accelerators import ACCELERATOR_NAMES, canonical_accelerator

    unknown = [k for k in row if k not in COLUMNS]
    if unknown:
        raise _bad(source, line, unknown[0], "", "is not a known column", did_you_mean(unknown[0], COLUMNS))
    vals = {k: ("" if v is None else str(v).strip()) for k, v in row.items()}
    for col in REQUIRED:
        if not vals.get(col):
            raise _bad(source, line, col, "", "is required")
    mode = vals["mode"].lower()
    if mode not in MODES:
        raise _bad(source, line, "mode", vals["mode"], "must be one of " + ", ".join(MODES))
    acc = vals["accelerator"]
    try:
        acc = canonical_accelerator(acc)
    except BadInput:
        raise _bad(
            source,
            line,
            "accelerator",
            acc,
            "is not a known accelerator",
            did_you_mean(acc, ACCELERATOR_NAMES),
        ) from None
    count = _number(vals["accelerator_count"], source, line, "accelerator_count", strict=True)
    if count != int(count):
        raise _bad(
            source, line, "accelerator_count", vals["accelerator_count"], "must be a whole number >= 1"
        )
    kw: dict[str, object] = {}
    for col, (lo, strict) in _FLOATS.items():
        if vals.get(col):
            kw[col] = _number(vals[col], source, line, col, lo=lo, strict=strict)
    if kw.get("reliability") is not None and kw["reliability"] > 1:  # type: ignore[operator]
        raise _bad(source, line, "reliability", vals["reliability"], "must be in (0, 1]")
    if kw.get("interruption_per_month") is not None and kw["interruption_per_month"] > 1:  # type: ignore[operator]
        raise _bad(
            source, line, "interruption_per_month", vals["interruption_per_month"], "must be in [0, 1]"
        )
    if mode in RENTED_MODES and "price_usd_per_hour" not in kw:
        raise _bad(source, line, "price_usd_per_hour", "", f"is required for mode {mode}")
    if mode in OWNED_MODES:
        for col in ("purchase_usd", "depreciation_years", "electricity_usd_per_kwh"):
            if col not in kw:
                raise _bad(
                    source, line, col, "", f"is required for mode {mode} (owned hardware is never free)"
                )
    regions = tuple(r.strip() for r in vals.get("regions", "").split(";") if r.strip())
    return Offer(
        provider=vals["provider"].lower(),
        instance_type=vals["instance_type"],
        accelerator=acc,
        accelerator_count=int(count),
        mode=mode,
        source=vals["source"],
        date=vals["date"],
        regions=regions,
        notes=vals.get("notes", ""),
        origin=origin,
        **kw,  # type: ignore[arg-type]
    )


def read_offer_csv(path: Path | str, origin: str | None = None, text: str | None = None) -> list[Offer]:
    """All offers of one CSV file (CRLF or LF); the first bad row raises and nothing is returned."""
    path = Path(path)
    source = path.name if origin is None else origin
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise BadInput("catalog", str(path), f"cannot be read ({e.strerror})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
    except csv.Error as e:
        raise _bad(source, 1, "header", "", f"is not CSV that can be read ({e})") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise _bad(
            source, 1, missing[0], "", "column is missing from the header", "columns: " + ",".join(COLUMNS)
        )
    out = []
    try:
        for i, row in enumerate(reader, start=2):
            if None in row:
                raise _bad(source, i, "row", "", f"has more fields than the header's {len(header)}")
            out.append(offer_from_row(row, source, i, origin or f"file:{path.name}"))
    except csv.Error as e:  # a field over the csv module's limit (128 KiB), a NUL byte
        raise _bad(source, reader.line_num, "row", "", f"is not CSV that can be read ({e})") from None
    return out


def write_offer_csv(path: Path, offers: Iterable[Offer]) -> None:
    """Write offers atomically (a temporary name in the same folder, then a rename)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for o in offers:
        d = o.to_json()
        d["regions"] = ";".join(o.regions)
        w.writerow(["" if d.get(c) is None else _fmt(d[c]) for c in COLUMNS])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    tmp.replace(path)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)


def read_offer_yaml(path: Path | str) -> list[Offer]:
    """A user's own offers and owned hardware: `offers:` and/or `owned:` lists of rows (same keys as CSV)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise BadInput("offers", str(path), f"cannot be read ({e.strerror})") from None
    data = load_yaml_text(text, str(path))  # bounded: size, depth and aliases are checked first
    try:
        doc = yaml.compose(text)
    except yaml.YAMLError as e:
        raise BadInput("offers", path.name, f"is not valid YAML ({e})".replace("\n", " ")) from None
    if not isinstance(data, dict) or not set(data) <= {"offers", "owned"}:
        raise BadInput("offers", path.name, "must be a mapping with `offers:` and/or `owned:` lists")
    out = []
    for section, items in data.items():
        if not isinstance(items, list):
            raise BadInput(section, path.name, "must be a list of offers")
        nodes = _section_nodes(doc, section)
        for j, item in enumerate(items):
            line = nodes[j] if j < len(nodes) else 0
            if not isinstance(item, dict):
                raise _bad(path.name, line, section, item, "each entry must be a mapping")
            if section == "owned":
                item = {"mode": "owned", "provider": "owned", **item}
            out.append(offer_from_row(item, path.name, line, origin=f"user:{path.name}"))
    return out


def _section_nodes(doc: object, section: str) -> list[int]:
    import yaml

    if not isinstance(doc, yaml.MappingNode):
        return []
    for k, v in doc.value:
        if getattr(k, "value", None) == section and isinstance(v, yaml.SequenceNode):
            return [n.start_mark.line + 1 for n in v.value]
    return []


# ---- the catalog facade ---------------------------------------------------------------------------------
@dataclass(slots=True)
class Catalog:
    """Offers from every source, later sources replacing earlier ones with the same key and region set."""

    offers: list[Offer]

    def providers(self) -> list[str]:
        return sorted({o.provider for o in self.offers})

    def accelerators(self) -> list[str]:
        return sorted({o.accelerator for o in self.offers})

    def regions(self) -> list[str]:
        return sorted({r for o in self.offers for r in o.regions})

    def query(
        self,
        *,
        providers: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
        accelerators: Sequence[str] | None = None,
        modes: Sequence[str] | None = None,
    ) -> list[Offer]:
        """Offers matching every given filter. Unknown names raise BadInput with near names."""
        prov = self._check("providers", providers, self.providers(), lower=True)
        regs = self._check("regions", regions, self.regions(), lower=False)
        accs = None
        if accelerators:
            from suanli.catalog.accelerators import canonical_accelerator

            accs = {canonical_accelerator(a, field="accelerators") for a in accelerators}
        if modes:
            for m in modes:
                if m not in MODES:
                    raise BadInput(
                        "modes", m, "must be one of " + ", ".join(MODES), hint=did_you_mean(m, MODES)
                    )
        out = []
        for o in self.offers:
            if prov is not None and o.provider not in prov:
                continue
            if accs is not None and o.accelerator not in accs:
                continue
            if modes and o.mode not in modes:
                continue
            if regs is not None and o.regions and not (set(o.regions) & regs):
                continue
            out.append(o)
        return out

    @staticmethod
    def _check(field_: str, want: Sequence[str] | None, have: list[str], lower: bool) -> set[str] | None:
        if not want:
            return None
        known = {h.lower(): h for h in have}
        out = set()
        for w in want:
            got = known.get(w.strip().lower())
            if got is None:
                raise BadInput(
                    field_,
                    w,
                    "is not in the catalog",
                    hint=did_you_mean(w, have) or "see `suanli catalog list`",
                )
            out.add(got.lower() if lower else got)
        return out

    def show(self, name: str) -> list[Offer]:
        """Offers for a provider or an accelerator (case-insensitive), or BadInput with near names."""
        key = name.strip().lower()
        rows = [o for o in self.offers if o.provider == key or o.accelerator.lower() == key]
        if not rows:
            raise BadInput(
                "name",
                name,
                "is neither a provider nor an accelerator in the catalog",
                hint=did_you_mean(name, self.providers() + self.accelerators()),
            )
        return rows


def shipped_offers() -> list[Offer]:
    """The curated default catalog shipped with the package (every row with its source and date)."""
    out: list[Offer] = []
    for path in sorted(DATA_DIR.glob("*.csv")):
        out += read_offer_csv(path, origin=f"shipped:{path.name}")
    return out


def load_catalog(
    *,
    imported_dir: Path | str | None = None,
    user_files: Sequence[Path | str] = (),
    include_shipped: bool = True,
) -> Catalog:
    """Shipped rows, then imported catalogs (`imported_dir/*.csv`), then the user's YAML/CSV files.

    A later row with the same (provider, instance type, mode, regions) replaces an earlier one.
    """
    rows: list[Offer] = shipped_offers() if include_shipped else []
    if imported_dir is not None and Path(imported_dir).is_dir():
        for path in sorted(Path(imported_dir).glob("*.csv")):
            rows += read_offer_csv(path, origin=f"imported:{path.name}")
    for f in user_files:
        p = Path(f)
        if not p.exists():
            raise BadInput("offers", str(f), "file does not exist")
        rows += read_offer_yaml(p) if p.suffix.lower() in (".yaml", ".yml") else read_offer_csv(p)
    merged: dict[tuple, Offer] = {}
    for o in rows:
        merged[(*o.key, o.regions)] = o
    return Catalog(list(merged.values()))


def with_price(offer: Offer, price: float) -> Offer:
    """A copy with another hourly price (derived rows, tests)."""
    return replace(offer, price_usd_per_hour=price)
