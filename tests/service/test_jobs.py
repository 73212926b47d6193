"""Admission control of the worker pool and the job store, without a server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from service.config import Settings
from service.errors import ApiError
from service.jobs import JobManager, Pool


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


def _finished_job(jobs: JobManager, tmp_path: Path, name: str, size: int, owner: str = "") -> str:
    folder = tmp_path / name
    folder.mkdir()

    def work(progress: object) -> None:
        (folder / "bundle.zip").write_bytes(b"\0" * size)

    job = jobs.submit(folder, work, owner=owner)
    assert job.future is not None
    job.future.result(timeout=10)
    time.sleep(0.01)  # distinct finish times
    return job.id


def test_kept_results_are_bounded_by_count_and_bytes_oldest_first(tmp_path: Path) -> None:
    settings = Settings(max_concurrency=1, max_queue=4, max_kept_jobs=3, max_kept_bytes=10_000)
    jobs = JobManager(Pool(settings))
    a = _finished_job(jobs, tmp_path, "a", 4000)
    b = _finished_job(jobs, tmp_path, "b", 4000)
    c = _finished_job(jobs, tmp_path, "c", 4000)  # 12 000 bytes > 10 000: a goes
    with pytest.raises(ApiError):
        jobs.get(a)
    assert not (tmp_path / "a").exists() and jobs.get(b).status == "succeeded"
    d = _finished_job(jobs, tmp_path, "d", 10)
    e = _finished_job(jobs, tmp_path, "e", 10)  # 4 kept > 3: b goes
    with pytest.raises(ApiError):
        jobs.get(b)
    assert {jobs.get(j).id for j in (c, d, e)} == {c, d, e}
    jobs.pool.shutdown()


def test_a_job_is_not_found_under_another_owner(tmp_path: Path) -> None:
    jobs = JobManager(Pool(Settings()))
    job_id = _finished_job(jobs, tmp_path, "j", 10, owner="k1")
    assert jobs.get(job_id, "k1").status == "succeeded"
    for call in (jobs.get, jobs.cancel):
        with pytest.raises(ApiError) as exc:
            call(job_id, "k2")
        assert exc.value.status == 404
    jobs.pool.shutdown()


def test_recovered_jobs_are_failed_and_cleaned(tmp_path: Path) -> None:
    folder = tmp_path / "req-1"
    folder.mkdir()
    (folder / "scan.nii.gz").write_bytes(b"x")
    (folder / "job.json").write_text('{"id": "abc", "status": "running", "owner": "k1", "progress": 0.4}')
    broken = tmp_path / "req-2"
    broken.mkdir()
    (broken / "job.json").write_text("{not json")
    jobs = JobManager(Pool(Settings()))
    assert jobs.recover([folder, broken]) == 1
    job = jobs.get("abc", "k1")
    assert job.status == "failed" and job.error is not None and job.error["type"] == "interrupted"
    assert [p.name for p in folder.iterdir()] == ["job.json"] and not broken.exists()
    jobs.pool.shutdown()


@pytest.mark.parametrize("keys", [" ", ",", " , "])
def test_blank_key_list_is_refused(keys: str) -> None:
    with pytest.raises(ValueError, match="LONGISYNTH_API_KEYS"):
        Settings.from_env({"LONGISYNTH_API_KEYS": keys})
    assert Settings.from_env({"LONGISYNTH_API_KEYS": "a, b"}).api_keys == ("a", "b")


def test_one_server_per_work_dir(tmp_path: Path) -> None:
    """A second server on the same work folder would adopt and clean the first one's jobs: refused."""
    from service.app import lock_work_dir

    first = lock_work_dir(tmp_path / "work")
    with pytest.raises(RuntimeError, match="LONGISYNTH_WORK_DIR"):
        lock_work_dir(tmp_path / "work")
    first.close()
    lock_work_dir(tmp_path / "work").close()  # free again once the holder is gone
