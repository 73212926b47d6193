"""OpenAPI 3.1 document of the HTTP API, built from the engine's own pydantic ``LesionSpec``.

The same model validates the CLI's ``--spec``, the prompt's result and the service's ``spec``
field, so the schema a client sees here is exactly what the server accepts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from longisynth import __version__
from longisynth.api import LesionSpec

_REF = "#/components/schemas/{model}"
_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        401: "missing or wrong API key",
        404: "no such job",
        409: "job not finished",
        413: "upload, JSON body, or decompressed scan over its size limit",
        415: "unsupported scan file type",
        422: "invalid input, prompt not understood, or the lesion does not fit",
        429: "queue full; retry after the Retry-After header (s)",
        503: "not ready",
    }
    return {str(c): {"description": text[c], "content": _json(_ERROR)} for c in codes}


ZIP = {
    "description": "the bundle",
    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
}


@lru_cache(maxsize=1)
def openapi() -> dict[str, Any]:
    """The document served at ``GET /openapi.json``."""
    spec_schema = LesionSpec.model_json_schema(ref_template=_REF)
    components = dict(spec_schema.pop("$defs", {}))
    components["LesionSpec"] = spec_schema
    components["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": ["string", "null"], "description": "the field at fault, if one is"},
                    "unknown_words": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    }
    components["GenerateForm"] = {
        "type": "object",
        "required": ["scan"],
        "properties": {
            "scan": {
                "type": "string",
                "format": "binary",
                "description": ".nii, .nii.gz or a .zip of one DICOM series",
            },
            "labels": {
                "type": "string",
                "format": "binary",
                "description": "region label map on the scan's grid",
            },
            "prompt": {"type": "string"},
            "spec": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/LesionSpec"},
                "description": "LesionSpec fields as JSON; they override the prompt",
            },
            "seed": {"type": "integer"},
            "contrast": {"type": "string", "description": "MRI contrast of the scan (t1, t1c, t2, flair)"},
            "lenient": {"type": "boolean"},
        },
    }
    components["DemoRequest"] = {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": ["lung", "glioma"], "default": "lung"},
            "prompt": {"type": "string"},
            "spec": {"$ref": "#/components/schemas/LesionSpec"},
            "seed": {"type": "integer"},
        },
    }
    components["JobStatus"] = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "stage": {"type": "string"},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "error": {"oneOf": [_ERROR, {"type": "null"}]},
        },
    }
    multipart = {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/GenerateForm"}}}
    demo = _json({"$ref": "#/components/schemas/DemoRequest"})
    job = {"description": "job state", "content": _json({"$ref": "#/components/schemas/JobStatus"})}
    job_id = [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "longisynth", "version": __version__},
        "paths": {
            "/generate": {
                "post": {
                    "summary": "Simulate a longitudinal study on an uploaded scan",
                    "requestBody": {"required": True, "content": multipart},
                    "responses": {"200": ZIP, **_errors(401, 413, 415, 422, 429)},
                }
            },
            "/generate/demo": {
                "post": {
                    "summary": "Simulate on the embedded default scan",
                    "requestBody": {"content": demo},
                    "responses": {"200": ZIP, **_errors(401, 413, 422, 429)},
                }
            },
            "/jobs": {
                "post": {
                    "summary": "Start an asynchronous study (same bodies as /generate or /generate/demo)",
                    "requestBody": {"required": True, "content": {**multipart, **demo}},
                    "responses": {"202": job, **_errors(401, 413, 415, 422, 429)},
                }
            },
            "/jobs/{job_id}": {
                "get": {"parameters": job_id, "responses": {"200": job, **_errors(401, 404)}},
                "delete": {"parameters": job_id, "responses": {"200": job, **_errors(401, 404)}},
            },
            "/jobs/{job_id}/result": {
                "get": {"parameters": job_id, "responses": {"200": ZIP, **_errors(401, 404, 409)}}
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }
