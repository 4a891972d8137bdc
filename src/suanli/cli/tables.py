"""Human tables that fit the console (80 columns when piped): the least important columns are left out
until the rest fits, and a last line says which ones (--json always has every field)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

GAP = 2  # rich's padding between two columns of a borderless table


@dataclass(frozen=True, slots=True)
class Column:
    """A column; `drop` orders what goes first when the table is too wide (0: never dropped, then the
    highest first). A `wrap` column may fold its text down to `min_width`."""

    header: str
    justify: str = "left"
    drop: int = 0
    wrap: bool = False
    min_width: int = 12
    overflow: str = "fold"  # how a wrap column too narrow for a word shows it: fold or ellipsis


def _width(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.split("\n")), default=0)


def fit_columns(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> tuple[list[int], dict[int, int]]:
    """(indices of the columns kept, width of each kept wrap column): columns are dropped, most
    droppable first, until the natural widths (wrap columns at their `min_width`) fit in `width`
    cells; the wrap columns then share what is left."""
    natural = [max([_width(c.header)] + [_width(r[i]) for r in rows]) for i, c in enumerate(columns)]
    need = [
        min(natural[i], max(c.min_width, _width(c.header))) if c.wrap else natural[i]
        for i, c in enumerate(columns)
    ]
    keep = list(range(len(columns)))
    order = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)

    def used(cols: list[int]) -> int:
        return sum(need[j] for j in cols) + GAP * (len(cols) - 1)

    for i in order:
        if used(keep) <= width:
            break
        keep.remove(i)
    for i in reversed(order):  # a more important column dropped on the way may fit again
        if i not in keep and used(sorted([*keep, i])) <= width:
            keep = sorted([*keep, i])
    spare = max(0, width - used(keep))
    wraps = {}
    for i in keep:
        if columns[i].wrap:
            wraps[i] = need[i] + min(spare, natural[i] - need[i])
            spare -= wraps[i] - need[i]
    return keep, wraps


def print_table(
    console: Any,
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    styles: Sequence[str | None] | None = None,
) -> list[str]:
    """Print a borderless table fitted to `console`; returns (and notes below it) the headers left out."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    keep, wraps = fit_columns(columns, rows, console.width)
    t = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    for i in keep:
        col = columns[i]
        t.add_column(
            Text(col.header),
            justify=col.justify,  # type: ignore[arg-type]
            no_wrap=not col.wrap or col.overflow == "ellipsis",
            overflow=col.overflow,  # type: ignore[arg-type]
            max_width=wraps.get(i),
        )
    for n, row in enumerate(rows):
        t.add_row(*(Text(row[i]) for i in keep), style=styles[n] if styles else None)  # literal, no markup
    console.print(t)
    dropped = [columns[i].header.replace("\n", " ") for i in range(len(columns)) if i not in keep]
    if dropped:
        print_wrapped(console, f"not shown at {console.width} columns: {', '.join(dropped)} (see --json)")
    return dropped


def print_wrapped(console: Any, text: str, *, indent: str = "", hang: str = "") -> None:
    """Plain text wrapped to the console, `indent` before the first line and `hang` before the rest."""
    import textwrap

    width = max(console.width, 20)
    lines = textwrap.wrap(
        text, width=width, initial_indent=indent, subsequent_indent=hang, break_on_hyphens=False
    )
    lines = lines or [indent]
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
