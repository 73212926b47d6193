"""The learned boundary refiner: training + export on a tiny config, ONNX parity, the band-only
guarantee, determinism, batch invariance, temporal noise sharing and graceful fallback.

Real data: TotalSegmentator chest CT crop (Apache-2.0) and the niivue skull-stripped T1c brain
(see ../shared/data/README.md).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import longisynth
from longisynth.demo import demo_input
from longisynth.refine import RefineSettings, refine_crops
from longisynth.refine.model import DEFAULT_MODEL, MODEL_ENV, OnnxRefiner, load_refiner
from longisynth.refine.patches import CT_INTENSITY, TILE, Intensity, band_of, tile_starts
from longisynth.refine.schedule import ddim_timesteps
from tests.conftest import shared_file

pytestmark = pytest.mark.refiner
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped() -> OnnxRefiner:
    model, reason = load_refiner(DEFAULT_MODEL)
    assert model is not None, f"the shipped refiner must load: {reason}"
    return model


def _ball(shape: tuple[int, int, int], center: tuple[float, float, float], r: float) -> np.ndarray:
    g = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return sum((a - c) ** 2 for a, c in zip(g, center, strict=True)) <= r**2


def _run_model_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.mark.xdist_group("train")
def test_train_and_export_tiny_config(tmp_path: Path) -> None:
    """The real scripts, end to end, on a config that takes seconds; the export checks parity."""
    for args in (
        ("models/train_refiner.py", "--tiny", "--out", str(tmp_path)),
        ("models/export_onnx.py", "--src", str(tmp_path), "--out", str(tmp_path)),
    ):
        done = _run_model_script(*args)
        assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((tmp_path / "refiner.json").read_text())
    assert max(card["parity_max_abs_diff"].values()) < 1e-3
    assert card["training"]["config"]["steps"] == 4 and card["memorisation"]["examples"] > 0
    model, reason = load_refiner(tmp_path / "refiner.onnx")
    assert model is not None, reason
    x = np.random.default_rng(0).standard_normal((5, 4, TILE, TILE, TILE)).astype(np.float32)
    assert model(x, np.arange(5, dtype=np.int64)).shape == (5, 1, TILE, TILE, TILE)


@pytest.mark.xdist_group("train")
def test_training_on_user_scans_enters_the_memorisation_check(tmp_path: Path) -> None:
    """``--data`` scans join the patch pool, and the export's memorisation check compares generated
    bands with them too; the card's command names them. A DICOM series thinner than a tile (20
    slices < 24) is read but yields no tiles, which the trainer says."""
    ct = shared_file("totalseg_example_ct_sm.nii.gz")
    dicom = shared_file("totalseg_ct_dicom")
    phantom_only = tmp_path / "phantom"
    with_data = tmp_path / "data"
    assert _run_model_script("models/train_refiner.py", "--tiny", "--out", str(phantom_only)).returncode == 0
    done = _run_model_script(
        "models/train_refiner.py", "--tiny", "--out", str(with_data), "--data", str(ct), "--data", str(dicom)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((with_data / "refiner_train.json").read_text())
    assert ct.name in record["patches_per_source"] and dicom.name not in record["patches_per_source"]
    assert f"{dicom.name}: no {TILE}^3 tile fits" in done.stderr
    for folder in (phantom_only, with_data):
        done = _run_model_script("models/export_onnx.py", "--src", str(folder), "--out", str(folder))
        assert done.returncode == 0, done.stderr[-2000:]
    plain = json.loads((phantom_only / "refiner.json").read_text())
    card = json.loads((with_data / "refiner.json").read_text())
    extra = record["patches_per_source"][ct.name]
    assert card["memorisation"]["training_tiles"] == plain["memorisation"]["training_tiles"] + extra
    assert f"--data {ct}" in card["command"] and f"--data {dicom}" in card["command"]
    missing = _run_model_script("models/train_refiner.py", "--tiny", "--data", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_shipped_model_card_matches_file(shipped: OnnxRefiner) -> None:
    card = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    assert shipped.sha256 == card["sha256"] and DEFAULT_MODEL.stat().st_size < 8 << 20
    assert max(card["parity_max_abs_diff"].values()) < 1e-3
    memo = card["memorisation"]
    assert memo["examples"] >= 20 and memo["ratio_generated_to_real"] > 0.5


def test_batch_results_equal_per_item_results(shipped: OnnxRefiner) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4, TILE, TILE, TILE)).astype(np.float32)
    t = rng.integers(0, 300, 6).astype(np.int64)
    together = shipped(x, t)
    alone = np.concatenate([shipped(x[i : i + 1], t[i : i + 1]) for i in range(6)])
    assert np.array_equal(together, alone)


def _phantom_items() -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(3)
    shape = (40, 44, 36)
    images, lesions = [], []
    for r in (5.0, 7.0, 9.0):
        lesion = _ball(shape, (20, 22, 18), r)
        img = (-850 + 25 * rng.standard_normal(shape)).astype(np.float32)
        img[lesion] = 30 + 25 * rng.standard_normal(int(lesion.sum()))
        images.append(img)
        lesions.append(lesion)
    return images, lesions


def test_sampler_touches_only_the_band_and_is_batch_invariant(shipped: OnnxRefiner) -> None:
    images, lesions = _phantom_items()
    its = [CT_INTENSITY] * 3
    one, sizes = refine_crops(images, lesions, its, [0, 0, 0], shipped, 5, RefineSettings(max_batch=1))
    many, _ = refine_crops(images, lesions, its, [0, 0, 0], shipped, 5, RefineSettings(max_batch=64))
    for img, les, a, b, n in zip(images, lesions, one, many, sizes, strict=True):
        band = band_of(les)
        assert n == int(band.sum()) > 0
        assert np.array_equal(a, b)  # the same bytes whatever the batch composition
        assert np.array_equal(a[~band], img[~band])  # outside the band: untouched
        assert np.mean(a[band] != img[band]) > 0.9  # inside: re-synthesised
        assert np.all(np.isfinite(a)) and -1100 < a[band].mean() < 200


def test_items_of_one_noise_group_share_noise(shipped: OnnxRefiner) -> None:
    images, lesions = _phantom_items()
    same, _ = refine_crops([images[0]] * 2, [lesions[0]] * 2, [CT_INTENSITY] * 2, [0, 0], shipped, 9)
    other, _ = refine_crops([images[0]] * 2, [lesions[0]] * 2, [CT_INTENSITY] * 2, [0, 1], shipped, 9)
    assert np.array_equal(same[0], same[1])  # same input + same noise ⇒ same texture over time
    assert not np.array_equal(other[0], other[1])


def test_tiles_and_schedule() -> None:
    assert tile_starts(0, 10, 50) == [0] and tile_starts(30, 50, 50) == [26]
    starts = tile_starts(0, 60, 60)
    assert (
        starts[0] == 0 and starts[-1] == 60 - TILE and all(b - a <= 18 for a, b in itertools.pairwise(starts))
    )
    ts = ddim_timesteps(0.3, 4)
    assert ts == sorted(ts, reverse=True) and ts[0] == 300 and len(ts) == 4
    with pytest.raises(ValueError):
        ddim_timesteps(0.0, 4)
    assert Intensity(10.0, 2.0).backward(Intensity(10.0, 2.0).forward(np.array([14.0])))[0] == 14.0


def _lung_demo(refine: bool | None, **kw):  # type: ignore[no-untyped-def]
    d = demo_input("lung")
    return longisynth.generate(d.scans, d.prompt, seed=3, refine=refine, **kw)


def test_demo_refined_only_in_band_and_deterministic(tmp_path: Path) -> None:
    plain, refined, again = _lung_demo(False), _lung_demo(True), _lung_demo(True)
    meta = refined.extra["refiner"]
    assert meta["status"] == "applied" and meta["provider"] == "CPUExecutionProvider"
    assert len(meta["sha256"]) == 64 and meta["memorisation"]["examples"] > 0
    for a, b in zip(plain.timepoints, refined.timepoints, strict=True):
        band = band_of(a.mask > 0)
        diff = a.crops["ct"] != b.crops["ct"]
        assert not np.any(diff & ~band) and diff.sum() > 0.5 * band.sum()
        assert np.array_equal(a.mask, b.mask)
    first = _members(longisynth.write_bundle(refined, tmp_path / "a.zip"))
    second = _members(longisynth.write_bundle(again, tmp_path / "b.zip"))
    images = [n for n in first if n.endswith(".nii.gz")]
    assert len(images) == 12 and all(first[n] == second[n] for n in images)  # identical image bytes


def _members(path: Path) -> dict[str, bytes]:
    """Bundle members (metadata.json differs only in its wall-time ``timings_s``)."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_real_ct_refined_keeps_grid_and_band(tmp_path: Path) -> None:
    path = shared_file("totalseg_chest_ct_crop.nii.gz")
    scan = longisynth.read_scan(path)
    prompt = "solid nodule 12 mm in the right lung, scans at 0, 6 and 12 months"
    plain = longisynth.generate(scan, prompt, seed=2, refine=False)
    refined = longisynth.generate(scan, prompt, seed=2)
    assert refined.extra["refiner"]["status"] == "applied"
    for a, b in zip(plain.timepoints, refined.timepoints, strict=True):
        band = band_of(a.mask > 0)
        assert not np.any((a.crops["ct"] != b.crops["ct"]) & ~band)
    out = longisynth.write_bundle(refined, tmp_path / "ct.zip")
    import zipfile

    with zipfile.ZipFile(out) as zf:
        zf.extract("timepoint_02/ct.nii.gz", tmp_path)
        zf.extract("timepoint_02/mask.nii.gz", tmp_path)
    img = nib.load(tmp_path / "timepoint_02/ct.nii.gz")
    mask = nib.load(tmp_path / "timepoint_02/mask.nii.gz")
    source = nib.load(path)
    assert np.allclose(img.affine, source.affine) and np.allclose(mask.affine, source.affine)
    assert img.shape == source.shape and img.get_data_dtype() == source.get_data_dtype()
    assert nib.aff2axcodes(img.affine) == nib.aff2axcodes(source.affine)


def test_real_mr_glioma_refined_in_band_only() -> None:
    scan = longisynth.read_scan(shared_file("niivue_mr_gd_skullstripped.nii.gz"))
    prompt = "low-grade glioma in the right frontal lobe, 15 mm, 2 timepoints over 1 year"
    plain = longisynth.generate(scan, prompt, seed=1, contrast="t1c", refine=False)
    refined = longisynth.generate(scan, prompt, seed=1, contrast="t1c")
    assert refined.extra["refiner"]["status"] == "applied"
    for a, b in zip(plain.timepoints, refined.timepoints, strict=True):
        band = band_of(a.mask > 0)
        diff = a.crops["t1c"] != b.crops["t1c"]
        assert not np.any(diff & ~band) and diff.sum() > 0


def test_missing_model_falls_back_with_a_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "nowhere.onnx"))
    study = _lung_demo(True)
    meta = study.extra["refiner"]
    assert meta["status"] == "unavailable" and "not found" in meta["reason"]
    assert any("refiner not used" in n for n in study.notes)
    plain = _lung_demo(False)
    assert all(
        np.array_equal(a.crops["ct"], b.crops["ct"])
        for a, b in zip(plain.timepoints, study.timepoints, strict=True)
    )


def test_corrupt_model_falls_back_with_a_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shutil.copy(DEFAULT_MODEL.with_suffix(".json"), tmp_path / "refiner.json")
    data = bytearray(DEFAULT_MODEL.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "refiner.onnx").write_bytes(bytes(data))
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "refiner.onnx"))
    meta = _lung_demo(True).extra["refiner"]
    assert meta["status"] == "unavailable" and "sha256" in meta["reason"]
    # a file whose card matches but that is not a model at all
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf")
    import hashlib

    card = {"sha256": hashlib.sha256(b"not a protobuf").hexdigest()}
    junk.with_suffix(".json").write_text(json.dumps(card))
    model, reason = load_refiner(junk)
    assert model is None and reason.startswith("refiner model could not be loaded")


def test_switched_off_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_ENV, "off")
    meta = _lung_demo(True).extra["refiner"]
    assert meta["status"] == "unavailable" and "off" in meta["reason"]
    assert _lung_demo(False).extra["refiner"] == {"status": "disabled", "reason": "refine=False"}


def test_off_by_default_and_on_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18: a request that says nothing gets no refiner (metadata says why); refine=True or a
    model named in LONGISYNTH_REFINER turns it on."""
    monkeypatch.delenv(MODEL_ENV, raising=False)
    meta = _lung_demo(None).extra["refiner"]
    assert meta["status"] == "disabled" and "off by default" in meta["reason"]
    assert "models/README.md" in meta["reason"] and MODEL_ENV in meta["reason"]
    from longisynth.refine.hand_off import refine_context
    from longisynth.refine.model import DEFAULT_MODEL

    assert refine_context(True, None, None).status.status == "applied"  # the shipped model
    monkeypatch.setenv(MODEL_ENV, str(DEFAULT_MODEL))
    assert refine_context(None, None, None).status.status == "applied"


def test_noise_follows_the_growth_of_the_lesion() -> None:
    """Temporal consistency along the growth field: the item with the largest lesion owns its
    group's noise; a lesion half its radius reads the same field at c + 2(x − c), so the value at
    a given relative depth is the same at both scans, and the noise is still white N(0, 1)."""
    from longisynth.refine.sampler import _growth_alignment, follow_growth

    shape = (41, 41, 41)
    small, large = _ball(shape, (20, 20, 20), 5.0), _ball(shape, (20, 20, 20), 10.0)
    aligned = _growth_alignment([small.astype(np.float32), large.astype(np.float32)], [0, 0])
    center, factor = aligned[0]
    assert aligned[1][1] == 1.0 and np.allclose(center, 20.0)
    assert factor == pytest.approx(np.cbrt(large.sum() / small.sum()))
    field = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    warped = follow_growth(field, center, factor)
    assert follow_growth(field, center, 1.0) is field
    for point in [(23, 20, 20), (20, 17, 22), (18, 21, 19)]:
        src = tuple(int(np.rint(20 + (p - 20) * factor)) for p in point)
        assert warped[point] == field[src]
    # distinct voxels read distinct voxels inside the reach of the reference: still white noise
    inner = warped[14:27, 14:27, 14:27]
    assert len(np.unique(inner)) == inner.size
    assert abs(float(warped.std()) - 1.0) < 0.05
