"""Evaluation of a hand-built phantom bundle with known geometry and growth, and of broken inputs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from longisynth.evaluate import evaluate_bundle
from longisynth.evaluate.cli import add_evaluate_command, run_evaluate_command
from tests.evaluate import phantom


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="longisynth")
    add_evaluate_command(parser.add_subparsers(dest="command"))
    return run_evaluate_command(parser.parse_args(["evaluate", *argv]))


def test_phantom_measured_within_5_percent(tmp_path: Path) -> None:
    path = tmp_path / "phantom.zip"
    phantom.write_phantom_bundle(path)
    report = evaluate_bundle(path)
    for row, day in zip(report.timepoints, phantom.DAYS, strict=True):
        assert row["volume_mm3"] == pytest.approx(phantom.expected_volume_mm3(day), rel=0.05)
        assert row["longest_diameter_mm"] == pytest.approx(2 * phantom.radius_mm(day), rel=0.05)
    assert report.growth["vdt_fit_days"] == pytest.approx(phantom.VDT_DAYS, rel=0.05)
    assert abs(report.growth["vdt_rel_error"]) < 0.05
    assert report.passed, report.hard_failures
    ct = report.timepoints[-1]["intensity"]["ct"]["1"]
    assert ct["mean"] == pytest.approx(40.0)
    assert {c.name for c in report.checks} >= {
        "mask_voxels_not_nested",
        "anatomy_max_abs_diff_outside_zone_ct",
    }


def test_phantom_jacobian_of_known_field(tmp_path: Path) -> None:
    path = tmp_path / "phantom.zip"
    phantom.write_phantom_bundle(path, displacement=True)
    report = evaluate_bundle(path)
    jac = report.timepoints[0]["jacobian"]
    # d_x = 0.2 mm on a shell, 0 elsewhere: the determinant is 1 ± 0.2/(2·0.8) at the shell edges.
    assert jac["min"] == pytest.approx(1 - 0.2 / 1.6, abs=1e-4)
    assert jac["median"] == pytest.approx(1.0)
    assert report.passed


@pytest.mark.parametrize(
    ("tamper", "failing"),
    [("shift_mask", "mask_voxels_not_nested"), ("anatomy", "anatomy_max_abs_diff_outside_zone_ct")],
)
def test_tampered_bundle_fails(
    tmp_path: Path, tamper: str, failing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{tamper}.zip"
    phantom.write_phantom_bundle(path, tamper=tamper)
    report = evaluate_bundle(path)
    assert failing in {c.name for c in report.hard_failures}
    out_json = tmp_path / "r.json"
    assert run_cli(str(path), "-o", str(tmp_path / "r.html"), "--json", str(out_json), "-q") == 1
    data = json.loads(out_json.read_text())
    assert data["n_passed"] == 0 and data["bundles"][0]["passed"] is False


def test_corrupt_zip_exit_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "corrupt.zip"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    assert run_cli(str(bad), "-o", str(tmp_path / "r.html"), "-q") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "corrupt.zip" in err and "Traceback" not in err


def test_missing_path_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(str(tmp_path / "nope"), "-o", str(tmp_path / "r.html")) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_folder_report_html_json_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "bundles"
    (folder / "sub").mkdir(parents=True)
    phantom.write_phantom_bundle(folder / "a.zip")
    phantom.write_phantom_bundle(folder / "sub" / "b.zip", displacement=True)
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    assert run_cli(str(folder), "-o", str(html), "--json", str(js), "--max-figures", "1") == 0
    first = js.read_text()
    table = capsys.readouterr().out
    assert "a.zip" in table and "PASS" in table and "VDT fit" in table
    page = html.read_text()
    assert page.count("<details") == 2
    assert page.count("data:image/png;base64,") == 2  # growth + montage for the first bundle only
    data = json.loads(first)
    assert [b["path"].split("/")[-1] for b in data["bundles"]] == ["a.zip", "b.zip"]
    assert run_cli(str(folder), "-o", str(html), "--json", str(js), "-q") == 0
    assert js.read_text() == first


def test_montage_is_not_blank(tmp_path: Path) -> None:
    import base64
    import io

    import matplotlib.image as mpimg

    from longisynth.evaluate.figures import growth_figure, montage_figure

    path = tmp_path / "phantom.zip"
    phantom.write_phantom_bundle(path)
    report = evaluate_bundle(path)
    for png in (montage_figure(report), growth_figure(report)):
        assert png is not None
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(png)))
        assert pixels.shape[0] > 100 and float(np.std(pixels[..., :3])) > 0.05
    # the contour colour (red) is drawn over the grey image
    pixels = mpimg.imread(io.BytesIO(base64.b64decode(montage_figure(report) or "")))
    red = (pixels[..., 0] > 0.8) & (pixels[..., 1] < 0.4) & (pixels[..., 2] < 0.4)
    assert red.sum() > 50
