"""Extension import files, read lazily: one row at a time from a binary file, CSV or JSON, so
that a file's size never becomes memory (the rows go to extension_import.import_rows)."""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterator
from typing import IO, Any

import ijson

from pbx_app import errors

JSON_SHAPE = 'JSON must be a non-empty list of rows or {"extensions": [...]}'
NOT_JSON = "the body is not valid JSON"
MAX_ROW_NESTING = 32


def is_json(content_type: str) -> bool:
    return "json" in content_type


def check_format(content_type: str) -> None:
    """Refuses a media type that is neither CSV nor JSON before anything is read."""
    if not (is_json(content_type) or "csv" in content_type or "text/plain" in content_type):
        raise errors.ImportInvalid("send text/csv or application/json")


def read_rows(content_type: str, binary: IO[bytes]) -> Generator[Any, None, None]:
    """CSV (header: number,location_id|location,display_name,geo_number) or JSON (a list of
    rows, or {"extensions": [...]}), UTF-8 with or without a byte-order mark. Errors in the
    file's syntax surface as ImportInvalid when the reader gets to them."""
    check_format(content_type)
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        yield from _json_rows(text) if is_json(content_type) else _csv_rows(text)
    except UnicodeDecodeError as exc:
        raise errors.ImportInvalid("the file is not UTF-8") from exc
    finally:
        text.detach()  # the caller's file stays open: closing it is the caller's business


def _csv_rows(text: IO[str]) -> Iterator[dict[str, Any]]:
    try:
        reader = csv.DictReader(text, strict=True)
        if not reader.fieldnames or "number" not in reader.fieldnames:
            raise errors.ImportInvalid("the CSV header must name a 'number' column")
        empty = True
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise errors.ImportInvalid(f"CSV line {reader.line_num}: wrong number of fields")
            empty = False
            yield row
    except csv.Error as exc:
        raise errors.ImportInvalid(f"the body is not valid CSV: {exc}") from exc
    if empty:
        raise errors.ImportInvalid("the file has no rows")


class _Utf8Bytes:
    """ijson reads bytes; these come from the decoded text, so that a JSON file that is not
    UTF-8 gets the same answer as a CSV one and a byte-order mark is dropped."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text

    def read(self, size: int = -1) -> bytes:
        return self._text.read(size).encode("utf-8")


def _json_rows(text: IO[str]) -> Iterator[Any]:
    # basic_parse, not parse or items: those build a prefix string per event, as long as the
    # nesting is deep, so a body of 100,000 "[" would cost gigabytes.
    events = ijson.basic_parse(_Utf8Bytes(text), use_float=True)
    try:
        in_map = _open_rows_list(events)
        empty = True
        for row in _rows_of_open_list(events):
            empty = False
            yield row
        _close_document(events, in_map)
    except ijson.JSONError as exc:
        raise errors.ImportInvalid(NOT_JSON) from exc
    if empty:
        raise errors.ImportInvalid(JSON_SHAPE)


def _open_rows_list(events: Iterator[tuple[str, Any]]) -> bool:
    """Consumes the events up to the start of the rows' list; whether that is in a map."""
    first = next(events, None)
    if first == ("start_array", None):
        return False
    if (
        first == ("start_map", None)
        and next(events, None) == ("map_key", "extensions")
        and next(events, None) == ("start_array", None)
    ):
        return True
    raise errors.ImportInvalid(JSON_SHAPE)


def _rows_of_open_list(events: Iterator[tuple[str, Any]]) -> Iterator[Any]:
    """Each element of the list whose start was consumed, built one at a time, up to its end."""
    for event, value in events:
        if event == "end_array":
            return
        if event not in ("start_map", "start_array"):
            yield value  # a scalar: refused row by row, as an invalid row
            continue
        builder = ijson.ObjectBuilder()
        builder.event(event, value)
        depth = 1
        while depth:
            event, value = next(events)
            builder.event(event, value)
            if event in ("start_map", "start_array"):
                depth += 1
                if depth > MAX_ROW_NESTING:  # a row is flat; this only bounds hostile input
                    raise errors.ImportInvalid(NOT_JSON)
            elif event in ("end_map", "end_array"):
                depth -= 1
        yield builder.value


def _close_document(events: Iterator[tuple[str, Any]], in_map: bool) -> None:
    """After the rows: the map's end if there is one (no other key), then nothing but the end
    of the input (the parser refuses trailing garbage when asked for more)."""
    if in_map and next(events, None) != ("end_map", None):
        raise errors.ImportInvalid(JSON_SHAPE)
    if next(events, None) is not None:
        raise errors.ImportInvalid(NOT_JSON)
