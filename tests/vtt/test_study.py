"""``vtt build``: blinded study folders from bundles, real lesions and healthy regions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from longisynth.vtt.cli import add_vtt_commands, run_vtt_command
from longisynth.vtt.study import CROP_VOXELS, build_study

from .conftest import VttInputs


def _cli(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="longisynth")
    add_vtt_commands(p.add_subparsers(dest="command", required=True))
    return run_vtt_command(p.parse_args(argv))


def _build(inputs: VttInputs, out: Path, seed: int = 3) -> int:
    return _cli(
        [
            "vtt",
            "build",
            str(out),
            "--synthetic",
            *map(str, inputs.bundles),
            "--real-lesions",
            f"{inputs.real_image}:{inputs.real_mask}",
            "--healthy",
            str(inputs.healthy),
            "--n",
            "3",
            "--seed",
            str(seed),
        ]
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_build_is_blinded_balanced_and_deterministic(vtt_inputs: VttInputs, tmp_path: Path) -> None:
    assert _build(vtt_inputs, tmp_path / "s1") == 0
    assert _build(vtt_inputs, tmp_path / "s2") == 0
    assert _build(vtt_inputs, tmp_path / "s3", seed=4) == 0
    first = _snapshot(tmp_path / "s1")
    assert first == _snapshot(tmp_path / "s2"), "same seed must give byte-identical studies"
    assert first["study.json"] != _snapshot(tmp_path / "s3")["study.json"]

    public = json.loads(first["study.json"])
    key = json.loads(first["key.json"])
    ids = [it["id"] for it in public["items"]]
    assert len(ids) == 6 and len(set(ids)) == 6 and set(ids) == set(key["items"])
    kinds = sorted(v["kind"] for v in key["items"].values())
    assert kinds == ["healthy"] * 3 + ["real_lesion"] + ["synthetic"] * 2
    # Nothing public names the truth or the source.
    text = first["study.json"].decode()
    for word in ("synthetic", "real", "healthy", "truth", ".zip", "nii"):
        assert word not in text.lower()
    for item in public["items"]:
        crop = np.load(tmp_path / "s1" / "items" / f"{item['id']}.npy")
        assert crop.shape == (CROP_VOXELS,) * 3 and crop.dtype == np.int16
        assert item["spacing_mm"] == [1.4, 1.4, 2.0]
        assert item["default_preset"] in [p["name"] for p in item["presets"]]
        truth = key["items"][item["id"]]
        if truth["kind"] == "healthy":  # centred inside the lungs
            assert crop[(CROP_VOXELS // 2,) * 3] < -400 and np.median(crop) < 100
        else:  # a solid nodule (> -300 HU) inside the crop
            assert (crop > -300).sum() > 50
        assert crop.std() > 10


def test_healthy_crops_do_not_overlap(vtt_inputs: VttInputs, tmp_path: Path) -> None:
    build_study(tmp_path / "s", vtt_inputs.bundles[:1], healthy=[vtt_inputs.healthy], n_healthy=4, seed=1)
    key = json.loads((tmp_path / "s" / "key.json").read_text())
    centres = [np.array(v["centre_voxel"]) for v in key["items"].values() if v["kind"] == "healthy"]
    assert len(centres) == 4
    for i in range(4):
        for j in range(i):
            assert np.abs(centres[i] - centres[j]).max() >= CROP_VOXELS


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--real-lesions", "only_one_path"], "expected IMAGE:MASK"),
        (["--healthy", "/nonexistent/scan.nii.gz"], "does not exist"),
        (["--timepoint", "soon"], "--timepoint"),
        (["--n", "2"], "--n needs at least one --healthy"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    vtt_inputs: VttInputs, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["vtt", "build", str(tmp_path / "s"), "--synthetic", str(vtt_inputs.bundles[0]), *extra]
    assert _cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "s" / "study.json").exists()


def test_refuses_existing_study_and_non_bundle(
    vtt_inputs: VttInputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["vtt", "build", str(tmp_path / "s"), "--synthetic", str(vtt_inputs.bundles[0])]
    assert _cli(argv) == 0
    assert _cli(argv) == 2
    assert "already holds a study" in capsys.readouterr().err
    assert _cli(["vtt", "build", str(tmp_path / "t"), "--synthetic", str(vtt_inputs.healthy)]) == 2
    assert "not a longisynth bundle" in capsys.readouterr().err
    assert _cli(["vtt", "analyze", str(tmp_path / "s")]) == 2
    assert "no answers yet" in capsys.readouterr().err
    assert _cli(["vtt", "serve", str(tmp_path / "t")]) == 2
    assert "not a VTT study folder" in capsys.readouterr().err


def test_mri_crops_are_rescaled_and_get_percentile_presets() -> None:
    from longisynth.vtt.study import Volume, healthy_items, presets_for

    rng = np.random.default_rng(0)
    grid = np.indices((96, 96, 96)).astype(np.float32)
    head = ((grid - 48) ** 2).sum(0) < 40**2
    data = np.where(head, 300 + 50 * rng.standard_normal((96,) * 3), 0).astype(np.float32)
    vol = Volume(data, (1.0, 1.0, 1.0), "mri", "head.nii.gz")
    (item,) = healthy_items(vol, 1, rng)
    centre = item.detail["centre_voxel"]
    assert head[tuple(centre)] and item.crop.dtype == np.int16
    # Foreground p0.5..p99.5 of the scan maps to 0..1000: the head's mean (300) lands near 500.
    assert 400 < np.median(item.crop[item.crop > 0]) < 600 and item.crop.min() >= 0
    presets, default = presets_for(item.crop, "mri")
    assert default == "Brain (p1-p99)" == presets[0]["name"]
    assert 200 < presets[0]["window"] < 1000 and 400 < presets[0]["level"] < 600
