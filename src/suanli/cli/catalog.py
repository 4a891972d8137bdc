"""`suanli catalog list|show|import`: the price offers the planner uses, and where each figure came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="Price offers: list, show, import (SkyPilot CSVs, your own YAML).", no_args_is_help=True
)

_OFFERS_HELP = "Your offers / owned hardware (YAML or CSV), added to the catalog."


def user_catalog(offers: list[Path] | None) -> Any:
    """The shipped and imported catalog plus the user's --offers files (each checked readable first)."""
    from suanli.catalog.offers import load_catalog
    from suanli.core.errors import read_text
    from suanli.store.paths import home

    for f in offers or []:
        read_text(f, "offers")
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

    cat = user_catalog(offers)
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
    from suanli.cli.output import out
    from suanli.cli.tables import Column, print_table

    title = f"suanli catalog: {len(rows)} offers, {len({o.provider for o in rows})} providers"
    columns = [
        Column("accelerator"),
        Column("mode"),
        Column("USD/GPU-h\n(cheapest)", "right"),
        Column("provider"),
        Column("instance type", wrap=True, min_width=16, overflow="ellipsis"),
        Column("offers", "right", drop=1),
    ]
    table = []
    for s in summary:
        for m in s["modes"]:
            price = "-" if m["usd_per_gpu_hour"] is None else f"{m['usd_per_gpu_hour']:.3f}"
            table.append(
                [s["accelerator"], m["mode"], price, m["provider"], m["instance_type"], str(m["offers"])]
            )
    print_table(out, title, columns, table)


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

    rows = user_catalog(offers).show(name)
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
    from suanli.core.errors import BadInput, read_text
    from suanli.store.paths import home

    store = home() / "catalogs"
    if date is not None:
        _check_date(date)
    if kind == "skypilot":
        if path.exists() and not path.is_dir():
            raise BadInput(
                "directory", str(path), "must be a folder of SkyPilot catalogs (<dir>/v7/<cloud>/vms.csv)"
            )
        res = import_skypilot(path, store, date=date)
        doc = res.to_json()
    elif kind == "yaml":
        read_text(path, "offers")
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


def _check_date(date: str) -> None:
    """--date as YYYY-MM-DD (the catalog's date column)."""
    import datetime

    try:
        datetime.date.fromisoformat(date)
    except ValueError:
        from suanli.core.errors import BadInput

        raise BadInput("date", date, "must be a date written YYYY-MM-DD, e.g. 2025-01-31") from None


def _split(v: str | None) -> list[str] | None:
    return [x.strip() for x in v.split(",") if x.strip()] if v else None


def _print_rows(rows: list, title: str) -> None:
    """Offer rows; each distinct source is numbered once below the table (sources are long)."""
    from suanli.cli.output import out
    from suanli.cli.tables import Column, print_table, print_wrapped

    columns = [
        Column("provider"),
        Column("instance type", wrap=True, min_width=16, overflow="ellipsis"),
        Column("accel"),
        Column("n", "right"),
        Column("mode"),
        Column("USD/h", "right"),
        Column("src", "right"),
        Column("date", drop=1),
        Column("regions", wrap=True, min_width=12, drop=2),
    ]
    sources: dict[str, int] = {}
    table = []
    for o in sorted(rows, key=lambda o: (o.accelerator, o.mode, o.provider, o.price_usd_per_hour or 0)):
        price = (
            f"{o.price_usd_per_hour:.3f}"
            if o.price_usd_per_hour is not None
            else f"buy {o.purchase_usd:,.0f}"
        )
        regs = ",".join(o.regions[:3]) + ("..." if len(o.regions) > 3 else "")
        ref = sources.setdefault(o.source, len(sources) + 1)
        table.append(
            [
                o.provider,
                o.instance_type,
                o.accelerator,
                str(o.accelerator_count),
                o.mode,
                price,
                f"[{ref}]",
                o.date,
                regs,
            ]
        )
    print_table(out, title, columns, table)
    for source, ref in sources.items():
        print_wrapped(out, source, indent=f"[{ref}] ", hang=" " * (len(str(ref)) + 3))
