"""Extension import files: CSV or JSON, parsed into rows for extensions.import_rows."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pbx_app import errors


def parse_import(content_type: str, raw: bytes) -> list[Any]:
    """CSV (header: number,location_id|location,display_name,geo_number) or JSON (a list of
    rows, or {"extensions": [...]})."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise errors.ImportInvalid("the file is not UTF-8") from exc
    if "json" in content_type:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise errors.ImportInvalid("the body is not valid JSON") from exc
        if isinstance(data, dict) and set(data) == {"extensions"}:
            data = data["extensions"]
        if not isinstance(data, list) or not data:
            raise errors.ImportInvalid(
                'JSON must be a non-empty list of rows or {"extensions": [...]}'
            )
        return data
    if "csv" in content_type or "text/plain" in content_type:
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
            if not reader.fieldnames or "number" not in reader.fieldnames:
                raise errors.ImportInvalid("the CSV header must name a 'number' column")
            rows: list[Any] = []
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise errors.ImportInvalid(
                        f"CSV line {reader.line_num}: wrong number of fields"
                    )
                rows.append(row)
            if not rows:
                raise errors.ImportInvalid("the file has no rows")
            return rows
        except csv.Error as exc:
            raise errors.ImportInvalid(f"the body is not valid CSV: {exc}") from exc
    raise errors.ImportInvalid("send text/csv or application/json")
