"""The async twin behaves like the sync client (requests, retries, errors, jobs)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import longisynth_client as lc
import pytest

from tests.client.conftest import error_response, mock, parse_multipart, zip_response
from tests.client.test_jobs import RUNNING, FakeJobServer


def test_async_generate_with_retry_and_auth(nifti_scan: Path, sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            busy = error_response(429, "too_many_requests")
            busy.headers["Retry-After"] = "1.5"
            return busy
        assert parse_multipart(request)["seed"] == (None, b"5")
        return zip_response()

    async def run() -> lc.Bundle:
        async with lc.AsyncClient("http://x", api_key="k", transport=mock(handler)) as client:
            return await client.generate(nifti_scan, seed=5, progress=True)

    bundle = asyncio.run(run())
    assert len(seen) == 2
    assert sleeps == [1.5]
    assert all(r.headers["Authorization"] == "Bearer k" for r in seen)
    assert [tp.index for tp in bundle.timepoints] == [0, 1]


def test_async_errors_and_no_retry_on_422(sleeps: list[float]) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return error_response(422, "prompt_not_understood", "huh", unknown_words=["flibber"])

    async def run() -> None:
        async with lc.AsyncClient("http://x", transport=mock(handler)) as client:
            await client.generate_demo(prompt="flibber")

    with pytest.raises(lc.PromptNotUnderstoodError) as info:
        asyncio.run(run())
    assert info.value.unknown_words == ["flibber"]
    assert len(calls) == 1 and sleeps == []
    assert json.loads(calls[0].content)["prompt"] == "flibber"


def test_async_connection_error(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def run() -> None:
        async with lc.AsyncClient("http://x", transport=mock(handler)) as client:
            await client.health()

    with pytest.raises(lc.APIConnectionError):
        asyncio.run(run())
    assert len(sleeps) == 2


def test_async_jobs(nifti_scan: Path, sleeps: list[float]) -> None:
    server = FakeJobServer(RUNNING)

    async def run() -> tuple[lc.Job, lc.Bundle, lc.JobStatus]:
        async with lc.AsyncClient("http://x", transport=mock(server)) as client:
            job = await client.submit_job(nifti_scan)
            bundle = await client.wait_job(job.id, poll_interval=0.1)
            status = await client.cancel_job(job.id)
            return job, bundle, status

    job, bundle, status = asyncio.run(run())
    assert job.id == "job-1"
    assert bundle.filename == "job.zip"
    assert server.polls == 5 and sleeps == [0.1] * 4
    assert status.status == "cancelled"


def test_async_ready_and_cancelled_wait(sleeps: list[float]) -> None:
    server = FakeJobServer([{"status": "cancelled"}])

    async def run() -> None:
        async with lc.AsyncClient("http://x", transport=mock(server)) as client:
            await client.wait_job("job-1")

    with pytest.raises(lc.JobCancelledError):
        asyncio.run(run())

    async def ready() -> dict[str, object]:
        body = {"status": "ready", "execution_provider": "CPUExecutionProvider", "model": {"name": "m"}}
        async with lc.AsyncClient("http://x", transport=mock(lambda r: httpx.Response(200, json=body))) as c:
            return await c.ready()

    assert asyncio.run(ready())["execution_provider"] == "CPUExecutionProvider"
