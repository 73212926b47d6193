"""Local runs: every case made and checked, reruns skip finished cases (verified by hash), a
killed run resumes without redoing finished cases, failures stay confined to their rows."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from longisynth.cli import main
from longisynth.dataset.design import load_design
from longisynth.dataset.runner import plan_only, run_dataset
from tests.dataset.conftest import make_inputs, tree_hashes, write_design


def _manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_local_run_of_3_scans_x_4_cases_then_rerun_skips_and_verifies(
    tmp_path: Path, phantom_inputs: Path
) -> None:
    design_path = write_design(tmp_path / "d", phantom_inputs / "scans.csv")
    design = load_design(design_path)
    out = tmp_path / "out"
    report = run_dataset(design, design_path.parent, out, workers=2)
    assert (report.n_ok, report.n_failed, report.skipped) == (12, 0, 0)

    rows = _manifest(out)
    planned = plan_only(design, design_path.parent).rows
    assert [r["case_id"] for r in rows] == [f"case{i:05d}" for i in range(12)]
    for row, plan in zip(rows, planned, strict=True):
        # the dry run's spec is exactly what the run generated
        assert json.loads(row["spec"]) == plan["spec"]
        assert row["attr_sex"] in ("M", "F") and row["attr_scanner"] == "phantom-A"
        volumes = json.loads(row["volumes_mm3"])
        assert len(volumes) == json.loads(row["spec"])["n_timepoints"] > 1
        assert volumes[-1] >= volumes[0] > 0  # growth; a slow GGO may stay within its 3.5 mm voxels
        assert row["hard_checks_passed"] == "true"
        assert row["refiner"] == "disabled" and "off" in row["refiner_reason"]
        with zipfile.ZipFile(out / row["bundle"]) as zf:
            meta = json.loads(zf.read("metadata.json"))
            assert meta["timings_s"] == {} and "timepoint_00/displacement.nii.gz" not in zf.namelist()
        assert meta["seed"] == int(row["seed"]) and meta["spec"] == json.loads(row["spec"])
    assert {r["scan_id"] for r in rows} == {"p0", "p1", "p2"}
    table = pytest.importorskip("pyarrow.parquet").read_table(out / "manifest.parquet")
    assert table.num_rows == 12 and table.column("volumes_mm3").to_pylist()[3] == json.loads(
        rows[3]["volumes_mm3"]
    )
    assert "12 cases: 12 ok" in (out / "summary.md").read_text()

    before = tree_hashes(out)
    again = run_dataset(design, design_path.parent, out, workers=1)
    assert (again.skipped, again.ran) == (12, 0)
    assert tree_hashes(out) == before  # manifest, summary: same bytes

    # a damaged output is noticed by its hash and only that case is redone
    victim = out / "cases" / "case00005.zip"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    third = run_dataset(design, design_path.parent, out, workers=1)
    assert (third.skipped, third.ran, third.n_ok) == (11, 1, 12)
    assert tree_hashes(out) == before


def test_killed_run_resumes_without_redoing_finished_cases(tmp_path: Path, phantom_inputs: Path) -> None:
    design_path = write_design(tmp_path / "d", phantom_inputs / "scans.csv")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "longisynth.cli", "dataset", "run", str(design_path), "-o", str(out), "-q"]
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while not list((out / "cases").glob("*.done.json")):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "no case finished in time"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in (out / "cases").glob("*.done.json")}
    bundles = {p: p.stat().st_mtime_ns for p in (out / "cases").glob("*.zip")}
    assert 1 <= len(finished) < 12
    assert not (out / "manifest.csv").exists()  # killed before the end

    report = run_dataset(load_design(design_path), design_path.parent, out)
    assert report.skipped == len(finished) and report.ran == 12 - len(finished)
    assert report.n_ok == 12
    for marker, mtime in finished.items():
        assert marker.stat().st_mtime_ns == mtime  # not rewritten
        bundle = marker.with_name(marker.name.replace(".done.json", ".zip"))
        assert bundle.stat().st_mtime_ns == bundles[bundle]
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]  # no temporaries left

    fresh = tmp_path / "fresh"
    run_dataset(load_design(design_path), design_path.parent, fresh)
    assert tree_hashes(fresh) == tree_hashes(out)  # resuming changed nothing


def test_corrupt_scan_and_impossible_lesion_are_error_rows(tmp_path: Path) -> None:
    manifest = make_inputs(tmp_path / "in", n_scans=2, corrupt=True)
    # half the cases ask for a 120 mm nodule in lungs ≈ 10 cm deep: it cannot fit (70 mm can, against
    # the chest wall)
    design_path = write_design(
        tmp_path / "d",
        manifest,
        cases_per_scan=2,
        sample={"diameter_mm": {"choice": [12, 120]}, "n_timepoints": {"integers": [2, 2]}},
        stratify=[{"field": "diameter_mm"}],
    )
    report = run_dataset(load_design(design_path), design_path.parent, tmp_path / "out")
    rows = {r["case_id"]: r for r in _manifest(tmp_path / "out")}
    assert len(rows) == 6
    broken = [r for r in rows.values() if r["scan_id"] == "broken"]
    assert len(broken) == 2
    assert all(r["status"] == "error" and "broken.nii.gz" in r["error"] for r in broken)
    too_big = [r for r in rows.values() if r["scan_id"] != "broken" and float(r["diameter_mm"]) == 120]
    assert len(too_big) == 2
    assert all(r["status"] == "error" and "mm" in r["error"] and "\n" not in r["error"] for r in too_big)
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert len(ok) == report.n_ok == 2 and all(float(r["diameter_mm"]) == 12 for r in ok)
    for r in rows.values():
        if r["status"] == "error":
            assert not (tmp_path / "out" / "cases" / f"{r['case_id']}.zip").exists()
            assert (tmp_path / "out" / "cases" / f"{r['case_id']}.error.json").exists()
    assert "4 errors" in report.summary


def test_cli_plan_and_one_line_errors(
    tmp_path: Path, phantom_inputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    design_path = write_design(tmp_path / "d", phantom_inputs / "scans.csv")
    assert main(["dataset", "plan", str(design_path), "-o", str(tmp_path / "plan"), "-q"]) == 0
    assert len(_manifest_rows(tmp_path / "plan" / "plan.csv")) == 12

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: X\ninputs: {glob: '*.nii.gz'}\nsample: {diameter_mm: {uniform: [9, 3]}}\n")
    capsys.readouterr()
    assert main(["dataset", "run", str(bad), "-o", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "longisynth: error: bad.yaml: sample.diameter_mm.uniform: uniform low 9 must be below high 3"
    )

    assert main(["dataset", "run", str(design_path), "-o", str(tmp_path / "o"), "--format", "nifty"]) == 2
    assert "unknown format 'nifty'" in capsys.readouterr().err

    # a folder with other content, or made by another design, is refused, not mixed
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["dataset", "run", str(design_path), "-o", str(tmp_path / "mine"), "-q"]) == 2
    assert "is not empty and holds no dataset run" in capsys.readouterr().err
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "design.json").write_text(json.dumps({"fingerprint": "0" * 64}))
    assert main(["dataset", "run", str(design_path), "-o", str(tmp_path / "o"), "-q"]) == 2
    assert "holds a run of a different design" in capsys.readouterr().err


def _manifest_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_unreachable_ray_address_fails_fast() -> None:
    import time

    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("this process is already connected to Ray")
    import socket

    from longisynth.dataset.backends import connect_ray
    from longisynth.errors import InvalidInputError

    # a port nobody listens on: bound, then released (port 1 is not guaranteed to be closed)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(InvalidInputError, match=rf"cannot reach Ray at '127\.0\.0\.1:{port}'"):
        connect_ray(f"127.0.0.1:{port}", 2)
    with pytest.raises(InvalidInputError, match="not host:port"):
        connect_ray("nonsense", 2)
    assert time.monotonic() - t0 < 15
