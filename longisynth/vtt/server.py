"""The reading web page: a small Starlette app over the study folder and its answer store.

The server never opens ``key.json``: it only knows ``study.json`` (public) and the crops, so no
endpoint can leak the truth. Endpoints:

    GET  /                                  the reading page (static/index.html)
    GET  /static/{app.js, viewer.js, app.css}  its script, the shared slice viewer, its style
    GET  /api/study                         public item list (ids, shapes, spacing, presets)
    GET  /api/items/{id}/volume             int16 little-endian voxels, C order (x, y, z)
    GET  /api/readers/{reader}/progress     answered ids and the first unanswered index
    PUT  /api/answers/{reader}/{item}       upsert one answer (JSON body)
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from longisynth.errors import InvalidInputError
from longisynth.vtt.store import AnswerStore, parse_answer, validate_reader
from longisynth.vtt.study import read_public

STATIC_FILES = {
    "app.js": "text/javascript",
    "viewer.js": "text/javascript",  # the slice viewer, shared with the expert review page
    "app.css": "text/css",
    "index.html": "text/html",
}
NO_STORE = {"Cache-Control": "no-store"}


def static_file(name: str, package: str = "longisynth.vtt") -> bytes:
    """A file of ``<package>/static`` (package data; the review page reuses the VTT's viewer)."""
    return resources.files(package).joinpath("static", name).read_bytes()


async def json_object(request: Request) -> dict[str, Any] | Response:
    """The request's JSON object body, or the 400 response that says why it is not one."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return json_error(400, "body must be JSON")
    if not isinstance(body, dict):
        return json_error(400, "body must be a JSON object")
    return body


def json_error(status: int, message: str) -> JSONResponse:
    """``{"error": message}`` with ``status``, never cached (every API error of the reading pages)."""
    return JSONResponse({"error": message}, status_code=status, headers=NO_STORE)


def create_app(study: Path) -> Starlette:
    """The ASGI app serving the study folder ``study`` (must hold ``study.json``)."""
    public = read_public(study)
    items: list[dict[str, Any]] = public["items"]
    ids = [it["id"] for it in items]
    known = set(ids)
    store = AnswerStore(study)
    static = {name: static_file(name) for name in STATIC_FILES}

    def page(request: Request) -> Response:
        return Response(static["index.html"], media_type="text/html", headers=NO_STORE)

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES or name == "index.html":
            return json_error(404, "not found")
        return Response(static[name], media_type=STATIC_FILES[name], headers=NO_STORE)

    def study_info(request: Request) -> Response:
        return JSONResponse({"n_items": len(items), "items": items}, headers=NO_STORE)

    def volume(request: Request) -> Response:
        item_id = request.path_params["item_id"]
        if item_id not in known:  # only ids from study.json: no path built from user text
            return json_error(404, "unknown item")
        arr = np.load(study / "items" / f"{item_id}.npy", allow_pickle=False)
        data = np.ascontiguousarray(arr, dtype="<i2").tobytes()
        return Response(data, media_type="application/octet-stream", headers=NO_STORE)

    def progress(request: Request) -> Response:
        try:
            reader = validate_reader(request.path_params["reader"])
        except InvalidInputError as exc:
            return json_error(400, str(exc))
        done = store.answered(reader)
        next_index = next((i for i, item_id in enumerate(ids) if item_id not in done), len(ids))
        return JSONResponse(
            {"answered": [i for i in ids if i in done], "next_index": next_index, "n_items": len(ids)},
            headers=NO_STORE,
        )

    async def answer(request: Request) -> Response:
        item_id = request.path_params["item_id"]
        if item_id not in known:
            return json_error(404, "unknown item")
        body = await json_object(request)
        if isinstance(body, Response):
            return body
        try:
            ans = parse_answer(request.path_params["reader"], item_id, body)
        except InvalidInputError as exc:
            return json_error(400, str(exc))
        store.upsert(ans)  # sub-millisecond local write; committed before we reply
        done = store.answered(ans.reader_id)
        next_index = next((i for i, x in enumerate(ids) if x not in done), len(ids))
        return JSONResponse({"stored": True, "next_index": next_index}, headers=NO_STORE)

    routes = [
        Route("/", page),
        Route("/static/{name}", asset),
        Route("/api/study", study_info),
        Route("/api/items/{item_id}/volume", volume),
        Route("/api/readers/{reader}/progress", progress),
        Route("/api/answers/{reader}/{item_id}", answer, methods=["PUT"]),
    ]
    return Starlette(routes=routes)


def serve(study: Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the reading page with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(study), host=host, port=port, log_level="warning")
