"""The review web page: a Starlette app over a dataset run folder and its verdict log.

It serves the VTT's slice viewer (``longisynth/vtt/static/viewer.js`` and ``app.css``) with a
review page of its own. Endpoints:

    GET  /                                      the review page (static/review.html)
    GET  /static/{viewer.js, app.css}           the VTT's viewer and style
    GET  /static/{review.js, review.css}        the review page's script and style
    GET  /api/run                               run name, cases (ids, archetype), reasons, reviewer
    GET  /api/progress                          current verdicts and the first unreviewed index
    GET  /api/cases/{id}                        crop shape, spacing (mm), timepoints, presets
    GET  /api/cases/{id}/timepoints/{k}/volume  int16 little-endian voxels, C order (x, y, z)
    GET  /api/cases/{id}/timepoints/{k}/mask    uint8 lesion mask, same layout
    GET  /api/cases/{id}/history                every verdict given on the case, oldest first
    PUT  /api/verdicts/{id}                     store a verdict (JSON body; see review.store)

Every verdict is flushed to ``RUN_DIR/review/verdicts.jsonl`` and then written into the manifest
and summary (:func:`longisynth.review.apply.apply_review`) before the reply.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from longisynth.dataset.run_folder import open_run
from longisynth.errors import InvalidInputError, LongisynthError
from longisynth.review.apply import apply_review, archetype_of
from longisynth.review.store import REASONS, VerdictStore, parse_verdict, validate_reviewer
from longisynth.review.views import CaseView, load_case_view
from longisynth.vtt.server import NO_STORE, json_error, json_object, static_file

log = logging.getLogger(__name__)
STATIC = {
    "viewer.js": ("longisynth.vtt", "text/javascript"),
    "app.css": ("longisynth.vtt", "text/css"),
    "review.js": ("longisynth.review", "text/javascript"),
    "review.css": ("longisynth.review", "text/css"),
    "review.html": ("longisynth.review", "text/html"),
}
CACHED_CASES = 4  # case crops kept in memory (a few MB each)


def create_app(run_dir: Path, reviewer: str = "") -> Starlette:
    """The ASGI app reviewing the finished cases of ``run_dir``; ``reviewer`` is the default
    reviewer id recorded with verdicts (the page may give another).

    Raises:
        InvalidInputError: not a run folder, a run with no finished case, a bad reviewer id.
    """
    run = open_run(run_dir)
    if not run.cases:
        raise InvalidInputError(f"{str(run_dir)!r} has no finished cases to review yet")
    reviewer = validate_reviewer(reviewer)
    cases = [{"id": str(r["case_id"]), "archetype": archetype_of(r)} for r in run.cases]
    ids = [c["id"] for c in cases]
    known = set(ids)
    store = VerdictStore(run.root)
    write_lock = threading.Lock()
    static = {name: static_file(name, pkg) for name, (pkg, _) in STATIC.items()}
    cache: OrderedDict[str, CaseView] = OrderedDict()
    cache_lock = threading.Lock()

    def case_view(case_id: str) -> CaseView:
        with cache_lock:
            if case_id in cache:
                cache.move_to_end(case_id)
                return cache[case_id]
        view = load_case_view(run.bundle(case_id))
        with cache_lock:
            cache[case_id] = view
            while len(cache) > CACHED_CASES:
                cache.popitem(last=False)
        return view

    def progress_body() -> dict[str, Any]:
        latest = store.latest()
        verdicts = {i: asdict(latest[i]) for i in ids if i in latest}
        next_index = next((k for k, i in enumerate(ids) if i not in latest), len(ids))
        return {"verdicts": verdicts, "next_index": next_index, "n_cases": len(ids)}

    def page(request: Request) -> Response:
        return Response(static["review.html"], media_type="text/html", headers=NO_STORE)

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC or name == "review.html":
            return json_error(404, "not found")
        return Response(static[name], media_type=STATIC[name][1], headers=NO_STORE)

    def run_info(request: Request) -> Response:
        body = {
            "name": run.design.name,
            "n_cases": len(cases),
            "cases": cases,
            "reasons": [{"code": k, "label": v} for k, v in REASONS.items()],
            "reviewer": reviewer,
        }
        return JSONResponse(body, headers=NO_STORE)

    def progress(request: Request) -> Response:
        return JSONResponse(progress_body(), headers=NO_STORE)

    def case_info(request: Request) -> Response:
        case_id = request.path_params["case_id"]
        if case_id not in known:  # only ids of finished cases: no path built from user text
            return json_error(404, "unknown case")
        try:
            view = case_view(case_id)
        except LongisynthError as exc:
            return json_error(422, str(exc))
        return JSONResponse({"id": case_id, **view.public()}, headers=NO_STORE)

    def voxels(request: Request) -> Response:
        case_id, what = request.path_params["case_id"], request.path_params["what"]
        if case_id not in known or what not in ("volume", "mask"):
            return json_error(404, "not found")
        try:
            view = case_view(case_id)
        except LongisynthError as exc:
            return json_error(422, str(exc))
        k = request.path_params["k"]
        pos = next((n for n, tp in enumerate(view.timepoints) if str(tp["index"]) == k), None)
        if pos is None:
            return json_error(404, "unknown timepoint")
        if what == "volume":
            data = np.ascontiguousarray(view.images[pos], dtype="<i2").tobytes()
        else:
            data = np.ascontiguousarray(view.masks[pos], dtype=np.uint8).tobytes()
        return Response(data, media_type="application/octet-stream", headers=NO_STORE)

    def history(request: Request) -> Response:
        case_id = request.path_params["case_id"]
        if case_id not in known:
            return json_error(404, "unknown case")
        items = [asdict(v) for v in store.history() if v.case_id == case_id]
        return JSONResponse({"history": items}, headers=NO_STORE)

    async def verdict(request: Request) -> Response:
        case_id = request.path_params["case_id"]
        if case_id not in known:
            return json_error(404, "unknown case")
        body = await json_object(request)
        if isinstance(body, Response):
            return body
        try:
            v = parse_verdict(case_id, body, reviewer)
        except InvalidInputError as exc:
            return json_error(400, str(exc))
        with write_lock:
            store.append(v)
            try:
                apply_review(run.root)
            except (OSError, ValueError, KeyError) as exc:  # the verdict is stored; say so
                log.warning("verdict stored; manifest not updated: %s", type(exc).__name__)
                return JSONResponse(
                    {"stored": True, "manifest_updated": False, **progress_body()}, headers=NO_STORE
                )
        log.info("verdict %s on %s", v.verdict, case_id)  # case ids only: no patient data
        return JSONResponse({"stored": True, "manifest_updated": True, **progress_body()}, headers=NO_STORE)

    routes = [
        Route("/", page),
        Route("/static/{name}", asset),
        Route("/api/run", run_info),
        Route("/api/progress", progress),
        Route("/api/cases/{case_id}", case_info),
        Route("/api/cases/{case_id}/timepoints/{k}/{what}", voxels),
        Route("/api/cases/{case_id}/history", history),
        Route("/api/verdicts/{case_id}", verdict, methods=["PUT"]),
    ]
    return Starlette(routes=routes)
