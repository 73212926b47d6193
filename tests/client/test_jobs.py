"""Job endpoints: submit, poll to completion with a progress display, failure, cancellation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import longisynth_client as lc
import pytest

from tests.client.conftest import error_response, mock, parse_multipart, recorder, zip_response


class FakeJobServer:
    """A job that goes through ``states`` (one per ``GET /jobs/{id}``) then stays in the last."""

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states = states
        self.polls = 0
        self.requests: list[str] = []
        self.cancelled = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        path = request.url.path
        if request.method == "POST" and path == "/jobs":
            request.read()
            return httpx.Response(202, json={"id": "job-1", "status": "queued"})
        if not path.startswith("/jobs/job-1"):
            return error_response(404, "not_found", "unknown job")
        if request.method == "DELETE":
            self.cancelled = True
            return httpx.Response(200, json={"id": "job-1", "status": "cancelled"})
        if path.endswith("/result"):
            if self.states[min(self.polls, len(self.states)) - 1]["status"] != "succeeded":
                return error_response(409, "job_not_finished", "not yet")
            return zip_response(filename="job.zip")
        state = (
            {"status": "cancelled"} if self.cancelled else self.states[min(self.polls, len(self.states) - 1)]
        )
        self.polls += 1
        return httpx.Response(
            200, json={"id": "job-1", "stage": None, "progress": 0.0, "error": None, **state}
        )


RUNNING: list[dict[str, Any]] = [
    {"status": "queued"},
    {"status": "running", "stage": "anatomy", "progress": 0.1},
    {"status": "running", "stage": "growth", "progress": 0.5},
    {"status": "running", "stage": "growth", "progress": 0.6},
    {"status": "succeeded", "stage": "write", "progress": 1.0},
]


def test_submit_and_wait_to_completion(
    nifti_scan: Path, sleeps: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    server = FakeJobServer(RUNNING)
    with lc.Client("http://x", transport=mock(server)) as client:
        job = client.submit_job(nifti_scan, prompt="glioma", seed=1)
        assert job == lc.Job(id="job-1", status="queued")
        bundle = client.wait_job(job.id, poll_interval=0.25, progress=True)
    assert bundle.filename == "job.zip"
    assert server.polls == 5
    assert sleeps == [0.25] * 4
    assert server.requests[0] == "POST /jobs"
    assert server.requests[-1] == "GET /jobs/job-1/result"
    err = capsys.readouterr().err.splitlines()  # not a TTY: one line per stage
    assert err == [
        "longisynth: waiting (0%)",
        "longisynth: anatomy (10%)",
        "longisynth: growth (50%)",
        "longisynth: write (100%)",
    ]


def test_get_job_status_model(sleeps: list[float]) -> None:
    server = FakeJobServer(RUNNING[1:])
    with lc.Client("http://x", transport=mock(server)) as client:
        status = client.get_job("job-1")
    assert status.status == "running" and status.stage == "anatomy" and status.progress == 0.1
    assert not status.done


def test_failed_job_raises_its_error_class(sleeps: list[float]) -> None:
    failed: dict[str, Any] = {
        "status": "failed",
        "stage": "placement",
        "error": {
            "type": "lesion_does_not_fit",
            "message": "40 mm does not fit",
            "field": "spec.diameter_mm",
        },
    }
    server = FakeJobServer([{"status": "running"}, failed])
    with (
        lc.Client("http://x", transport=mock(server)) as client,
        pytest.raises(lc.LesionDoesNotFitError) as info,
    ):
        client.wait_job("job-1")
    assert info.value.status_code == 422
    assert info.value.message == "40 mm does not fit"
    assert info.value.field == "spec.diameter_mm"
    assert "GET /jobs/job-1/result" not in server.requests


def test_cancel_job_and_wait_on_cancelled(sleeps: list[float]) -> None:
    server = FakeJobServer([{"status": "running", "stage": "growth"}])
    with lc.Client("http://x", transport=mock(server)) as client:
        status = client.cancel_job("job-1")
        assert status.status == "cancelled" and status.done
        with pytest.raises(lc.JobCancelledError) as info:
            client.wait_job("job-1")
    assert info.value.job_id == "job-1"
    assert server.requests[0] == "DELETE /jobs/job-1"


def test_wait_timeout(sleeps: list[float]) -> None:
    server = FakeJobServer([{"status": "running"}])
    with lc.Client("http://x", transport=mock(server)) as client, pytest.raises(lc.JobTimeoutError) as info:
        client.wait_job("job-1", timeout=0)
    assert isinstance(info.value, TimeoutError)
    assert info.value.status == "running"
    assert server.polls == 1


def test_result_before_success_is_conflict_and_unknown_job_404(sleeps: list[float]) -> None:
    server = FakeJobServer([{"status": "running"}])
    with lc.Client("http://x", transport=mock(server)) as client:
        client.get_job("job-1")
        with pytest.raises(lc.ConflictError):
            client.job_result("job-1")
        with pytest.raises(lc.NotFoundError) as info:
            client.get_job("nope")
    assert info.value.message == "unknown job"


def test_job_id_is_url_encoded(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    with (
        lc.Client("http://x", transport=recorder(seen, lambda: error_response(404, "not_found"))) as c,
        pytest.raises(lc.NotFoundError),
    ):
        c.get_job("a/../b")
    assert seen[0].url.raw_path == b"/jobs/a%2F..%2Fb"


def test_submit_job_fields_and_demo_job(nifti_scan: Path) -> None:
    bodies: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        bodies.append(request)
        return httpx.Response(202, json={"id": "j9", "status": "queued"})

    with lc.Client("http://x", transport=mock(handler)) as client:
        client.submit_job(nifti_scan, contrast="flair", lenient=True)
        demo = client.submit_demo_job("lung", spec={"diameter_mm": 6})
    fields = parse_multipart(bodies[0])
    assert set(fields) == {"scan", "contrast", "lenient"}
    assert json.loads(bodies[1].content) == {
        "kind": "lung",
        "prompt": None,
        "spec": {"diameter_mm": 6},
        "seed": None,
        "demo": True,
    }
    assert demo.id == "j9"
