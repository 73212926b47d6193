"""Server lifecycle (issue 16): SIGTERM to ``longisynth serve`` stops the whole server, jobs survive
a shutdown as ``failed`` (interrupted), folders are cleaned at start and shutdown, each server keeps
its own metrics, and a blank key list refuses to start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.service._server import descendants, start, stop

pytestmark = pytest.mark.xdist_group("server")
KEY = "lifecycle-key"


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_sigterm_stops_the_server_and_jobs_come_back_failed(tmp_path: Path) -> None:
    home = tmp_path / "bentoml_home"  # shared by both servers, as on a host with one BentoML home
    env = {"LONGISYNTH_API_KEYS": KEY, "LONGISYNTH_REFINER": "off", "BENTOML_HOME": str(home)}
    env |= {"LONGISYNTH_MAX_CONCURRENCY": "1", "LONGISYNTH_MAX_QUEUE": "4"}
    first = start(tmp_path / "a", env)
    auth = {"X-API-Key": KEY}
    try:
        done = httpx.post(f"{first.url}/jobs", headers=auth, json={"seed": 1}, timeout=60).json()["id"]
        for _ in range(600):
            if (
                httpx.get(f"{first.url}/jobs/{done}", headers=auth, timeout=10).json()["status"]
                == "succeeded"
            ):
                break
            time.sleep(0.2)
        busy = [
            httpx.post(f"{first.url}/jobs", headers=auth, json={"seed": s}, timeout=60).json()["id"]
            for s in (2, 3)
        ]
        # a second server with the same BentoML home leaves the first one's metrics alone
        second = start(tmp_path / "b", env)
        stop(second)
        metrics = httpx.get(f"{first.url}/metrics", timeout=10).text
        assert 'longisynth_requests_total{endpoint="jobs_submit",status="202"}' in metrics
        # SIGTERM to the process that was started, only: the whole server stops
        pids = [first.proc.pid, *descendants(first.proc.pid)]
        assert len(pids) >= 2
        os.kill(first.proc.pid, signal.SIGTERM)
        first.proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in pids), "a server process outlived SIGTERM"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{first.url}/healthz", timeout=2)
    finally:
        stop(first)
    # shutdown kept each job's state only: no upload, no bundle
    folders = sorted(first.work_dir.glob("req-*"))
    assert len(folders) == 3 and all([p.name for p in f.iterdir()] == ["job.json"] for f in folders)
    stray = first.work_dir / "req-stray"  # e.g. a request cut by a crash
    stray.mkdir()
    (stray / "scan.nii.gz").write_bytes(b"\0" * 1000)
    again = start(tmp_path / "a", env)
    try:
        for job_id in [done, *busy]:
            state = httpx.get(f"{again.url}/jobs/{job_id}", headers=auth, timeout=10).json()
            assert state["status"] == "failed" and state["error"]["type"] == "interrupted", state
        assert not stray.exists()  # cleaned at start
    finally:
        stop(again)


def test_blank_api_keys_refuse_to_start(tmp_path: Path) -> None:
    env = {**os.environ, "LONGISYNTH_API_KEYS": " , ", "LONGISYNTH_REFINER": "off", "TMPDIR": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "-m", "longisynth.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0 and "LONGISYNTH_API_KEYS" in res.stdout + res.stderr


def test_job_state_file_names_no_key(tmp_path: Path) -> None:
    """The persisted owner is a digest, never the key itself."""
    from service.config import Settings
    from service.jobs import JobManager, Pool

    pool = Pool(Settings(max_concurrency=1, max_queue=1))
    jobs = JobManager(pool)
    folder = tmp_path / "req-x"
    folder.mkdir()
    job = jobs.submit(folder, lambda progress: None, owner="ab" * 32)
    job.future.result(timeout=10)  # type: ignore[union-attr]
    state = json.loads((folder / "job.json").read_text())
    assert state["owner"] == "ab" * 32 and state["status"] == "succeeded"
    pool.shutdown()
