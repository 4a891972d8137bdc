"""Human tables fit the console: the most droppable columns go first, a more important one comes back
when room is left, wrap columns share the rest, and what was left out is named under the table."""

from __future__ import annotations

import io

from rich.console import Console

from suanli.cli.tables import Column, fit_columns, print_table

COLUMNS = [
    Column("name"),
    Column("long", drop=1),
    Column("wide", drop=2),
    Column("note", wrap=True, min_width=10),
]
ROWS = [["a" * 10, "b" * 30, "c" * 40, "d " * 30]]


def test_columns_are_dropped_most_droppable_first_and_come_back_when_they_fit():
    assert fit_columns(COLUMNS, ROWS, 200)[0] == [0, 1, 2, 3]
    keep, wraps = fit_columns(COLUMNS, ROWS, 60)
    assert keep == [0, 1, 3] and wraps[3] == 60 - 10 - 30 - 2 * 2  # "wide" went first; "note" takes the rest
    assert fit_columns(COLUMNS, ROWS, 30)[0] == [0, 3]


def test_the_printed_table_fits_and_names_what_was_left_out():
    buf = io.StringIO()
    console = Console(file=buf, width=60, highlight=False)
    dropped = print_table(console, "t", COLUMNS, ROWS)
    lines = buf.getvalue().splitlines()
    assert dropped == ["wide"] and max(len(line.rstrip()) for line in lines) <= 60
    assert lines[-1] == "not shown at 60 columns: wide (see --json)"


def test_cells_are_literal_text_not_markup():
    buf = io.StringIO()
    print_table(Console(file=buf, width=80), None, [Column("x")], [["[bold]a[/bold]"]])
    assert "[bold]a[/bold]" in buf.getvalue()
