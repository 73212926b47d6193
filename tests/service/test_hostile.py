"""A hostile client against a real server (issue 16): bombs in bounded memory and disk, no 500 on
malformed requests, jobs owned by keys, kept results bounded, crashes reported as failed jobs."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from longisynth.api import demo_input
from longisynth.io import write_nifti
from tests.bombs import GIB, write_gzip_bomb, write_zip_bomb
from tests.service._server import Server, memory_kib, reset_peak, start, stop, worker_pid

pytestmark = pytest.mark.xdist_group("server")
K1, K2 = "key-one", "key-two"
MIB = 1 << 20
MAX_SCAN_BYTES = 64 * MIB
MARGIN_KIB = 64 * 1024  # allocator slack, the multipart parser, the response


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "LONGISYNTH_API_KEYS": f"{K1},{K2}",
        "LONGISYNTH_REFINER": "off",
        "LONGISYNTH_MAX_UPLOAD_BYTES": str(50 * MIB),
        "LONGISYNTH_MAX_SCAN_BYTES": str(MAX_SCAN_BYTES),
        "LONGISYNTH_MAX_ZIP_ENTRIES": "100",
        "LONGISYNTH_MAX_CONCURRENCY": "1",
        "LONGISYNTH_MAX_QUEUE": "1",
        "LONGISYNTH_MAX_KEPT_JOBS": "2",
    }
    srv = start(tmp_path_factory.mktemp("hostile_tmp"), env)
    yield srv
    stop(srv)


def _post(server: Server, path: str, key: str = K1, **kwargs: Any) -> httpx.Response:
    headers = {"X-API-Key": key, **kwargs.pop("headers", {})}
    return httpx.post(f"{server.url}{path}", headers=headers, timeout=120, **kwargs)


def _upload_peak_kib(server: Server, name: str, path: Path) -> tuple[httpx.Response, int]:
    """POST ``path`` as the scan; the worker's peak RSS above its RSS before, KiB."""
    pid = worker_pid(server)
    reset_peak(pid)
    before = memory_kib(pid)["VmRSS"]
    with path.open("rb") as f:
        r = _post(server, "/generate", files={"scan": (name, f)})
    return r, memory_kib(pid)["VmHWM"] - before


def test_gzip_bomb_is_read_in_bounded_memory(server: Server, tmp_path: Path) -> None:
    # the header announces 60 MiB of int16 (under the 64 MiB limit); the stream inflates to 10 GiB
    bomb = write_gzip_bomb(tmp_path / "bomb.nii.gz", (256, 256, 480), 10 * GIB)
    assert bomb.stat().st_size < 20 * MIB
    t0 = time.monotonic()
    r, peak = _upload_peak_kib(server, "bomb.nii.gz", bomb)
    assert r.status_code == 422 and "constant" in r.json()["error"]["message"]  # zeros: read, refused
    assert time.monotonic() - t0 < 60
    print(f"gzip bomb (10 GiB, header 60 MiB): worker peak RSS +{peak / 1024:.0f} MiB")
    assert peak < 2 * MAX_SCAN_BYTES // 1024 + MARGIN_KIB
    # a header that announces more than the limit is refused before any voxel is inflated
    big = write_gzip_bomb(tmp_path / "big.nii.gz", (2048, 2048, 1280), 10 * GIB)
    r, peak = _upload_peak_kib(server, "big.nii.gz", big)
    assert r.status_code == 413 and r.json()["error"]["field"] == "scan"
    assert peak < MARGIN_KIB
    assert server.leftovers() == set()


def test_zip_bomb_is_extracted_in_bounded_memory_and_disk(server: Server, tmp_path: Path) -> None:
    bomb = write_zip_bomb(tmp_path / "bomb.zip", GIB)
    assert bomb.stat().st_size < 8 * MIB
    r, peak = _upload_peak_kib(server, "series.zip", bomb)
    assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large"
    print(f"zip bomb (1 GiB): worker peak RSS +{peak / 1024:.0f} MiB")
    assert peak < 2 * MAX_SCAN_BYTES // 1024 + MARGIN_KIB
    many = write_zip_bomb(tmp_path / "many.zip", 101 * 1024, entries=101)
    r, _ = _upload_peak_kib(server, "series.zip", many)
    assert r.status_code == 413 and "101 files" in r.json()["error"]["message"]
    assert server.leftovers() == set()


def test_malformed_requests_are_4xx_json(server: Server, tmp_path: Path) -> None:
    json_ct = {"content-type": "application/json", "X-API-Key": K1}
    multipart = {"content-type": "multipart/form-data; boundary=abc", "X-API-Key": K1}
    part = b'--abc\r\nContent-Disposition: form-data; name="scan"; filename="%s"\r\n\r\nhi\r\n--abc--\r\n'
    cases: list[tuple[str, dict[str, str], bytes]] = [
        ("/generate/demo", json_ct, b'{"prompt": "\xff\xfe solid"}'),
        ("/jobs", json_ct, b'{"prompt": "\xc3\x28"}'),
        ("/generate/demo", json_ct, b"[" * 100_000 + b"]" * 100_000),
        ("/generate/demo", json_ct, b'{"seed": ' + b"9" * 5000 + b"}"),
        ("/jobs", json_ct, b'{"spec": {"seed": ' + b"9" * 5000 + b"}}"),
        ("/generate", multipart, b"--xyz\r\ngarbage\r\n--xyz--\r\n"),
        ("/generate", multipart, os.urandom(4096)),
        ("/generate", multipart, part % (b"A" * 9000 + b".nii")),
        ("/generate", multipart, b"--abc\r\nX-Junk: " + b"a" * (2 * MIB) + b"\r\n\r\nhi\r\n--abc--\r\n"),
        ("/generate", multipart, part % b"short.nii"),  # a NIfTI under 348 bytes
        ("/generate", multipart, part % b"short.nii.gz"),
    ]
    for path, headers, body in cases:
        r = httpx.post(f"{server.url}{path}", headers=headers, content=body, timeout=60)
        assert 400 <= r.status_code < 500, (path, body[:60], r.status_code, r.text[:200])
        assert r.json()["error"]["message"]
    assert server.leftovers() == set()


def test_json_body_is_refused_while_streaming(server: Server) -> None:
    """A large chunked JSON body is refused at 1 MiB, not buffered whole."""
    pid = worker_pid(server)
    reset_peak(pid)
    before = memory_kib(pid)["VmRSS"]

    def body() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(64):
            yield b"a" * MIB

    try:
        r = _post(server, "/generate/demo", content=body(), headers={"content-type": "application/json"})
        assert r.status_code == 413
    except httpx.HTTPError:
        pass  # the server answered and closed while we were still sending: also a refusal
    assert memory_kib(pid)["VmHWM"] - before < 16 * 1024


def test_spec_errors_name_the_field(server: Server) -> None:
    for spec, field in [
        ({"growth": {"doubling_time_days": 5}}, "growth.doubling_time_days"),
        ({"baseline_diameter_mm": True}, "baseline_diameter_mm"),
        ({"timepoints_days": [0, 1e-300]}, "timepoints_days"),
    ]:
        r = _post(server, "/generate/demo", json={"spec": spec})
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text


def test_options_on_a_job_allows_get_and_delete(server: Server) -> None:
    r = httpx.options(f"{server.url}/jobs/abc", headers={"X-API-Key": K1}, timeout=10)
    assert r.status_code == 405 and {"GET", "DELETE"} <= {m.strip() for m in r.headers["allow"].split(",")}


def _stalled_upload(server: Server) -> socket.socket:
    """A multipart upload that sends its headers and a little of its body, then waits."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = (
        f"POST /generate HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {K1}\r\nContent-Length: {40 * MIB}\r\n"
        "Content-Type: multipart/form-data; boundary=abc\r\n\r\n"
        '--abc\r\nContent-Disposition: form-data; name="scan"; filename="s.nii.gz"\r\n\r\n'
    )
    sock.sendall(head.encode() + b"\0" * 1024)
    return sock


def test_admission_comes_before_the_upload(server: Server, tmp_path: Path) -> None:
    """A full server answers 429 without storing the body; a wrong type is 415 at once."""
    first = _stalled_upload(server)
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        r = _post(server, "/generate", files={"scan": ("x.png", b"\x89PNG" + b"\0" * 1000)})
        assert r.status_code == 415 and r.json()["error"]["field"] == "scan"
        assert time.monotonic() - t0 < 2
        second = _stalled_upload(server)
        try:
            time.sleep(0.5)
            stored = sum(p.stat().st_size for p in server.work_dir.rglob("*") if p.is_file())
            r = _post(server, "/generate", files={"scan": ("big.nii.gz", b"\0" * (20 * MIB))})
            assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
            after = sum(p.stat().st_size for p in server.work_dir.rglob("*") if p.is_file())
            assert after - stored < MIB  # the refused 20 MB never reached the disk
        finally:
            second.close()
    finally:
        first.close()
    deadline = time.monotonic() + 10
    while server.leftovers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.leftovers() == set()


def _wait_job(server: Server, job_id: str, key: str = K1) -> dict[str, Any]:
    last = None
    for _ in range(900):
        try:
            r = httpx.get(f"{server.url}/jobs/{job_id}", headers={"X-API-Key": key}, timeout=10)
        except httpx.HTTPError:  # a worker still starting (after a kill, on a loaded machine)
            time.sleep(0.2)
            continue
        last = (r.status_code, r.text[:200])
        if r.status_code == 503:  # not ready yet: ask again
            time.sleep(0.2)
            continue
        state = r.json()
        assert "status" in state, last
        if state["status"] not in ("queued", "running"):
            return dict(state)
        time.sleep(0.2)
    raise AssertionError(f"job did not finish (last answer {last})")


def _phantom(tmp_path: Path) -> Path:
    scan = next(iter(demo_input("lung").scans.values()))
    path = tmp_path / "DOE_JOHN.nii.gz"
    write_nifti(path, scan.raw, scan.geometry.affine)
    return path


def test_jobs_are_owned_kept_within_bounds_and_uploads_deleted(server: Server, tmp_path: Path) -> None:
    phantom = _phantom(tmp_path)
    ids = []
    for seed in range(3):
        with phantom.open("rb") as f:
            r = _post(
                server,
                "/jobs",
                files={"scan": ("DOE_JOHN.nii.gz", f)},
                data={"prompt": "solid nodule 9 mm", "seed": str(seed)},
            )
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
        assert _wait_job(server, ids[-1])["status"] == "succeeded"
        folder = next(
            p
            for p in server.work_dir.glob("req-*")
            if (p / "job.json").is_file() and ids[-1] in (p / "job.json").read_text()
        )
        assert not any(p.name.startswith("scan") for p in folder.iterdir())  # the upload is gone
    # another key: the job does not exist for it
    for method, path in [("GET", ""), ("GET", "/result"), ("DELETE", "")]:
        r = httpx.request(method, f"{server.url}/jobs/{ids[-1]}{path}", headers={"X-API-Key": K2}, timeout=10)
        assert r.status_code == 404, (method, path)
    result = httpx.get(f"{server.url}/jobs/{ids[-1]}/result", headers={"X-API-Key": K1}, timeout=60)
    assert result.status_code == 200 and b"DOE_JOHN" not in result.content
    # at most 2 kept: the oldest was evicted, its folder deleted
    r = httpx.get(f"{server.url}/jobs/{ids[0]}", headers={"X-API-Key": K1}, timeout=10)
    assert r.status_code == 404
    assert len(server.leftovers()) == 2


def test_killed_worker_reports_its_jobs_failed(server: Server) -> None:
    r = _post(server, "/jobs", json={"kind": "lung", "prompt": "solid nodule 12 mm", "seed": 3})
    assert r.status_code == 202
    job_id = r.json()["id"]
    old = worker_pid(server)
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 180  # a new worker loads the refiner: slow on a loaded 2-core machine
    while time.monotonic() < deadline:
        try:
            if worker_pid(server) != old and httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                break
        except (AssertionError, httpx.HTTPError):
            pass
        time.sleep(0.3)
    state = _wait_job(server, job_id)
    assert state["status"] == "failed" and state["error"]["type"] == "interrupted"
    folder = next(p for p in server.work_dir.glob("req-*") if job_id in (p / "job.json").read_text())
    assert [p.name for p in folder.iterdir()] == ["job.json"]  # cleaned up, the state kept
    assert httpx.get(f"{server.url}/jobs/{job_id}", headers={"X-API-Key": K2}, timeout=10).status_code == 404
