"""Reading a source's CSV index row by row, so one bad row is one rejection, not a crash."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Iterator

from preprocess.record import Rejection, SourceError, SourceItem


def read_index(path: Path, required: list[str], source: str, id_column: str,
               make_item: Callable[..., SourceItem], by_position: bool = False
               ) -> tuple[list[SourceItem], list[Rejection]]:
    """Items from a CSV index; ``by_position``: ``make_item(row, position)`` with the row's place among the
    rows from 1 (a source whose rows are identified by their order alone, such as CODE-test)."""
    if not path.exists():
        raise SourceError(f"{path} not found: is this a {source} folder?")
    items, rejected = [], []
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would rename the first column.
    # strict: an unclosed quote is an error, not one field holding the rest of the file.
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.DictReader(f, strict=True)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SourceError(f"{path} lacks columns {', '.join(missing)}")
        for line, row in enumerate(rows_of(reader, path), start=2):
            try:
                if None in row or any(value is None for value in row.values()):  # too many or too few fields
                    given = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
                    raise ValueError(f"{given} fields where the header has {len(reader.fieldnames)}")
                items.append(make_item(row, line - 1) if by_position else make_item(row))
            except (ValueError, SyntaxError, KeyError, TypeError) as error:
                key = (row.get(id_column) or f"line{line}").strip() if id_column else str(line - 1)
                rejected.append(Rejection(f"{source}:{key}", str(path), f"bad CSV row (line {line}): {error}"))
    return items, rejected


def rows_of(reader: csv.DictReader, path: Path) -> Iterator[dict]:
    """The reader's rows; a malformed file (an unclosed quote) is a SourceError naming the line its row starts on."""
    while True:
        start = reader.line_num + 1
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise SourceError(f"{path}: the row starting on line {start} is not valid CSV ({error}); "
                              "nothing was written") from None


def optional_float(text: str | None) -> float:
    return float(text) if text not in (None, "") else float("nan")


def rows_by(path: Path, key: str) -> Iterator[tuple[str, dict]]:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        for row in rows_of(csv.DictReader(f, strict=True), path):
            yield row.get(key, ""), row
