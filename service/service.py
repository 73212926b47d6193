"""BentoML entry point: ``bentoml serve service.service:Longisynth`` (or ``longisynth serve``).

Thin by design: the routes live in :mod:`service.app`, the simulation in the engine. The learned
refiner (ONNX) is loaded once at start; its calls from concurrent studies are merged into shared
inference batches by :class:`service.batcher.DynamicBatcher`.
"""

from __future__ import annotations

import json
from typing import Any

import bentoml

from longisynth.api import choose_providers
from service.app import Api
from service.config import Settings
from service.metrics import Metrics, use_own_multiprocess_dir

use_own_multiprocess_dir()
SETTINGS = Settings.from_env()
API = Api(SETTINGS, Metrics())


class ReadinessMiddleware:
    """Answers ``GET /readyz`` with what is loaded and ``GET /healthz`` with a JSON status
    (BentoML's own probes have empty bodies; service/API.md promises JSON)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("method") == "GET":
            if scope.get("path") == "/healthz":
                await _send_json(send, {"status": "ok"})
                return
            if scope.get("path") == "/readyz":
                await _send_json(send, _readiness())
                return
        await self.app(scope, receive, send)


def _readiness() -> dict[str, Any]:
    return {
        "status": "ready",
        "execution_provider": _execution_provider(),
        "model": _model(),
        "limits": {
            "max_upload_bytes": SETTINGS.max_upload_bytes,
            "max_scan_bytes": SETTINGS.max_scan_bytes,
            "max_zip_entries": SETTINGS.max_zip_entries,
            "max_voxels": SETTINGS.max_voxels,
            "max_timepoints": SETTINGS.max_timepoints,
            "max_concurrency": SETTINGS.max_concurrency,
            "max_queue": SETTINGS.max_queue,
            "max_kept_jobs": SETTINGS.max_kept_jobs,
            "max_kept_bytes": SETTINGS.max_kept_bytes,
            "job_ttl_s": SETTINGS.job_ttl_s,
            "auth": bool(SETTINGS.api_keys),
        },
    }


async def _send_json(send: Any, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _execution_provider() -> str:
    """The provider the refiner session runs on (CUDA when ONNX Runtime sees a GPU, else CPU)."""
    if API.refiner is not None:
        return API.refiner.status().provider
    try:
        return choose_providers()[0]
    except ImportError:
        return "none"


def _model() -> dict[str, Any]:
    if API.refiner is None:
        return {"loaded": False, "reason": API.refiner_reason}
    status = API.refiner.status()
    return {
        "loaded": True,
        "name": status.model,
        "sha256": status.sha256,
        "batching": status.extra.get("batching"),
    }


@bentoml.asgi_app(API.app(), path="/")
@bentoml.service(name="longisynth", workers=1, traffic={"timeout": 3600})
class Longisynth:
    """longisynth over HTTP: POST /generate, /generate/demo, /jobs (see service/API.md)."""

    @bentoml.api(route="/version")
    def version(self) -> dict[str, str]:
        from longisynth import __version__

        return {"longisynth": __version__}


Longisynth.add_asgi_middleware(ReadinessMiddleware)  # type: ignore[attr-defined]  # set by @service
