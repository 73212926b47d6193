"""Fisher–Kolmogorov glioma growth on small synthetic brain phantoms (tissue probability maps)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.growth.glioma import (
    TISSUE_MIN,
    GliomaGrowth,
    _nearest_tissue_cell,
    grow_front,
    longest_diameter_mm,
    simulate_glioma,
)
from longisynth.spec import DEFAULT_D_WHITE_MM2_PER_DAY, DEFAULT_RHO_PER_DAY, GliomaGrade

SPACING = (1.0, 1.0, 1.0)
SEED = (40.0, 28.0, 40.0)  # 12 mm from the centre, in white matter, 6 mm from the ventricle
HGG_TIMES = [0.0, 60.0, 120.0, 180.0]
LGG_TIMES = [0.0, 365.0, 730.0]
# BraTS-like high grade (front width sqrt(D/rho) ~ 0.9 mm): see the report on the spec defaults.
HGG_RHO, HGG_D = 0.012, 0.01


def brain_phantom(
    n: int = 80, r_brain_mm: float = 37.0, r_wm_mm: float = 30.0
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Spherical brain: white matter core, grey-matter shell, CSF outside and in a ventricle (1 mm)."""
    g = np.arange(n) - (n - 1) / 2
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    r = np.sqrt(x**2 + y**2 + z**2)
    wm = np.clip(r_wm_mm - r + 0.5, 0, 1)
    brain = np.clip(r_brain_mm - r + 0.5, 0, 1)
    gm = brain - wm
    ventricle = (x / 5) ** 2 + ((y - 8) / 12) ** 2 + (z / 5) ** 2 < 1
    wm[ventricle] = 0
    gm[ventricle] = 0
    csf = 1 - wm - gm
    return wm.astype(np.float32), gm.astype(np.float32), csf.astype(np.float32)


@pytest.fixture(scope="module")
def phantom() -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    return brain_phantom()


@pytest.fixture(scope="module")
def hgg(phantom: tuple[NDArray[np.float32], ...]) -> GliomaGrowth:
    wm, gm, csf = phantom
    return simulate_glioma(
        wm,
        gm,
        csf,
        SPACING,
        SEED,
        GliomaGrade.HIGH,
        HGG_RHO,
        HGG_D,
        HGG_TIMES,
        40.0,
        np.random.default_rng(7),
    )


@pytest.fixture(scope="module")
def lgg(phantom: tuple[NDArray[np.float32], ...]) -> GliomaGrowth:
    wm, gm, csf = phantom
    return simulate_glioma(
        wm,
        gm,
        csf,
        SPACING,
        SEED,
        GliomaGrade.LOW,
        DEFAULT_RHO_PER_DAY[GliomaGrade.LOW],
        DEFAULT_D_WHITE_MM2_PER_DAY[GliomaGrade.LOW],
        LGG_TIMES,
        30.0,
        np.random.default_rng(7),
    )


# --- longest diameter ---------------------------------------------------------------------------


def test_diameter_of_a_bar_is_its_length_with_anisotropic_spacing() -> None:
    mask = np.zeros((12, 5, 5), dtype=bool)
    mask[1:11, 2, 2] = True
    assert longest_diameter_mm(mask, (0.5, 1.0, 2.0)) == pytest.approx(5.0)
    assert longest_diameter_mm(np.zeros((4, 4, 4), dtype=bool), (1.0, 1.0, 1.0)) == 0.0
    single = np.zeros((4, 4, 4), dtype=bool)
    single[1, 1, 1] = True
    assert longest_diameter_mm(single, (0.5, 0.7, 2.0)) == pytest.approx(2.0)


def test_diameter_of_a_ball_and_against_brute_force() -> None:
    g = np.arange(41) - 20
    x, y, z = np.meshgrid(g * 0.8, g * 0.8, g * 1.5, indexing="ij")
    ball = x**2 + y**2 + z**2 <= 12.0**2
    assert longest_diameter_mm(ball, (0.8, 0.8, 1.5)) == pytest.approx(24.0, abs=1.6)
    blob = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((15, 15, 15)), 2) > 0.05
    pts = np.argwhere(blob) * np.array([1.0, 2.0, 0.5])
    brute = max(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(pts, 2))
    got = longest_diameter_mm(blob, (1.0, 2.0, 0.5))
    # plus one voxel's extent along the diameter, at most the voxel's diagonal
    assert brute < got <= brute + float(np.linalg.norm([1.0, 2.0, 0.5]))


# --- the simulation -------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["hgg", "lgg"])
def test_final_diameter_matches_request(which: str, request: pytest.FixtureRequest) -> None:
    res: GliomaGrowth = request.getfixturevalue(which)
    target = 40.0 if which == "hgg" else 30.0
    assert longest_diameter_mm(res.labels[-1] > 0, SPACING) == pytest.approx(target, rel=0.10)


@pytest.mark.parametrize("which", ["hgg", "lgg"])
def test_masks_nest_and_density_is_bounded(which: str, request: pytest.FixtureRequest) -> None:
    res: GliomaGrowth = request.getfixturevalue(which)
    volumes = [int(np.sum(lab > 0)) for lab in res.labels]
    assert volumes[0] > 0
    for a, b in itertools.pairwise(res.labels):
        assert not np.any((a > 0) & (b == 0))  # whole tumour at t is inside the tumour at t+1
    assert all(v2 > v1 for v1, v2 in itertools.pairwise(volumes))
    for c in res.concentration:
        assert c.dtype == np.float32 and np.isfinite(c).all()
        assert c.min() >= 0.0 and c.max() <= 1.0
    assert np.diff(res.ages_days) == pytest.approx(np.diff(HGG_TIMES if which == "hgg" else LGG_TIMES))
    assert res.ages_days[0] > 0


def test_no_flux_into_csf(hgg: GliomaGrowth, phantom: tuple[NDArray[np.float32], ...]) -> None:
    wm, gm, _ = phantom
    csf_only = (wm + gm) < TISSUE_MIN
    for c in hgg.concentration:
        assert np.all(c[csf_only] == 0.0)
        assert np.all(hgg.labels[-1][csf_only] == 0)


def test_csf_gap_stops_the_tumour() -> None:
    """Two slabs of white matter separated by 6 mm of CSF: the far slab stays exactly tumour-free."""
    wm = np.zeros((60, 50, 50), dtype=np.float32)
    wm[:30] = 1.0
    wm[36:] = 1.0
    gm = np.zeros_like(wm)
    csf = 1.0 - wm
    res = simulate_glioma(
        wm,
        gm,
        csf,
        SPACING,
        (20.0, 25.0, 25.0),
        "high",
        0.012,
        0.01,
        [0.0, 30.0],
        24.0,
        np.random.default_rng(1),
    )
    assert np.any(res.labels[-1][:30] > 0)
    assert np.all(res.concentration[-1][30:] == 0.0)


def test_high_grade_has_enhancing_rim_around_necrosis(
    hgg: GliomaGrowth, phantom: tuple[NDArray[np.float32], ...]
) -> None:
    last = hgg.labels[-1]
    counts = np.bincount(last.ravel(), minlength=4)
    assert counts[2] > 0 and counts[3] > 0
    # Necrosis (when this 40 mm tumour has any: its rim is 3–7 mm thick and varies in space) is
    # wrapped by enhancing tumour: its 1-voxel neighbourhood is only necrosis/enhancing.
    shell = ndimage.binary_dilation(last == 1) & (last != 1)
    assert set(np.unique(last[shell])) <= {3}
    # Oedema wraps the enhancing core, except where it abuts CSF (the ventricle wall stops the cells).
    wm, gm, _ = phantom
    healthy_tissue = (last == 0) & ((wm + gm) >= TISSUE_MIN)
    assert not np.any(ndimage.binary_dilation(healthy_tissue) & (last == 3))
    assert hgg.rim_thickness_mm > 2.0


def test_high_grade_necrosis_is_common_and_irregular(phantom: tuple[NDArray[np.float32], ...]) -> None:
    """Over seeds, most 40 mm high-grade tumours have a necrotic core, and the enhancing rim around
    it is irregular (its thickness varies), not a uniform shell."""
    wm, gm, csf = phantom
    with_necrosis, spreads = 0, []
    for seed in range(6):
        res = simulate_glioma(
            wm, gm, csf, SPACING, SEED, "high", HGG_RHO, HGG_D, [0.0, 90.0], 40.0, np.random.default_rng(seed)
        )
        last = res.labels[-1]
        if np.any(last == 1):
            with_necrosis += 1
            core = (last == 1) | (last == 3)
            depth = ndimage.distance_transform_edt(core)
            inner = (last == 3) & ndimage.binary_dilation(last == 1)
            spreads.append(float(np.std(depth[inner])))
    assert with_necrosis >= 4
    assert np.median(spreads) > 0.5  # mm: the rim's inner surface is not at one depth


def test_low_grade_has_no_enhancement(lgg: GliomaGrowth) -> None:
    assert all(not np.any(lab == 3) for lab in lgg.labels)


def test_low_grade_defaults_grow_in_the_clinical_band(lgg: GliomaGrowth) -> None:
    """Mandonnet 2003: 4.1 mm/year; Pallud 2013 bands: most LGG between 2 and 8 mm/year."""
    d = [longest_diameter_mm(lab > 0, SPACING) for lab in lgg.labels]
    rate_mm_per_year = (d[-1] - d[0]) / (LGG_TIMES[-1] - LGG_TIMES[0]) * 365.25
    assert 2.0 <= rate_mm_per_year <= 8.0


def test_deterministic_per_seed(phantom: tuple[NDArray[np.float32], ...], hgg: GliomaGrowth) -> None:
    wm, gm, csf = phantom
    args = (wm, gm, csf, SPACING, SEED, GliomaGrade.HIGH, HGG_RHO, HGG_D, HGG_TIMES, 40.0)
    again = simulate_glioma(*args, np.random.default_rng(7))
    other = simulate_glioma(*args, np.random.default_rng(8))
    for a, b in zip(hgg.concentration, again.concentration, strict=True):
        assert np.array_equal(a, b)
    assert again.ages_days == hgg.ages_days
    assert not np.array_equal(hgg.labels[-1], other.labels[-1])


def test_does_not_fit(phantom: tuple[NDArray[np.float32], ...]) -> None:
    wm, gm, csf = phantom
    args = (wm, gm, csf, SPACING)
    with pytest.raises(LesionDoesNotFitError, match="80 mm glioma does not fit"):
        simulate_glioma(*args, SEED, "high", HGG_RHO, HGG_D, [0.0, 90.0], 80.0, np.random.default_rng(0))
    with pytest.raises(LesionDoesNotFitError, match="CSF"):
        simulate_glioma(
            *args, (39.5, 47.5, 39.5), "high", HGG_RHO, HGG_D, [0.0], 30.0, np.random.default_rng(0)
        )
    with pytest.raises(LesionDoesNotFitError, match="study lasts"):
        simulate_glioma(*args, SEED, "high", HGG_RHO, HGG_D, [0.0, 3000.0], 20.0, np.random.default_rng(0))
    with pytest.raises(InvalidInputError):
        simulate_glioma(*args, SEED, "high", HGG_RHO, HGG_D, [10.0, 5.0], 20.0, np.random.default_rng(0))


def test_a_seed_whose_coarse_cell_is_csf_moves_to_the_next_tissue_cell() -> None:
    # A seed placed in tissue beside a sulcus: the simulation grid's cell averages both and may be
    # CSF; the tumour then starts in the adjacent tissue cell of the seed's own compartment.
    tissue = np.zeros((5, 5, 5), dtype=bool)
    tissue[3, 2, 2] = tissue[1, 2, 2] = True
    comp = np.ones((5, 5, 5), dtype=np.int8)
    comp[3:] = 2
    fine_comp = np.repeat(np.repeat(np.repeat(comp, 2, 0), 2, 1), 2, 2)
    seed_c = np.array([2.2, 2.0, 2.0])  # nearer to cell 3 than to cell 1
    assert _nearest_tissue_cell(tissue, None, seed_c, (2, 2, 2), None, (4.4, 4.0, 4.0)) == (3, 2, 2)
    # in compartment 1 (left of the falx), the nearer cell across it is not taken
    got = _nearest_tissue_cell(tissue, comp, seed_c, (2, 2, 2), fine_comp, (4.4, 4.0, 4.0))
    assert got == (1, 2, 2)
    with pytest.raises(LesionDoesNotFitError, match="CSF"):
        _nearest_tissue_cell(np.zeros((5, 5, 5), dtype=bool), None, seed_c, (2, 2, 2), None, (4.4, 4.0, 4.0))


def _slab_tissues(n: int = 60) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int8]]:
    """White matter for x < n/2, grey matter for x ≥ n/2; two compartments split at y = n/2 (a falx)."""
    wm = np.zeros((n, n, n), dtype=np.float32)
    wm[: n // 2] = 1.0
    gm = (1.0 - wm).astype(np.float32)
    compartments = np.ones((n, n, n), dtype=np.int8)
    compartments[:, n // 2 :] = 2
    return wm, gm, compartments


def _ball(n: int, center: tuple[float, float, float], radius: float) -> NDArray[np.float32]:
    g = np.indices((n, n, n)).astype(np.float64)
    r = np.sqrt(sum((g[k] - center[k]) ** 2 for k in range(3)))
    return (r <= radius).astype(np.float32)


def test_grow_front_runs_along_white_matter_and_stops_at_the_falx() -> None:
    """A ball on the white/grey boundary, against the falx: the grown masks nest, reach the requested
    diameters, extend much further into white than into grey matter, and none crosses the falx."""
    n = 60
    wm, gm, compartments = _slab_tissues(n)
    initial = _ball(n, (30.0, 24.0, 30.0), 5.0)
    scales = [1.0, 1.6, 2.2]
    masks = grow_front(
        initial, wm, gm, SPACING, HGG_RHO, 0.05, scales, compartments=compartments, reachable=frozenset({1})
    )
    assert np.array_equal(masks[0], initial >= 0.5)
    for a, b in itertools.pairwise(masks):
        assert np.all(b[a])  # nested
    d0 = longest_diameter_mm(masks[0], SPACING)
    for s, m in zip(scales[1:], masks[1:], strict=True):
        assert longest_diameter_mm(m, SPACING) == pytest.approx(s * d0, rel=0.12)
    last = masks[-1]
    assert not last[:, n // 2 :].any()  # the falx is a barrier
    x0 = np.nonzero(masks[0].any(axis=(1, 2)))[0]
    xs = np.nonzero(last.any(axis=(1, 2)))[0]
    into_white, into_grey = int(x0.min() - xs.min()), int(xs.max() - x0.max())  # mm beyond the start
    assert into_white >= 2 * max(into_grey, 1)


def test_grow_front_refuses_what_cannot_grow() -> None:
    n = 30
    wm, gm, _ = _slab_tissues(n)
    initial = _ball(n, (15.0, 15.0, 15.0), 6.0)
    with pytest.raises(LesionDoesNotFitError, match="front reaches the edge"):
        grow_front(initial, wm, gm, SPACING, HGG_RHO, 0.05, [4.0])
    with pytest.raises(InvalidInputError):
        grow_front(initial[:-1], wm, gm, SPACING, HGG_RHO, 0.05, [1.5])
