"""Streaming ``multipart/form-data`` parsing into a per-request temporary folder.

Starlette's own form parser spools large files to the system temp dir; uploaded scans must only
ever touch the request's own folder (removed when the request ends), so we drive
``python-multipart`` ourselves and enforce the size limit while the bytes arrive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from service.errors import ApiError

MAX_TEXT_FIELD_BYTES = 1 << 20
FILE_FIELDS = ("scan", "labels")
TEXT_FIELDS = ("prompt", "spec", "seed", "contrast", "lenient")


@dataclass
class Form:
    """Text fields (decoded) and files (saved in the request folder, with the client's base name)."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[Path, str]] = field(default_factory=dict)  # name -> (path, original name)
    bytes_in: int = 0


def _safe_name(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", base)[:200] or "upload"


async def parse_form(request: Request, folder: Path, max_bytes: int) -> Form:
    """Parse the request body into ``folder``; 413 past ``max_bytes``, 415/422 for malformed bodies."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(
            413,
            "payload_too_large",
            f"request body of {int(declared):,} bytes exceeds the limit of {max_bytes:,} bytes",
            field="scan",
        )
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "unsupported_media_type", "send the scan as multipart/form-data")
    form = Form()
    state: dict[str, Any] = {
        "headers": {},
        "name": None,
        "sink": None,
        "text": None,
        "field": b"",
        "value": b"",
    }

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get("content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        state["name"] = name
        if name in FILE_FIELDS:
            if name in form.files:
                raise ApiError(422, "invalid_input", f"field {name!r} given twice", field=name)
            original = filename.decode("utf-8", "replace") if filename else name
            path = folder / f"{name}__{_safe_name(original)}"
            sink: IO[bytes] = path.open("wb")
            state["sink"] = sink
            form.files[name] = (path, _safe_name(original))
        elif name in TEXT_FIELDS:
            state["text"] = bytearray()
        else:
            raise ApiError(422, "invalid_input", f"unknown form field {name!r}", field=name)
        state["headers"] = {}

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["sink"] is not None:
            state["sink"].write(data[start:end])
        elif state["text"] is not None:
            state["text"] += data[start:end]
            if len(state["text"]) > MAX_TEXT_FIELD_BYTES:
                raise ApiError(
                    413, "payload_too_large", f"field {state['name']!r} is over 1 MiB", field=state["name"]
                )

    def on_part_end() -> None:
        if state["sink"] is not None:
            state["sink"].close()
        elif state["text"] is not None:
            form.fields[state["name"]] = bytes(state["text"]).decode("utf-8", "replace")
        state["sink"], state["text"] = None, None

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            form.bytes_in += len(chunk)
            if form.bytes_in > max_bytes:
                raise ApiError(
                    413,
                    "payload_too_large",
                    f"request body exceeds the limit of {max_bytes:,} bytes",
                    field="scan",
                )
            parser.write(chunk)
        parser.finalize()
    finally:
        if state["sink"] is not None:
            state["sink"].close()
    return form
