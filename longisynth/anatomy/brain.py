"""Brain anatomy of an MRI: brain mask, CSF/GM/WM probabilities and approximate lobes.

Route: the MNI152 phantom (noise-free, same contrast as the scan) is registered to the scan with
SimpleITK (Mattes mutual information, 3 mm): (A) a similarity transform at 6 mm against the
phantom with its synthetic head, or without it when that fits clearly better (skull-stripped
scans); (B) pose and size refined against the phantom's brain alone, the metric restricted to
the warped brain hull + 6 mm (so skull and scalp, which differ between people, do not pull the
brain's scale); (C) one scale per axis, unless the brain is cut by the field of view. The MNI
tissue maps are warped onto the scan grid and refined by intensity with an atlas-prior Gaussian
mixture (EM), so the result follows this person's ventricles and sulci, not the population's.

Registration is deterministic (fixed metric-sampling seed, single-threaded). Worlds: RAS+ mm
everywhere; ITK's LPS appears only at the SimpleITK boundary (``_LPS`` conversions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.geometry import Geometry
from longisynth.phantoms.brain import _tissue_stack, brain_phantom_clean, mni_template_affine
from longisynth.spec import BrainLobe, Depth, Side

NO_BRAIN = "no brain found in this MRI — gliomas need a brain MRI"
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS <-> LPS (its own inverse)
_REG_SPACING_MM = 3.0  # the scan is registered at this resolution (brief: ≲ 20 s for 256³)
_TEMPLATE_SPACING_MM = 2.0
_SAMPLING_SEED = 20240601  # fixed: same scan, same transform
_MARGIN_MM = 6.0  # refinement region: warped brain hull dilated by this, mm
_SKULL_STRIPPED_GAIN = 1.1  # brain-only template chosen if its MI beats the head's by 10 %
# Plausibility (DESIGN/brief): an adult brain (parenchyma + CSF) is ≈ 900–1900 cm³; we allow a
# wider band for the *scaled MNI hull* (which includes the subarachnoid CSF) to avoid rejecting
# small or large but real heads.
_HULL_VOLUME_CM3 = (800.0, 2400.0)
_MIN_COVERAGE = 0.25  # at least a quarter of the brain must be in the field of view
# Tissue medians must be ordered with gaps of at least 2 % of the brightest (weak T2 contrast
# at 3 mm still passes; random anatomy rarely does).
_MIN_ORDER_GAP = 0.02
_AIR_FRACTION = 0.05  # "as dark as air": below 5 % of the scan's 99th percentile
_MAX_DARK_FRACTION = 0.05
# Expected order of tissue means per contrast (brightest first).
_ORDER: dict[str, tuple[str, str, str]] = {
    "t1": ("wm", "gm", "csf"),
    "t1c": ("wm", "gm", "csf"),
    "t2": ("csf", "gm", "wm"),
    "flair": ("gm", "wm", "csf"),
}
_CENTRAL_DEPTH_MM = 15.0  # deep white matter: farther than this from the brain surface
_PERIPHERAL_DEPTH_MM = 10.0  # cortex-adjacent: within this of the surface
_EM_ITERATIONS = 6
_OPENING_MM = 3.0  # radius of the opening that detaches non-brain shells from the brain


@dataclass(frozen=True)
class BrainAnatomy:
    """Brain of one scan, on the scan's own grid.

    Attributes:
        geometry: grid of the maps below (the input grid).
        brain: brain parenchyma + internal CSF (no skull/scalp).
        csf, gm, wm: tissue probabilities in [0, 1], sum ≤ 1, 0 outside ``brain``.
        mni_to_scan: 4×4 affine world(MNI mm, RAS+) → world(scan mm, RAS+) from registration.
    """

    geometry: Geometry
    brain: NDArray[np.bool_]
    csf: NDArray[np.float32]
    gm: NDArray[np.float32]
    wm: NDArray[np.float32]
    mni_to_scan: NDArray[np.float64]


@dataclass(frozen=True)
class BrainRegistration:
    """Result of :func:`detect_brain`.

    Attributes:
        mni_to_scan: 4×4 world(MNI, RAS+ mm) → world(scan, RAS+ mm).
        coverage: fraction of the MNI brain hull that falls inside the scan's field of view.
        hull_volume_cm3: volume of the whole MNI brain hull mapped into the scan, cm³.
        correlation: Pearson correlation of scan and warped template in the parenchyma at 3 mm
            (informative only: ≈ 0.5–0.6 on T1, ≈ 0.1 on a T2 where sulcal CSF dominates).
        tissue_medians: median scan intensity in the cores (p > 0.7) of CSF, GM and WM at 3 mm.
    """

    mni_to_scan: NDArray[np.float64]
    coverage: float
    hull_volume_cm3: float
    correlation: float
    tissue_medians: dict[str, float]


def _contrast(contrast: str) -> str:
    c = str(getattr(contrast, "value", contrast)).lower()
    if c not in _ORDER:
        raise InvalidInputError(f"brain anatomy needs a T1, T1c, T2 or FLAIR image, got {contrast!r}")
    return c


def _to_sitk(array: NDArray[np.generic], affine: NDArray[np.float64]) -> sitk.Image:
    """numpy [i, j, k] volume with a RAS affine → SimpleITK image (index order x=i, LPS world)."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array, np.float32).transpose(2, 1, 0)))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(v) for v in (_LPS @ affine[:, 3])[:3]])
    img.SetDirection([float(v) for v in (_LPS[:3, :3] @ (affine[:3, :3] / spacing)).ravel()])
    return img


def _itk_to_ras(tx: Any) -> NDArray[np.float64]:
    """ITK fixed→moving (scan LPS → MNI LPS) matrix transform (any ``MatrixOffsetTransformBase``:
    affine, similarity, scale-versor) as a RAS 4×4 scan→MNI affine."""
    m = np.eye(4)
    a = np.asarray(tx.GetMatrix(), dtype=np.float64).reshape(3, 3)
    c = np.asarray(tx.GetCenter(), dtype=np.float64)
    m[:3, :3] = a
    t = np.asarray(tx.GetTranslation(), dtype=np.float64)
    m[:3, 3] = c + t - a @ c
    out: NDArray[np.float64] = _LPS @ m @ _LPS
    return out


def _resample_iso(img: sitk.Image, spacing_mm: float) -> sitk.Image:
    """Anti-aliased resampling onto an isotropic grid of the same orientation and extent."""
    size = [
        max(2, int(np.ceil(n * s / spacing_mm))) for n, s in zip(img.GetSize(), img.GetSpacing(), strict=True)
    ]
    sigma = [0.5 * float(np.sqrt(max(spacing_mm**2 - s**2, 1e-4))) for s in img.GetSpacing()]
    smooth = sitk.SmoothingRecursiveGaussian(img, sigma)
    return sitk.Resample(
        smooth,
        size,
        sitk.Transform(),
        sitk.sitkLinear,
        img.GetOrigin(),
        [spacing_mm] * 3,
        img.GetDirection(),
        0.0,
        sitk.sitkFloat32,
    )


def _method(percentage: float) -> sitk.ImageRegistrationMethod:
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(percentage, _SAMPLING_SEED)
    reg.SetInterpolator(sitk.sitkLinear)
    return reg


def _register(fixed: sitk.Image, contrast: str) -> sitk.Transform:
    """Three-stage MNI→scan registration; returns the ITK (scan LPS → MNI LPS) transform.

    Runs single-threaded: multi-threaded reductions (image moments, the metric) sum in a varying
    order, which moves the transform in the 8th digit between runs, and studies must be
    byte-identical per seed.
    """
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        return _register_stages(fixed, contrast)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _register_stages(fixed: sitk.Image, contrast: str) -> sitk.Transform:
    tmpl = "t1c" if contrast == "t1" else contrast  # brain part identical; T1c adds enhancing dura
    maff, _ = mni_template_affine(_TEMPLATE_SPACING_MM)
    brain_only = _to_sitk(brain_phantom_clean(tmpl, _TEMPLATE_SPACING_MM, with_head=False), maff)
    head = _to_sitk(brain_phantom_clean(tmpl, _TEMPLATE_SPACING_MM, with_head=True), maff)

    # Stage A: similarity at 6 mm against the phantom with and without its synthetic head, each
    # from two starting sizes (±10 %) around the intensity moments (centre of mass and principal
    # axes). The head template wins unless the brain-only one fits clearly better (skull-stripped
    # scans): MI is not strictly comparable between two templates, hence the 10 % handicap.
    fixed_coarse = _coarse(fixed)
    head_metric, stage_a = _similarity_search(fixed_coarse, _coarse(head), fixed, head)
    bare_metric, bare_a = _similarity_search(fixed_coarse, _coarse(brain_only), fixed, brain_only)
    if bare_metric < _SKULL_STRIPPED_GAIN * head_metric:
        stage_a = bare_a

    # Stages B and C: brain-only template, metric restricted to a fixed region around the warped
    # brain hull (the same samples for every candidate transform, so no bias towards shrinking):
    # B re-estimates pose and isotropic size, C adds one scale per axis. (A wider margin lets
    # bright T2 scalp pull the template outwards.) With partial coverage the scale along the cut
    # axis is poorly constrained, so C is skipped there.
    region = _near_hull(stage_a, fixed, _MARGIN_MM)
    _refine(fixed, brain_only, stage_a, region, levels=(2, 1))
    if _fov_fraction(stage_a, fixed) < 0.95:
        return stage_a
    final = sitk.ScaleVersor3DTransform()
    final.SetCenter(stage_a.GetCenter())
    final.SetRotation(stage_a.GetVersor())
    final.SetTranslation(stage_a.GetTranslation())
    final.SetScale([stage_a.GetScale()] * 3)
    region = _near_hull(final, fixed, _MARGIN_MM)
    _refine(fixed, brain_only, final, region, levels=(1,))
    return final


def _coarse(img: sitk.Image) -> sitk.Image:
    """6 mm version of a 2–3 mm image for the global search."""
    return sitk.Shrink(sitk.SmoothingRecursiveGaussian(img, 3.0), [2, 2, 2])


def _similarity_search(
    fixed_coarse: sitk.Image, moving_coarse: sitk.Image, fixed: sitk.Image, moving: sitk.Image
) -> tuple[float, sitk.Similarity3DTransform]:
    """Best (lowest Mattes MI) similarity transform from starting sizes 0.9 and 1.1."""
    init = sitk.Similarity3DTransform(
        sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Similarity3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
        )
    )
    reg = _method(0.2)
    best: tuple[float, sitk.Similarity3DTransform] | None = None
    for size in (0.9, 1.1):
        tx = sitk.Similarity3DTransform(init)
        tx.SetScale(1.0 / size)
        reg.SetInitialTransform(tx, inPlace=True)
        reg.SetOptimizerAsRegularStepGradientDescent(2.0, 1e-2, 60, relaxationFactor=0.5)
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.Execute(fixed_coarse, moving_coarse)
        if best is None or reg.GetMetricValue() < best[0]:
            best = (reg.GetMetricValue(), tx)
    assert best is not None
    return best


def _near_hull(tx: sitk.Transform, fixed: sitk.Image, margin_mm: float) -> NDArray[np.bool_]:
    """Voxels of ``fixed`` within ``margin_mm`` of the MNI brain hull warped by ``tx``."""
    stack = _tissue_stack(_TEMPLATE_SPACING_MM)
    maff, _ = mni_template_affine(_TEMPLATE_SPACING_MM)
    hull = _to_sitk((stack[0] + stack[1] + stack[2]) > 0.5, maff)
    warped = sitk.GetArrayFromImage(sitk.Resample(hull, fixed, tx, sitk.sitkLinear, 0.0)) > 0.5
    near: NDArray[np.bool_] = ndimage.distance_transform_edt(~warped, sampling=_REG_SPACING_MM) <= margin_mm
    return near


def _refine(
    fixed: sitk.Image,
    moving: sitk.Image,
    tx: sitk.Transform,
    region: NDArray[np.bool_],
    levels: tuple[int, ...],
) -> None:
    """Optimise ``tx`` in place, Mattes MI sampled only inside ``region`` (array of ``fixed``)."""
    mask = sitk.GetImageFromArray(region.astype(np.uint8))
    mask.CopyInformation(fixed)
    reg = _method(0.5)
    reg.SetMetricFixedMask(mask)
    reg.SetInitialTransform(tx, inPlace=True)
    reg.SetShrinkFactorsPerLevel(list(levels))
    reg.SetSmoothingSigmasPerLevel([2.0 if f > 1 else 0.0 for f in levels])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-3, 100, relaxationFactor=0.5)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.Execute(fixed, moving)


def _fov_fraction(tx: sitk.Transform, fixed: sitk.Image) -> float:
    """Fraction of the MNI hull voxels that map (through the inverse of ``tx``) into ``fixed``'s FOV."""
    stack = _tissue_stack(_TEMPLATE_SPACING_MM)
    maff, _ = mni_template_affine(_TEMPLATE_SPACING_MM)
    ijk = np.argwhere((stack[0] + stack[1] + stack[2]) > 0.5)[::8].astype(np.float64)
    mni = ijk @ maff[:3, :3].T + maff[:3, 3]
    scan_to_mni = _itk_to_ras(tx)
    world = (mni - scan_to_mni[:3, 3]) @ np.linalg.inv(scan_to_mni[:3, :3]).T
    faff = _sitk_affine(fixed)
    vox = (world - faff[:3, 3]) @ np.linalg.inv(faff[:3, :3]).T
    inside = np.all((vox >= -0.5) & (vox <= np.asarray(fixed.GetSize()) - 0.5), axis=1)
    return float(inside.mean())


def _sitk_affine(img: sitk.Image) -> NDArray[np.float64]:
    """RAS voxel→world affine of a SimpleITK image (index order x, y, z)."""
    aff = np.eye(4)
    d = np.asarray(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    aff[:3, :3] = d * np.asarray(img.GetSpacing())[None, :]
    aff[:3, 3] = img.GetOrigin()
    return _LPS @ aff


def _warp(
    mni_map: NDArray[np.float32],
    mni_affine: NDArray[np.float64],
    scan_to_mni: NDArray[np.float64],
    geometry: Geometry,
) -> NDArray[np.float32]:
    """Resample a map defined on the MNI grid onto the scan grid (trilinear, 0 outside)."""
    lps = _LPS @ scan_to_mni @ _LPS
    tx = sitk.AffineTransform(3)
    tx.SetMatrix([float(v) for v in lps[:3, :3].ravel()])
    tx.SetTranslation([float(v) for v in lps[:3, 3]])
    # Only the grid of the reference matters: spacing, origin and direction from a tiny image.
    grid = _to_sitk(np.zeros((1, 1, 1), dtype=np.float32), geometry.affine)
    reference = sitk.Image(*geometry.shape, sitk.sitkUInt8)
    reference.SetSpacing(grid.GetSpacing())
    reference.SetOrigin(grid.GetOrigin())
    reference.SetDirection(grid.GetDirection())
    out = sitk.Resample(_to_sitk(mni_map, mni_affine), reference, tx, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return np.ascontiguousarray(sitk.GetArrayFromImage(out).transpose(2, 1, 0))


def _in_fov(img: NDArray[np.float32], geometry: Geometry, fixed: sitk.Image) -> NDArray[np.bool_]:
    """Voxels of the 3 mm grid ``fixed`` at least one voxel inside the original field of view."""
    ones = _to_sitk(np.ones(img.shape, dtype=np.float32), geometry.affine)
    fov = (
        sitk.GetArrayFromImage(sitk.Resample(ones, fixed, sitk.Transform(), sitk.sitkNearestNeighbor, 0.0))
        > 0
    )
    inner: NDArray[np.bool_] = ndimage.binary_erosion(fov, iterations=1)
    return inner


def _check_image(image: NDArray[np.generic], geometry: Geometry) -> NDArray[np.float32]:
    img = np.asarray(image, dtype=np.float32)
    if img.shape != geometry.shape:
        raise InvalidInputError(f"image shape {img.shape} does not match its geometry {geometry.shape}")
    if not np.all(np.isfinite(img)):
        raise InvalidInputError("the MRI contains non-finite values")
    return img


def detect_brain(image: NDArray[np.generic], geometry: Geometry, contrast: str) -> BrainRegistration:
    """Register the MNI152 phantom to ``image`` and check that what it found is a brain.

    Args:
        image: the MRI, array axes as in ``geometry`` (any orientation, any units).
        geometry: the image's grid (RAS+ mm affine).
        contrast: ``"t1"``, ``"t1c"``, ``"t2"`` or ``"flair"`` (picks the template contrast).

    Raises:
        LesionDoesNotFitError: the registered brain is implausible — too little of it in the field
            of view, a hull volume outside 800–2400 cm³, tissue medians in the wrong order for the
            contrast, or air inside the would-be brain (e.g. a chest or abdominal MR).
        InvalidInputError: unknown contrast, or image/geometry mismatch.
    """
    c = _contrast(contrast)
    img = _check_image(image, geometry)
    fixed = _resample_iso(_to_sitk(img, geometry.affine), _REG_SPACING_MM)
    tx = _register(fixed, c)
    scan_to_mni = _itk_to_ras(tx)
    coverage = _fov_fraction(tx, fixed)
    stack = _tissue_stack(_TEMPLATE_SPACING_MM)
    maff, _ = mni_template_affine(_TEMPLATE_SPACING_MM)
    hull_mni_cm3 = float(((stack[0] + stack[1] + stack[2]) > 0.5).sum()) * _TEMPLATE_SPACING_MM**3 / 1000.0
    hull_cm3 = hull_mni_cm3 / abs(float(np.linalg.det(scan_to_mni[:3, :3])))

    values = sitk.GetArrayFromImage(fixed)
    in_fov = _in_fov(img, geometry, fixed)
    warped = {
        name: sitk.GetArrayFromImage(sitk.Resample(_to_sitk(stack[k], maff), fixed, tx, sitk.sitkLinear, 0.0))
        for k, name in enumerate(("csf", "gm", "wm"))
    }
    template = sitk.GetArrayFromImage(
        sitk.Resample(
            _to_sitk(brain_phantom_clean("t1c" if c == "t1" else c, _TEMPLATE_SPACING_MM, False), maff),
            fixed,
            tx,
            sitk.sitkLinear,
            0.0,
        )
    )
    # Correlate inside the parenchyma: at the hull's rim the template's CSF meets skull or scalp.
    tissue = ((warped["gm"] + warped["wm"]) > 0.5) & in_fov
    corr = float(np.corrcoef(values[tissue], template[tissue])[0, 1]) if tissue.sum() > 100 else 0.0
    medians = {}
    for name, w in warped.items():
        core = (w > 0.7) & in_fov
        medians[name] = float(np.median(values[core])) if core.sum() > 20 else float("nan")
    order = _ORDER[c]
    gap = _MIN_ORDER_GAP * abs(medians[order[0]])
    ordered = medians[order[0]] - gap > medians[order[1]] and medians[order[1]] - gap > medians[order[2]]
    # A brain has no air inside; a brain template laid over a chest or abdomen covers lungs/bowel gas.
    dark = (
        float(np.mean(values[tissue] < _AIR_FRACTION * np.percentile(values[in_fov], 99)))
        if tissue.any()
        else 1.0
    )

    problems = []
    if coverage < _MIN_COVERAGE:
        problems.append(f"only {coverage:.0%} of a brain would be in the field of view")
    if not _HULL_VOLUME_CM3[0] <= hull_cm3 <= _HULL_VOLUME_CM3[1]:
        problems.append(f"implausible brain volume {hull_cm3:.0f} cm³")
    if not ordered:
        problems.append(
            "tissue intensities not ordered "
            + " > ".join(f"{n} ({medians[n]:.0f})" for n in order)
            + f" as on {c.upper()}"
        )
    if dark > _MAX_DARK_FRACTION:
        problems.append(f"{dark:.0%} of the would-be brain is as dark as air")
    if problems:
        raise LesionDoesNotFitError(f"{NO_BRAIN} ({'; '.join(problems)})")
    return BrainRegistration(
        np.asarray(np.linalg.inv(scan_to_mni), dtype=np.float64), coverage, hull_cm3, corr, medians
    )


def _on_mni_grid(geometry: Geometry) -> bool:
    """Whether ``geometry`` is the phantom's MNI grid (then scan world = MNI world)."""
    spacing = geometry.spacing_mm[0]
    try:
        aff, shape = mni_template_affine(round(spacing, 6))
    except ValueError:
        return False
    return shape == geometry.shape and bool(np.allclose(aff, geometry.affine, atol=1e-3))


@lru_cache(maxsize=1)
def _mni_priors() -> NDArray[np.float32]:
    """CSF/GM/WM of the MNI phantom at 1 mm, blurred by 2 mm: affine registration leaves
    millimetres of error, so the atlas should not be sharper than that. Shape (3, *grid)."""
    stack = _tissue_stack(1.0)
    priors = np.stack([ndimage.gaussian_filter(stack[k], 2.0) for k in range(3)])
    priors.setflags(write=False)
    return priors


def _segment(
    img: NDArray[np.float32],
    hull: NDArray[np.bool_],
    priors: list[NDArray[np.float32]],
    spacing_mm: tuple[float, float, float],
) -> tuple[NDArray[np.bool_], list[NDArray[np.float32]]]:
    """Brain mask and CSF/GM/WM posteriors: Gaussian mixture with spatial atlas priors (EM).

    Two non-brain classes share the prior 1 − atlas brain (at least 5 %): a Gaussian started at
    the darkest intensities (bone and air, dark in every MR contrast) and a flat one (anything
    else: scalp, vessels). They absorb what an affine registration leaves inside the warped hull,
    so those voxels neither widen the tissue classes nor stay in the brain mask. Tissue priors
    are floored at 5 % so that intensity can overrule the atlas where this brain differs from MNI.
    """
    y_all = img[hull]
    tissue = np.stack([p[hull] for p in priors], axis=1)
    total = tissue.sum(axis=1, keepdims=True)
    other = np.clip(1.0 - total, 0.05, 0.95)
    tissue = (1.0 - other) * (0.85 * tissue / np.maximum(total, 1e-6) + 0.05)
    prior_all = np.concatenate([tissue, 0.5 * other, 0.5 * other], axis=1).astype(np.float32)
    lo, hi = (float(v) for v in np.percentile(y_all, [0.5, 99.5]))
    flat = np.float32(1.0 / max(hi - lo, 1e-6))
    min_sd = 0.01 * (hi - lo)
    step = max(1, len(y_all) // 400_000)  # parameters from a subsample; posteriors for all
    y, prior = y_all[::step], prior_all[::step]
    # Start: tissue classes from their atlas cores, the dark class at the 2nd percentile.
    resp = np.concatenate([prior[:, :3] * (prior[:, :3] > 0.5), np.zeros((len(y), 2), np.float32)], axis=1)
    resp[:, 3] = y <= np.percentile(y, 2)
    for _ in range(_EM_ITERATIONS):
        w = resp[:, :4].sum(axis=0) + 1e-6
        mu = (resp[:, :4] * y[:, None]).sum(axis=0) / w
        var = (resp[:, :4] * (y[:, None] - mu) ** 2).sum(axis=0) / w
        # GM and WM share one variance: otherwise GM, the class between the others, widens to
        # swallow every partial-volume voxel (seen on T2, where GM–WM contrast is weak).
        var[1] = var[2] = (var[1] * w[1] + var[2] * w[2]) / (w[1] + w[2])
        sd = np.sqrt(np.maximum(var, min_sd**2))
        resp = _posterior(y, prior, mu, sd, flat)
    post = _posterior(y_all, prior_all, mu, sd, flat)
    brain = np.zeros(img.shape, dtype=bool)
    brain[hull] = post[:, :3].sum(axis=1) >= 0.5
    brain = _main_blob(brain, spacing_mm) & hull
    out = []
    for k in range(3):
        full = np.zeros(img.shape, dtype=np.float32)
        full[hull] = post[:, k] / np.maximum(post[:, :3].sum(axis=1), 1e-6)
        full[~brain] = 0.0
        out.append(full)
    return brain, out


def _main_blob(mask: NDArray[np.bool_], spacing_mm: tuple[float, float, float]) -> NDArray[np.bool_]:
    """Largest component of ``mask`` after an opening of radius ``_OPENING_MM``, holes filled.

    The opening cuts thin bridges: a shell of dura/CSF-bright tissue left outside the skull by a
    slightly too large warped hull touches the brain only through narrow contacts. Enclosed
    non-brain voxels (vessels, choroid plexus) are filled back in.
    """
    box = ndimage.find_objects(mask.astype(np.uint8))
    if not box or box[0] is None:
        return mask
    sl = box[0]
    sub = mask[sl]
    core = ndimage.distance_transform_edt(np.pad(sub, 1), sampling=spacing_mm)[1:-1, 1:-1, 1:-1] > _OPENING_MM
    labels, n = ndimage.label(core)
    if n == 0:
        return mask
    core = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    opened = (ndimage.distance_transform_edt(~core, sampling=spacing_mm) <= _OPENING_MM + 0.5) & sub
    out = np.zeros_like(mask)
    out[sl] = ndimage.binary_fill_holes(opened)
    return out


def _posterior(
    y: NDArray[np.float32],
    prior: NDArray[np.float32],
    mu: NDArray[np.floating],
    sd: NDArray[np.floating],
    flat: np.float32,
) -> NDArray[np.float32]:
    """Class posteriors (n, 5): four Gaussians (CSF, GM, WM, dark) and the flat class."""
    like = prior.copy()
    like[:, :4] *= (np.exp(-0.5 * ((y[:, None] - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))).astype(
        np.float32
    )
    like[:, 4] *= flat
    like /= np.maximum(like.sum(axis=1, keepdims=True), np.float32(1e-30))
    return like


def brain_anatomy(
    image: NDArray[np.generic],
    geometry: Geometry,
    contrast: str,
    tissues: Mapping[str, NDArray[Any]] | None = None,
    brain_mask: NDArray[np.generic] | None = None,
) -> BrainAnatomy:
    """Brain mask, tissue probabilities and MNI registration of a brain MRI.

    Args:
        image: the MRI (any orientation, any units), array axes as in ``geometry``.
        geometry: the image grid.
        contrast: ``"t1"``, ``"t1c"``, ``"t2"`` or ``"flair"``.
        tissues: optional known ``{"csf", "gm", "wm"}`` probabilities on the same grid (e.g. the
            phantom's ground truth); used as given, skipping segmentation.
        brain_mask: optional known brain mask on the same grid.

    Raises:
        LesionDoesNotFitError: the image does not show a brain (see :func:`detect_brain`).
        InvalidInputError: unknown contrast or arrays that do not match ``geometry``.
    """
    c = _contrast(contrast)
    img = _check_image(image, geometry)
    if tissues is not None:
        maps = []
        for name in ("csf", "gm", "wm"):
            if name not in tissues or np.shape(tissues[name]) != geometry.shape:
                raise InvalidInputError(
                    f"tissue map {name!r} missing or not on the image grid {geometry.shape}"
                )
            maps.append(np.clip(np.asarray(tissues[name], dtype=np.float32), 0.0, 1.0))
        total = maps[0] + maps[1] + maps[2]
        brain = total > 0.5 if brain_mask is None else _mask(brain_mask, geometry)
        scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-6), 1.0).astype(np.float32) * brain
        # A scan on the phantom's grid *is* in MNI space; otherwise register for the lobes.
        mni_to_scan = np.eye(4) if _on_mni_grid(geometry) else detect_brain(img, geometry, c).mni_to_scan
        return BrainAnatomy(geometry, brain, maps[0] * scale, maps[1] * scale, maps[2] * scale, mni_to_scan)

    found = detect_brain(img, geometry, c)
    scan_to_mni = np.asarray(np.linalg.inv(found.mni_to_scan), dtype=np.float64)
    maff, _ = mni_template_affine(1.0)
    priors = [_warp(p, maff, scan_to_mni, geometry) for p in _mni_priors()]
    hull = (priors[0] + priors[1] + priors[2]) > 0.5
    if brain_mask is not None:
        hull = _mask(brain_mask, geometry)
    brain, (csf, gm, wm) = _segment(img, hull, priors, geometry.spacing_mm)
    if brain_mask is not None:
        brain = hull
    return BrainAnatomy(geometry, brain, csf, gm, wm, found.mni_to_scan)


def _mask(mask: NDArray[np.generic], geometry: Geometry) -> NDArray[np.bool_]:
    if np.shape(mask) != geometry.shape:
        raise InvalidInputError(
            f"brain mask shape {np.shape(mask)} does not match the image {geometry.shape}"
        )
    return np.asarray(mask).astype(bool)


def _mni_coordinates(anatomy: BrainAnatomy, voxels: NDArray[np.intp]) -> NDArray[np.float64]:
    """MNI world mm (RAS+) of the given scan voxels (n, 3)."""
    world = anatomy.geometry.voxel_to_world(voxels.astype(np.float64))
    scan_to_mni = np.linalg.inv(anatomy.mni_to_scan)
    return world @ scan_to_mni[:3, :3].T + scan_to_mni[:3, 3]


def lobe_masks(xyz: NDArray[np.float64]) -> dict[BrainLobe, NDArray[np.bool_]]:
    """Approximate lobes of MNI points (n, 3), in mm. Boundaries (deliberately coarse):

    * infratentorial (cerebellum, stem; in no lobe): z < −15 with y < −40, or |x| < 15,
      −45 < y < −10, z < −10;
    * temporal: −70 < y < 15, z < 10, |x| > 30, except its upper front corner (y > −20, z ≥ 0)
      which is the frontal operculum;
    * frontal: y > −20 and z > −10, plus orbitofrontal y > 10, z > −30, |x| < 30;
    * parietal: −70 ≤ y ≤ −20 and z > 15;
    * occipital: y < −70.
    """
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    ax = np.abs(x)
    infratentorial = ((z < -15) & (y < -40)) | ((ax < 15) & (y > -45) & (y < -10) & (z < -10))
    temporal = (y > -70) & (y < 15) & (z < 10) & (ax > 30) & ~((y > -20) & (z >= 0))
    frontal = (((y > -20) & (z > -10)) | ((y > 10) & (z > -30) & (ax < 30))) & ~temporal
    parietal = (y >= -70) & (y <= -20) & (z > 15)
    occipital = y < -70
    return {
        BrainLobe.FRONTAL: frontal & ~infratentorial,
        BrainLobe.TEMPORAL: temporal & ~infratentorial,
        BrainLobe.PARIETAL: parietal & ~infratentorial,
        BrainLobe.OCCIPITAL: occipital & ~infratentorial,
    }


def brain_region(
    anatomy: BrainAnatomy, side: Side | None, lobe: BrainLobe | None, depth: Depth | None
) -> NDArray[np.bool_]:
    """Voxels where a glioma may start: brain tissue (GM + WM > 0.5) in the requested place.

    Side from MNI x (x < 0 is left); lobes from MNI coordinates (:func:`lobe_masks`,
    approximate); depth ``central`` = deep white matter (WM > 0.5, farther than 15 mm from the
    brain surface), ``peripheral`` = within 10 mm of the surface (cortex and juxtacortical WM).

    Raises:
        LesionDoesNotFitError: no such voxel (e.g. the lobe is outside a partial field of view).
    """
    valid = anatomy.brain & ((anatomy.gm + anatomy.wm) > 0.5)
    if depth is not None:
        depth_mm = _depth_mm(anatomy)
        if depth == Depth.CENTRAL:
            valid &= (depth_mm > _CENTRAL_DEPTH_MM) & (anatomy.wm > 0.5)
        else:
            valid &= depth_mm <= _PERIPHERAL_DEPTH_MM
    if side is not None or lobe is not None:
        voxels = np.argwhere(valid)
        xyz = _mni_coordinates(anatomy, voxels)
        keep = np.ones(len(voxels), dtype=bool)
        if side is not None:
            keep &= xyz[:, 0] < 0 if side == Side.LEFT else xyz[:, 0] > 0
        if lobe is not None:
            keep &= lobe_masks(xyz)[lobe]
        valid = np.zeros_like(valid)
        valid[tuple(voxels[keep].T)] = True
    if not valid.any():
        words = " ".join(w.value for w in (depth, side) if w is not None)
        where = f"{words} {lobe.value} lobe" if lobe is not None else (words or "brain")
        raise LesionDoesNotFitError(
            f"no brain tissue in the {where} within this scan's field of view "
            "(lobes are approximate, from MNI152 coordinates)"
        )
    return valid


def _depth_mm(anatomy: BrainAnatomy) -> NDArray[np.float32]:
    """Distance (mm) from each brain voxel to the brain surface, exact up to ``_CENTRAL_DEPTH_MM``
    (deeper voxels may read less but never below it). The field of view's edges are not a
    surface: the mask is extended across them (edge padding) before the distance transform."""
    spacing = anatomy.geometry.spacing_mm
    pad = [int(np.ceil(_CENTRAL_DEPTH_MM / s)) + 1 for s in spacing]
    padded = np.pad(anatomy.brain, [(p, p) for p in pad], mode="edge")
    out = np.zeros(anatomy.geometry.shape, dtype=np.float32)
    box = ndimage.find_objects(padded.astype(np.uint8))
    if not box or box[0] is None:
        return out
    # The nearest background of any brain voxel lies within the brain's bounding box + 1 voxel.
    sl = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in box[0])
    dist = np.zeros(padded.shape, dtype=np.float32)
    dist[sl] = ndimage.distance_transform_edt(padded[sl], sampling=spacing)
    inner = tuple(slice(p, p + n) for p, n in zip(pad, anatomy.geometry.shape, strict=True))
    out[...] = dist[inner]
    return out
