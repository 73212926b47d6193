"""Figures of the expert brief (``docs/expert_brief.md``): good lesions and typical failures side by side.

    PYTHONPATH=. .venv/bin/python benchmarks/expert_brief_figures.py            # → docs/img/expert_brief/
    PYTHONPATH=. .venv/bin/python benchmarks/expert_brief_figures.py --brain-mm 2 -o out/brief

Everything is made from the embedded phantoms only (the procedural thorax CT and the MNI152-derived
brain of ``longisynth demo``; the brain is skull-stripped here, as BraTS ships its brains, so that it
has an exact-zero background), so the PNGs may be committed. Never point this at ``../shared/data``.

Each failure is produced **deliberately**: by running the engine with one piece swapped for a
broken one (a renderer that lets the host show through, a barrier switched off, the background guard
switched off, with the engine's hard-rule refusal bypassed only to get the picture) or by a small
manipulation of a good output (a nodule moved into a vessel or into the chest wall, masks shifted).
Each is then run through the check the brief names, and the script **asserts** that the check flags
it (and passes the good case), so the brief's claims are tested (``tests/benchmarks/
test_expert_brief.py`` runs :func:`build_cases` on a 2 mm brain). Two failures have no per-study rule
(a seam at the lesion boundary, a uniform blob); for them the script asserts what the evaluation
measures (``seam_ks`` of :func:`longisynth.evaluate.boundary.seam_score`, the interior spread).

Panels: CT in the lung window (W 1500 / L −600 HU), MRI FLAIR in a brain window (0 to the 99.5th
percentile of the brain), axial slices through the lesion, radiological convention (the patient's
right on the image's left), anterior up; each panel is labelled.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

import longisynth
from longisynth import api, pipeline
from longisynth import checks as ck
from longisynth.errors import PlausibilityError
from longisynth.io.scan import Scan
from longisynth.result import Study

OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "expert_brief"
LUNG_WINDOW_HU = (-1350.0, 150.0)  # W 1500 / L −600
LUNG_FOV_MM = 60.0  # side of the displayed square around a nodule
BRAIN_FOV_MM = 120.0
LUNG_PROMPT = (
    "lobulated solid nodule in the right upper lobe, 14 mm, doubling time 200 days, "
    "scans at 0, 6 and 12 months"
)
PLEURAL_PROMPT = "juxtapleural solid nodule 10 mm in the right lower lobe"
GLIOMA_PROMPT = "high-grade glioma in the left frontal lobe, 45 mm, 3 timepoints over 90 days"
Slice2D = NDArray[np.float32]


@dataclass
class Panel:
    """One labelled image: a 2D slice (display orientation), its window and optional contours."""

    title: str
    image: Slice2D
    window: tuple[float, float]
    contours: list[tuple[NDArray[np.bool_], str]] = field(default_factory=list)


@dataclass
class Case:
    """A good example, a deliberately broken one, and what the named check says about each.

    Attributes:
        slug: file name of the figure (``<slug>.png``).
        rule: the rule of :data:`longisynth.checks.RULES` that catches it, or ``None`` (no rule).
        good_value, bad_value: what the rule (or, without a rule, the measurement) gives.
        flagged: the broken example fails the rule (or measurement); always asserted.
    """

    slug: str
    family: str
    failure: str
    good: Panel
    bad: Panel
    rule: str | None
    measure: str
    good_value: Any
    bad_value: Any
    flagged: bool
    extra: dict[str, Any] = field(default_factory=dict)


# --- display ---------------------------------------------------------------------------------


def _axial(
    volume: NDArray[Any], affine: NDArray[np.float64], center: NDArray[np.float64], fov_mm: float
) -> Slice2D:
    """The axial slice through ``center`` (voxel), ``fov_mm`` square, radiological display.

    Assumes an axis-aligned grid whose third axis is superior (both phantoms are).
    """
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    c = np.round(center).astype(int)
    half = [round(fov_mm / 2 / s) for s in spacing[:2]]
    sl = np.asarray(volume[:, :, c[2]], dtype=np.float32)
    pad = max(half) + 1
    sl = np.pad(sl, pad, mode="edge")
    sl = sl[c[0] + pad - half[0] : c[0] + pad + half[0], c[1] + pad - half[1] : c[1] + pad + half[1]]
    # rows: from anterior (top) to posterior; columns: patient's right on the left
    img = sl.T  # rows = second axis
    if affine[1, 1] > 0:  # second axis runs anterior → flip so anterior is up
        img = img[::-1]
    if affine[0, 0] > 0:  # first axis runs towards the patient's right: put the right on the left
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def _centre(mask: NDArray[Any]) -> NDArray[np.float64]:
    return np.asarray(np.argwhere(np.asarray(mask) > 0).mean(axis=0))


def _png(case: Case, path: Path) -> None:
    """Two panels side by side plus a one-line verdict of the check under them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.9), dpi=80)
    for ax, panel in zip(axes, (case.good, case.bad), strict=True):
        ax.imshow(
            panel.image, cmap="gray", vmin=panel.window[0], vmax=panel.window[1], interpolation="nearest"
        )
        for mask, colour in panel.contours:
            if mask.any():
                ax.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=0.8)
        ax.set_title(panel.title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    rule = f"caught by {case.rule}" if case.rule else "no per-study rule catches it"
    verdict = "FLAGGED" if case.flagged else "not flagged"
    fig.suptitle(f"{case.failure}", fontsize=9)
    fig.text(0.5, 0.065, f"{rule} — {case.measure}", ha="center", fontsize=7)
    fig.text(
        0.5,
        0.02,
        f"good {_fmt(case.good_value)} · broken {_fmt(case.bad_value)} → {verdict}",
        ha="center",
        fontsize=7,
    )
    fig.subplots_adjust(left=0.02, right=0.98, top=0.86, bottom=0.11, wspace=0.04)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int | np.integer):
        return str(int(v))
    return f"{float(v):.3g}"


# --- engine with one piece broken -----------------------------------------------------------


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _generate_unenforced(scans: Any, prompt: str = "", **kwargs: Any) -> Study:
    """:func:`longisynth.generate` with the hard-rule refusal bypassed (to get the picture); the
    caller asserts that :func:`longisynth.checks.enforce` refuses the result."""
    with _patched(api.ck, "enforce", lambda checks: None):
        return longisynth.generate(scans, prompt, refine=False, **kwargs)


def _refused(study: Study) -> bool:
    try:
        ck.enforce(study.checks)
    except PlausibilityError:
        return True
    return False


def _check(study: Study, name: str) -> ck.Check:
    found = [c for c in study.checks if c.name == name]
    if not found:
        raise AssertionError(f"the study has no {name} check (checks: {[c.name for c in study.checks]})")
    return max(found, key=lambda c: (not c.passed, c.timepoint or 0))  # the failing / last one


# --- lung nodules ----------------------------------------------------------------------------


def _lung_panel(
    study: Study,
    title: str,
    t: int = -1,
    image: NDArray[Any] | None = None,
    center: NDArray[np.float64] | None = None,
    contours: list[tuple[NDArray[np.bool_], str]] | None = None,
) -> Panel:
    index = t % len(study.timepoints)
    vol = study.image(index) if image is None else image
    c = _centre(study.mask(index)) if center is None else center
    aff = study.geometry.affine
    return Panel(
        title,
        _axial(vol, aff, c, LUNG_FOV_MM),
        LUNG_WINDOW_HU,
        [(_axial(m, aff, c, LUNG_FOV_MM) > 0.5, col) for m, col in (contours or [])],
    )


def _paste(
    image: NDArray[Any], source: NDArray[Any], mask: NDArray[np.bool_], offset: NDArray[np.int64]
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """``image`` with ``source`` copied where ``mask`` is, shifted by ``offset`` voxels; and the
    shifted mask."""
    out = image.copy()
    idx = np.argwhere(mask)
    dst = idx + offset
    ok = np.all((dst >= 0) & (dst < np.asarray(image.shape)), axis=1)
    out[tuple(dst[ok].T)] = source[tuple(idx[ok].T)]
    moved = np.zeros(mask.shape, dtype=bool)
    m = np.argwhere(mask) + offset
    m = m[np.all((m >= 0) & (m < np.asarray(mask.shape)), axis=1)]
    moved[tuple(m.T)] = True
    return out, moved


def lung_cases() -> list[Case]:
    """The lung-nodule cases (thorax phantom, seed 0)."""
    from longisynth.anatomy.lung import segment_lungs
    from longisynth.demo import demo_input
    from longisynth.families.base import Inputs
    from longisynth.families.lung import fine_lung_mask, host_vessel_fraction
    from longisynth.families.lung_placement import crop_structures
    from longisynth.phantoms.thorax import LUNG_LOBE_LABELS, thorax_phantom_labels

    scans = demo_input("lung").scans
    ct = scans["ct"]
    geometry = ct.geometry
    hu = ct.values()
    good = longisynth.generate(scans, LUNG_PROMPT, seed=1, refine=False)
    last = len(good.timepoints) - 1
    image, mask = good.image(last), good.mask(last) > 0
    anatomy = segment_lungs(hu, geometry, None)
    inputs = Inputs(scans, good.spec, pipeline.streams(0))
    cases: list[Case] = []

    # 1. pasted into a vessel: the nodule moved onto the thickest vessel deep in the lung.
    lobes = np.isin(thorax_phantom_labels(geometry.shape, geometry.spacing_mm), LUNG_LOBE_LABELS)
    deep = ndimage.distance_transform_edt(lobes, sampling=geometry.spacing_mm) > 15.0
    vessel = deep & (ndimage.gaussian_filter(hu.astype(np.float32), 0.7) > -300.0)
    thickness = ndimage.distance_transform_edt(vessel, sampling=geometry.spacing_mm)
    target = np.asarray(np.unravel_index(int(np.argmax(thickness)), hu.shape))
    small = good.mask(0) > 0  # the baseline nodule (≈ 8 mm), about a big vessel's calibre
    offset = target - np.round(_centre(small)).astype(np.int64)
    pasted, moved = _paste(hu, good.image(0), small, offset)
    box = geometry.box_around(target.astype(np.float64), 20.0)
    st = crop_structures(inputs, anatomy, box)
    bad_frac = host_vessel_fraction(moved[box.slices], st.vessel)
    box_g = good.box
    good_frac = host_vessel_fraction(mask[box_g.slices], crop_structures(inputs, anatomy, box_g).vessel)
    c_bad = ck.check("lesion_on_host_vessel_fraction", bad_frac)
    c_good = _check(good, "lesion_on_host_vessel_fraction")
    cases.append(
        Case(
            "lung_in_vessel",
            "lung",
            "Nodule pasted into a vessel",
            _lung_panel(good, "GOOD: solid nodule in aerated lung"),
            _lung_panel(
                good, "BROKEN (deliberate): moved onto a vessel", image=pasted, center=target.astype(float)
            ),
            "lesion_on_host_vessel_fraction",
            "fraction of the nodule on host vessels",
            c_good.value,
            round(bad_frac, 3),
            not c_bad.passed,
            {"engine_good_recomputed": round(good_frac, 3)},
        )
    )

    # 2. leaving the lung into the chest wall: a juxtapleural nodule pushed outwards by its radius.
    pleural = longisynth.generate(scans, PLEURAL_PROMPT, seed=1, refine=False)
    p_last = len(pleural.timepoints) - 1
    p_mask = pleural.mask(p_last) > 0
    lungs_full = fine_lung_mask(anatomy, geometry, pleural.box, hu[pleural.box.slices])
    c_p = _centre(p_mask)
    lung_c = _centre(lobes)
    out_dir = (c_p - lung_c) * np.asarray(geometry.spacing_mm)
    out_dir[2] = 0.0
    out_dir /= max(float(np.linalg.norm(out_dir)), 1e-9)
    shift = np.round(out_dir * 6.0 / np.asarray(geometry.spacing_mm)).astype(np.int64)  # 6 mm outwards
    wall, moved = _paste(pleural.image(p_last), pleural.image(p_last), p_mask, shift)
    crop_moved = moved[pleural.box.slices]
    inside = float((crop_moved & lungs_full).sum()) / max(int(crop_moved.sum()), 1)
    c_bad = ck.check("lesion_in_allowed_region_fraction", inside)
    c_good = _check(pleural, "lesion_in_allowed_region_fraction")
    cases.append(
        Case(
            "lung_into_chest_wall",
            "lung",
            "Nodule leaving the lung into the chest wall",
            _lung_panel(pleural, "GOOD: juxtapleural, stops at the pleura"),
            _lung_panel(pleural, "BROKEN (deliberate): 6 mm into the wall", image=wall, center=c_p + shift),
            "lesion_in_allowed_region_fraction",
            "fraction of the nodule inside the lung (hard: engine refuses)",
            c_good.value,
            round(inside, 3),
            not c_bad.passed and c_bad.hard,
        )
    )

    # 3. a seam: the rewritten zone around the nodule sits 80 HU above the untouched lung.
    from longisynth.evaluate.boundary import seam_score
    from longisynth.refine.patches import BAND_OUT_VOX

    crop = image[box_g.slices].astype(np.float64)
    lesion_crop = mask[box_g.slices]
    band = ndimage.binary_dilation(lesion_crop, iterations=BAND_OUT_VOX) & ~lesion_crop
    seamed = crop + 80.0 * band
    s_good = seam_score(crop, lesion_crop, geometry.spacing_mm)["seam_ks"]
    s_bad = seam_score(seamed, lesion_crop, geometry.spacing_mm)["seam_ks"]
    seamed_full = image.astype(np.float32).copy()
    seamed_full[box_g.slices] = seamed
    cases.append(
        Case(
            "lung_seam",
            "lung",
            "Seam at the lesion boundary",
            _lung_panel(good, "GOOD: boundary blends into the lung"),
            _lung_panel(good, "BROKEN (deliberate): +80 HU rim around it", image=seamed_full),
            None,
            "seam_ks of evaluate.boundary.seam_score, 0 = no seam",
            round(float(s_good), 3),
            round(float(s_bad), 3),
            bool(s_bad > s_good + 0.2),
        )
    )

    # 4. uniform blob: the nodule's interior set to its mean (no texture, no noise).
    flat = image.astype(np.float32).copy()
    flat[mask] = float(flat[mask].mean())
    interior = ndimage.binary_erosion(mask)
    sd_good, sd_bad = float(image[interior].std()), float(flat[interior].std())
    cases.append(
        Case(
            "lung_uniform_blob",
            "lung",
            "Uniform blob instead of a textured nodule",
            _lung_panel(good, "GOOD: texture and noise of the scan"),
            _lung_panel(good, "BROKEN (deliberate): flat interior", image=flat),
            None,
            "HU sd inside the nodule; realism yardstick on sets",
            round(sd_good, 1),
            round(sd_bad, 1),
            bool(sd_bad < 0.2 * sd_good),
        )
    )

    # 5. masks that do not nest: the last mask shifted 4 voxels (the earlier one sticks out).
    from longisynth.pipeline import common_checks

    tps = list(good.timepoints)
    shifted = np.roll(tps[-1].mask, 4, axis=0)
    broken_tps = [*tps[:-1], replace(tps[-1], mask=shifted)]
    ones = np.ones(good.box.shape, dtype=bool)
    zeros = [np.zeros((3, *good.box.shape), dtype=np.float32) for _ in tps]
    spec_d = float(good.spec.diameter_mm or 0)
    nest = {
        label: next(
            c
            for c in common_checks(t, scans, good.box, ones, ones, True, spec_d, zeros, clinical_size=True)
            if c.name == "masks_nested_over_time"
        )
        for label, t in (("good", tps), ("bad", broken_tps))
    }
    first_full = good.mask(0) > 0
    shifted_full = np.zeros(good.geometry.shape, dtype=bool)
    shifted_full[good.box.slices] = shifted > 0
    cases.append(
        Case(
            "lung_masks_not_nested",
            "lung",
            "Masks not nesting over time (growing nodule)",
            _lung_panel(
                good,
                "GOOD: first (yellow) inside last (red)",
                contours=[(first_full, "yellow"), (mask, "red")],
            ),
            _lung_panel(
                good,
                "BROKEN (deliberate): last mask shifted",
                contours=[(first_full, "yellow"), (shifted_full, "red")],
            ),
            "masks_nested_over_time",
            "hard: engine refuses; evaluate: mask_voxels_not_nested",
            nest["good"].value,
            nest["bad"].value,
            not nest["bad"].passed and nest["good"].passed,
        )
    )
    return cases


# --- gliomas ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Brain:
    """The skull-stripped brain phantom (exact-zero background) and its tissue maps."""

    scans: dict[str, Scan]
    tissues: dict[str, NDArray[np.float32]]
    window: tuple[float, float]


def skull_stripped_brain(spacing_mm: float) -> Brain:
    """The embedded brain phantom (FLAIR, T1, T1c) with everything outside the brain set to 0."""
    from longisynth.phantoms.brain import brain_phantom_tissues, make_brain_phantom

    images, affine = make_brain_phantom(("flair", "t1", "t1c"), seed=0, spacing_mm=spacing_mm)
    tissues = brain_phantom_tissues(spacing_mm)
    brain = (tissues["csf"] + tissues["gm"] + tissues["wm"]) > 0.5
    scans = {
        c: Scan.from_array(np.where(brain, v, 0).astype(v.dtype), affine, f"{c}.nii.gz")
        for c, v in images.items()
    }
    hi = float(np.percentile(images["flair"][brain], 99.5))
    return Brain(scans, tissues, (0.0, hi))


def _brain_panel(
    study: Study,
    brain: Brain,
    title: str,
    t: int = -1,
    image: NDArray[Any] | None = None,
    contours: list[tuple[NDArray[np.bool_], str]] | None = None,
) -> Panel:
    index = t % len(study.timepoints)
    vol = study.image(index, "flair") if image is None else image
    c = _centre(study.mask(index))
    aff = study.geometry.affine
    return Panel(
        title,
        _axial(vol, aff, c, BRAIN_FOV_MM),
        brain.window,
        [(_axial(m, aff, c, BRAIN_FOV_MM) > 0.5, col) for m, col in (contours or [])],
    )


def glioma_cases(spacing_mm: float = 1.0) -> list[Case]:
    """The glioma cases (skull-stripped brain phantom at ``spacing_mm``, mm)."""
    from longisynth.appearance import mri
    from longisynth.families import glioma

    brain = skull_stripped_brain(spacing_mm)
    run: dict[str, Any] = dict(seed=1, brain_tissues=brain.tissues)
    good = longisynth.generate(brain.scans, GLIOMA_PROMPT, refine=False, **run)
    cases: list[Case] = []
    good_panel = _brain_panel(good, brain, "GOOD: high-grade glioma, FLAIR")

    # 1. across the falx: the dural barriers switched off in the growth model.
    grow = glioma.simulate_glioma

    def no_falx(*a: Any, **k: Any) -> Any:
        return grow(*a, **{**k, "compartments": None, "bridges": None, "reachable": None})

    with _patched(glioma, "simulate_glioma", no_falx):
        crossing = _generate_unenforced(
            brain.scans,
            spec={
                "family": "glioma",
                "grade": "high",
                "diameter_mm": 60,
                "timepoints_days": [0, 45, 90],
                "location": {"point_mm": [-8.0, 28.0, 22.0]},  # left frontal, next to the falx (MNI)
            },
            **run,
        )
    c_bad, c_good = _check(crossing, "fraction_across_midline"), _check(good, "fraction_across_midline")
    cases.append(
        Case(
            "glioma_across_falx",
            "glioma",
            "Tumour crossing the falx",
            good_panel,
            _brain_panel(crossing, brain, "BROKEN (deliberate): falx switched off"),
            "fraction_across_midline",
            "fraction of the tumour in the other hemisphere (hard: engine refuses)",
            c_good.value,
            c_bad.value,
            not c_bad.passed and _refused(crossing),
        )
    )

    # 2. sulci through the tumour: a renderer that blends the host in at half weight.
    def see_through(
        background: NDArray[np.float32], contrast: Any, labels: NDArray[np.uint8], *a: Any, **k: Any
    ) -> NDArray[np.float32]:
        out = render(background, contrast, labels, *a, **k)
        solid = np.isin(labels, (1, 3))
        return np.where(solid, 0.5 * out + 0.5 * background, out).astype(np.float32)

    render = mri.render_glioma
    with _patched(glioma, "render_glioma", see_through):
        sulci = longisynth.generate(brain.scans, GLIOMA_PROMPT, refine=False, **run)
    c_bad, c_good = (
        _check(sulci, "host_pattern_in_solid_lesion"),
        _check(good, "host_pattern_in_solid_lesion"),
    )
    cases.append(
        Case(
            "glioma_sulci_through_tumour",
            "glioma",
            "Sulci (host anatomy) visible through the tumour",
            good_panel,
            _brain_panel(sulci, brain, "BROKEN (deliberate): host blended in"),
            "host_pattern_in_solid_lesion",
            "correlation of output and host fine pattern in the solid tumour",
            c_good.value,
            c_bad.value,
            not c_bad.passed and c_good.passed,
        )
    )

    # 3. noise in the background: a renderer that adds noise to the whole crop, guard switched off.
    def noisy(background: NDArray[np.float32], *a: Any, **k: Any) -> NDArray[np.float32]:
        out = render(background, *a, **k)
        rng = np.random.default_rng(0)
        return (out + np.abs(rng.normal(0.0, 15.0, out.shape))).astype(np.float32)

    with (
        _patched(glioma, "render_glioma", noisy),
        _patched(pipeline, "keep_mr_background", lambda scans, box, rendered, guards=None: rendered),
    ):
        noise = _generate_unenforced(brain.scans, GLIOMA_PROMPT, **run)
    c_bad = _check(noise, "zero_background_voxels_nonzero")
    c_good = _check(good, "zero_background_voxels_nonzero")
    cases.append(
        Case(
            "glioma_noise_in_background",
            "glioma",
            "Noise in the air / background",
            _brain_panel(good, brain, "GOOD: background stays exactly 0"),
            _brain_panel(noise, brain, "BROKEN (deliberate): noise written outside"),
            "zero_background_voxels_nonzero",
            "background voxels no longer 0 (hard: engine refuses)",
            c_good.value,
            c_bad.value,
            not c_bad.passed and _refused(noise),
        )
    )

    # 4. uniform blob: every tumour label one flat value (no texture, no noise).
    def blob(
        background: NDArray[np.float32], contrast: Any, labels: NDArray[np.uint8], *a: Any, **k: Any
    ) -> NDArray[np.float32]:
        out = render(background, contrast, labels, *a, **k)
        for value in (1, 2, 3):
            region = labels == value
            if region.any():
                out[region] = float(np.median(out[region]))
        return out

    with _patched(glioma, "render_glioma", blob):
        flat = longisynth.generate(brain.scans, GLIOMA_PROMPT, refine=False, **run)
    last = len(good.timepoints) - 1
    core = ndimage.binary_erosion(np.isin(good.mask(last), (1, 2, 3)))
    sd_good = float(good.image(last, "flair")[core].std())
    sd_bad = float(flat.image(last, "flair")[core].std())
    cases.append(
        Case(
            "glioma_uniform_blob",
            "glioma",
            "Uniform blob instead of a heterogeneous tumour",
            good_panel,
            _brain_panel(flat, brain, "BROKEN (deliberate): flat regions"),
            None,
            "FLAIR sd inside the tumour; realism yardstick on sets",
            round(sd_good, 1),
            round(sd_bad, 1),
            bool(sd_bad < 0.6 * sd_good),
        )
    )

    # 5. growth outside the clinical range: a low-grade glioma with high-grade kinetics.
    fast_spec = {
        "family": "glioma",
        "grade": "low",
        "diameter_mm": 50,
        "timepoints_days": [0, 90, 180],
        "location": {"side": "left", "brain_lobe": "frontal"},
        "growth": {"proliferation_per_day": 0.012, "diffusion_mm2_per_day": 0.1},
    }
    fast = longisynth.generate(brain.scans, spec=fast_spec, refine=False, **run)
    slow = longisynth.generate(
        brain.scans,
        "low-grade glioma 50 mm in the left frontal lobe, 3 timepoints over 2 years",
        refine=False,
        **run,
    )
    c_bad, c_good = _check(fast, "diameter_growth_mm_per_year"), _check(slow, "diameter_growth_mm_per_year")
    first = fast.mask(0) > 0
    cases.append(
        Case(
            "glioma_growth_out_of_range",
            "glioma",
            "Growth outside the clinical range (low grade)",
            _brain_panel(
                slow,
                brain,
                f"GOOD: {_fmt(c_good.value)} mm/year (yellow: 2 years ago)",
                contours=[(slow.mask(0) > 0, "yellow")],
            ),
            _brain_panel(
                fast,
                brain,
                f"BROKEN: {_fmt(c_bad.value)} mm/year (yellow: 6 months ago)",
                contours=[(first, "yellow")],
            ),
            "diameter_growth_mm_per_year",
            "mm/year, low grade 0.5–20 (soft: reported)",
            c_good.value,
            c_bad.value,
            not c_bad.passed and c_good.passed,
        )
    )
    return cases


def build_cases(brain_mm: float = 1.0) -> list[Case]:
    """Every case, each asserted: its broken example is flagged by the named check (or measure).

    Raises:
        AssertionError: a broken example the brief says is caught is not.
    """
    if not 0.5 <= brain_mm <= 4.0:
        raise ValueError(f"brain spacing {brain_mm} mm is outside 0.5–4 mm")
    cases = [*lung_cases(), *glioma_cases(brain_mm)]
    missed = [f"{c.slug}: good {c.good_value}, broken {c.bad_value}" for c in cases if not c.flagged]
    if missed:
        raise AssertionError("not flagged: " + "; ".join(missed))
    return cases


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", type=Path, default=OUT, help=f"folder of the PNGs (default {OUT})")
    p.add_argument("--brain-mm", type=float, default=1.0, help="voxel size of the brain phantom, mm")
    args = p.parse_args(argv)
    cases = build_cases(args.brain_mm)
    for case in cases:
        _png(case, args.output / f"{case.slug}.png")
        rule = case.rule or "(no rule)"
        print(
            f"{case.slug:32s} {rule:36s} good={_fmt(case.good_value):>8s} broken={_fmt(case.bad_value):>8s}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
