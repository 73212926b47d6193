"""CT appearance of nodules (longisynth.appearance.ct): HU priors, partial volume, matched noise.

The real-scan test uses ``totalseg_chest_ct_crop.nii.gz`` from the TotalSegmentator test
reference files (Apache-2.0; Wasserthal et al., Radiology: AI 2023), see shared/data/README.md.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from longisynth.appearance.ct import (
    GGO_MEAN_HU,
    LABEL_GROUND_GLASS,
    LABEL_SOLID,
    READER_CONTOUR_FRACTION,
    TEXTURE_KERNEL_MM,
    NoduleAppearance,
    calcification_occupancy,
    nodule_labels,
    nodule_texture,
    render_nodule,
    sample_appearance,
    sample_calcification,
)
from longisynth.appearance.noise import NoiseModel, estimate_noise, synthesize_noise
from longisynth.geometry import Geometry
from longisynth.growth.nodule import NoduleGrowth, grow_nodule, sample_nodule_shape, solid_fraction_for
from longisynth.spec import Calcification, NoduleType, ShapeKind
from tests.conftest import shared_file

SPACING = (0.8, 0.8, 1.0)
NOISE = NoiseModel(sigma=20.0, kernel_mm=(0.6, 0.6, 0.5))
CUBE = np.ones((3, 3, 3), dtype=bool)


def _lung_crop(seed: int, shape: tuple[int, int, int] = (41, 41, 33)) -> np.ndarray:
    """Synthetic lung parenchyma: −850 HU (docs/design.md §3.1: −900…−800) with the test noise."""
    return (-850.0 + synthesize_noise(shape, SPACING, NOISE, np.random.default_rng(seed))).astype(np.float32)


def _grow(
    nodule_type: NoduleType, diameter_mm: float, crop: tuple[int, int, int] = (41, 41, 33)
) -> NoduleGrowth:
    shape = sample_nodule_shape(ShapeKind.SMOOTH, np.random.default_rng(1))
    center = ((crop[0] - 1) / 2, (crop[1] - 1) / 2, (crop[2] - 1) / 2)
    return grow_nodule(
        crop, SPACING, center, [diameter_mm], shape, solid_fraction=solid_fraction_for(nodule_type)
    )


def _residual(x: np.ndarray) -> np.ndarray:
    """Image minus its 3×3×3 local mean: removes anatomy and the smooth texture, keeps noise."""
    return x - ndimage.uniform_filter(x, size=3, mode="nearest")


def _lag1(r: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation of ``r`` along each array axis, over pairs inside ``mask``."""
    out = []
    for ax in range(3):
        a, b = np.take(r, range(r.shape[ax] - 1), axis=ax), np.take(r, range(1, r.shape[ax]), axis=ax)
        m = np.take(mask, range(r.shape[ax] - 1), axis=ax) & np.take(mask, range(1, r.shape[ax]), axis=ax)
        out.append(float(np.sum(a[m] * b[m]) / np.sum(a[m] ** 2)))
    return np.array(out)


def test_texture_is_smooth_unit_and_deterministic() -> None:
    t1 = nodule_texture((30, 30, 30), SPACING, np.random.default_rng(4))
    t2 = nodule_texture((30, 30, 30), SPACING, np.random.default_rng(4))
    assert np.array_equal(t1, t2)
    assert t1.dtype == np.float32
    # unit std on a fine grid, a little less where a voxel averages the fine-grained texture
    k = TEXTURE_KERNEL_MM
    averaged = np.prod([(1 + s**2 / (24 * k**2)) ** -0.25 for s in SPACING])
    assert abs(float(t1.mean())) < 1e-4 and float(t1.std()) == pytest.approx(averaged, abs=1e-4)
    assert 0.9 < averaged < 1.0
    coarse = nodule_texture((20, 20, 20), (3.0, 3.0, 3.0), np.random.default_rng(4))
    assert float(coarse.std()) < 0.9 * float(t1.std())
    # correlated over a voxel (Gaussian covariance of std k·√2), not noise
    expected = np.exp(-(np.asarray(SPACING) ** 2) / (4 * k**2))
    assert np.all(_lag1(t1, np.ones(t1.shape, dtype=bool)) > expected - 0.1)
    assert not np.array_equal(t1, nodule_texture((30, 30, 30), SPACING, np.random.default_rng(5)))


@pytest.mark.parametrize("nodule_type", list(NoduleType))
def test_identity_outside_and_determinism(nodule_type: NoduleType) -> None:
    bg = _lung_crop(0)
    g = _grow(nodule_type, 14.0)
    tex = nodule_texture(bg.shape, SPACING, np.random.default_rng(2))
    out = render_nodule(
        bg, g.occupancy[0], g.solid_occupancy[0], nodule_type, NOISE, SPACING, tex, np.random.default_rng(3)
    )
    again = render_nodule(
        bg, g.occupancy[0], g.solid_occupancy[0], nodule_type, NOISE, SPACING, tex, np.random.default_rng(3)
    )
    outside = g.occupancy[0] == 0
    assert out.dtype == np.float32
    assert np.array_equal(out[outside].view(np.uint32), bg[outside].view(np.uint32))  # bit for bit
    assert np.array_equal(out, again)
    assert not np.array_equal(out[~outside], bg[~outside])


def test_hu_priors_per_type() -> None:
    bg = _lung_crop(0)
    tex = nodule_texture(bg.shape, SPACING, np.random.default_rng(2))

    def render(nodule_type: NoduleType, diameter_mm: float) -> tuple[np.ndarray, NoduleGrowth]:
        g = _grow(nodule_type, diameter_mm)
        out = render_nodule(
            bg,
            g.occupancy[0],
            g.solid_occupancy[0],
            nodule_type,
            NOISE,
            SPACING,
            tex,
            np.random.default_rng(9),
        )
        return out, g

    # Solid ≈ soft tissue, 0…+60 HU unenhanced (docs/design.md §3.1).
    out, g = render(NoduleType.SOLID, 16.0)
    core = g.occupancy[0] == 1
    assert 0.0 <= out[core].mean() <= 60.0
    # Ground glass −750…−300 HU; pure GGO ≤ 1 cm has mean ≤ −600 HU (PMC3388248).
    out, g = render(NoduleType.GROUND_GLASS, 10.0)
    mask = g.occupancy[0] >= 0.5
    assert -750.0 <= out[mask].mean() <= -600.0
    assert out[g.occupancy[0] == 1].mean() == pytest.approx(GGO_MEAN_HU, abs=30.0)
    # Part-solid: core above the −160 HU solid threshold (Lee et al. 2018), ground-glass halo.
    out, g = render(NoduleType.PART_SOLID, 18.0)
    labels = nodule_labels(g.occupancy[0], g.solid_occupancy[0])
    assert out[labels == LABEL_SOLID].mean() > -160.0
    assert out[g.solid_occupancy[0] == 1].mean() > -30.0
    halo = (labels == LABEL_GROUND_GLASS) & ndimage.binary_erosion(g.occupancy[0] == 1, CUBE)
    halo &= ~ndimage.binary_dilation(g.solid_occupancy[0] > 0, CUBE)
    assert halo.sum() > 15  # an ovoid 18 mm nodule: a thin halo on the crop's 1.4 mm voxels
    assert -750.0 <= out[halo].mean() <= -450.0


def test_labels() -> None:
    occ = np.array([0.0, 0.15, 0.4, 0.5, 0.9, 1.0, 1.0], dtype=np.float32)
    solid = np.array([0.0, 0.0, 0.0, 0.0, 0.1, 0.5, 1.0], dtype=np.float32)
    # the reader convention (default): a contour where the visible nodule fades to a fifth
    assert READER_CONTOUR_FRACTION == 0.2
    assert nodule_labels(occ, solid).tolist() == [0, 0, 2, 2, 2, 1, 1]
    assert nodule_labels(occ, solid, threshold=0.5).tolist() == [0, 0, 0, 2, 2, 1, 1]
    allowed = np.array([True] * 6 + [False])
    assert nodule_labels(occ, solid, allowed=allowed).tolist() == [0, 0, 2, 2, 2, 1, 0]
    g = _grow(NoduleType.PART_SOLID, 14.0)
    labels = nodule_labels(g.occupancy[0], g.solid_occupancy[0])
    assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 1, 2}


def test_noise_level_inside_lesion_matches_model() -> None:
    """Flat background: noise std at o = 1 equals the model's sigma, at o = 0.5 as well."""
    bg = _lung_crop(0, (48, 48, 48))
    model_resid = _residual(synthesize_noise(bg.shape, SPACING, NOISE, np.random.default_rng(1))).std()
    for occ_value in (1.0, 0.5):
        occ = np.full(bg.shape, occ_value, dtype=np.float32)
        zero = np.zeros(bg.shape, dtype=np.float32)
        out = render_nodule(bg, occ, occ, NoduleType.SOLID, NOISE, SPACING, zero, np.random.default_rng(7))
        assert _residual(out)[2:-2, 2:-2, 2:-2].std() == pytest.approx(model_resid, rel=0.05)


def test_noise_in_nodule_core_matches_real_soft_tissue() -> None:
    """Solid nodule pasted in the lung of a real contrast chest CT (LPS, 1.5 mm).

    CT noise is not stationary (it grows with the attenuation along the rays), so the reference
    is the soft tissue (−100…150 HU, edges removed) in the axial slab of the nodule.
    """
    img = nib.load(shared_file("totalseg_chest_ct_crop.nii.gz"))
    assert isinstance(img, nib.Nifti1Image)
    hu = np.asarray(img.dataobj).astype(np.float32)
    geom = Geometry(img.affine, hu.shape)
    spacing = geom.spacing_mm
    soft = (hu > -100) & (hu < 150)
    model = estimate_noise(hu, spacing, soft)
    assert 15.0 < model.sigma < 60.0

    # The deepest point of the lung, far enough from the volume's borders for the crop.
    half = 16
    lung = np.pad(hu < -600, 1)
    depth_mm = ndimage.distance_transform_edt(lung, sampling=spacing)[1:-1, 1:-1, 1:-1]
    inner = np.zeros_like(depth_mm)
    inner[half:-half, half:-half, half:-half] = depth_mm[half:-half, half:-half, half:-half]
    center = np.unravel_index(int(np.argmax(inner)), inner.shape)
    assert inner[center] > 10.0
    box = tuple(slice(c - half, c + half + 1) for c in center)
    crop = hu[box]

    shape = sample_nodule_shape(ShapeKind.SMOOTH, np.random.default_rng(0))
    growth = grow_nodule(crop.shape, spacing, (half, half, half), [22.0] * 4, shape)
    rng = np.random.default_rng(1)
    texture = nodule_texture(crop.shape, spacing, rng)
    core = ndimage.binary_erosion(growth.occupancy[0] == 1, CUBE)
    assert core.sum() > 300
    residuals, lags = [], []
    for occ, solid in zip(growth.occupancy, growth.solid_occupancy, strict=True):  # 4 noise draws
        # the nodule's own heterogeneity is structure (calibrated separately), not noise: off here
        flat = NoduleAppearance(solid_texture_hu=0.0)
        out = render_nodule(crop, occ, solid, NoduleType.SOLID, model, spacing, texture, rng, flat)
        r = _residual(out)
        residuals.append(r[core])
        lags.append(_lag1(r, core))
    core_sd = float(np.concatenate(residuals).std())

    r_real = _residual(hu)
    ref = ndimage.binary_erosion(soft, CUBE, iterations=2)
    local_sd = np.sqrt(ndimage.uniform_filter(r_real**2, 5))
    ref &= local_sd <= 1.5 * np.median(local_sd[ref])
    sup_axis, _ = geom.world_axis_index(2)
    slab = np.zeros(hu.shape, dtype=bool)
    lo = max(0, center[sup_axis] - 15)
    slab[(slice(None),) * sup_axis + (slice(lo, center[sup_axis] + 16),)] = True
    ref &= slab
    assert ref.sum() > 5000
    ref_sd = float(r_real[ref].std())
    assert core_sd == pytest.approx(ref_sd, rel=0.25)
    # The model's own prediction through the same detrending (checks the noise gain exactly).
    synth = _residual(synthesize_noise((48, 48, 48), spacing, model, np.random.default_rng(2)))
    assert core_sd == pytest.approx(float(synth[2:-2, 2:-2, 2:-2].std()), rel=0.12)
    # Spatial correlation: similar to real tissue on average over the axes.
    assert np.mean(lags) == pytest.approx(float(np.mean(_lag1(r_real, ref))), abs=0.2)


def test_drawn_priors_stay_in_the_real_ranges() -> None:
    """Per-nodule HU priors are drawn, deterministic per generator, and within the real ranges."""
    looks = [sample_appearance(np.random.default_rng(s)) for s in range(400)]
    solid = np.array([a.solid_mean_hu for a in looks])
    ggo = np.array([a.ggo_mean_hu for a in looks])
    assert np.all((solid >= -20) & (solid <= 100)) and np.all((ggo >= -750) & (ggo <= -450))
    # the LIDC-IDRI core median of solid nodules (+52 HU, quartiles +28…+68) is inside our quartiles
    assert np.percentile(solid, 25) < 52 < np.percentile(solid, 75)
    assert len({a.solid_texture_hu for a in looks}) > 350  # differs per nodule (a few sit on a bound)
    assert sample_appearance(np.random.default_rng(3)) == sample_appearance(np.random.default_rng(3))


def test_vessels_stay_visible_through_ground_glass() -> None:
    """Ground glass fills air spaces: a vessel crossing it keeps its density; lung under it rises."""
    bg = _lung_crop(0)
    vessel = np.zeros(bg.shape, dtype=bool)
    vessel[:, 19:22, 15:18] = True  # a 2.4 mm vessel through the middle
    bg[vessel] = 40.0
    g = _grow(NoduleType.GROUND_GLASS, 14.0)
    tex = nodule_texture(bg.shape, SPACING, np.random.default_rng(2))
    out = render_nodule(
        bg,
        g.occupancy[0],
        g.solid_occupancy[0],
        NoduleType.GROUND_GLASS,
        NOISE,
        SPACING,
        tex,
        np.random.default_rng(3),
    )
    core = g.occupancy[0] == 1
    assert out[core & vessel].mean() > -100.0  # the vessel (≈ +40 HU) shows through
    assert -750.0 < out[core & ~vessel].mean() < -450.0  # the parenchyma became ground glass


@pytest.mark.parametrize("pattern", [Calcification.CENTRAL, Calcification.LAMINATED, Calcification.POPCORN])
def test_calcification_patterns(pattern: Calcification) -> None:
    """Calcified foci (≥ 200 HU) inside the nodule, in the pattern's place; none by default."""
    assert sample_calcification(Calcification.NONE, np.random.default_rng(0)) is None
    foci = sample_calcification(pattern, np.random.default_rng(1))
    assert foci is not None and foci.pattern == pattern
    bg = _lung_crop(0)
    g = _grow(NoduleType.SOLID, 16.0)
    center = np.array([20.0, 20.0, 16.0])
    calc = np.minimum(calcification_occupancy(foci, bg.shape, SPACING, center, g.scale_mm[0]), g.occupancy[0])
    assert calc.max() == pytest.approx(1.0) and not np.any(calc > g.occupancy[0])
    out = render_nodule(
        bg,
        g.occupancy[0],
        g.solid_occupancy[0],
        NoduleType.SOLID,
        NOISE,
        SPACING,
        np.zeros(bg.shape, np.float32),
        np.random.default_rng(3),
        calcified=calc,
    )
    assert out[calc == 1].mean() > 300.0 and out[(g.occupancy[0] == 1) & (calc == 0)].mean() < 100.0
    at_centre = calc[20, 20, 16]
    if pattern == Calcification.LAMINATED:  # a nidus and rings with soft tissue between them
        grid = np.indices(bg.shape).astype(float) - center[:, None, None, None]
        r = np.sqrt(((grid * np.asarray(SPACING)[:, None, None, None]) ** 2).sum(axis=0)) / g.scale_mm[0]
        assert at_centre == 1 and calc[(r > 0.28) & (r < 0.32)].mean() < 0.2
        assert calc[(r > 0.64) & (r < 0.7)].mean() > 0.5
    elif pattern == Calcification.CENTRAL:
        assert at_centre == 1


def test_noise_estimate_on_an_exactly_flat_background_is_clean() -> None:
    """A skull-stripped MRI's zero background next to noisy tissue: the estimator neither warns
    (no square root of a rounding-error negative) nor finds noise in the flat part."""
    import warnings

    rng = np.random.default_rng(0)
    img = np.zeros((60, 60, 60), dtype=np.float32)
    img[:, :30] = 100.0 + rng.normal(0.0, 5.0, (60, 30, 60)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = estimate_noise(img, (1.0, 1.0, 1.0), np.ones(img.shape, dtype=bool))
    assert 0.0 <= model.sigma < 6.0


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint16])
def test_soft_tissue_noise_of_an_integer_scan_equals_its_float_copy(dtype: type) -> None:
    """The soft-tissue mask of an integer CT is taken with integer bounds (no float copy of the
    scan); the noise model is exactly the one measured on the same scan as float32."""
    from longisynth.families.lung import SOFT_TISSUE_HU, soft_tissue_noise
    from longisynth.io.scan import Scan

    rng = np.random.default_rng(5)
    hu = 80.0 + ndimage.gaussian_filter(rng.normal(size=(60, 60, 40)) * 60, 0.8)
    hu[:, :10] = 0.0 if dtype is np.uint16 else -900.0
    hu[:, 10:12] = SOFT_TISSUE_HU[1]  # exactly on the upper bound: outside in both
    geometry = Geometry(np.diag([0.8, 0.8, 1.5, 1.0]), hu.shape)
    model = soft_tissue_noise(Scan(np.rint(hu).astype(dtype), geometry))
    assert model == soft_tissue_noise(Scan(np.rint(hu).astype(np.float32), geometry))
    assert model.sigma > 0
