"""Geometry of the procedural chest CT phantom (:mod:`longisynth.phantoms.thorax`).

What is here is shape only, no Hounsfield units: the body-fixed :class:`Frame` that scales the
anatomy with the field of view, the implicit lung, lobe and rib shapes evaluated on coordinate
grids, the tapered :class:`Tube` capsules of the airways, great vessels and the seeded
pulmonary vessel tree, and the slab rasteriser that turns tubes into partial-volume fractions.
:mod:`longisynth.phantoms.thorax` assigns tissue values and labels, adds texture and noise, and
renders the volume slab by slab; keeping the geometry apart keeps each file readable.

Worlds: RAS+ mm, as in the phantom's affine (:func:`longisynth.phantoms.thorax.thorax_affine`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Frame:
    """Body-fixed layout (world RAS+ mm) derived from the field of view; ``g`` scales fixed sizes."""

    a: float  # body half-width, mm
    b: float  # body anterior half-depth, mm (the back is flattened to 0.9 b)
    yc: float  # body centre, world y mm
    z0: float  # world z of the lowest slice, mm
    height: float  # field of view along z, mm
    g: float  # scale of fixed sizes: 1.0 for a 358 mm field of view

    @classmethod
    def for_fov(cls, fov_mm: tuple[float, float, float], z0: float) -> Frame:
        a, b = 0.45 * fov_mm[0], 0.31 * fov_mm[1]
        return cls(a, b, 0.06 * fov_mm[1], z0, fov_mm[2], min(a / 161.0, b / 111.0))

    def z(self, u: float) -> float:
        """World z (mm) at fraction ``u`` of the field of view's height (0 bottom, 1 top)."""
        return self.z0 + u * self.height

    # Layout in body units. Adult chest ≈ 32 cm wide × 22 cm deep; vertebral body ≈ 3.5 cm wide.
    xm = property(lambda s: -0.04 * s.a)  # mediastinal midline (heart pushes it left)
    y_back = property(lambda s: s.yc - 0.9 * s.b)
    yv = property(lambda s: s.yc - 0.22 * s.b)  # vertebral body centre
    rv = property(lambda s: 0.15 * s.b)
    rcan = property(lambda s: 0.07 * s.b)  # spinal canal radius
    ycan = property(lambda s: s.yc - 0.22 * s.b - 0.23 * s.b)
    yt = property(lambda s: s.yc + 0.17 * s.b)  # trachea, in front of the oesophagus
    fat_mm = property(lambda s: 12.0 * s.g)
    wall_mm = property(lambda s: 28.0 * s.g)  # skin to parietal pleura
    dome_top_right = property(lambda s: s.z(0.32))  # the right hemidiaphragm sits higher (liver)
    dome_top_left = property(lambda s: s.z(0.29))
    rib_top = property(lambda s: s.z(0.93))
    rib_pitch = property(lambda s: (s.z(0.93) - s.z(0.30)) / 11.0)
    vert_pitch = property(lambda s: (s.z(0.93) - s.z(0.30)) / 11.0)
    hilum_right = property(lambda s: np.array([s.xm + 0.30 * s.a, s.yc + 0.08 * s.b, s.z(0.56)]))
    hilum_left = property(lambda s: np.array([s.xm - 0.30 * s.a, s.yc + 0.02 * s.b, s.z(0.625)]))

    def depth(self, x: NDArray, y: NDArray) -> NDArray:
        """Depth below the skin along the ray from the body centre (mm); negative outside."""
        yy = (y - self.yc) / np.where(y >= self.yc, self.b, 0.9 * self.b)
        r = np.sqrt((x / self.a) ** 2 + yy**2)
        return np.hypot(x, y - self.yc) * (1.0 - r) / np.maximum(r, 1e-3)

    def paraspinal(self, x: NDArray, y: NDArray) -> NDArray[np.bool_]:
        """Erector spinae and posterior vertebral elements: a half-ellipse behind the vertebral body."""
        return (x / (0.30 * self.a)) ** 2 + ((y - self.y_back) / (self.yv - self.y_back)) ** 2 < 1.0

    def dome_z(self, x: NDArray, y: NDArray) -> NDArray:
        """Height (world z, mm) of the diaphragm under (x, y): two paraboloid domes."""
        curv = 0.30 * self.height / (0.6 * self.a) ** 2
        right = x > self.xm
        top = np.where(right, self.dome_top_right, self.dome_top_left)
        xd = np.where(right, self.xm + 0.40 * self.a, self.xm - 0.40 * self.a)
        return top - curv * ((x - xd) ** 2 + (y - (self.yc + 0.05 * self.b)) ** 2)

    def heart_r(self, x: NDArray, y: NDArray, z: NDArray, margin_mm: float = 0.0) -> NDArray:
        """Normalised ellipsoidal radius of the heart (< 1 inside), grown by ``margin_mm``."""
        m = margin_mm
        return np.sqrt(
            ((x - (self.xm - 0.10 * self.a)) / (0.38 * self.a + m)) ** 2
            + ((y - (self.yc + 0.20 * self.b)) / (0.42 * self.b + m)) ** 2
            + ((z - self.z(0.40)) / (0.14 * self.height + m)) ** 2
        )


def lung_side(f: Frame, x: NDArray, y: NDArray, z: NDArray) -> NDArray[np.int8]:
    """0 outside the lungs, 1 right lung, 2 left lung (before the hilar carve-out); broadcasts."""
    depth = f.depth(x, y)
    cavity = (depth > f.wall_mm) & ~f.paraspinal(x, y)
    cavity &= np.hypot(x, y - f.yv) > f.rv + 5.0 * f.g
    cavity &= np.abs(x - f.xm) > 0.10 * f.a  # mediastinum
    right = x > f.xm
    u = (z - f.z0) / f.height
    # Apical domes: the lung's cross-section shrinks to a point at 96 % of the height.
    s = np.sqrt(np.clip(1.0 - ((u - 0.60) / 0.36) ** 2, 0.0, 1.0))
    s = np.where(u > 0.60, s, 1.0)
    xl = np.where(right, f.xm + 0.47 * f.a, f.xm - 0.47 * f.a)
    rho = np.sqrt(((x - xl) / (0.45 * f.a)) ** 2 + ((y - (f.yc - 0.12 * f.b)) / (0.80 * f.b)) ** 2)
    lung = cavity & (z > f.dome_z(x, y)) & (rho < s) & (f.heart_r(x, y, z, 4.0 * f.g) >= 1.0)
    return np.where(lung, np.where(right, 1, 2), 0).astype(np.int8)


def lobe_of(f: Frame, y: NDArray, z: NDArray, side: NDArray[np.int8]) -> NDArray[np.uint8]:
    """Phantom lobes: an oblique fissure from posterior-superior (70 % height) to anterior-inferior
    (22 %), and on the right a horizontal fissure at 55 % bounding the middle lobe."""
    oblique = f.z(0.70) - (y - f.y_back) / (1.9 * f.b) * (f.z(0.70) - f.z(0.22))
    lower = z < oblique
    right = np.where(lower, 14, np.where(z < f.z(0.55), 13, 12))
    left = np.where(lower, 11, 10)
    return np.where(side == 1, right, np.where(side == 2, left, 0)).astype(np.uint8)


def rib_q(f: Frame, x: NDArray, y: NDArray, z: NDArray, depth: NDArray) -> NDArray:
    """Normalised radius (< 1 inside) of the nearest of 12 sloping ribs; ``inf`` where none."""
    theta = np.arctan2(np.abs(x), -(y - f.yc)) / np.pi  # 0 at the spine, 1 at the sternum
    frac = (theta - 0.14) / 0.66  # ribs run from beside the spine to the costal cartilages
    e0 = z - f.rib_top + 1.5 * f.rib_pitch * frac  # ribs descend ≈ 1.5 interspaces anteriorly
    n = np.clip(np.rint(-e0 / f.rib_pitch), 0, 11)
    e = e0 + n * f.rib_pitch
    q = np.sqrt(((depth - f.wall_mm + 7.0 * f.g) / (4.0 * f.g)) ** 2 + (e / (6.0 * f.g)) ** 2)
    return np.where((frac > 0) & (frac < 1), q, np.inf)


@dataclass(frozen=True)
class Tube:
    """A tapered capsule from ``a`` to ``b`` (world mm), radius ``r0`` → ``r1`` mm.

    ``kind``: "soft" (blood/wall, +40 HU), "air" (lumen) or "excl" (carved out of the lungs).
    """

    a: tuple[float, float, float]
    b: tuple[float, float, float]
    r0: float
    r1: float
    kind: str
    label: int = 0


def _path(points: list[tuple[float, float, float]], r: float, kind: str, label: int = 0) -> list[Tube]:
    return [Tube(p, q, r, r, kind, label) for p, q in itertools.pairwise(points)]


def anatomy_tubes(f: Frame, airway_label: int, aorta_label: int) -> list[Tube]:
    """Airways, great vessels and oesophagus (each also carved out of the lungs with a margin).

    ``airway_label`` tags the trachea and main bronchi, ``aorta_label`` the aorta (the label
    values belong to :mod:`longisynth.phantoms.thorax`)."""
    a, b, xm, yc, z, g = f.a, f.b, f.xm, f.yc, f.z, f.g
    hr, hl = tuple(f.hilum_right), tuple(f.hilum_left)
    carina = (0.0, f.yt, z(0.66))
    r_end = (xm + 0.26 * a, f.yt - 0.07 * b, z(0.60))
    l_end = (xm - 0.28 * a, f.yt - 0.05 * b, z(0.585))
    airways = [
        ([(0.0, f.yt, z(1.05)), carina], 8.0 * g, airway_label),
        ([carina, (0.12 * a, f.yt - 0.04 * b, z(0.63)), r_end], 6.0 * g, airway_label),
        ([carina, l_end], 5.5 * g, airway_label),
    ]
    lobar = [
        ([r_end, (r_end[0] + 0.12 * a, r_end[1], r_end[2] + 0.06 * f.height)], 4.0 * g),
        ([r_end, (r_end[0] + 0.05 * a, r_end[1] - 0.1 * b, r_end[2] - 0.09 * f.height)], 4.0 * g),
        ([l_end, (l_end[0] - 0.10 * a, l_end[1] + 0.05 * b, l_end[2] + 0.07 * f.height)], 3.8 * g),
        ([l_end, (l_end[0] - 0.06 * a, l_end[1] - 0.1 * b, l_end[2] - 0.08 * f.height)], 3.8 * g),
    ]
    y_desc = yc - 0.02 * b
    vessels = [
        (  # ascending aorta, arch (over the left main bronchus), descending aorta
            [
                (xm + 0.08 * a, yc + 0.34 * b, z(0.43)),
                (xm + 0.08 * a, yc + 0.34 * b, z(0.62)),
                (-0.06 * a, yc + 0.40 * b, z(0.745)),
                (-0.22 * a, yc + 0.18 * b, z(0.75)),
                (-0.20 * a, y_desc, z(0.70)),
                (-0.20 * a, y_desc, z(-0.1)),
            ],
            13.0 * g,
            aorta_label,
        ),
        ([(xm + 0.17 * a, yc + 0.20 * b, z(0.86)), (xm + 0.17 * a, yc + 0.22 * b, z(0.50))], 9.0 * g, 0),
        ([(-0.03 * a, yc + 0.38 * b, z(0.74)), (0.12 * a, yc + 0.05 * b, z(1.05))], 6.0 * g, 0),
        ([(-0.20 * a, yc + 0.20 * b, z(0.75)), (-0.14 * a, yc - 0.05 * b, z(1.05))], 5.0 * g, 0),
        ([(xm - 0.02 * a, yc + 0.40 * b, z(0.45)), (xm - 0.05 * a, yc + 0.34 * b, z(0.57))], 12.0 * g, 0),
        ([(xm - 0.05 * a, yc + 0.34 * b, z(0.57)), hr], 10.0 * g, 0),
        ([(xm - 0.05 * a, yc + 0.34 * b, z(0.57)), hl], 10.0 * g, 0),
        ([(0.02 * a, yc, z(1.05)), (0.02 * a, yc, z(0.15))], 7.0 * g, 0),
    ]
    tubes: list[Tube] = []
    margin = 4.0 * g  # pleura/fat between the lung and a mediastinal structure
    for pts, r, lab in airways:
        tubes += _path(pts, r + 2.0 * g, "soft") + _path(pts, r, "air", lab) + _path(pts, r + margin, "excl")
    for pts, r in lobar:
        tubes += _path(pts, r + 1.5 * g, "soft") + _path(pts, r, "air")
    for pts, r, lab in vessels:
        tubes += _path(pts, r, "soft", lab) + _path(pts, r + margin, "excl")
    return tubes


def vessel_tree(f: Frame, rng: np.random.Generator) -> list[Tube]:
    """Seeded pulmonary vessel trees: from each hilum, 16 trunks split in two at every node.

    Radii follow Murray's law (r³ = r₁³ + r₂³): 16 trunks of 4 mm carry one 10 mm pulmonary
    artery, and children take 0.83 and 0.74 of their parent (0.83³ + 0.74³ ≈ 1). Branches turn
    17–37° and lean away from the hilum; a branch whose end leaves the lung is halved once, then
    dropped.
    """
    tubes: list[Tube] = []
    r_min = 0.7 * f.g
    for sign, hilum in ((1.0, f.hilum_right), (-1.0, f.hilum_left)):
        d = rng.standard_normal((16, 3))
        d[:, 0] = sign * (np.abs(d[:, 0]) + 0.2)  # trunks head laterally, into their own lung
        d[:, 2] *= 1.5  # and spread over the (tall) lung
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        p = np.repeat(hilum[None, :], len(d), axis=0)
        r = np.full(len(d), 4.0 * f.g)
        length = np.full(len(d), 0.06 * f.height)
        while len(p):
            end = p + d * length[:, None]
            ok = lung_side(f, end[:, 0], end[:, 1], end[:, 2]) > 0
            half = p + d * (0.5 * length[:, None])
            ok_half = ~ok & (lung_side(f, half[:, 0], half[:, 1], half[:, 2]) > 0)
            end = np.where(ok_half[:, None], half, end)
            keep = ok | ok_half
            p, d, r, length, end = p[keep], d[keep], r[keep], length[keep], end[keep]
            for i in range(len(p)):
                tubes.append(Tube(tuple(p[i]), tuple(end[i]), float(r[i]), float(0.92 * r[i]), "soft"))
            grow = r * 0.74 >= r_min
            p, d, r, length, end = p[grow], d[grow], r[grow], length[grow], end[grow]
            n = len(p)
            w = rng.standard_normal((n, 3))
            w -= np.sum(w * d, axis=1, keepdims=True) * d
            w /= np.linalg.norm(w, axis=1, keepdims=True) + 1e-9
            away = end - hilum
            away /= np.linalg.norm(away, axis=1, keepdims=True) + 1e-9
            children = []
            for ratio, turn in ((0.83, 1.0), (0.74, -1.0)):
                ang = rng.uniform(0.3, 0.65, size=(n, 1))
                nd = np.cos(ang) * d + turn * np.sin(ang) * w + 0.3 * away
                nd /= np.linalg.norm(nd, axis=1, keepdims=True)
                children.append((end, nd, r * ratio, length * rng.uniform(0.8, 0.95, size=n)))
            p, d, r, length = (np.concatenate([c[i] for c in children]) for i in range(4))
    return tubes


def rasterize_tubes(
    tubes: list[Tube],
    affine: NDArray[np.float64],
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    k0: int,
    k1: int,
    want_labels: bool,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_], NDArray[np.uint8]]:
    """Soft-tissue and air fractions (partial volume over one in-plane voxel), the lung carve-out
    and tube labels, for slices ``k0:k1``."""
    full = (shape[0], shape[1], k1 - k0)
    soft = np.zeros(full, dtype=np.float32)
    air = np.zeros(full, dtype=np.float32)
    excl = np.zeros(full, dtype=bool)
    lab = np.zeros(full if want_labels else (1, 1, 1), dtype=np.uint8)
    inv = np.linalg.inv(affine)
    s = np.asarray(spacing_mm, dtype=np.float64)
    pv = float(np.mean(s[:2]))
    for t in tubes:
        ia = inv[:3, :3] @ np.asarray(t.a) + inv[:3, 3]
        ib = inv[:3, :3] @ np.asarray(t.b) + inv[:3, 3]
        reach = (max(t.r0, t.r1) + pv) / s
        if min(ia[2], ib[2]) - reach[2] >= k1 or max(ia[2], ib[2]) + reach[2] < k0 - 1:
            continue
        lo = np.maximum(np.floor(np.minimum(ia, ib) - reach).astype(int), [0, 0, k0])
        hi = np.minimum(np.ceil(np.maximum(ia, ib) + reach).astype(int) + 1, [shape[0], shape[1], k1])
        if np.any(hi <= lo):
            continue
        pts = [
            (np.arange(lo[ax], hi[ax]) * s[ax]).reshape([-1 if k == ax else 1 for k in range(3)])
            for ax in range(3)
        ]
        a_mm, ab = ia * s, (ib - ia) * s
        ap = [pts[ax] - a_mm[ax] for ax in range(3)]
        tt = np.clip((ap[0] * ab[0] + ap[1] * ab[1] + ap[2] * ab[2]) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
        dist = np.sqrt(sum((ap[ax] - tt * ab[ax]) ** 2 for ax in range(3)))
        rad = t.r0 + tt * (t.r1 - t.r0)
        sl = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2] - k0, hi[2] - k0))
        if t.kind == "excl":
            excl[sl] |= dist < rad
            continue
        frac = np.clip((rad - dist) / pv + 0.5, 0.0, 1.0).astype(np.float32)
        target = soft if t.kind == "soft" else air
        np.maximum(target[sl], frac, out=target[sl])
        if want_labels and t.label:
            lab[sl][frac > 0.5] = t.label
    return soft, air, excl, lab
