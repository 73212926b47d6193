"""The lesion library: build, round trip, transplant, provenance, determinism and bad input.

Fixture lesions are written by the tests (a solid nodule in lung-density CT, as image/mask pairs);
the real LIDC-IDRI crops and BraTS 2018 cases of ``../shared/data`` are used where present (cite:
Armato et al., Med Phys 2011; Menze et al., IEEE TMI 2015; Bakas et al., Sci Data 2017).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial import cKDTree

from longisynth import api
from longisynth.errors import InvalidInputError
from longisynth.library import Library, build_library
from longisynth.library.format import INDEX, content_hash

PROMPT = "solid nodule in the right lung, scans at 0, 6 and 12 months"


def _write_pair(folder: Path, name: str, radius_mm: float, seed: int) -> None:
    """A lung-density crop (≈ −850 HU, noise 20 HU) holding an ovoid solid nodule (+30 HU), LPS 0.7 mm."""
    rng = np.random.default_rng(seed)
    shape = (40, 40, 16)
    spacing = (0.7, 0.7, 1.25)
    grid = np.stack(
        np.meshgrid(
            *[(np.arange(n) - n / 2 + 0.5) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"
        )
    )
    r = np.sqrt((grid[0] / 1.3) ** 2 + grid[1] ** 2 + grid[2] ** 2)
    mask = (r <= radius_mm).astype(np.uint8)
    hu = np.where(mask > 0, 30.0, -850.0) + rng.normal(0, 20, shape)
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = (10.0, 20.0, -100.0)
    for sub, data, dtype in (("images", hu, np.int16), ("masks", mask, np.uint8)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.asarray(data).astype(dtype), affine), folder / sub / f"{name}.nii.gz")


@pytest.fixture(scope="module")
def ct_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("lesions")
    for i, radius in enumerate((3.0, 4.0, 5.0)):
        _write_pair(src, f"case{i}", radius, i)
    out = tmp_path_factory.mktemp("lib") / "library"
    build_library(src, out, licence="CC0 (test fixture)")
    return out


@pytest.fixture(scope="module")
def thorax() -> api.DemoInput:
    return api.demo_input("lung")


def test_library_round_trip(ct_library: Path, tmp_path: Path) -> None:
    lib = Library.open(ct_library)
    assert lib.manifest.modality == "ct" and lib.manifest.n_lesions == 3
    sizes = sorted(e.size_mm for e in lib.entries)
    # clinical size of the ovoids: mean of 2·1.3·r and 2·r on the axial slice, ± a voxel
    for got, r in zip(sizes, (3.0, 4.0, 5.0), strict=True):
        assert abs(got - 2.3 * r) < 1.0
    for e in lib.entries:
        lesion = lib.load(e)
        assert e.licence == "CC0 (test fixture)" and e.kind == "solid" and e.contrasts == ["ct"]
        assert e.id == e.sha256[:16] and "case" not in e.id
        assert set(np.unique(lesion.labels)) == {0, 1}
        assert abs(float((lesion.labels > 0).sum()) * 0.7 * 0.7 * 1.25 - e.volume_mm3) < 1e-3
        assert -870 < e.reference["lung_hu"] < -830
    # an index line per lesion, as JSON that the model accepts
    lines = (ct_library / INDEX).read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(x)["family"] == "lung_nodule" for x in lines)


def test_build_keeps_source_values_and_hash(tmp_path: Path) -> None:
    _write_pair(tmp_path / "src", "only", 4.0, 7)
    build_library(tmp_path / "src", tmp_path / "lib")
    lib = Library.open(tmp_path / "lib")
    (entry,) = lib.entries
    lesion = lib.load(entry)
    src = np.asarray(nib.load(tmp_path / "src" / "images" / "only.nii.gz").dataobj)
    assert np.array_equal(lesion.images["ct"], src.astype(np.float32))
    arrays = {"labels": lesion.labels, "affine": lesion.affine, "img_ct": lesion.images["ct"]}
    assert content_hash(arrays) == entry.sha256
    with pytest.raises(InvalidInputError, match="already holds a library"):
        build_library(tmp_path / "src", tmp_path / "lib")


def test_real_lidc_subset_builds_with_reader_scores(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "lidc_nodules"
    if not src.is_dir():
        pytest.skip("lidc_nodules absent")
    sub = tmp_path / "lidc"
    (sub / "image").mkdir(parents=True)
    (sub / "mask").mkdir()
    with (src / "nodules.csv").open() as f:
        rows = list(csv.DictReader(f))[:6]
    with (sub / "nodules.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        name = f"{r['patient_id']}_R_{r['nodule_id']}.nii.gz"
        for d in ("image", "mask"):
            (sub / d / name).symlink_to(src / d / name)
    build_library(sub, tmp_path / "lib")
    lib = Library.open(tmp_path / "lib")
    assert lib.manifest.sources == ["lidc"] and 1 <= len(lib.entries) <= 6
    for e in lib.entries:
        assert e.licence.startswith("CC BY 3.0")
        assert 1 <= e.attributes["texture"] <= 5 and 1 <= e.attributes["spiculation"] <= 5
        assert e.source_case.startswith("LIDC-IDRI-")
        # reader's diameter vs ours, same nodule: within a factor of 2
        assert 0.5 < e.size_mm / max(e.attributes["reader_diameter_mm"], 1e-3) < 2.0


def _baseline_points(study: api.Study) -> np.ndarray:
    tp = study.timepoints[0]
    idx = np.argwhere(tp.mask > 0) + np.asarray(study.box.start)
    return study.geometry.voxel_to_world(idx.astype(np.float64))


def test_transplant_baseline_is_the_source_mask(ct_library: Path, thorax: api.DemoInput) -> None:
    isolated = {"location": {"attachment": "isolated"}}  # nothing clips it
    study = api.generate(thorax.scans, PROMPT, isolated, library=ct_library, seed=3)
    lib = Library.open(ct_library)
    lesion = lib.load(lib.get(study.spec.library_lesion_id or ""))
    # The source mask's voxel centres, moved so that its centroid sits at the placed centre.
    src_idx = np.argwhere(lesion.labels > 0).astype(np.float64)
    src_world = src_idx @ lesion.affine[:3, :3].T + lesion.affine[:3, 3]
    src_world += np.asarray(study.extra["lesion_center_mm"]) - src_world.mean(axis=0)
    host = _baseline_points(study)
    tol = float(np.linalg.norm(study.geometry.spacing_mm))  # one host voxel (diagonal)
    assert cKDTree(src_world).query(host)[0].max() <= tol
    assert cKDTree(host).query(src_world)[0].max() <= tol
    # and the baseline is the library lesion's size, the law growing it from there
    assert study.spec.baseline_diameter_mm == lesion.entry.size_mm
    vols = [tp.simulated_volume_mm3 for tp in study.timepoints]
    assert vols[0] < vols[1] < vols[2]


def test_transplant_leaves_host_outside_influence_untouched(ct_library: Path, thorax: api.DemoInput) -> None:
    scan = thorax.scans["ct"]
    study = api.generate(thorax.scans, PROMPT, library=ct_library, seed=4)
    center = scan.geometry.world_to_voxel(np.asarray(study.extra["lesion_center_mm"]))
    grid = np.indices(scan.geometry.shape, sparse=True)
    r2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, center, scan.geometry.spacing_mm, strict=True))
    far = r2 > study.extra["influence_radius_mm"] ** 2
    for i in range(len(study.timepoints)):
        out = study.image(i, "ct")
        assert np.array_equal(out[far], scan.raw[far])
        assert not np.array_equal(out, scan.raw)  # the lesion is there


def _nii_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n.endswith(".nii.gz")}


def test_transplant_metadata_and_determinism(ct_library: Path, thorax: api.DemoInput, tmp_path: Path) -> None:
    a = api.generate(thorax.scans, PROMPT, library=ct_library, seed=5)
    b = api.generate(thorax.scans, PROMPT, library=ct_library, seed=5)
    api.write_bundle(a, tmp_path / "a.zip", preview=False)
    api.write_bundle(b, tmp_path / "b.zip", preview=False)
    assert _nii_members(tmp_path / "a.zip") == _nii_members(tmp_path / "b.zip")
    meta = api.read_metadata(tmp_path / "a.zip")
    assert meta["contains_real_lesion"] is True
    src = meta["simulation"]["source_lesion"]
    assert src["id"] == meta["spec"]["library_lesion_id"] and len(src["sha256"]) == 64
    assert src["licence"] == "CC0 (test fixture)" and meta["spec"]["source"] == "library"
    assert "case" not in json.dumps(meta)  # the source's case names never reach a bundle
    assert meta["simulation"]["refiner"]["status"] == "disabled"
    # the memorisation report: a distance per timepoint to the source and to the nearest library lesion
    memo = meta["simulation"]["transplant"]["memorisation"]
    ids = {e.id for e in Library.open(ct_library).entries}
    assert len(memo["distance_to_source"]) == 3 and all(d >= 0 for d in memo["distance_to_source"])
    assert all(h["id"] in ids and h["distance"] >= 0 for h in memo["nearest_library_lesion"])
    assert memo["library_nearest_other_median"] > 0 and memo["units"] == "HU"
    # across processes: the CLI writes the same voxels
    cmd = [
        sys.executable,
        "-m",
        "longisynth.cli",
        "demo",
        "--prompt",
        PROMPT,
        "--seed",
        "5",
        "--library",
        str(ct_library),
        "-o",
        str(tmp_path / "c.zip"),
        "-q",
        "--no-preview",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    assert _nii_members(tmp_path / "c.zip") == _nii_members(tmp_path / "a.zip")
    # rule-based lesions stay available beside a library
    rules = api.generate(thorax.scans, PROMPT, {"source": "rules"}, library=ct_library, seed=5)
    assert "source_lesion" not in rules.extra


def test_choice_follows_kind_size_and_id(ct_library: Path, thorax: api.DemoInput) -> None:
    lib = Library.open(ct_library)
    largest = max(lib.entries, key=lambda e: e.size_mm)
    spec = api.resolve(thorax.scans, PROMPT, {"baseline_diameter_mm": largest.size_mm})
    assert spec.source is not None and spec.source.value == "rules"  # resolve alone knows no library
    study = api.generate(thorax.scans, PROMPT, {"library_lesion_id": largest.id[:8]}, library=lib, seed=1)
    assert study.spec.library_lesion_id == largest.id
    with pytest.raises(InvalidInputError, match="no ground_glass lesion"):
        api.generate(thorax.scans, "ground-glass nodule", library=lib)
    with pytest.raises(InvalidInputError, match="needs a lesion library"):
        api.generate(thorax.scans, PROMPT, {"source": "library"})
    pleural = api.generate(
        thorax.scans, "juxtapleural solid nodule, scans at 0 and 6 months", library=lib, seed=1
    )
    assert pleural.extra["attachment"] == {"type": "juxtapleural", "drawn": False}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "longisynth.cli", *args], capture_output=True, text=True)


def test_wrong_modality_and_corrupt_entry_exit_2(ct_library: Path, tmp_path: Path) -> None:
    brain = tmp_path / "brain.nii.gz"
    demo = api.demo_input("glioma")
    nib.save(nib.Nifti1Image(demo.scans["t1"].raw, demo.scans["t1"].geometry.affine), brain)
    run = _cli("generate", str(brain), "--library", str(ct_library), "-o", str(tmp_path / "x.zip"), "-q")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "longisynth: error: the lesion library holds lung_nodule lesions (CT); the input is MR"
    ]
    assert not (tmp_path / "x.zip").exists()
    # a patch altered after the build: its content hash no longer matches
    broken = tmp_path / "broken"
    shutil.copytree(ct_library, broken)
    lib = Library.open(broken)
    target = broken / lib.entries[0].file
    with np.load(target) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["img_ct"] = arrays["img_ct"] + 1.0
    np.savez_compressed(target, **arrays)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"library_lesion_id": lib.entries[0].id}))
    run = _cli("demo", "--spec", str(spec), "--library", str(broken), "-o", str(tmp_path / "y.zip"), "-q")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "does not match its content hash" in run.stderr
    target.write_bytes(b"not a zip")
    run = _cli("demo", "--spec", str(spec), "--library", str(broken), "-o", str(tmp_path / "y.zip"), "-q")
    assert run.returncode == 2 and "unreadable" in run.stderr and "Traceback" not in run.stderr
    # a folder that is not a library, and a build source that is no layout
    run = _cli("demo", "--library", str(tmp_path), "-o", str(tmp_path / "y.zip"), "-q")
    assert run.returncode == 2 and "is not a lesion library" in run.stderr
    run = _cli("library", "build", str(tmp_path / "broken" / "lesions"), "-o", str(tmp_path / "new"), "-q")
    assert run.returncode == 2 and "matches no lesion layout" in run.stderr
    assert not (tmp_path / "new").exists()


def test_library_cli_build_list_show(tmp_path: Path) -> None:
    _write_pair(tmp_path / "src", "a", 4.0, 1)
    run = _cli(
        "library", "build", str(tmp_path / "src"), "-o", str(tmp_path / "lib"), "--licence", "CC0", "-q"
    )
    assert run.returncode == 0, run.stderr
    listed = _cli("library", "list", str(tmp_path / "lib"))
    assert listed.returncode == 0 and "solid" in listed.stdout and "CC0" in listed.stdout
    entry_id = Library.open(tmp_path / "lib").entries[0].id
    shown = _cli("library", "show", str(tmp_path / "lib"), entry_id[:6])
    assert json.loads(shown.stdout)["id"] == entry_id


def test_real_glioma_transplant_stays_in_its_hemisphere(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "brats2018"
    if not src.is_dir():
        pytest.skip("brats2018 absent")
    sub = tmp_path / "brats"
    sub.mkdir()
    case = "Brats18_CBICA_ABM_1"  # the smallest whole tumour of the shared cases
    (sub / case).symlink_to(src / case)
    build_library(sub, tmp_path / "lib")
    demo = api.demo_input("glioma")
    study = api.generate(
        demo.scans,
        "glioma in the left hemisphere, scans at 0 and 3 months",
        library=tmp_path / "lib",
        brain_tissues=demo.brain_tissues,
        seed=2,
    )
    checks = {c.name: c for c in study.checks}
    assert checks["fraction_across_midline"].value == 0.0
    assert checks["lesion_on_requested_side"].passed
    entry = Library.open(tmp_path / "lib").entries[0]
    # most of the real tumour fits the host brain, and it grows from there
    assert study.timepoints[0].lesion_volume_mm3 > 0.8 * entry.volume_mm3
    assert study.timepoints[1].lesion_volume_mm3 >= study.timepoints[0].lesion_volume_mm3
    assert set(np.unique(study.timepoints[0].mask)) == {0, 1, 2, 3}
    # it grows along its reaction-diffusion front: by different amounts in different directions
    transplant = study.extra["transplant"]
    assert transplant["growth_warp"].startswith("reaction-diffusion")
    low, high = transplant["stretch_per_direction_range"][1]
    assert low >= 1.0 and high > 1.05 * low


def test_radial_stretch_with_one_factor_is_a_uniform_scaling(ct_library: Path) -> None:
    """A Radial whose factor is the same in every direction resamples a lesion exactly as the
    uniform scale does; ray_extent measures a ball's radius in every direction."""
    from longisynth.geometry import Geometry
    from longisynth.library.transplant import N_PHI, N_THETA, Radial, ray_extent, sample_lesion

    lesion = Library.open(ct_library).load(Library.open(ct_library).entries[-1])
    crop = Geometry(np.diag([0.6, 0.6, 0.9, 1.0]), (60, 60, 40))
    center = np.array([30.0, 29.5, 20.0])
    plain = sample_lesion(lesion, crop, center, 1.7, ["ct"])
    radial = sample_lesion(lesion, crop, center, 1.0, ["ct"], 0.0, Radial(np.full((N_THETA, N_PHI), 1.7)))
    assert plain is not None and radial is not None and plain.box == radial.box
    assert np.mean(plain.labels != radial.labels) < 1e-3
    assert np.allclose(plain.occupancy, radial.occupancy, atol=1e-4)
    assert np.allclose(plain.images["ct"], radial.images["ct"], atol=1e-2, equal_nan=True)
    g = np.indices(crop.shape).astype(np.float64)
    r = np.sqrt(sum(((g[k] - center[k]) * crop.spacing_mm[k]) ** 2 for k in range(3)))
    extent = ray_extent(r <= 8.0, center, crop.spacing_mm)
    assert extent.shape == (N_THETA, N_PHI) and np.all(np.abs(extent - 8.0) <= 0.6)


def test_memorisation_descriptor_sees_a_copy_across_grids() -> None:
    """A lesion and its copy on a 2x coarser grid are far closer than two different real-like
    lesions of the same size (a lobulated vs a round one, different textures)."""
    from longisynth.library.memorisation import descriptor, distance

    rng = np.random.default_rng(0)
    fine = np.diag([0.5, 0.5, 0.5, 1.0])
    x = np.stack(np.meshgrid(*[np.arange(48) * 0.5 - 12.0] * 3, indexing="ij"))
    r = np.sqrt((x**2).sum(axis=0))
    lobes = r + 2.0 * np.cos(3 * np.arctan2(x[1], x[0]))
    texture = ndimage_smooth(rng.normal(0, 80, r.shape), 2.0)
    a_mask, b_mask = r < 8.0, lobes < 8.0
    a = {"ct": np.where(a_mask, 20.0 + texture, -850.0).astype(np.float32)}
    b = {"ct": np.where(b_mask, -40.0 + texture[::-1], -850.0).astype(np.float32)}
    coarse = np.diag([1.0, 1.0, 1.0, 1.0])
    a2 = {"ct": a["ct"][::2, ::2, ::2]}
    da = descriptor(a, a_mask, fine, ["ct"])
    d_copy = distance(da, descriptor(a2, a_mask[::2, ::2, ::2], coarse, ["ct"]))
    d_other = distance(da, descriptor(b, b_mask, fine, ["ct"]))
    assert d_copy < 0.5 * d_other


def ndimage_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(values, sigma)


def _user_ovoid(thorax: api.DemoInput) -> np.ndarray:
    """An ovoid (semi-axes 5 × 3.5 × 3.5 mm) where the engine would place a nodule: a user's mask."""
    scan = thorax.scans["ct"]
    placed = api.generate(thorax.scans, PROMPT, {"source": "rules"}, seed=2)
    center = scan.geometry.world_to_voxel(np.asarray(placed.extra["lesion_center_mm"]))
    grid = np.indices(scan.geometry.shape).astype(np.float64)
    sp = scan.geometry.spacing_mm
    r = np.sqrt(
        sum(((g - c) * s / a) ** 2 for g, c, s, a in zip(grid, center, sp, (5.0, 3.5, 3.5), strict=True))
    )
    return (r <= 1.0).astype(np.uint8)


def test_user_mask_is_the_baseline_and_grows(ct_library: Path, thorax: api.DemoInput) -> None:
    """A mask drawn by the user (an ovoid where the engine would place a nodule) is the baseline
    lesion exactly, at its own place; the law grows it; the texture is a library lesion's."""
    scan = thorax.scans["ct"]
    mask = _user_ovoid(thorax)
    study = api.generate(thorax.scans, PROMPT, library=ct_library, lesion_mask=mask, seed=2)
    base = np.zeros(scan.geometry.shape, dtype=bool)
    base[study.box.slices] = study.timepoints[0].mask > 0
    assert np.array_equal(base, mask > 0)
    vols = [tp.lesion_volume_mm3 for tp in study.timepoints]
    assert vols[0] < vols[1] < vols[2]
    assert study.extra["transplant"]["baseline_mask"].startswith("given by the user")
    assert np.allclose(
        study.spec.location.point_mm, scan.geometry.voxel_to_world(np.argwhere(mask).mean(axis=0))
    )
    assert "source_lesion" in study.extra  # a real texture: its provenance is recorded
    with pytest.raises(InvalidInputError, match="empty"):
        api.generate(thorax.scans, PROMPT, library=ct_library, lesion_mask=np.zeros_like(mask))


def test_user_mask_with_rule_based_texture_grows_and_holds_no_patient_data(
    thorax: api.DemoInput, tmp_path: Path
) -> None:
    """Without a library, a user's mask takes a rule-based texture rendered on the scan itself: the
    mask is the baseline exactly, the law grows it, nothing in the bundle claims a real lesion, and
    the same request gives the same bytes."""
    from longisynth.bundle import write_bundle

    scan = thorax.scans["ct"]
    mask = _user_ovoid(thorax)
    study = api.generate(
        thorax.scans,
        PROMPT.replace("solid", "part-solid", 1) + ", doubling time 120 days",
        lesion_mask=mask,
        seed=2,
    )
    base = np.zeros(scan.geometry.shape, dtype=bool)
    base[study.box.slices] = study.timepoints[0].mask > 0
    assert np.array_equal(base, mask > 0)
    vols = [tp.lesion_volume_mm3 for tp in study.timepoints]
    assert vols[0] < vols[1] < vols[2]
    assert "rule-based" in study.extra["transplant"]["baseline_mask"]
    assert "source_lesion" not in study.extra and study.spec.source == "rules"
    assert "library" not in study.extra["refiner"].get("reason", "")  # no real texture to keep
    assert study.spec.nodule_type == "part_solid"
    crop, lesion = study.timepoints[0].crops["ct"], study.timepoints[0].mask
    lung = float(np.median(crop[(lesion == 0) & (crop < -500)]))
    assert float(np.median(crop[lesion > 0])) > lung + 80  # ground glass at least, not lung or a blank
    assert (lesion == 1).any() and (lesion == 2).any()  # part-solid: solid and ground-glass labels
    a = write_bundle(study, tmp_path / "a.zip", preview=False, record_timings=False)
    again = api.generate(
        thorax.scans,
        PROMPT.replace("solid", "part-solid", 1) + ", doubling time 120 days",
        lesion_mask=mask,
        seed=2,
    )
    b = write_bundle(again, tmp_path / "b.zip", preview=False, record_timings=False)
    assert a.read_bytes() == b.read_bytes()
    assert api.read_metadata(a)["contains_real_lesion"] is False


def test_a_reader_leaving_early_is_not_an_error() -> None:
    """``longisynth library list LIB | head -1``: when the reader closes the pipe, the command ends
    quietly with exit 0 instead of an internal error."""
    code = subprocess.run(
        [
            sys.executable,
            "-c",
            "from longisynth.cli.errors import guarded\n"
            "def run():\n    raise BrokenPipeError(32, 'Broken pipe')\n"
            "raise SystemExit(guarded(run))",
        ],
        capture_output=True,
        text=True,
    )
    assert code.returncode == 0 and "internal error" not in code.stderr


def test_user_glioma_mask_with_rule_based_texture() -> None:
    """The same on a brain: a user's ball in the left frontal lobe, no library; the baseline is the
    mask, the tumour has its compartments, the contrasts keep the host's units."""
    d = api.demo_input("glioma", size="small")
    prompt = "high-grade glioma in the left frontal lobe, scans at 0, 3 and 6 months"
    placed = api.generate(d.scans, prompt, seed=1, brain_tissues=d.brain_tissues)
    geometry = next(iter(d.scans.values())).geometry
    center = geometry.world_to_voxel(np.asarray(placed.extra["lesion_center_mm"]))
    grid = np.indices(geometry.shape).astype(np.float64)
    r = np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grid, center, geometry.spacing_mm, strict=True)))
    mask = (r <= 12.0).astype(np.uint8)
    study = api.generate(d.scans, prompt, seed=1, brain_tissues=d.brain_tissues, lesion_mask=mask)
    base = np.zeros(geometry.shape, dtype=bool)
    base[study.box.slices] = study.timepoints[0].mask > 0
    assert np.array_equal(base, mask > 0)
    assert len(np.unique(study.timepoints[0].mask)) >= 3  # background + at least two compartments
    assert "source_lesion" not in study.extra and "rule-based" in study.extra["transplant"]["baseline_mask"]
    flair, host = study.timepoints[0].crops["flair"], d.scans["flair"].raw[study.box.slices]
    inside = study.timepoints[0].mask > 0
    assert float(np.mean(flair[inside])) > float(np.mean(host[inside]))  # FLAIR-bright tumour
