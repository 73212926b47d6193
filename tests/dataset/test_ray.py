"""The Ray backend on a real local Ray instance (loopback only): same files as a local run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longisynth.dataset.design import ResourcesConfig, load_design
from longisynth.dataset.runner import run_dataset
from longisynth.errors import InvalidInputError
from tests.dataset.conftest import tree_hashes, write_design

pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """A local Ray with 2 CPUs on 127.0.0.1, no dashboard; its workers run without the refiner
    (the autouse fixture's environment variable is function-scoped and set after Ray starts)."""
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=128 * 2**20,
        runtime_env={"env_vars": {"LONGISYNTH_REFINER": "off"}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_run_gives_the_same_files_as_a_local_run(
    ray_instance: Any, tmp_path: Path, phantom_inputs: Path
) -> None:
    design_path = write_design(tmp_path / "d", phantom_inputs / "scans.csv", output={"formats": ["nnunet"]})
    design = load_design(design_path)
    local = run_dataset(design, design_path.parent, tmp_path / "local", workers=1)
    remote = run_dataset(design, design_path.parent, tmp_path / "ray", backend="ray", workers=2)
    assert local.n_ok == remote.n_ok == 12
    hashes = tree_hashes(tmp_path / "ray")
    assert len([p for p in hashes if p.endswith(".zip")]) == 12
    assert hashes == tree_hashes(tmp_path / "local")
    assert ray_instance.is_initialized()  # the runner reused the running instance, did not stop it
    log = [json.loads(line) for line in (tmp_path / "ray" / "run_log.jsonl").read_text().splitlines()]
    cases = [e for e in log if "case_id" in e]
    assert len(cases) == 12 and {e["backend"] for e in cases} == {"ray"}
    assert all(not e["worker"].endswith(f":{os.getpid()}") for e in cases)  # ran in Ray workers


def test_failures_on_ray_are_error_rows_and_infeasible_memory_is_refused(
    ray_instance: Any, tmp_path: Path, phantom_inputs: Path
) -> None:
    design_path = write_design(
        tmp_path / "d",
        phantom_inputs / "scans.csv",
        cases_per_scan=1,
        sample={"diameter_mm": {"choice": [12, 120]}, "n_timepoints": {"integers": [2, 2]}},
        stratify=[{"field": "diameter_mm"}],
    )
    report = run_dataset(load_design(design_path), design_path.parent, tmp_path / "out", backend="ray")
    statuses = {(r["diameter_mm"], r["status"]) for r in report.rows}
    assert statuses == {(12.0, "ok"), (120.0, "error")}  # 120 mm: wider than the lungs
    assert all("\n" not in r["error"] for r in report.rows)

    # more memory per case than the whole cluster has would wait forever in Ray: refused up front
    design = load_design(design_path).model_copy(update={"resources": ResourcesConfig(memory_mb=10**8)})
    with pytest.raises(InvalidInputError, match=r"asks for 100000000 MiB per case, more than the Ray"):
        run_dataset(design, design_path.parent, tmp_path / "out2", backend="ray")
