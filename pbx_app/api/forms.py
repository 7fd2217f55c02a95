"""multipart/form-data bodies (fax uploads), read with `multipart` (Debian's python3-multipart,
which FastAPI's Form/File do not use): the body is already bounded by the BodySizeLimit
middleware; parts, their count and size are bounded here. A body that is not readable
multipart is a 400 with a code, never a 500."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import multipart
from fastapi import Request

from pbx_app import errors

MAX_PARTS = 8


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (filename, data)

    def text(self, name: str, *, required: bool = True, max_length: int = 254) -> str:
        value = self.fields.get(name, "")
        if required and not value:
            raise errors.FormInvalid(f"{name} is missing", field=name)
        if len(value) > max_length:
            raise errors.FormInvalid(f"{name}: at most {max_length} characters", field=name)
        return value


async def read_form(request: Request, max_bytes: int) -> Form:
    ctype, options = multipart.parse_options_header(request.headers.get("content-type", ""))
    body = await request.body()
    form = Form()
    if ctype == "application/x-www-form-urlencoded":  # fields only, no file
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_PARTS)
        except (UnicodeDecodeError, ValueError) as exc:
            raise errors.FormInvalid(f"the form cannot be read: {exc}") from None
        form.fields.update(pairs)
        return form
    if ctype != "multipart/form-data" or not options.get("boundary"):
        raise errors.FormInvalid("send multipart/form-data")
    try:
        parser = multipart.MultipartParser(
            io.BytesIO(body),
            options["boundary"],
            content_length=len(body),
            part_limit=MAX_PARTS,
            spool_limit=max_bytes,
            memory_limit=max_bytes,
            disk_limit=0,
        )
        for part in parser:
            if part.filename is not None:
                form.files[part.name] = (part.filename, part.raw)
            else:
                form.fields[part.name] = part.value
    except (multipart.MultipartError, ValueError, UnicodeDecodeError) as exc:
        raise errors.FormInvalid(f"the multipart body cannot be read: {exc}") from None
    return form


# What the OpenAPI document says of such a body (FastAPI cannot see it).
def form_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": properties, "required": required}
                }
            },
        }
    }
