"""Admission control of the worker pool, without a server."""

from __future__ import annotations

import threading

import pytest

from service.config import Settings
from service.errors import ApiError
from service.jobs import Pool


def test_cancelled_queued_work_gives_its_slot_back() -> None:
    depths: list[int] = []
    pool = Pool(Settings(max_concurrency=1, max_queue=1), depths.append)
    gate = threading.Event()
    running = pool.submit(gate.wait)
    queued = pool.submit(lambda: None)
    with pytest.raises(ApiError) as exc:
        pool.submit(lambda: None)  # 1 running + 1 queued: full
    assert exc.value.status == 429
    assert queued.cancel()  # never started
    assert pool.admitted == 1  # the cancelled one no longer holds a slot
    again = pool.submit(lambda: 7)
    gate.set()
    assert running.result(timeout=10) is True and again.result(timeout=10) == 7
    pool.shutdown()
    assert pool.admitted == 0 and depths[-1] == 0
