"""`suanli catalog list|show|import`: the price offers the planner uses, and where each figure came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="Price offers: list, show, import (SkyPilot CSVs, your own YAML).", no_args_is_help=True
)

_OFFERS_HELP = "Your offers / owned hardware (YAML or CSV), added to the catalog."


def _catalog(offers: list[Path] | None) -> Any:
    from suanli.catalog.offers import load_catalog
    from suanli.store.paths import home

    return load_catalog(imported_dir=home() / "catalogs", user_files=offers or [])


@app.command("list")
def list_(
    provider: str | None = typer.Option(None, "--provider", help="Only this provider (comma-separated)."),
    accelerator: str | None = typer.Option(
        None, "--accelerator", help="Only this accelerator (comma-separated)."
    ),
    mode: str | None = typer.Option(None, "--mode", help="Only this acquisition mode (comma-separated)."),
    all_rows: bool = typer.Option(
        False, "--all", help="Every offer row instead of the per-accelerator summary."
    ),
    offers: list[Path] | None = typer.Option(None, "--offers", help=_OFFERS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Cheapest price per GPU-hour for each accelerator and mode (or every row with --all)."""
    from suanli.cli.output import emit_json

    cat = _catalog(offers)
    rows = cat.query(providers=_split(provider), accelerators=_split(accelerator), modes=_split(mode))
    summary = _summary(rows)
    if as_json:
        doc: dict[str, Any] = {
            "offers_total": len(rows),
            "providers": sorted({o.provider for o in rows}),
            "accelerators": summary,
        }
        if all_rows:
            doc["offers"] = [o.to_json() for o in rows]
        emit_json(doc)
        return
    if all_rows:
        _print_rows(rows, "suanli catalog list --all")
        return
    from rich.table import Table

    from suanli.cli.output import out

    t = Table(
        title=f"suanli catalog: {len(rows)} offers, {len({o.provider for o in rows})} providers",
        title_justify="left",
    )
    for col in ("accelerator", "mode", "USD/GPU-h (cheapest)", "provider", "instance type", "offers"):
        t.add_column(col)
    for s in summary:
        for m in s["modes"]:
            price = "-" if m["usd_per_gpu_hour"] is None else f"{m['usd_per_gpu_hour']:.3f}"
            t.add_row(s["accelerator"], m["mode"], price, m["provider"], m["instance_type"], str(m["offers"]))
    out.print(t)


def _summary(rows: list) -> list[dict]:
    by: dict[str, dict[str, list]] = {}
    for o in rows:
        by.setdefault(o.accelerator, {}).setdefault(o.mode, []).append(o)
    out = []
    for acc in sorted(by):
        ms = []
        for mode, group in sorted(by[acc].items()):
            priced = [o for o in group if o.price_usd_per_hour is not None]
            best = (
                min(priced, key=lambda o: o.price_usd_per_hour / o.accelerator_count) if priced else group[0]
            )
            per = (
                None if best.price_usd_per_hour is None else best.price_usd_per_hour / best.accelerator_count
            )
            ms.append(
                {
                    "mode": mode,
                    "usd_per_gpu_hour": per,
                    "provider": best.provider,
                    "instance_type": best.instance_type,
                    "offers": len(group),
                    "source": best.source,
                    "date": best.date,
                }
            )
        out.append({"accelerator": acc, "modes": ms})
    return out


@app.command()
def show(
    name: str = typer.Argument(..., help="A provider (lambda) or an accelerator (H100)."),
    offers: list[Path] | None = typer.Option(None, "--offers", help=_OFFERS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Every offer of a provider or an accelerator, with its source and date."""
    from suanli.cli.output import emit_json

    rows = _catalog(offers).show(name)
    if as_json:
        emit_json({"name": name, "offers": [o.to_json() for o in rows]})
        return
    _print_rows(rows, f"suanli catalog show {name}")


@app.command("import")
def import_(
    kind: str = typer.Argument(
        ..., help="skypilot (a folder of SkyPilot vms.csv files) or yaml (your offers)."
    ),
    path: Path = typer.Argument(..., help="The folder (skypilot) or file (yaml)."),
    date: str | None = typer.Option(None, "--date", help="Date the prices were read (default today)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Import offers into SUANLI_HOME/catalogs/ (validated whole first; a bad row imports nothing)."""
    from suanli.catalog.offers import read_offer_yaml, write_offer_csv
    from suanli.catalog.skypilot import import_skypilot
    from suanli.cli.output import emit_json, out
    from suanli.core.errors import BadInput
    from suanli.store.paths import home

    store = home() / "catalogs"
    if kind == "skypilot":
        res = import_skypilot(path, store, date=date)
        doc = res.to_json()
    elif kind == "yaml":
        rows = read_offer_yaml(path)
        target = store / f"user-{path.stem}.csv"
        write_offer_csv(target, rows)
        doc = {"files": [str(path)], "offers": len(rows), "written": [target.name]}
    else:
        from suanli.core.errors import did_you_mean

        raise BadInput(
            "kind", kind, "must be skypilot or yaml", hint=did_you_mean(kind, ("skypilot", "yaml"))
        )
    doc["catalog_dir"] = str(store)
    if as_json:
        emit_json(doc)
        return
    out.print(f"imported {doc['offers']} offers from {len(doc['files'])} file(s) into {store}", markup=False)
    for k in (
        "rows_read",
        "skipped_cpu_only",
        "skipped_unknown_accelerator",
        "skipped_zero_or_missing_spot_price",
    ):
        if k in doc:
            out.print(f"  {k}: {doc[k]}", markup=False)


def _split(v: str | None) -> list[str] | None:
    return [x.strip() for x in v.split(",") if x.strip()] if v else None


def _print_rows(rows: list, title: str) -> None:
    from rich.table import Table

    from suanli.cli.output import out

    t = Table(title=title, title_justify="left")
    for col in ("provider", "instance type", "accel", "n", "mode", "USD/h", "regions", "source", "date"):
        t.add_column(col)
    for o in sorted(rows, key=lambda o: (o.accelerator, o.mode, o.provider, o.price_usd_per_hour or 0)):
        price = (
            f"{o.price_usd_per_hour:.3f}"
            if o.price_usd_per_hour is not None
            else f"buy {o.purchase_usd:,.0f}"
        )
        regs = ",".join(o.regions[:3]) + ("..." if len(o.regions) > 3 else "")
        t.add_row(
            o.provider,
            o.instance_type,
            o.accelerator,
            str(o.accelerator_count),
            o.mode,
            price,
            regs,
            o.source[:70],
            o.date,
        )
    out.print(t)
