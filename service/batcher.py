"""Cross-request dynamic batching of refiner calls (BentoML-style adaptive batching, in process).

Studies run in worker threads; at every sampler step each one hands the refiner a stack of
tiles and waits. :class:`DynamicBatcher` sits in front of the ONNX session: the first waiting
call opens a window of ``max_wait_s``; every call that arrives meanwhile (up to ``max_tiles``
tiles in all) joins it, and the whole stack goes through **one** ``session.run``. Results are
split back per call. Per-item outputs do not depend on what else was in the batch (ONNX Runtime's
CPU kernels compute each item independently; ``tests/refine/test_refiner.py`` checks this), so a
study served under load has the same bytes as one generated alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from longisynth.api import Denoiser, RefinerStatus


@dataclass
class _Call:
    x: NDArray[np.float32]
    t: NDArray[np.int64]
    done: threading.Event = field(default_factory=threading.Event)
    out: NDArray[np.float32] | None = None
    error: BaseException | None = None


class DynamicBatcher:
    """A :class:`~longisynth.refine.model.Denoiser` that merges concurrent calls into one inference.

    Args:
        model: the real denoiser (an ``OnnxRefiner``).
        max_tiles: most tiles per inference call (a single larger call still runs, alone).
        max_wait_s: how long the first call of a batch waits for company, seconds.
        on_batch: called with (tiles, calls) after each inference — the metrics hook.
    """

    def __init__(
        self,
        model: Denoiser,
        max_tiles: int = 128,
        max_wait_s: float = 0.02,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.model = model
        self.max_tiles = max_tiles
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self._pending: list[_Call] = []
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="refiner-batcher", daemon=True)
        self._thread.start()

    def status(self) -> RefinerStatus:
        status: Any = getattr(self.model, "status", None)
        base = status() if callable(status) else RefinerStatus("applied")
        base.extra["batching"] = {"max_tiles": self.max_tiles, "max_wait_s": self.max_wait_s}
        return base

    def __call__(self, x: NDArray[np.float32], t: NDArray[np.int64]) -> NDArray[np.float32]:
        call = _Call(x, t)
        with self._cv:
            self._pending.append(call)
            self._cv.notify()
        call.done.wait()
        if call.error is not None:
            raise call.error
        assert call.out is not None
        return call.out

    def _take(self) -> list[_Call]:
        """Block for the first call, then gather company until the window closes or the batch is full."""
        with self._cv:
            while not self._pending:
                self._cv.wait()
            deadline = time.monotonic() + self.max_wait_s
            while True:
                tiles = sum(len(c.x) for c in self._pending)
                left = deadline - time.monotonic()
                if tiles >= self.max_tiles or left <= 0:
                    break
                self._cv.wait(left)
            batch: list[_Call] = []
            size = 0
            while self._pending and (not batch or size + len(self._pending[0].x) <= self.max_tiles):
                call = self._pending.pop(0)
                batch.append(call)
                size += len(call.x)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            try:
                x = np.concatenate([c.x for c in batch]) if len(batch) > 1 else batch[0].x
                t = np.concatenate([c.t for c in batch]) if len(batch) > 1 else batch[0].t
                out = self.model(x, t)
                start = 0
                for c in batch:
                    c.out = out[start : start + len(c.x)]
                    start += len(c.x)
            except BaseException as exc:  # handed to every waiting caller, the loop lives on
                for c in batch:
                    c.error = exc
            for c in batch:
                c.done.set()
            if self.on_batch is not None:
                self.on_batch(sum(len(c.x) for c in batch), len(batch))
