"""Retries: 429/503 with backoff or ``Retry-After``, transport errors, never other 4xx."""

from __future__ import annotations

from pathlib import Path

import httpx
import longisynth_client as lc
import pytest
from longisynth_client import _constants

from tests.client.conftest import error_response, mock, parse_multipart, zip_response


def counting(responses: list[httpx.Response | Exception]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering ``responses`` in order (exceptions are raised); records requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        item = responses[min(len(seen) - 1, len(responses) - 1)]
        if isinstance(item, Exception):
            raise item
        return item

    return mock(handler), seen


def test_retry_after_is_honoured(sleeps: list[float]) -> None:
    busy = error_response(429, "too_many_requests")
    busy.headers["Retry-After"] = "3"
    transport, seen = counting([busy, httpx.Response(200, json={"status": "ok"})])
    with lc.Client("http://x", transport=transport) as client:
        assert client.health() == {"status": "ok"}
    assert len(seen) == 2
    assert sleeps == [3.0]


def test_retry_after_is_capped(sleeps: list[float]) -> None:
    busy = error_response(503, "service_unavailable")
    busy.headers["Retry-After"] = "3600"
    transport, seen = counting([busy, httpx.Response(200, json={"status": "ok"})])
    with lc.Client("http://x", transport=transport) as client:
        client.health()
    assert sleeps == [_constants.MAX_RETRY_AFTER]
    assert len(seen) == 2


def test_exponential_backoff_with_jitter_then_gives_up(sleeps: list[float]) -> None:
    transport, seen = counting([error_response(503, "service_unavailable", "draining")])
    client = lc.Client("http://x", transport=transport, max_retries=4)
    with client, pytest.raises(lc.ServiceUnavailableError) as info:
        client.get_job("j1")
    assert info.value.message == "draining"
    assert len(seen) == 5  # 1 + 4 retries
    assert len(sleeps) == 4
    for attempt, delay in enumerate(sleeps):
        nominal = min(_constants.INITIAL_RETRY_DELAY * 2**attempt, _constants.MAX_RETRY_DELAY)
        assert nominal * (1 - _constants.RETRY_JITTER) <= delay <= nominal
    assert sleeps[3] > sleeps[0] * 4  # grows: 0.5 → 4.0 nominal


def test_backoff_is_capped_at_max_delay() -> None:
    client = lc.Client("http://x", transport=mock(lambda r: httpx.Response(200)))
    delays = [client._retry_delay(10, None) for _ in range(50)]
    assert max(delays) <= _constants.MAX_RETRY_DELAY
    assert min(delays) >= _constants.MAX_RETRY_DELAY * (1 - _constants.RETRY_JITTER)
    assert len(set(delays)) > 1  # jitter
    client.close()


@pytest.mark.parametrize("status", [400, 401, 404, 409, 413, 415, 422, 500])
def test_no_retry_on_other_errors(status: int, sleeps: list[float]) -> None:
    transport, seen = counting([error_response(status, "x")])
    with lc.Client("http://x", transport=transport) as client, pytest.raises(lc.APIStatusError):
        client.generate_demo()
    assert len(seen) == 1
    assert sleeps == []


def test_default_two_retries(sleeps: list[float]) -> None:
    assert _constants.DEFAULT_MAX_RETRIES == 2
    transport, seen = counting([error_response(429, "too_many_requests")])
    with lc.Client("http://x", transport=transport) as client, pytest.raises(lc.RateLimitError):
        client.generate_demo()
    assert len(seen) == 3
    assert len(sleeps) == 2


def test_connection_errors_retried_for_get(sleeps: list[float]) -> None:
    transport, seen = counting(
        [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(200, json={"status": "ok"})]
    )
    with lc.Client("http://x", transport=transport) as client:
        assert client.health()["status"] == "ok"
    assert len(seen) == 3
    assert len(sleeps) == 2


def test_timeout_after_retries_raises_timeout_error(sleeps: list[float]) -> None:
    transport, seen = counting([httpx.ReadTimeout("slow")])
    with lc.Client("http://x", transport=transport) as client, pytest.raises(lc.APITimeoutError):
        client.get_job("j")
    assert len(seen) == 3


def test_submit_job_not_retried_after_read_timeout_but_after_connect_error(
    nifti_scan: Path, sleeps: list[float]
) -> None:
    transport, seen = counting([httpx.ReadTimeout("slow"), httpx.Response(202, json={"id": "j"})])
    with lc.Client("http://x", transport=transport) as client, pytest.raises(lc.APITimeoutError):
        client.submit_job(nifti_scan)
    assert len(seen) == 1  # the server may have queued it: do not queue twice

    transport, seen = counting([httpx.ConnectError("refused"), httpx.Response(202, json={"id": "j"})])
    with lc.Client("http://x", transport=transport) as client:
        assert client.submit_job(nifti_scan).id == "j"
    assert len(seen) == 2


def test_upload_is_reread_on_retry(tmp_path: Path, sleeps: list[float]) -> None:
    scan = tmp_path / "scan.nii"
    scan.write_bytes(b"first version")
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(parse_multipart(request)["scan"][1])
        if len(bodies) == 1:
            scan.write_bytes(b"second version")
            return error_response(503, "service_unavailable")
        return zip_response()

    with lc.Client("http://x", transport=mock(handler)) as client:
        bundle = client.generate(scan)
    assert bodies == [b"first version", b"second version"]
    assert bundle.filename == "longisynth-0123456789ab-seed7.zip"


def test_ready_is_not_retried(sleeps: list[float]) -> None:
    transport, seen = counting([error_response(503, "service_unavailable", "loading model")])
    with lc.Client("http://x", transport=transport) as client, pytest.raises(lc.ServiceUnavailableError):
        client.ready()
    assert len(seen) == 1


def test_retry_after_http_date() -> None:
    from longisynth_client._base import parse_retry_after

    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
