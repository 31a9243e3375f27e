"""Small text helpers every command shares: one-line reasons, tables as plain text."""

from __future__ import annotations

import re

# Where torch's C++ errors start their native stack (frame #0: c10::Error::Error ...: a
# kilobyte and a half of addresses that say nothing to the user).
_NATIVE_STACK = re.compile(r"\s*Exception raised from .*", re.DOTALL)


def _message(error: BaseException | str) -> str:
    return _NATIVE_STACK.sub("", str(error))


def first_line(error: BaseException | str, default: str = "") -> str:
    """The first non-empty line of an error's message (its type's name when it has none)."""
    lines = [line.strip() for line in _message(error).splitlines() if line.strip()]
    if lines:
        return lines[0]
    return default or (type(error).__name__ if isinstance(error, BaseException) else "")


def one_line(error: BaseException | str) -> str:
    """The whole message with its whitespace collapsed (its type's name when it has none)."""
    text = " ".join(_message(error).split())
    return text or (type(error).__name__ if isinstance(error, BaseException) else "")


def printable(text: str) -> str:
    """`text` with every unprintable character escaped (\\x1b, \\n, \\u202e): a name taken from
    a file cannot clear the screen, recolour the terminal, reorder text or forge a new line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(character: str) -> str:
    # A lone surrogate (from a file name or a message decoded with surrogateescape) cannot be
    # encoded as UTF-8 at all: write it as \udcxx like the rest.
    return character.encode("unicode_escape", "backslashreplace").decode()


def markdown_cell(text: str) -> str:
    """`text` fit for one cell of a markdown table: printable, and its `|` escaped so a name
    cannot add a column or end the row."""
    return printable(str(text)).replace("|", "\\|")


# What XML 1.0 forbids: C0 control characters but tab and newlines, U+FFFE, U+FFFF, and lone
# surrogates (which cannot even be encoded).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """`text` with the characters XML 1.0 forbids written as escapes (ESC as \\x1b), so an XML
    parser accepts it: Netron writes a model's names into its SVG as they are."""
    return _NOT_XML.sub(lambda match: match[0].encode("unicode_escape").decode(), text)


def shape_text(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def plain_table(
    columns: list[str], rows: list[list[str]], right: frozenset[str] | set[str] = frozenset()
) -> str:
    """A rich table drawn without colours or borders, for reports that go to logs and files.

    `right` names the columns to right-align (numbers).
    """
    from io import StringIO

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for title in columns:
        table.add_column(title, justify="right" if title in right else "left")
    for row in rows:
        # Text, not markup: a name such as "[/b]" is shown as written, never parsed; and every
        # cell printable, so a name from a file cannot forge a line of the table.
        table.add_row(*(Text(printable(str(cell))) for cell in row))
    buffer = StringIO()
    Console(file=buffer, width=160, color_system=None, highlight=False).print(table)
    text = buffer.getvalue()
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
