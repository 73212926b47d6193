"""Brain MRI phantom (T1, T1c, T2, FLAIR) built from the MNI152 template shipped inside nilearn.

The nilearn wheel carries the ICBM152 2009a nonlinear-symmetric T1 template (skull-stripped) and
its grey- and white-matter probability maps at 1 mm (the files behind
``nilearn.datasets.load_mni152_template`` / ``load_mni152_gm_template`` /
``load_mni152_wm_template``, so no download is ever needed). From them we derive:

* tissue probabilities: grey matter, white matter, CSF = brain mask − GM − WM (clipped), which
  holds the ventricles and the subarachnoid rim;
* a synthetic head around the brain (the template has none): a thin CSF/dura layer, the skull
  (dark inner and outer tables around a fatty diploë) and the scalp, as shells at a distance
  from a smoothed brain hull, so the phantom looks like a head and registers like one;
* one image per contrast as a mixture of the tissue probabilities with textbook relative
  intensities, then realism that a population average lacks: fine tissue texture (shared by all
  contrasts, it is anatomy), a smooth multiplicative bias field (per contrast) and Rician noise
  (per contrast).

Everything is in MNI space: world RAS+ mm, the template's own grid (197×233×189 at 1 mm).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

CONTRASTS: tuple[str, ...] = ("t1", "t1c", "t2", "flair")

_T1_FILE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
_GM_FILE = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
_WM_FILE = "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"
# nilearn's load_mni152_brain_mask keeps template values above 0.2 of the maximum.
_BRAIN_THRESHOLD = 0.2

# Mean signal of each tissue per contrast, in scanner-like units (int16 output). Relative values
# follow the usual 1.5–3 T weighting: T1 (MPRAGE-like) WM > GM > CSF, fat bright; T2 (fast spin
# echo) CSF >> GM > WM, fat bright; FLAIR nulls CSF, GM > WM; cortical bone has no signal; fatty
# marrow of the diploë is T1-bright. T1c equals T1 except for enhancing dura and venous sinuses.
_TISSUES = ("csf", "gm", "wm", "dura", "bone", "marrow", "scalp")
_MEANS: dict[str, tuple[float, ...]] = {
    #        csf    gm     wm     dura   bone  marrow scalp
    "t1": (150.0, 450.0, 700.0, 250.0, 40.0, 550.0, 780.0),
    "t1c": (150.0, 450.0, 700.0, 650.0, 40.0, 560.0, 800.0),
    "t2": (1800.0, 900.0, 650.0, 500.0, 40.0, 600.0, 900.0),
    "flair": (150.0, 750.0, 550.0, 400.0, 40.0, 450.0, 650.0),
}
_WM_INDEX = _TISSUES.index("wm")

# Head layers: distance (mm) outward from the smoothed brain hull where each layer ends.
# Adult skull ≈ 5–7 mm thick (tables ≈ 1.5 mm each), scalp ≈ 5–7 mm.
_LAYERS_MM: tuple[tuple[str, float], ...] = (
    ("dura", 1.5),
    ("bone", 3.0),
    ("marrow", 5.5),
    ("bone", 7.0),
    ("scalp", 13.0),
)

NOISE_FRACTION = 0.03  # Rician sigma as a fraction of the WM signal (clinical brain MRI: ≈ 2–4 %)
BIAS_AMPLITUDE = 0.07  # largest relative deviation of the bias field over the head (±5–10 %)
TEXTURE_FRACTION = 0.015  # std of the multiplicative fine tissue texture
TEXTURE_SIGMA_MM = 1.0  # correlation length of the texture, mm


def _nilearn_data_dir() -> Path:
    """Folder of the data files inside the installed nilearn wheel (without importing nilearn,
    whose import costs ≈ 2 s)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nilearn is required for the MNI152 brain phantom")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


@lru_cache(maxsize=1)
def _mni_1mm() -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32], NDArray[np.float64]]:
    """(t1, gm, wm, affine): template arrays rescaled to [0, 1] as nilearn's loaders do."""
    folder = _nilearn_data_dir()
    out = []
    affine = np.eye(4)
    for name in (_T1_FILE, _GM_FILE, _WM_FILE):
        img: Any = nib.load(folder / name)  # a Nifti1Image
        arr = np.asarray(img.dataobj, dtype=np.float32)
        arr /= arr.max()
        out.append(arr)
        affine = np.asarray(img.affine, dtype=np.float64)
    return out[0], out[1], out[2], affine


def mni_template_affine(spacing_mm: float = 1.0) -> tuple[NDArray[np.float64], tuple[int, int, int]]:
    """Voxel→world (RAS+ mm, MNI space) affine and shape of the phantom grid at ``spacing_mm``.

    The grid covers the template's field of view; its first voxel centre is the template's.
    """
    t1, _, _, affine = _mni_1mm()
    if spacing_mm == 1.0:
        return affine.copy(), (int(t1.shape[0]), int(t1.shape[1]), int(t1.shape[2]))
    if not 0.5 <= spacing_mm <= 4.0:
        raise ValueError(f"phantom spacing must be within 0.5–4 mm, got {spacing_mm}")
    shape = tuple(int(np.floor((n - 1) / spacing_mm)) + 1 for n in t1.shape)
    aff = affine.copy()
    aff[:3, :3] = affine[:3, :3] * spacing_mm
    return aff, (shape[0], shape[1], shape[2])


def _resample(
    arr: NDArray[np.float32], spacing_mm: float, shape: tuple[int, int, int]
) -> NDArray[np.float32]:
    """Template array (1 mm) resampled onto the grid of :func:`mni_template_affine` (linear)."""
    if spacing_mm == 1.0:
        return arr
    if spacing_mm > 1.0:  # anti-alias: the output voxel averages the input it covers
        arr = ndimage.gaussian_filter(arr, sigma=0.42 * spacing_mm, mode="nearest")
    out = ndimage.affine_transform(
        arr, np.full(3, spacing_mm), output_shape=shape, order=1, mode="nearest", output=np.float32
    )
    return np.asarray(out, dtype=np.float32)


@lru_cache(maxsize=2)
def tissue_stack(spacing_mm: float) -> NDArray[np.float32]:
    """Fractions of the 7 tissues of ``_TISSUES`` on the phantom grid, shape (7, *grid); sum ≤ 1.

    Read-only (cached); callers copy before modifying.
    """
    t1, gm, wm, _ = _mni_1mm()
    _, shape = mni_template_affine(spacing_mm)
    gm = np.clip(_resample(gm, spacing_mm, shape), 0.0, 1.0)
    wm = np.clip(_resample(wm, spacing_mm, shape), 0.0, 1.0)
    brain = _resample((t1 > _BRAIN_THRESHOLD).astype(np.float32), spacing_mm, shape)
    brain = np.clip(brain, 0.0, 1.0)
    # The rescaled GM and WM maps can add up to more than one voxel's worth at the GM/WM border.
    total = gm + wm
    over = total > 1.0
    gm[over] /= total[over]
    wm[over] /= total[over]
    csf = np.clip(brain - gm - wm, 0.0, 1.0)

    # Hull of the brain: a blurred-and-thresholded mask (a cheap closing) fills the sulci and the
    # gaps between cerebrum, cerebellum and stem, so the skull follows the head's outline rather
    # than every gyrus.
    step = spacing_mm
    solid = (gm + wm + csf) > 0.5
    hull = (ndimage.gaussian_filter(solid.astype(np.float32), 3.0 / step) > 0.4) | solid
    hull = ndimage.binary_fill_holes(hull)
    # Sulcal and cisternal CSF inside the hull but outside the template's brain mask.
    inside_gap = hull & ((gm + wm + csf) < 1.0)
    csf[inside_gap] = 1.0 - gm[inside_gap] - wm[inside_gap]
    dist_mm = ndimage.distance_transform_edt(~hull, sampling=step).astype(np.float32)

    stack = np.zeros((len(_TISSUES), *shape), dtype=np.float32)
    stack[0], stack[1], stack[2] = csf, gm, wm
    inner = 0.0
    for name, outer in _LAYERS_MM:
        layer = ((dist_mm > inner) & (dist_mm <= outer)).astype(np.float32)
        stack[_TISSUES.index(name)] += layer
        inner = outer
    # Partial volume at layer borders (an MR voxel integrates over ≈ its own size).
    for t in range(3, len(_TISSUES)):
        stack[t] = ndimage.gaussian_filter(stack[t], 0.5 / step)
    stack.setflags(write=False)
    return stack


def brain_phantom_tissues(spacing_mm: float = 1.0) -> dict[str, NDArray[np.float32]]:
    """Ground-truth tissue probabilities of the phantom, on its grid (see :func:`mni_template_affine`).

    Returns:
        ``{"csf", "gm", "wm"}`` → float32 arrays in [0, 1] whose sum is ≤ 1; zero outside the
        brain hull (skull, scalp and air are none of the three).
    """
    stack = tissue_stack(float(spacing_mm))
    return {"csf": stack[0].copy(), "gm": stack[1].copy(), "wm": stack[2].copy()}


def _bias_field(
    shape: tuple[int, int, int], rng: np.random.Generator, amplitude: float
) -> NDArray[np.float32]:
    """Smooth multiplicative field 1 + a·p(x) with p a random quadratic polynomial scaled to
    max |p| = 1 over the grid, so the receive-coil shading spans ±``amplitude`` (fraction)."""
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    x = axes[0][:, None, None]
    y = axes[1][None, :, None]
    z = axes[2][None, None, :]
    terms = [x, y, z, x * y, x * z, y * z, x * x - 0.33, y * y - 0.33, z * z - 0.33]
    coef = rng.normal(size=len(terms)).astype(np.float32)
    field = np.zeros(shape, dtype=np.float32)
    for c, t in zip(coef, terms, strict=True):
        field += c * t
    field *= np.float32(amplitude / max(float(np.abs(field).max()), 1e-6))
    field += np.float32(1.0)
    return field


def _texture(shape: tuple[int, int, int], rng: np.random.Generator, spacing_mm: float) -> NDArray[np.float32]:
    """Fine multiplicative tissue texture 1 + t, t smooth Gaussian noise with std TEXTURE_FRACTION."""
    white = rng.standard_normal(size=shape, dtype=np.float32)
    smooth = ndimage.gaussian_filter(white, TEXTURE_SIGMA_MM / spacing_mm)
    smooth *= np.float32(TEXTURE_FRACTION / max(float(smooth.std()), 1e-6))
    smooth += np.float32(1.0)
    return smooth


def make_brain_phantom(
    contrasts: tuple[str, ...] | list[str] = CONTRASTS, seed: int = 0, spacing_mm: float = 1.0
) -> tuple[dict[str, NDArray[np.int16]], NDArray[np.float64]]:
    """Synthetic healthy brain MRI in MNI152 space, one int16 volume per contrast.

    Args:
        contrasts: any of ``"t1"``, ``"t1c"``, ``"t2"``, ``"flair"``.
        seed: seeds the texture (shared by all contrasts) and, per contrast, the bias field and
            noise; a contrast is the same whichever other contrasts are requested.
        spacing_mm: isotropic voxel size in mm (0.5–4; the template's native grid is 1 mm).

    Returns:
        ``(images, affine)``: images in scanner-like units (T1 white matter ≈ 700, noise σ ≈ 3 %
        of WM, bias field within ±7 %) and the RAS+ voxel→world (MNI mm) affine shared by all.

    Raises:
        ValueError: on an unknown contrast or spacing out of range.
    """
    unknown = [c for c in contrasts if c not in _MEANS]
    if unknown:
        raise ValueError(f"unknown contrast(s) {unknown}; choose from {list(CONTRASTS)}")
    affine, shape = mni_template_affine(float(spacing_mm))
    stack = tissue_stack(float(spacing_mm))
    texture = _texture(shape, np.random.default_rng([seed, 0]), float(spacing_mm))
    images: dict[str, NDArray[np.int16]] = {}
    for name in contrasts:
        rng = np.random.default_rng([seed, 1 + CONTRASTS.index(name)])
        means = _MEANS[name]
        clean = np.zeros(shape, dtype=np.float32)
        for t, mean in enumerate(means):
            clean += np.float32(mean) * stack[t]
        clean *= texture
        clean *= _bias_field(shape, rng, BIAS_AMPLITUDE)
        # Rician: magnitude of the complex signal with Gaussian noise on both channels; in air the
        # background follows a Rayleigh law, as in real magnitude images.
        sigma = np.float32(NOISE_FRACTION * means[_WM_INDEX])
        real = clean + sigma * rng.standard_normal(size=shape, dtype=np.float32)
        imag = sigma * rng.standard_normal(size=shape, dtype=np.float32)
        mag = np.sqrt(real * real + imag * imag)
        images[name] = np.clip(np.rint(mag), 0, np.iinfo(np.int16).max).astype(np.int16)
    return images, affine


def brain_phantom_clean(
    contrast: str, spacing_mm: float = 1.0, with_head: bool = True
) -> NDArray[np.float32]:
    """Noise-, bias- and texture-free phantom contrast (the template used for registration).

    Args:
        contrast: ``"t1"``, ``"t1c"``, ``"t2"`` or ``"flair"``.
        spacing_mm: isotropic voxel size of the MNI grid, mm.
        with_head: include the synthetic skull and scalp (for scans with skull); ``False`` keeps
            only the brain and its CSF (for skull-stripped scans).
    """
    stack = tissue_stack(float(spacing_mm))
    means = _MEANS[contrast]
    n = len(_TISSUES) if with_head else 3
    out = np.zeros(stack.shape[1:], dtype=np.float32)
    for t in range(n):
        out += np.float32(means[t]) * stack[t]
    return out
