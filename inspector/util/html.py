"""What a result shows as a notebook cell's last expression: a short `repr`, and an HTML
headline with tables (`_repr_html_`). Every text is escaped: names come from models and files."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from .text import printable

MAX_ROWS = 200  # a notebook cell, not a log: the JSON lists them all
MAX_REPR = 160


def short_repr(kind: str, text: str) -> str:
    """`<Kind text>` on one line, cut to MAX_REPR characters."""
    text = printable(" ".join(text.split()))
    if len(text) > MAX_REPR:
        text = text[: MAX_REPR - 3] + "..."
    return f"<{kind} {text}>"


def counted(number: int, word: str) -> str:
    """'1 output', '2 outputs'."""
    return f"{number:,} {word}{'' if number == 1 else 's'}"


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    title: str = "",
    right: Iterable[str] = (),
    max_rows: int = MAX_ROWS,
) -> str:
    """An HTML table; `right` names the columns to right-align (numbers)."""
    aligned = {i for i, column in enumerate(columns) if column in set(right)}

    def cell(tag: str, i: int, value: object) -> str:
        style = ' style="text-align: right"' if i in aligned else ' style="text-align: left"'
        return f"<{tag}{style}>{html.escape(str(value))}</{tag}>"

    head = "".join(cell("th", i, column) for i, column in enumerate(columns))
    body = [
        "<tr>" + "".join(cell("td", i, value) for i, value in enumerate(row)) + "</tr>"
        for row in rows[:max_rows]
    ]
    if len(rows) > max_rows:
        more = f"... and {len(rows) - max_rows} more (to_dict() lists them all)"
        body.append(f'<tr><td colspan="{len(columns)}">{html.escape(more)}</td></tr>')
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def block(headline: str, *tables: str, notes: Iterable[str] = ()) -> str:
    """A headline in bold, the tables, and notes as a list."""
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    listed = f"<ul>{items}</ul>" if items else ""
    return (
        f'<div class="inspector"><p><b>{html.escape(headline)}</b></p>'
        f"{''.join(tables)}{listed}</div>"
    )
