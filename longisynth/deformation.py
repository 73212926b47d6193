"""Mass effect: how the host tissue moves around a lesion, as pull-back displacement fields.

Two models: a compactly supported radial push (lung nodules, below) and, for a brain, a flow of the
tumour's added volume into the CSF (:class:`BrainFlow`, in its own section further down). Both are
invertible with a positive Jacobian, and both are exactly 0 where nothing moves.

**Radial push.** Tissue at distance ``r`` (mm) from the lesion centre moves to ``f(r) = r + s(r)`` with

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

from longisynth.geometry import block_mean

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


# --- Brain: the tumour's added volume pushes the brain into its CSF spaces ------------------------
#
# Inside the closed skull a growing tumour cannot push the brain outwards: its added volume is
# paid for by CSF leaving the sulci and ventricles (Monro–Kellie), so the spaces beside the tumour
# are effaced, its ventricle is compressed and a large tumour pushes the midline across
# (subfalcine shift). We model the tissue's motion as a potential flow v = ∇φ with
#
#     ∇²φ = q,   q = κ·V(t)·T(x)/∫T  −  a(x),
#
# a source of the added volume κ·V(t) spread evenly over the tumour T (its mask at this timepoint,
# V its volume; κ is the family's added-volume fraction) and sinks a(x) in the CSF that absorb
# exactly as much: each CSF space yields in proportion to its CSF fraction × exp(−distance to the
# tumour centre / SINK_LENGTH_MM), but at most CSF_YIELD of its CSF — the nearest spaces are
# effaced first and what they cannot take goes further, across the midline for a large tumour
# (a water-filling level found by bisection). Only if all the CSF in the crop is spent does the
# tissue itself yield. φ is solved on a ≈ 2 mm grid over the crop with no flux through the crop's
# faces (a type-II DCT); v is then tapered to 0 at the brain's edge (the inner table of the skull
# does not move, nor does anything outside the brain) and at the crop's faces, and the tissue
# is moved along v for unit time: the pull-back displacement is exp(−v), computed by scaling and
# squaring, a diffeomorphism (Jacobian > 0) whatever the magnitude. Displacements below
# MIN_DISPLACEMENT_MM are set to exactly 0 (soft threshold), so the voxels far from the tumour are
# copied, not interpolated. Calibration against the shared BraTS 2018 brains (midline shift and
# ventricle asymmetry): benchmarks/mass_effect.py, docs/mass_effect.md.

BRAIN_GRID_MM = 2.0  # spacing of the flow's grid, mm
SINK_LENGTH_MM = 60.0  # CSF yields less readily with distance from the tumour centre (e-folding), mm
CSF_YIELD = 0.8  # at most this fraction of a CSF space is pressed out (then the excess goes further)
SKULL_TAPER_MM = 6.0  # the flow fades to 0 over this depth under the brain's surface, mm
CROP_TAPER_MM = 8.0  # ... and over this distance from the crop's faces, mm
MIN_DISPLACEMENT_MM = 0.05  # smaller displacements become exactly 0 (ramp to 2×), mm


def _smoothstep(x: NDArray[np.float32]) -> NDArray[np.float32]:
    t = np.clip(x, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _linear_upsample(
    coarse: NDArray[np.float32], factors: tuple[int, ...], shape: tuple[int, ...]
) -> NDArray[np.float32]:
    """Trilinear interpolation of block-centred ``coarse`` values onto the fine grid (separable)."""
    out = coarse
    for ax, (f, n) in enumerate(zip(factors, shape, strict=True)):
        m = out.shape[ax]
        pos = np.clip((np.arange(n, dtype=np.float32) - (f - 1) / 2.0) / f, 0.0, m - 1)
        lo = np.minimum(np.floor(pos).astype(np.intp), max(m - 2, 0))
        hi = np.minimum(lo + 1, m - 1)
        w = (pos - lo).astype(np.float32).reshape([-1 if k == ax else 1 for k in range(out.ndim)])
        out = np.take(out, lo, axis=ax) * (1.0 - w) + np.take(out, hi, axis=ax) * w
    return np.asarray(out, dtype=np.float32)


def _neumann_poisson(q: NDArray[np.float32], h: tuple[float, ...]) -> NDArray[np.float32]:
    """φ with ∇²φ = q (7-point Laplacian, zero flux through the faces); q must sum to 0."""
    from scipy import fft

    q_hat = fft.dctn(q.astype(np.float64), type=2, norm="ortho")
    eig = np.zeros(q.shape, dtype=np.float64)
    for ax, (n, s) in enumerate(zip(q.shape, h, strict=True)):
        k = np.arange(n, dtype=np.float64)
        along = ((2.0 * np.cos(np.pi * k / n) - 2.0) / s**2).reshape([-1 if j == ax else 1 for j in range(3)])
        eig = eig + along
    eig[0, 0, 0] = 1.0
    phi_hat = q_hat / eig
    phi_hat[0, 0, 0] = 0.0
    return np.asarray(fft.idctn(phi_hat, type=2, norm="ortho"), dtype=np.float32)


def _exp_field(velocity: NDArray[np.float32], h: tuple[float, ...]) -> NDArray[np.float32]:
    """Displacement (mm) of the flow along the stationary ``velocity`` for unit time (scaling and
    squaring; trilinear composition on the velocity's grid)."""
    vmax = float(np.sqrt((velocity.astype(np.float64) ** 2).sum(axis=0)).max())
    if vmax == 0.0:
        return np.zeros_like(velocity)
    steps = int(np.clip(np.ceil(np.log2(max(vmax / (0.25 * min(h)), 1.0))) + 1, 2, 10))
    d = (velocity / np.float32(2**steps)).astype(np.float32)
    shape = velocity.shape[1:]
    grid = np.indices(shape, dtype=np.float32)
    hv = np.asarray(h, dtype=np.float32).reshape(3, 1, 1, 1)
    for _ in range(steps):
        coords = grid + d / hv
        d = d + np.stack(
            [ndimage.map_coordinates(d[c], coords, order=1, mode="nearest") for c in range(3)]
        ).astype(np.float32)
    return d


@dataclass(frozen=True)
class BrainFlow:
    """What the brain mass effect needs from the crop, computed once per study.

    Attributes:
        factors: fine voxels per flow-grid cell along each axis.
        h_mm: the flow grid's spacing, mm.
        taper: 1 in the brain's depth, fading to 0 at its surface and the crop's faces (flow grid).
        weight: how readily each cell's CSF yields (flow grid).
        capacity: the most volume each cell's CSF gives up, in cell volumes (flow grid).
        tissue: where the brain tissue itself yields when the CSF in reach is spent (flow grid).
        shape: the fine crop's shape.
    """

    factors: tuple[int, int, int]
    h_mm: tuple[float, float, float]
    taper: NDArray[np.float32]
    weight: NDArray[np.float32]
    capacity: NDArray[np.float32]
    tissue: NDArray[np.float32]
    shape: tuple[int, int, int]

    @classmethod
    def of(
        cls,
        brain: NDArray[np.bool_],
        csf: NDArray[np.floating],
        center_vox: NDArray[np.float64],
        spacing_mm: tuple[float, float, float],
    ) -> BrainFlow:
        """From the crop's brain mask and CSF fraction (fine grid) and the tumour centre (crop voxels)."""
        factors = tuple(max(1, round(BRAIN_GRID_MM / s)) for s in spacing_mm)
        h = tuple(float(f * s) for f, s in zip(factors, spacing_mm, strict=True))
        inside = block_mean(brain, factors)
        csf_c = block_mean(np.where(brain, csf, 0.0), factors)
        # The brain with what it encloses (falx, vessels) closed in: all of it moves together.
        core = inside > 0.5
        closed = ndimage.binary_fill_holes(ndimage.binary_closing(core, iterations=2) | core)
        depth = ndimage.distance_transform_edt(closed, sampling=h).astype(np.float32)
        shape = inside.shape
        faces = np.full(shape, np.inf, dtype=np.float32)
        for ax, (n, s) in enumerate(zip(shape, h, strict=True)):
            j = np.arange(n, dtype=np.float32)
            d = (np.minimum(j + 0.5, n - j - 0.5) * s).reshape([-1 if k == ax else 1 for k in range(3)])
            faces = np.minimum(faces, d)
        # 0 on the outermost cells of the brain and of the crop, so that the fine field, interpolated
        # between cells, is exactly 0 outside the brain and on the crop's faces.
        edge = max(h)
        taper = _smoothstep((depth - edge) / SKULL_TAPER_MM) * _smoothstep((faces - edge) / CROP_TAPER_MM)
        centre = [(c - (f - 1) / 2.0) / f for c, f in zip(center_vox, factors, strict=True)]
        grids = np.ogrid[: shape[0], : shape[1], : shape[2]]
        r = np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, h, strict=True)))
        weight = (csf_c * np.exp(-r / SINK_LENGTH_MM) * (taper > 0)).astype(np.float32)
        capacity = (CSF_YIELD * csf_c * (taper > 0)).astype(np.float32)
        tissue = (inside * taper).astype(np.float32)
        return cls(factors, h, taper, weight, capacity, tissue, brain.shape)  # type: ignore[arg-type]

    def absorbed(self, added_cells: float) -> NDArray[np.float32]:
        """Volume each cell gives up (in cell volumes) for ``added_cells`` cell volumes: CSF by
        weight, each cell at most its capacity (the nearest spaces are effaced first, the excess
        goes further), then — only if all the CSF in reach is spent — the tissue itself."""
        capacity = self.capacity.astype(np.float64)
        room = float(capacity.sum())
        if room <= added_cells:
            rest = added_cells - room
            spread = self.tissue / max(float(self.tissue.sum()), 1e-12)
            return (capacity + rest * spread).astype(np.float32)
        weight = self.weight.astype(np.float64)
        lo, hi = 0.0, 1.0
        while float(np.minimum(capacity, hi * weight).sum()) < added_cells:
            hi *= 2.0
        for _ in range(60):  # bisection on the water level λ: Σ min(capacity, λ·weight) = added
            mid = 0.5 * (lo + hi)
            if float(np.minimum(capacity, mid * weight).sum()) < added_cells:
                lo = mid
            else:
                hi = mid
        taken = np.minimum(capacity, hi * weight)
        return (taken * (added_cells / float(taken.sum()))).astype(np.float32)

    def field(self, tumour: NDArray[np.bool_], added_mm3: float) -> NDArray[np.float32]:
        """Pull-back displacement (array axes, mm; fine crop) for ``added_mm3`` of volume added
        evenly over ``tumour`` (fine crop mask); exactly 0 outside the brain and where it is tiny."""
        shape = self.shape
        out = np.zeros((3, *shape), dtype=np.float32)
        source = block_mean(tumour, self.factors)
        if added_mm3 <= 0 or source.sum() <= 0 or (self.capacity.sum() <= 0 and self.tissue.sum() <= 0):
            return out
        added = added_mm3 / float(np.prod(self.h_mm))  # in cell volumes
        q = added * source / source.sum() - self.absorbed(added)
        phi = _neumann_poisson(q.astype(np.float32), self.h_mm)
        velocity = np.stack(list(np.gradient(phi, *self.h_mm))).astype(np.float32) * self.taper
        back = _exp_field(-velocity, self.h_mm)
        for ax in range(3):
            out[ax] = _linear_upsample(back[ax], self.factors, shape)
        size = np.sqrt((out * out).sum(axis=0))
        keep = np.clip((size - MIN_DISPLACEMENT_MM) / MIN_DISPLACEMENT_MM, 0.0, 1.0).astype(np.float32)
        out *= keep
        return out
