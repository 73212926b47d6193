"""Registration of the MNI152 brain phantom to an MRI, and the check that the MRI shows a brain.

Route: the MNI152 phantom (noise-free, same contrast as the scan) is registered to the scan with
SimpleITK (Mattes mutual information, 3 mm): (A) a similarity transform at 6 mm against the
phantom with its synthetic head, or without it when that fits clearly better (skull-stripped
scans); (B) pose and size refined against the phantom's brain alone, the metric restricted to
the warped brain hull + 6 mm (so skull and scalp, which differ between people, do not pull the
brain's scale); (C) one scale per axis, unless the brain is cut by the field of view.
:func:`detect_brain` then checks coverage, hull volume, tissue-intensity order and air inside
the would-be brain, and rejects anything implausible.

Kept apart from :mod:`longisynth.anatomy.brain` (which builds the tissue maps and regions on top
of the transform found here) because everything that touches SimpleITK lives in this module.

Registration is deterministic (fixed metric-sampling seed, single-threaded). Worlds: RAS+ mm
everywhere; ITK's LPS appears only at the SimpleITK boundary (``_LPS`` conversions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.anatomy.mri_intensity import non_negative_copy
from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.geometry import Geometry
from longisynth.io.contrasts import contrast_key
from longisynth.phantoms.brain import brain_phantom_clean, mni_template_affine, tissue_stack

NO_BRAIN = "no brain found in this MRI — gliomas need a brain MRI"
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS <-> LPS (its own inverse)
_REG_SPACING_MM = 3.0  # the scan is registered at this resolution (keeps it ≲ 20 s for 256³ on 2 cores)
_TEMPLATE_SPACING_MM = 2.0
_SAMPLING_SEED = 20240601  # fixed: same scan, same transform
_MARGIN_MM = 6.0  # refinement region: warped brain hull dilated by this, mm
_SKULL_STRIPPED_GAIN = 1.1  # brain-only template chosen if its MI beats the head's by 10 %
# Plausibility (docs/design.md §3.2): an adult brain (parenchyma + CSF) is ≈ 900–1900 cm³; we allow a
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


def check_contrast(contrast: str) -> str:
    """Lower-case contrast key (``"t1"``, ``"t1c"``, ``"t2"``, ``"flair"``) of a name, alias
    (BraTS ``"t1ce"``) or enum."""
    c = contrast_key(contrast)
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
    stack = tissue_stack(_TEMPLATE_SPACING_MM)
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
    stack = tissue_stack(_TEMPLATE_SPACING_MM)
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


def warp_to_scan(
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


def check_image(image: NDArray[np.generic], geometry: Geometry) -> NDArray[np.float32]:
    """The MRI as float32, checked against its grid and for non-finite values."""
    img = np.asarray(image, dtype=np.float32)
    if img.shape != geometry.shape:
        raise InvalidInputError(f"image shape {img.shape} does not match its geometry {geometry.shape}")
    if not np.all(np.isfinite(img)):
        raise InvalidInputError("the MRI contains non-finite values")
    return img


def detect_brain(image: NDArray[np.generic], geometry: Geometry, contrast: str) -> BrainRegistration:
    """Register the MNI152 phantom to ``image`` and check that what it found is a brain.

    Args:
        image: the MRI, array axes as in ``geometry`` (any orientation; raw, min–max normalised or
            z-scored: it is registered on its :func:`~longisynth.anatomy.mri_intensity.non_negative_copy`).
        geometry: the image's grid (RAS+ mm affine).
        contrast: ``"t1"``, ``"t1c"``, ``"t2"`` or ``"flair"`` (picks the template contrast).

    Raises:
        LesionDoesNotFitError: the registered brain is implausible — too little of it in the field
            of view, a hull volume outside 800–2400 cm³, tissue medians in the wrong order for the
            contrast, or air inside the would-be brain (e.g. a chest or abdominal MR) — or the
            template could not be registered at all.
        InvalidInputError: unknown contrast, or image/geometry mismatch.
    """
    c = check_contrast(contrast)
    img = non_negative_copy(check_image(image, geometry))
    fixed = _resample_iso(_to_sitk(img, geometry.affine), _REG_SPACING_MM)
    try:
        tx = _register(fixed, c)
    except RuntimeError as exc:  # ITK: e.g. "All samples map outside moving image buffer"
        reason = "the brain template could not be registered to it"
        if "outside" in str(exc):
            reason += " (it does not overlap anything brain-shaped)"
        raise LesionDoesNotFitError(f"{NO_BRAIN} ({reason})") from None
    scan_to_mni = _itk_to_ras(tx)
    coverage = _fov_fraction(tx, fixed)
    stack = tissue_stack(_TEMPLATE_SPACING_MM)
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
            + " > ".join(f"{n} ({medians[n]:.3g})" for n in order)
            + f" as on {c.upper()}"
        )
    if dark > _MAX_DARK_FRACTION:
        problems.append(f"{dark:.0%} of the would-be brain is as dark as air")
    if problems:
        raise LesionDoesNotFitError(f"{NO_BRAIN} ({'; '.join(problems)})")
    return BrainRegistration(
        np.asarray(np.linalg.inv(scan_to_mni), dtype=np.float64), coverage, hull_cm3, corr, medians
    )


def rigid_align(
    fixed: NDArray[np.generic],
    moving: NDArray[np.generic],
    moving_labels: NDArray[np.integer],
    affine: NDArray[np.float64],
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Rigidly register ``moving`` onto ``fixed`` (same grid, same contrast, two exams of one head).

    Mattes mutual information, Euler transform initialised at the images' centres of mass,
    single-threaded with a fixed sampling seed (deterministic). Returns the moved image
    (trilinear) and ``moving_labels`` carried along (nearest neighbour), both on ``fixed``'s grid;
    0 outside the moving image. ``affine``: the grid's RAS+ mm affine.
    """
    f = _to_sitk(np.asarray(fixed, np.float32), affine)
    m = _to_sitk(np.asarray(moving, np.float32), affine)
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        reg = _method(0.2)
        reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-4, 200)
        reg.SetOptimizerScalesFromPhysicalShift()
        start = sitk.CenteredTransformInitializer(
            f, m, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
        )
        reg.SetInitialTransform(start, inPlace=False)
        tx = reg.Execute(f, m)
        image = sitk.Resample(m, f, tx, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        labels = sitk.Resample(
            _to_sitk(np.asarray(moving_labels, np.float32), affine), f, tx, sitk.sitkNearestNeighbor, 0.0
        )
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    moved = np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    carried = np.rint(sitk.GetArrayFromImage(labels).transpose(2, 1, 0)).astype(np.uint8)
    return moved, np.ascontiguousarray(carried)
