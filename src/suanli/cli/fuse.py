"""`suanli fuse`: one model from several owners' models with a robust rule. Parse, one library call
(suanli.fuse.fuse_files), print. torch is imported inside the command so that `suanli --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from suanli.cli.output import emit_json, out, safe
from suanli.core.errors import BadInput


def _option(text: str) -> tuple[str, Any]:
    """KEY=VALUE with the value as a whole number, a number, or text (e.g. inner=median)."""
    key, eq, raw = text.partition("=")
    if not eq or not key.strip():
        raise BadInput("--option", text, "must be KEY=VALUE, e.g. tau=0.5 or s=2")
    value: Any = raw.strip()
    for kind in (int, float):
        try:
            value = kind(raw)
            break
        except ValueError:
            continue
    return key.strip(), value


def fuse(
    models: Annotated[
        list[Path], typer.Argument(help="The owners' models: state dicts saved with torch.save (.pt).")
    ],
    rule: Annotated[
        str,
        typer.Option(
            "--rule",
            help="Aggregation rule: mean, median, trimmed_mean, krum, multikrum, bulyan, centered_clipping, "
            "or bucketing+RULE.",
        ),
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the fused state dict (.pt).")],
    f: Annotated[int, typer.Option("--f", help="How many of the models may be Byzantine.")] = 0,
    start: Annotated[
        Path | None,
        typer.Option(
            "--start",
            help="The common start the models were trained from: its changes are fused and added back. "
            "Required by centred clipping; without one, averaging is sound only for models of one basin.",
        ),
    ] = None,
    options: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="A rule's option KEY=VALUE, repeatable: tau=0.5, iterations=3, s=2, seed=7, beta=0.2, m=10.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")
    ] = False,
) -> None:
    """Fuse models trained by different owners into one, tolerating f Byzantine owners.

    With --start the changes from the common start are aggregated by the rule and added back. A rule that
    cannot tolerate f among the models, models whose tensors differ, or an unreadable file is refused with
    one line (exit code 2) before anything is written; the output appears under its name only when whole.
    See docs/fusion.md.
    """
    from suanli.fuse.files import fuse_files

    parsed = dict(_option(o) for o in options or [])
    summary = fuse_files(models, out_path, rule, f, start=start, **parsed)
    if as_json:
        emit_json(summary)
        return
    from suanli.cli.tables import Column, print_table, print_wrapped

    rows = [[safe(m["path"]), f"{m['distance_to_fused']:.4g}"] for m in summary["models"]]
    title = f"fused {len(rows)} models with {safe(rule)} (f = {f})"
    print_table(out, title, [Column("model"), Column("distance to fused", "right")], rows)
    print_wrapped(
        out, f"wrote {safe(summary['out'])}: {summary['tensors']} tensors, {summary['parameters']:,} values"
    )
