"""Glioma growth: the Fisher–Kolmogorov reaction–diffusion model on a crop of brain tissue maps.

∂c/∂t = ∇·(D∇c) + ρ c (1 − c), with c the tumour cell density (fraction of the carrying capacity),
D = D_white·wm + (D_white/10)·gm (docs/design.md §3.2: white : grey ≈ 1 : 0.1–0.2) and D = 0 in CSF and
outside the brain (no flux: the conductance of a face is the harmonic mean of its two voxels, which
is 0 when either is 0), slowed across white-matter boundaries so that fronts run along tracts,
and 0 across the falx and the tentorium (dural compartments). Visible regions are thresholds of c
(Swanson's model, docs/design.md §3.2): T1c-visible core c ≥ 0.8, FLAIR-visible whole tumour
c ≥ 0.16 — each threshold varying smoothly in space around that value, for irregular margins.

Numerics: the PDE runs on a coarser grid (≈ 1.5 mm) with Lie operator splitting: an explicit
finite-volume diffusion step whose dt obeys the maximum principle (so 0 ≤ c ≤ 1 always) and the
exact logistic reaction step. The age at which the whole tumour reaches the requested diameter is
found while simulating; the scans are the ages ``T* − (t_last − t_i)``, interpolated linearly in time
between saved states taken every ~0.4 coarse voxels of front motion, then resampled trilinearly
onto the crop.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.measure import longest_diameter_mm
from longisynth.spec import GliomaGrade

_T = TypeVar("_T", bound=np.generic)

FLAIR_THRESHOLD = 0.16  # whole tumour (FLAIR-bright) boundary, fraction of carrying capacity (§3.2)
T1C_THRESHOLD = 0.8  # T1c-visible core boundary (docs/design.md §3.2)
GREY_TO_WHITE_D = 0.1  # D_grey / D_white (docs/design.md §3.2: 0.1–0.2; we fix 1/10)
TISSUE_MIN = 0.1  # wm + gm below this = CSF / outside the brain: no cells, no flux
COARSE_MM = 1.5  # target spacing of the simulation grid, mm (front width √(D/ρ) ≥ 2.3 mm at defaults)
SEED_PEAK = 0.8  # peak density of the initial seed
SEED_SIGMA_MM = (
    2.0  # standard deviation of the Gaussian seed, mm (≈ front width √(D/ρ) of BraTS-like tumours)
)
# Patient-to-patient heterogeneity of the tissue: D and ρ are multiplied by exp(a·field), with a smooth
# unit-variance random field (correlation ≈ 6 mm), so two seeds grow different, lobulated shapes.
# D's log-sd was raised from 0.25 for the BraTS 2018 whole-tumour solidity and sphericity (0.64 and
# 0.64; ours were 0.86 and 0.74). ρ's stays small: where ρ is much higher than around it, the
# infiltrative tail reaches full density before the front arrives and the tumour turns multifocal.
LOG_SD_D = 0.8
LOG_SD_RHO = 0.15
FIELD_SIGMA_MM = 6.0
# Mean enhancing-rim thickness of high-grade gliomas, mm: 2.2 and 5.9 mm on the BraTS 2015 cases
# pat0005 / pat0006, 3.5–6.6 mm on the six high-grade BraTS 2018 cases of ../shared/data (twice the
# median depth of the enhancing voxels inside the tumour core; benchmarks/calibrate_glioma.py).
RIM_MM_RANGE = (3.0, 7.0)
RIM_LOG_SD = 0.45  # spread of the local rim thickness around its mean (log scale)
RIM_FIELD_MM = 5.0  # correlation length of the rim thickness, mm
# Tract-following anisotropy (see _tract_factors): α, the smoothing of the WM map and the edge scale.
TRACT_ANISOTROPY = 0.7
TRACT_SIGMA_MM = 1.5
TRACT_EDGE_MM = 2.0
# Spatially varying visibility thresholds (see simulate_glioma): spread and correlation length, set so
# that 75 mm tumours in two BraTS 2018 brains have the real cases' core solidity (0.74; 0.86 with
# fixed thresholds) and elongation (0.75) with the axis anisotropy below.
FLAIR_THRESHOLD_LOG_SD = 0.9
FLAIR_THRESHOLD_RANGE = (0.06, 0.6)
# Low grade: the front is ~2.5× wider (sqrt(D/ρ) ≈ 2.3 mm), so the same spread of the threshold would
# move the margin far more; kept small there (the 4.1 mm/year of Mandonnet 2003 is measured on it).
LOW_GRADE_FLAIR_THRESHOLD_LOG_SD = 0.25
# The core's threshold: 0.14 (range 0.45–0.97) gave round, solid cores on the 7 BraTS brains of
# benchmarks/realism_sets.py (median solidity 0.85, sphericity 0.78; real 0.74 and 0.65). Reaching
# into the density's plateau (up to 0.99) cuts the irregular necrotic and enhancing outlines of real
# cores: 0.74 and 0.67 there, overall AUC 0.54 → 0.53 (benchmarks/RESULTS.md). Its floor stays
# above the FLAIR threshold's range, and the core one voxel inside the whole tumour's edge.
CORE_THRESHOLD_SD = 0.25
CORE_THRESHOLD_RANGE = (0.6, 0.99)  # above the FLAIR range: oedema wraps the core
THRESHOLD_FIELD_MM = 5.0
AXIS_ANISOTROPY_RANGE = (1.0, 3.0)  # D along / across the tumour's dominant direction
MIN_DIAMETER_MM = 5.0  # below this the seed blob itself dominates the shape
FRONT_STEP_VOX = 0.4  # saved states every 0.4 coarse voxels of front motion (time interpolation error)
MAX_DT_RHO = 0.05  # ρ·dt bound for the splitting error


@dataclass(frozen=True)
class GliomaGrowth:
    """A simulated glioma on the crop grid, one entry per timepoint.

    Attributes:
        concentration: tumour cell density c in [0, 1] (fraction of carrying capacity) per timepoint.
        labels: BraTS 2023 labels per timepoint: 0 background, 1 necrotic core (high grade) or
            non-enhancing tumour core (low grade), 2 oedema / infiltrated FLAIR-bright tissue,
            3 enhancing tumour (high grade only).
        ages_days: simulated tumour age at each timepoint, days since seeding.
        rim_thickness_mm: enhancing-rim thickness drawn for this tumour, mm (high grade; 0 for low).
    """

    concentration: list[NDArray[np.float32]]
    labels: list[NDArray[np.uint8]]
    ages_days: list[float]
    rim_thickness_mm: float = 0.0


def _linear_resample(arr: NDArray[np.float32], out_shape: tuple[int, ...]) -> NDArray[np.float32]:
    """Separable trilinear resampling between grids covering the same extent (voxel-centre aligned)."""
    out = np.asarray(arr, dtype=np.float32)
    for ax, n_out in enumerate(out_shape):
        n_in = out.shape[ax]
        if n_in == n_out:
            continue
        x = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        x = np.clip(x, 0.0, n_in - 1.0)
        i0 = np.floor(x).astype(np.intp)
        i1 = np.minimum(i0 + 1, n_in - 1)
        w = (x - i0).astype(np.float32).reshape([-1 if k == ax else 1 for k in range(out.ndim)])
        out = np.take(out, i0, axis=ax) * (1 - w) + np.take(out, i1, axis=ax) * w
    return out.astype(np.float32)


def _downsample(arr: NDArray[np.float32], out_shape: tuple[int, ...]) -> NDArray[np.float32]:
    """Anti-aliased (Gaussian prefilter) linear downsampling of a tissue map."""
    factors = [n_in / n_out for n_in, n_out in zip(arr.shape, out_shape, strict=True)]
    sigma = [0.5 * (f - 1.0) if f > 1 else 0.0 for f in factors]
    pre = ndimage.gaussian_filter(arr.astype(np.float32), sigma, mode="nearest") if any(sigma) else arr
    return _linear_resample(pre, out_shape)


def _smooth_field(
    shape: tuple[int, ...], h_mm: NDArray[np.float64], rng: np.random.Generator, sigma_mm: float = 0.0
) -> NDArray:
    """Smooth Gaussian random field with unit standard deviation (correlation ≈ ``sigma_mm``,
    default FIELD_SIGMA_MM)."""
    white = rng.standard_normal(shape, dtype=np.float32)
    f = ndimage.gaussian_filter(white, (sigma_mm or FIELD_SIGMA_MM) / h_mm, mode="wrap")
    return f / max(float(f.std()), 1e-6)


def _pairs(arr: NDArray[_T], ax: int) -> tuple[NDArray[_T], NDArray[_T]]:
    """The two sides of every face between neighbours along ``ax``."""
    n = arr.shape[ax]
    return np.take(arr, range(n - 1), axis=ax), np.take(arr, range(1, n), axis=ax)


def _tract_factors(wm: NDArray[np.float32], h_mm: NDArray[np.float64]) -> list[NDArray[np.float32]]:
    """Per-axis diffusion factors that favour spread along white-matter tracts.

    Without diffusion imaging, the direction of a white-matter bundle is read from the shape of the
    WM map: across a gyral core or a tract the WM fraction changes (its gradient ``n``), along it
    it does not. The tensor ``I − α n nᵀ`` (diagonal part, α = :data:`TRACT_ANISOTROPY`) slows
    spread across those boundaries and keeps it along them: fronts run out along the WM fingers and
    spare the cortex, as oedema does on FLAIR.
    """
    smooth = ndimage.gaussian_filter(wm, TRACT_SIGMA_MM / h_mm, mode="nearest")
    grads = np.gradient(smooth, *h_mm)
    norm = np.sqrt(sum(g**2 for g in grads)) + np.float32(1e-6)
    # Only where the WM map really has an edge (≥ 0.1 per 2 mm); flat regions stay isotropic.
    weight = np.clip(norm * TRACT_EDGE_MM / 0.1, 0.0, 1.0)
    return [(1.0 - TRACT_ANISOTROPY * weight * (g / norm) ** 2).astype(np.float32) for g in grads]


def _face_conductances(
    d: NDArray[np.floating],
    h_mm: NDArray[np.float64],
    compartments: NDArray[np.int8] | None = None,
    bridges: NDArray[np.bool_] | None = None,
    axis_factors: list[NDArray[np.float32]] | None = None,
) -> list[NDArray[np.float32]]:
    """D on the faces between neighbours along each axis (harmonic mean; 0 if either side is 0) / h².

    Faces between two different ``compartments`` (the falx between the hemispheres, the tentorium
    above the posterior fossa) conduct nothing unless both sides are ``bridges`` (the corpus
    callosum of a butterfly glioma, the upper brainstem in the tentorial notch).
    """
    out = []
    for ax in range(3):
        a, b = _pairs(d, ax)
        s = a + b
        k = np.divide(2.0 * a * b, s, out=np.zeros_like(s), where=s > 0)
        if axis_factors is not None:
            fa, fb = _pairs(axis_factors[ax], ax)
            k = k * 0.5 * (fa + fb)
        if compartments is not None:
            ca, cb = _pairs(compartments, ax)
            cut = ca != cb
            if bridges is not None:
                ba, bb = _pairs(bridges, ax)
                cut &= ~(ba & bb)
            k = np.where(cut, 0.0, k)
        out.append((k / np.float32(h_mm[ax] ** 2)).astype(np.float32))
    return out


def _nearest_resample(arr: NDArray[_T], out_shape: tuple[int, ...]) -> NDArray[_T]:
    """Nearest-neighbour resampling between grids covering the same extent (labels)."""
    index = []
    for n_in, n_out in zip(arr.shape, out_shape, strict=True):
        x = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        index.append(np.clip(np.round(x).astype(np.intp), 0, n_in - 1))
    return arr[np.ix_(*index)]


def _diffuse(c: NDArray[np.float32], k_dt: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    """One explicit finite-volume diffusion step (``k_dt`` = face conductance × dt)."""
    out = c.copy()
    flux = k_dt[0] * (c[1:] - c[:-1])
    out[:-1] += flux
    out[1:] -= flux
    flux = k_dt[1] * (c[:, 1:] - c[:, :-1])
    out[:, :-1] += flux
    out[:, 1:] -= flux
    flux = k_dt[2] * (c[:, :, 1:] - c[:, :, :-1])
    out[:, :, :-1] += flux
    out[:, :, 1:] -= flux
    return out


def _touches_border(mask: NDArray[np.bool_]) -> bool:
    return bool(
        mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any() or mask[..., 0].any()
    ) or bool(mask[..., -1].any())


def _main_body(c: NDArray[np.float32], threshold: float | NDArray[np.float32]) -> NDArray[np.bool_]:
    """Where ``c ≥ threshold``, connected to the densest such voxel: the tumour, without the specks
    a heterogeneous tail can lift above a varying threshold ahead of the front."""
    visible = c >= threshold
    if not visible.any():
        return visible
    labelled, n = ndimage.label(visible)
    if n <= 1:
        return visible
    densest = np.unravel_index(int(np.argmax(np.where(visible, c, -1.0))), c.shape)
    return np.asarray(labelled == labelled[densest])


def _labels(
    c: NDArray[np.float32],
    grade: GliomaGrade,
    rim_mm: NDArray[np.float32],
    spacing: tuple[float, float, float],
    flair_threshold: NDArray[np.float32],
    core_threshold: NDArray[np.float32],
) -> NDArray[np.uint8]:
    """BraTS 2023 labels from the density.

    High grade: enhancing (3) where c ≥ the core threshold (a per-voxel field around 0.8), except
    deeper than ``rim_mm`` (a per-voxel map) inside that core, which is the necrotic core (1) — a
    rim of enhancement around necrosis, as in BraTS; oedema (2) from the FLAIR threshold (a field
    around 0.16) up to the core. Low grade (no enhancement): the
    dense core is non-enhancing tumour core (1, BraTS 2023 NETC) and the infiltrated FLAIR-bright
    rest is 2. Only the body connected to the densest voxel is labelled; the core stays one voxel
    inside its edge.
    """
    labels = np.zeros(c.shape, dtype=np.uint8)
    whole = _main_body(c, flair_threshold)
    labels[whole] = 2
    # the core never reaches the whole tumour's edge: a FLAIR-bright rim of oedema wraps it
    core = whole & (c >= core_threshold) & ndimage.binary_erosion(whole)
    if grade == GliomaGrade.LOW:
        labels[core] = 1
        return labels
    labels[core] = 3
    if core.any():
        sl = ndimage.find_objects(core.astype(np.uint8))[0]
        padded = np.pad(core[sl], 1)
        depth = ndimage.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]
        sub = labels[sl]
        sub[depth > rim_mm[sl]] = 1
    return labels


def _nearest_tissue_cell(
    tissue: NDArray[np.bool_],
    comp_c: NDArray[np.int8] | None,
    seed_c: NDArray[np.float64],
    seed_idx: tuple[int, ...],
    compartments: NDArray[np.int8] | None,
    seed_voxel: tuple[float, float, float],
) -> tuple[int, ...]:
    """The coarse tissue cell next to the seed's own when that one is mostly CSF (a seed placed in
    tissue beside a sulcus: the coarse cell averages both), in the seed's compartment.

    Raises:
        LesionDoesNotFitError: no tissue cell touches the seed's cell.
    """
    want = None
    if comp_c is not None and compartments is not None:
        fine = tuple(
            int(np.clip(round(v), 0, n - 1)) for v, n in zip(seed_voxel, np.shape(compartments), strict=True)
        )
        want = int(compartments[fine])
    best: tuple[float, tuple[int, ...]] | None = None
    for offset in itertools.product((-1, 0, 1), repeat=3):
        idx = tuple(i + o for i, o in zip(seed_idx, offset, strict=True))
        if any(i < 0 or i >= n for i, n in zip(idx, tissue.shape, strict=True)) or not tissue[idx]:
            continue
        if want is not None and comp_c is not None and int(comp_c[idx]) != want:
            continue
        dist = float(sum((i - c) ** 2 for i, c in zip(idx, seed_c, strict=True)))
        if best is None or dist < best[0]:
            best = (dist, idx)
    if best is None:
        raise LesionDoesNotFitError("the glioma seed lies in CSF or outside the brain; choose another point")
    return best[1]


def _coarse_grid(
    wm: NDArray[np.float32], gm: NDArray[np.float32], spacing: NDArray[np.float64]
) -> tuple[tuple[int, ...], NDArray[np.float64], NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
    """The simulation grid covering exactly the crop's extent (≈ :data:`COARSE_MM`): its shape,
    spacing (mm), the tissue maps on it and where there is tissue."""
    extent = np.asarray(wm.shape) * spacing
    c_shape = tuple(
        int(min(n, max(2, math.ceil(e / COARSE_MM)))) for n, e in zip(wm.shape, extent, strict=True)
    )
    h = extent / np.asarray(c_shape)
    wm_c = _downsample(wm, c_shape)
    gm_c = _downsample(gm, c_shape)
    return c_shape, h, wm_c, gm_c, (wm_c + gm_c) >= TISSUE_MIN


def _time_step(
    conductances: list[NDArray[np.float32]],
    shape: tuple[int, ...],
    d_max: float,
    rho_max: float,
    h: NDArray[np.float64],
) -> tuple[list[NDArray[np.float32]], float, int, float]:
    """Explicit diffusion sub-steps: (conductance × dt per face, dt, sub-steps per check, days
    between checks). dt obeys the maximum principle (a voxel's face conductances × dt ≤ 0.9) and
    bounds ρ·dt (splitting error); checks come often enough that the front (speed 2√(Dρ), Fisher)
    moves ≤ :data:`FRONT_STEP_VOX` coarse voxels between them."""
    total = np.zeros(shape, dtype=np.float32)
    for ax, k in enumerate(conductances):
        total += np.pad(k, [(1, 0) if a == ax else (0, 0) for a in range(3)])
        total += np.pad(k, [(0, 1) if a == ax else (0, 0) for a in range(3)])
    dt_max = min(0.9 / max(float(total.max()), 1e-12), MAX_DT_RHO / rho_max)
    v_max = 2.0 * math.sqrt(d_max * rho_max)
    check_days = FRONT_STEP_VOX * float(h.min()) / max(v_max, 1e-12)
    n_sub = max(1, math.ceil(check_days / dt_max))
    dt = check_days / n_sub
    return [(k * np.float32(dt)).astype(np.float32) for k in conductances], dt, n_sub, check_days


def simulate_glioma(
    wm: NDArray[np.float32],
    gm: NDArray[np.float32],
    csf: NDArray[np.float32],
    spacing_mm: tuple[float, float, float],
    seed_voxel: tuple[float, float, float],
    grade: GliomaGrade,
    rho_per_day: float,
    d_white_mm2_per_day: float,
    times_days: list[float],
    final_diameter_mm: float,
    rng: np.random.Generator,
    compartments: NDArray[np.int8] | None = None,
    bridges: NDArray[np.bool_] | None = None,
    reachable: frozenset[int] | None = None,
) -> GliomaGrowth:
    """Grow a glioma from a seed so that its whole tumour reaches ``final_diameter_mm`` at the last scan.

    Args:
        wm, gm, csf: tissue probabilities in [0, 1] on a crop (same shape, ≤ ~100³ voxels).
        spacing_mm: voxel size of the crop along each array axis, mm.
        seed_voxel: seed position in crop voxel coordinates (continuous).
        grade: low or high grade (decides the visible labels).
        rho_per_day: proliferation rate ρ, 1/day (docs/design.md §3.2: 0.0012 low … 0.012 high grade).
        d_white_mm2_per_day: diffusion in white matter, mm²/day (docs/design.md §3.2: 2.7e-3 … 2.7e-1).
        times_days: scan days, strictly increasing (e.g. [0, 60, 120, 180]).
        final_diameter_mm: longest diameter of the whole tumour (label > 0) at the last scan, mm.
        rng: the study's generator (tissue heterogeneity, enhancing-rim thickness).
        compartments: optional dural compartments on the crop (int labels, 0 outside the brain;
            :mod:`longisynth.anatomy.midline`): no flux between two of them, so the tumour stays
            behind the falx and the tentorium.
        bridges: optional crop mask where crossing between compartments is allowed (corpus
            callosum, tentorial notch).
        reachable: compartments the tumour may occupy on the crop grid (default: all). Crossings
            are blocked on the coarse simulation grid; this removes what interpolation onto the
            crop would otherwise smear across a barrier.

    Raises:
        InvalidInputError: inconsistent arrays or parameters.
        LesionDoesNotFitError: the seed is not in brain tissue, the tumour reaches the edge of the
            crop or fills its brain region before reaching the diameter, or it would have to be
            younger than 0 days at the first scan (the study is longer than the tumour's life).
    """
    wm = np.asarray(wm, dtype=np.float32)
    gm = np.asarray(gm, dtype=np.float32)
    if wm.ndim != 3 or wm.shape != gm.shape or np.shape(csf) != wm.shape:
        raise InvalidInputError("wm, gm and csf must be 3D arrays of the same shape")
    times = [float(t) for t in times_days]
    if not times or any(b <= a for a, b in itertools.pairwise(times)):
        raise InvalidInputError("times_days must be a non-empty, strictly increasing list")
    if rho_per_day <= 0 or d_white_mm2_per_day <= 0 or min(spacing_mm) <= 0:
        raise InvalidInputError("rho, D_white and the voxel spacing must be positive")
    if final_diameter_mm < MIN_DIAMETER_MM:
        raise InvalidInputError(f"gliomas smaller than {MIN_DIAMETER_MM} mm cannot be simulated")
    grade = GliomaGrade(grade)
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    fine_shape = wm.shape

    # --- coarse simulation grid covering exactly the crop's extent
    c_shape, h, wm_c, gm_c, tissue = _coarse_grid(wm, gm, spacing)
    comp_c = bridge_c = None
    if compartments is not None:
        if np.shape(compartments) != fine_shape:
            raise InvalidInputError("the compartment map must have the tissue maps' shape")
        comp_c = _nearest_resample(np.asarray(compartments, dtype=np.int8), c_shape)
        if bridges is not None:
            bridge_c = _nearest_resample(np.asarray(bridges, dtype=bool), c_shape)
    seed_c = (np.asarray(seed_voxel, dtype=np.float64) + 0.5) * (np.asarray(c_shape) / fine_shape) - 0.5
    seed_idx = tuple(int(np.clip(round(s), 0, n - 1)) for s, n in zip(seed_c, c_shape, strict=True))
    if not tissue[seed_idx]:
        seed_idx = _nearest_tissue_cell(tissue, comp_c, seed_c, seed_idx, compartments, seed_voxel)

    # --- drawn parameters (fixed order, so a seed always gives the same tumour)
    log_d = _smooth_field(c_shape, h, rng)
    log_rho = _smooth_field(c_shape, h, rng)
    rim_mm = float(rng.uniform(*RIM_MM_RANGE)) if grade == GliomaGrade.HIGH else 0.0
    # Thick, irregular, nodular enhancement: the rim's local thickness varies around its drawn mean
    # (log-normal, correlation RIM_FIELD_MM), so necrosis is irregular rather than a sphere.
    rim_map = (rim_mm * np.exp(RIM_LOG_SD * _smooth_field(fine_shape, spacing, rng, RIM_FIELD_MM))).astype(
        np.float32
    )

    # Irregular, lobulated visible boundaries: the density at which tissue looks abnormal varies
    # in space (log-normal around FLAIR_THRESHOLD, normal around T1C_THRESHOLD, correlation
    # THRESHOLD_FIELD_MM) — real FLAIR and enhancing margins are not iso-density surfaces.
    log_sd = FLAIR_THRESHOLD_LOG_SD if grade == GliomaGrade.HIGH else LOW_GRADE_FLAIR_THRESHOLD_LOG_SD
    flair_thr = np.clip(
        FLAIR_THRESHOLD * np.exp(log_sd * _smooth_field(fine_shape, spacing, rng, THRESHOLD_FIELD_MM)),
        *FLAIR_THRESHOLD_RANGE,
    ).astype(np.float32)
    core_thr = np.clip(
        T1C_THRESHOLD + CORE_THRESHOLD_SD * _smooth_field(fine_shape, spacing, rng, THRESHOLD_FIELD_MM),
        *CORE_THRESHOLD_RANGE,
    ).astype(np.float32)

    # A dominant spreading direction per tumour (along the main tract it follows: corona radiata,
    # longitudinal fasciculi, callosum — approximated by one array axis), D scaled by ratio^(2/3)
    # along it and ratio^(−1/3) across (geometric mean 1): real gliomas are elongated.
    dominant = int(rng.integers(3))
    ratio = float(rng.uniform(*AXIS_ANISOTROPY_RANGE))
    axis_scale = [ratio ** (2 / 3) if ax == dominant else ratio ** (-1 / 3) for ax in range(3)]
    tract = [f * np.float32(a) for f, a in zip(_tract_factors(wm_c, h), axis_scale, strict=True)]

    d_map = d_white_mm2_per_day * (wm_c + GREY_TO_WHITE_D * gm_c) * np.exp(LOG_SD_D * log_d)
    d_map = np.where(tissue, d_map, 0.0).astype(np.float32)
    rho_map = (rho_per_day * np.exp(LOG_SD_RHO * log_rho)).astype(np.float32)
    conductances = _face_conductances(d_map, h, comp_c, bridge_c, tract)

    k_dt, dt, n_sub, check_days = _time_step(
        conductances, c_shape, float(d_map.max()), float(rho_map.max()), h
    )
    growth = np.exp(rho_map * np.float32(dt)).astype(np.float32)

    # Time limit: slower than grey-matter front speed from the start, plus a generous lag.
    v_grey = 2.0 * math.sqrt(GREY_TO_WHITE_D * d_white_mm2_per_day * rho_per_day)
    t_max = 2.0 * final_diameter_mm / v_grey + 20.0 / rho_per_day
    component, _ = ndimage.label(tissue)
    region = component == component[seed_idx]
    seed_region = region
    if comp_c is not None:
        seed_region = region & (comp_c == comp_c[seed_idx])
        if reachable is not None:
            region &= np.isin(comp_c, sorted(reachable))
    region_size = int(np.count_nonzero(region))
    duration = times[-1] - times[0]

    grids = [np.arange(n, dtype=np.float64) * hh for n, hh in zip(c_shape, h, strict=True)]
    r2 = sum(
        ((g - s * hh) ** 2).reshape([-1 if k == ax else 1 for k in range(3)])
        for ax, (g, s, hh) in enumerate(zip(grids, seed_c, h, strict=True))
    )
    # The seed lives only in the tissue connected to it (no cells jump across CSF), on its side of
    # the falx and the tentorium.
    c = np.where(seed_region, SEED_PEAK * np.exp(-0.5 * r2 / SEED_SIGMA_MM**2), 0.0).astype(np.float32)

    t = 0.0
    states: list[tuple[float, NDArray[np.float32]]] = [(t, c)]
    # The coarse grid sees the same visibility threshold as the crop (nearest sample of the field).
    flair_thr_c = _nearest_resample(flair_thr, c_shape)
    diam_prev = longest_diameter_mm(_main_body(c, flair_thr_c), tuple(h))
    history: list[tuple[float, float]] = [(t, diam_prev)]
    crossing: float | None = None
    extra = 0
    too_big = f"a {final_diameter_mm:g} mm glioma does not fit in the brain region around the seed"
    while True:
        for _ in range(n_sub):
            c = _diffuse(c, k_dt)
            c = c * growth / (1.0 + c * (growth - 1.0))  # exact logistic step (ρ c (1 − c))
        t += check_days
        visible = _main_body(c, flair_thr_c)
        hit_limit = _touches_border(visible) or int(visible.sum()) >= 0.98 * region_size
        if crossing is None:
            if hit_limit:
                raise LesionDoesNotFitError(too_big + " (it reaches the edge of the brain or crop first)")
            if t > t_max:
                raise LesionDoesNotFitError(too_big + f" (not reached after {t_max:.0f} days)")
        elif hit_limit:
            break
        diam = longest_diameter_mm(visible, tuple(h))
        states.append((t, c))
        history.append((t, diam))
        # Keep only what the study can need: from the first scan's age (with margin) onwards.
        while len(states) > 2 and states[1][0] < t - duration - 4 * check_days:
            states.pop(0)
        if crossing is None and diam >= final_diameter_mm > diam_prev:
            crossing = t - check_days * (diam - final_diameter_mm) / max(diam - diam_prev, 1e-9)
        diam_prev = diam
        if crossing is not None:
            extra += 1
            if extra >= 3:  # a few states beyond the crossing, for the fine-grid correction
                break
    assert crossing is not None

    def render(t_star: float) -> tuple[list[NDArray[np.float32]], list[NDArray[np.uint8]], list[float]]:
        ages = [t_star - (times[-1] - ti) for ti in times]
        if ages[0] < states[0][0] - 1e-6:
            raise LesionDoesNotFitError(
                f"this glioma reaches {final_diameter_mm:g} mm about {crossing:.0f} days after it starts, "
                f"but the study lasts {duration:g} days; shorten the study or enlarge the tumour"
            )
        fine_tissue = (wm + gm) >= TISSUE_MIN
        if compartments is not None and reachable is not None:
            fine_tissue &= np.isin(compartments, sorted(reachable))
        concs: list[NDArray[np.float32]] = []
        labs: list[NDArray[np.uint8]] = []
        running = np.zeros(fine_shape, dtype=np.float32)
        for age in ages:
            coarse = _state_at(states, age)
            fine = _linear_resample(coarse, fine_shape)
            fine = np.where(fine_tissue, np.clip(fine, 0.0, 1.0), 0.0).astype(np.float32)
            # States are interpolated in time; the running maximum guarantees nesting over time.
            running = np.maximum(running, fine)
            concs.append(running.copy())
            labs.append(
                _labels(running, grade, rim_map, (spacing[0], spacing[1], spacing[2]), flair_thr, core_thr)
            )
        return concs, labs, ages

    concs, labs, ages = render(crossing)
    # One secant correction so the diameter on the crop grid (not the coarse grid) matches.
    fine_diam = longest_diameter_mm(labs[-1] > 0, spacing_mm)
    if abs(fine_diam - final_diameter_mm) > 0.02 * final_diameter_mm:
        rate = _diameter_rate(history, crossing)
        if rate > 0:
            lo = states[0][0] + duration
            t_new = float(np.clip(crossing + (final_diameter_mm - fine_diam) / rate, lo, t))
            concs, labs, ages = render(t_new)
    return GliomaGrowth(concs, labs, ages, rim_mm)


def _state_at(states: list[tuple[float, NDArray[np.float32]]], age: float) -> NDArray[np.float32]:
    """Density at ``age`` days: linear interpolation between the saved states around it."""
    times = [s[0] for s in states]
    k = int(np.searchsorted(times, age, side="right")) - 1
    k = min(max(k, 0), len(states) - 2)
    (t0, c0), (t1, c1) = states[k], states[k + 1]
    w = np.float32(np.clip((age - t0) / (t1 - t0), 0.0, 1.0))
    return (c0 * (1 - w) + c1 * w).astype(np.float32)


def _diameter_rate(history: list[tuple[float, float]], t: float) -> float:
    """Growth of the coarse-grid diameter around ``t``, mm/day (least squares over nearby states)."""
    ts = np.asarray([h[0] for h in history])
    ds = np.asarray([h[1] for h in history])
    near = np.argsort(np.abs(ts - t))[:6]
    if len(near) < 2:
        return 0.0
    return float(np.polyfit(ts[near], ds[near], 1)[0])


def grow_front(
    initial: NDArray[np.float32],
    wm: NDArray[np.float32],
    gm: NDArray[np.float32],
    spacing_mm: tuple[float, float, float],
    rho_per_day: float,
    d_white_mm2_per_day: float,
    scales: list[float],
    compartments: NDArray[np.int8] | None = None,
    bridges: NDArray[np.bool_] | None = None,
    reachable: frozenset[int] | None = None,
) -> list[NDArray[np.bool_]]:
    """Grow an existing tumour by the reaction–diffusion model; its whole tumour when its longest
    diameter first reaches each of ``scales`` × its initial one.

    The density starts at ``initial`` (the lesion's occupancy on the crop, 0–1: fully infiltrated
    inside its mask) and follows the equation of :func:`simulate_glioma` with the same tissue maps,
    white-matter preference, tract anisotropy and barriers (falx, tentorium, CSF), without its random
    heterogeneity or dominant axis (an existing lesion brings its own shape). Its front therefore
    runs out along white matter and stops at the ventricles and the falx. Time does not matter
    here, only where the front goes: the caller's growth law sets the sizes.

    Args:
        initial: the lesion's occupancy on the crop (same shape as the tissue maps), 0–1.
        wm, gm: tissue probabilities on the crop, 0–1.
        spacing_mm: voxel size of the crop along each array axis, mm.
        rho_per_day, d_white_mm2_per_day: ρ (1/day) and D in white matter (mm²/day); only
            their ratio (the front's width) shapes the result.
        scales: requested longest diameters as multiples of the initial one (≤ 1: the initial state).
        compartments, bridges, reachable: as in :func:`simulate_glioma`.

    Returns:
        One crop mask per scale: density ≥ :data:`FLAIR_THRESHOLD` in reachable tissue, united with
        the initial mask (occupancy ≥ 0.5). Masks of increasing scales nest.

    Raises:
        InvalidInputError: inconsistent arrays or parameters.
        LesionDoesNotFitError: the front reaches the crop's edge or fills its brain region first.
    """
    wm = np.asarray(wm, dtype=np.float32)
    gm = np.asarray(gm, dtype=np.float32)
    if wm.ndim != 3 or wm.shape != gm.shape or np.shape(initial) != wm.shape:
        raise InvalidInputError("initial, wm and gm must be 3D arrays of the same shape")
    if rho_per_day <= 0 or d_white_mm2_per_day <= 0 or min(spacing_mm) <= 0:
        raise InvalidInputError("rho, D_white and the voxel spacing must be positive")
    fine_shape = wm.shape
    c_shape, h, wm_c, gm_c, tissue = _coarse_grid(wm, gm, np.asarray(spacing_mm, dtype=np.float64))
    fine_tissue = (wm + gm) >= TISSUE_MIN
    comp_c = bridge_c = None
    if compartments is not None:
        comp_c = _nearest_resample(np.asarray(compartments, dtype=np.int8), c_shape)
        if bridges is not None:
            bridge_c = _nearest_resample(np.asarray(bridges, dtype=bool), c_shape)
        if reachable is not None:
            tissue &= np.isin(comp_c, sorted(reachable))
            fine_tissue &= np.isin(compartments, sorted(reachable))
    start = np.asarray(initial, dtype=np.float32) >= 0.5
    c = np.where(tissue, np.clip(_downsample(np.asarray(initial, np.float32), c_shape), 0.0, 1.0), 0.0)
    c = c.astype(np.float32)

    d_map = np.where(tissue, d_white_mm2_per_day * (wm_c + GREY_TO_WHITE_D * gm_c), 0.0).astype(np.float32)
    conductances = _face_conductances(d_map, h, comp_c, bridge_c, _tract_factors(wm_c, h))
    k_dt, dt, n_sub, check_days = _time_step(conductances, c_shape, float(d_map.max()), rho_per_day, h)
    growth = np.float32(math.exp(rho_per_day * dt))

    # Diameters are compared on the coarse grid, less the bias it has on the initial lesion
    d0 = longest_diameter_mm(start, spacing_mm)
    bias = longest_diameter_mm(c >= FLAIR_THRESHOLD, tuple(h)) - d0
    targets = sorted({s for s in scales if s > 1.0})
    found: dict[float, NDArray[np.float32]] = {}
    region_size = int(np.count_nonzero(tissue))
    v_grey = 2.0 * math.sqrt(GREY_TO_WHITE_D * d_white_mm2_per_day * rho_per_day)
    t_max = 2.0 * d0 * (max(targets, default=1.0) - 1.0) / v_grey + 20.0 / rho_per_day
    t, prev, d_prev = 0.0, c, d0
    while len(found) < len(targets):
        for _ in range(n_sub):
            c = _diffuse(c, k_dt)
            c = c * growth / (1.0 + c * (growth - 1.0))
        t += check_days
        visible = c >= FLAIR_THRESHOLD
        d = longest_diameter_mm(visible, tuple(h)) - bias
        for s in targets:
            if s not in found and d >= s * d0:
                w = np.float32(np.clip((s * d0 - d_prev) / max(d - d_prev, 1e-9), 0.0, 1.0))
                found[s] = (prev * (1 - w) + c * w).astype(np.float32)
        if len(found) == len(targets):
            break
        if _touches_border(visible) or int(visible.sum()) >= 0.98 * region_size or t > t_max:
            raise LesionDoesNotFitError(
                f"the glioma cannot grow to {max(targets):.2f}× its size here: its front reaches the "
                "edge of the brain region around it first"
            )
        prev, d_prev = c, d
    out: list[NDArray[np.bool_]] = []
    for s in scales:
        if s in found:
            fine = _linear_resample(found[s], fine_shape)
            out.append(((fine >= FLAIR_THRESHOLD) & fine_tissue) | start)
        else:
            out.append(start.copy())
    return out
