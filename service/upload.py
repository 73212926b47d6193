"""Streaming ``multipart/form-data`` parsing into a per-request temporary folder.

Starlette's own form parser spools large files to the system temp dir; uploaded scans must only
ever touch the request's own folder (removed when the request ends), so we drive
``python-multipart`` ourselves and enforce the size limit while the bytes arrive. The file's type
is judged from the client's file name as soon as its part headers arrive (415 before any byte is
stored); the file is stored, and known from then on, under a neutral name (``scan.nii.gz``...):
client file names can be patient names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from service.errors import ApiError

MAX_TEXT_FIELD_BYTES = 1 << 20
MAX_PART_HEADER_BYTES = 16 << 10  # all headers of one part
FILE_FIELDS = ("scan", "labels")
TEXT_FIELDS = ("prompt", "spec", "seed", "contrast", "lenient")
# Accepted file types by field, from the end of the client's file name, and the neutral name stored.
SUFFIXES: dict[str, tuple[str, ...]] = {"scan": (".nii.gz", ".nii", ".zip"), "labels": (".nii.gz", ".nii")}


@dataclass
class Form:
    """Text fields (decoded) and files (saved in the request folder under neutral names)."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # field name -> e.g. folder/scan.nii.gz
    bytes_in: int = 0


def stored_path(folder: Path, name: str, filename: bytes | None) -> Path:
    """Where the file of field ``name`` goes: ``folder/<name><suffix>``; 415 for other file types."""
    client = (filename or b"").decode("utf-8", "replace").lower()
    for suffix in SUFFIXES[name]:
        if client.endswith(suffix):
            return folder / f"{name}{suffix}"
    kinds = ", ".join(SUFFIXES[name][:-1]) + " or " + SUFFIXES[name][-1]
    what = "a .zip of one DICOM series" if name == "scan" else "a label map"
    raise ApiError(
        415,
        "unsupported_media_type",
        f"unsupported {name} file type: send {kinds} ({what})",
        field=name,
    )


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
        "header_bytes": 0,
    }

    def grow(key: str, data: bytes) -> None:
        state[key] += data
        state["header_bytes"] += len(data)
        if state["header_bytes"] > MAX_PART_HEADER_BYTES:
            raise ApiError(413, "payload_too_large", "multipart part headers are over 16 KiB")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        grow("field", data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        grow("value", data[start:end])

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
            path = stored_path(folder, name, filename)
            sink: IO[bytes] = path.open("wb")
            state["sink"] = sink
            form.files[name] = path
        elif name in TEXT_FIELDS:
            state["text"] = bytearray()
        else:
            raise ApiError(422, "invalid_input", f"unknown form field {name[:100]!r}")
        state["headers"], state["header_bytes"] = {}, 0

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
    except MultipartParseError:
        raise ApiError(422, "invalid_input", "the multipart body is malformed") from None
    finally:
        if state["sink"] is not None:
            state["sink"].close()
    return form
