"""Terminal output: Rich tables on a terminal, plain aligned text when piped."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None,
    styles: Sequence[str | None] | None = None,
) -> None:
    console = stdout()
    if console.is_terminal:
        table = Table(title=title, show_lines=False)
        for header in headers:
            table.add_column(header)
        for index, row in enumerate(rows):
            table.add_row(*row, style=styles[index] if styles else None)
        console.print(table)
        return
    if title:
        sys.stdout.write(f"{title}\n")
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in [list(headers), *rows]:
        sys.stdout.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")
