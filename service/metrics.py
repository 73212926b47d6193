"""Prometheus metrics of the HTTP layer (served by BentoML's own ``/metrics``)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any


def use_own_multiprocess_dir() -> str | None:
    """Give this server its own Prometheus multiprocess folder; returns it (None in a worker).

    BentoML's default is ``$BENTOML_HOME/prometheus_multiproc_dir``, which every server started
    with the same BentoML home shares and *wipes* at start: a second server erased the first one's
    metrics. Called where the service module is imported: in the serving (arbiter) process, before
    BentoML creates the folder and hands it to its workers in ``PROMETHEUS_MULTIPROC_DIR`` — which
    is how a worker, importing the same module, knows to leave it alone. Removed at exit.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    try:
        from bentoml._internal.configuration.containers import BentoMLContainer
    except ImportError:
        return None
    folder = tempfile.mkdtemp(prefix="longisynth-metrics-")
    BentoMLContainer.prometheus_multiproc_dir.set(folder)
    atexit.register(shutil.rmtree, folder, True)
    return folder


class Metrics:
    """Request count/latency by endpoint and status, bytes in/out, lesions by family, queue depth,
    refiner batch sizes (tiles and merged calls per inference).

    Created through ``bentoml.metrics`` so they live in BentoML's multiprocess registry and
    appear on its ``/metrics`` endpoint; falls back to no-ops outside a BentoML server.
    """

    def __init__(self, queue_depth: Any = None) -> None:
        self._requests: Any
        self._latency: Any
        self._bytes_in: Any
        self._bytes_out: Any
        self._lesions: Any
        self._queue: Any
        self._batch_tiles: Any
        self._batch_calls: Any
        try:
            import bentoml

            m = bentoml.metrics
            self._requests = m.Counter("longisynth_requests", "HTTP requests", ["endpoint", "status"])
            self._latency = m.Histogram(
                "longisynth_request_duration_seconds",
                "Request latency (s)",
                ["endpoint"],
                buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            )
            self._bytes_in = m.Counter("longisynth_bytes_in", "Request body bytes received")
            self._bytes_out = m.Counter("longisynth_bytes_out", "Bundle bytes sent")
            self._lesions = m.Counter("longisynth_lesions_generated", "Studies generated", ["family"])
            self._batch_tiles = m.Histogram(
                "longisynth_model_batch_tiles",
                "Tiles per refiner inference call",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            )
            self._batch_calls = m.Histogram(
                "longisynth_model_batch_requests",
                "Refiner calls (from concurrent studies) merged into one inference",
                buckets=(1, 2, 3, 4, 6, 8, 16),
            )
            self._queue = m.Gauge(
                "longisynth_queue_depth", "Studies running or waiting", multiprocess_mode="livesum"
            )
        except Exception:  # outside a BentoML server (unit tests): metrics are no-ops
            self._requests = self._latency = self._bytes_in = self._bytes_out = None
            self._lesions = self._queue = self._batch_tiles = self._batch_calls = None

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        if self._requests is not None:
            self._requests.labels(endpoint=endpoint, status=str(status)).inc()
            self._latency.labels(endpoint=endpoint).observe(seconds)

    def bytes_in(self, n: int) -> None:
        if self._bytes_in is not None:
            self._bytes_in.inc(n)

    def bytes_out(self, n: int) -> None:
        if self._bytes_out is not None:
            self._bytes_out.inc(n)

    def lesion(self, family: str) -> None:
        if self._lesions is not None:
            self._lesions.labels(family=family or "unknown").inc()

    def batch(self, tiles: int, calls: int) -> None:
        """One refiner inference: ``tiles`` tiles from ``calls`` merged calls."""
        if self._batch_tiles is not None:
            self._batch_tiles.observe(tiles)
            self._batch_calls.observe(calls)

    def queue(self, depth: int) -> None:
        if self._queue is not None:
            self._queue.set(depth)
