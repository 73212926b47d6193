"""A tiny dataset run to review: one thorax phantom (96×96×64 voxels of 3.5×3.5×5 mm), three lung
cases of 2–3 timepoints (≈ 1 s per case), made once per session; each test gets a fresh copy."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dataset.conftest import make_inputs, write_design

N_CASES = 3


@pytest.fixture(scope="session")
def _review_run_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from longisynth.dataset.design import load_design
    from longisynth.dataset.runner import run_dataset

    root = tmp_path_factory.mktemp("review_run")
    manifest = make_inputs(root / "in", n_scans=1)
    design_path = write_design(root / "d", manifest, cases_per_scan=N_CASES)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LONGISYNTH_REFINER", "off")
        report = run_dataset(load_design(design_path), design_path.parent, root / "out")
    assert report.n_ok == N_CASES, report.summary
    return root / "out"


@pytest.fixture
def review_run(_review_run_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a finished 3-case run folder (no verdicts yet)."""
    return Path(shutil.copytree(_review_run_template, tmp_path / "run"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def review_server(review_run: Path) -> Iterator[str]:
    """The real review server (uvicorn) on a free 127.0.0.1 port in a thread; yields its base URL."""
    import uvicorn

    from longisynth.review.server import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(review_run, "dr_a"), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the review server did not start within 10 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
