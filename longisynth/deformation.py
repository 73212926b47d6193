"""Mass effect: a smooth, invertible, compactly supported radial displacement of the tissue.

Tissue at distance ``r`` (mm) from the lesion centre moves to ``f(r) = r + s(r)`` with

    s(r) = A · r · (1 − (r/R)²)³   for r < R,   0 beyond,

a C² bump that vanishes at the centre and at the influence radius ``R``. The radial map's
Jacobian determinant is ``f'(r) · (f(r)/r)²`` and ``f'(r) = 1 + A (1−q)² (1−7q)`` with q = (r/R)²,
whose minimum over q is ``1 − 0.653 A`` (at q = 3/7): the map is invertible with a positive
Jacobian everywhere as long as ``A < 1.53``. We cap A at :data:`MAX_AMPLITUDE`.

Images are resampled by pull-back: output voxel x takes the input value at ``x + d(x)``, where
``d`` is the *backward* displacement (computed exactly by inverting the monotone 1-D map). Beyond
``R`` the displacement is exactly 0 and the output voxels are copied, not interpolated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

MAX_AMPLITUDE = 1.2  # < 1/0.653 ≈ 1.53, leaving a margin: min f'(r) = 1 − 0.653·1.2 ≈ 0.22


@dataclass(frozen=True)
class RadialPush:
    """Parameters of one radial mass-effect map.

    Attributes:
        center_vox: centre in crop voxel coordinates.
        amplitude: A in the formula above (dimensionless, 0 ≤ A ≤ MAX_AMPLITUDE).
        influence_mm: R, the radius beyond which nothing moves, mm.
    """

    center_vox: tuple[float, float, float]
    amplitude: float
    influence_mm: float


def push_for_lesion(
    center_vox: tuple[float, float, float],
    lesion_radius_mm: float,
    boundary_push_fraction: float,
    influence_mm: float,
) -> RadialPush:
    """Radial push that moves tissue at the lesion boundary outwards by a fraction of its radius.

    Args:
        center_vox: lesion centre, crop voxel coordinates.
        lesion_radius_mm: equivalent radius of the lesion at this timepoint, mm.
        boundary_push_fraction: displacement at the boundary / lesion radius (e.g. 0.3 for gliomas,
            0.05 for nodules).
        influence_mm: radius of the influence zone, mm (must exceed the lesion radius).
    """
    q = min((lesion_radius_mm / influence_mm) ** 2, 0.95)
    amplitude = boundary_push_fraction / (1.0 - q) ** 3 if lesion_radius_mm > 0 else 0.0
    return RadialPush(center_vox, float(min(amplitude, MAX_AMPLITUDE)), float(influence_mm))


def _radial_offsets_mm(
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    center_vox: tuple[float, float, float],
) -> tuple[list[NDArray[np.float32]], NDArray[np.float32]]:
    comps = [
        ((np.arange(n, dtype=np.float32) - np.float32(c)) * np.float32(s)).reshape(
            [-1 if k == ax else 1 for k in range(3)]
        )
        for ax, (n, s, c) in enumerate(zip(shape, spacing_mm, center_vox, strict=True))
    ]
    r = np.sqrt(comps[0] ** 2 + comps[1] ** 2 + comps[2] ** 2).astype(np.float32)
    return comps, r


def forward_radius(r_mm: NDArray[np.floating], push: RadialPush) -> NDArray[np.float64]:
    """f(r): where tissue at radius ``r_mm`` ends up, mm."""
    r = np.asarray(r_mm, dtype=np.float64)
    q = np.clip(r / push.influence_mm, 0.0, 1.0) ** 2
    return r + push.amplitude * r * (1.0 - q) ** 3


def backward_displacement(
    shape: tuple[int, int, int], spacing_mm: tuple[float, float, float], push: RadialPush
) -> NDArray[np.float32]:
    """Pull-back displacement (mm, along each array axis; shape (3, *shape)).

    Output voxel at position x (mm) samples the input at ``x + d(x)``. Exactly 0 at r ≥ R.
    """
    comps, r = _radial_offsets_mm(shape, spacing_mm, push.center_vox)
    disp = np.zeros((3, *shape), dtype=np.float32)
    if push.amplitude <= 0:
        return disp
    table_r = np.linspace(0.0, push.influence_mm, 4097)
    table_f = forward_radius(table_r, push)  # monotone increasing, f(0)=0, f(R)=R
    inside = r < push.influence_mm
    src_r = np.interp(r[inside], table_f, table_r).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(r[inside] > 0, src_r / r[inside], 1.0 / (1.0 + push.amplitude)).astype(np.float32)
    for ax in range(3):
        full = np.broadcast_to(comps[ax], shape)
        disp[ax][inside] = full[inside] * (ratio - 1.0)
    return disp


class Warper:
    """Resample one crop (physical units) through several displacement fields.

    Cubic B-spline interpolation where the tissue moves (it smooths noise far less than linear),
    clamped to the range of the 2×2×2 voxels around each sample point: a spline overshoots at
    steps (a skull-stripped brain's edge against its 0 background, bone against air), which would
    put negative values into a magnitude image and ringing into an exactly-0 background. With the
    clamp a sample point among zeros reads exactly 0 and the output never leaves the local range
    of the input. Exact copies where the displacement is 0.

    The spline coefficients and the local ranges depend on the source only, so they are computed
    once and shared by every timepoint's field; the values equal
    ``map_coordinates(src, coords, order=3, mode="nearest")`` bit for bit (the same 12-voxel
    edge padding SciPy applies before its spline filter).
    """

    _PAD = 12  # SciPy's pre-padding for mode="nearest" (scipy.ndimage._prepad_for_spline_filter)

    def __init__(self, image: NDArray[np.floating]) -> None:
        self.src = np.asarray(image, dtype=np.float32)
        self._coeffs: NDArray[np.float64] | None = None
        self._lo: NDArray[np.float32] | None = None
        self._hi: NDArray[np.float32] | None = None

    def _prepare(self) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.float32]]:
        if self._coeffs is None or self._lo is None or self._hi is None:
            padded = np.pad(self.src, self._PAD, mode="edge")
            self._coeffs = ndimage.spline_filter(padded, order=3, output=np.float64, mode="nearest")
            # Window [i, i + 1] along each axis (origin −1), so the cell's lower corner indexes its range.
            self._lo = ndimage.minimum_filter(self.src, size=2, origin=-1, mode="nearest")
            self._hi = ndimage.maximum_filter(self.src, size=2, origin=-1, mode="nearest")
        return self._coeffs, self._lo, self._hi

    def __call__(
        self, displacement_mm: NDArray[np.float32], spacing_mm: tuple[float, float, float]
    ) -> NDArray[np.float32]:
        """The crop pulled back through ``displacement_mm`` (array axes, mm; spacing in mm)."""
        src = self.src
        moving = np.any(displacement_mm != 0, axis=0)
        out = src.copy()
        if not moving.any():
            return out
        coeffs, lo, hi = self._prepare()
        idx = np.nonzero(moving)
        coords = np.stack(
            [
                idx[ax].astype(np.float32) + displacement_mm[ax][idx] / np.float32(spacing_mm[ax])
                for ax in range(3)
            ]
        )
        values = ndimage.map_coordinates(
            coeffs,
            coords.astype(np.float64) + self._PAD,
            order=3,
            mode="nearest",
            prefilter=False,
            output=np.float32,
        )
        corner = tuple(np.clip(np.floor(coords[ax]).astype(np.intp), 0, src.shape[ax] - 1) for ax in range(3))
        out[idx] = np.clip(values, lo[corner], hi[corner])
        return out


def jacobian_determinant(
    displacement_mm: NDArray[np.float32], spacing_mm: tuple[float, float, float]
) -> NDArray[np.float32]:
    """det(I + ∇d) of a displacement field (mm) by central differences; shape = the field's grid."""
    grads = [np.gradient(displacement_mm[c], *spacing_mm) for c in range(3)]
    j = [[grads[c][ax] + (1.0 if c == ax else 0.0) for ax in range(3)] for c in range(3)]
    # the 3×3 determinant by cofactors, voxel-wise (5× faster than a batched LU, same value to
    # float rounding)
    det = (
        j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
        - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
        + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
    )
    return np.asarray(det, dtype=np.float32)


def to_world(
    displacement_mm: NDArray[np.float32], axis_directions: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Express an array-axis displacement (mm) in world RAS+ components (mm)."""
    return np.einsum("wa,a...->w...", axis_directions.astype(np.float32), displacement_mm).astype(np.float32)


def mass_effect_field(
    mask: NDArray[np.integer],
    center_vox: NDArray[np.float64],
    push_fraction: float,
    influence_mm: float,
    spacing_mm: tuple[float, float, float],
    voxel_volume_mm3: float,
) -> NDArray[np.float32]:
    """Backward displacement (array axes, mm) of the mass effect of the lesion ``mask`` (crop).

    The push scales with the lesion's equivalent radius at this timepoint (its volume, mm³), so
    the surrounding tissue moves further as the lesion grows; ``push_fraction`` is the family's
    boundary displacement / lesion radius.
    """
    from longisynth.measure import equivalent_radius_mm

    volume = float((mask > 0).sum()) * voxel_volume_mm3
    push = push_for_lesion(tuple(center_vox), equivalent_radius_mm(volume), push_fraction, influence_mm)
    return backward_displacement(mask.shape, spacing_mm, push)
