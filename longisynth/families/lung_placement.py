"""Where a lung nodule goes: a centre in the requested region, against the structure it is attached
to (pleura, vessel, fissure) and away from the others (docs/design.md §3.1).

Candidate centres come from the coarse lungs (clearance from the pleura as for any lesion); each is
then checked on the full-resolution host crop with the nodule's own shape at its largest size:
the predicted nodule must reach the structure asked for and none of the others
(:mod:`longisynth.anatomy.attachment`). A juxtavascular centre is moved onto the nearest vessel, a
perifissural one next to the nearest fissure with the nodule flattened against it (lentiform).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.anatomy.attachment import REQUIRED, STRUCTURES, HostStructures, host_structures
from longisynth.anatomy.lung import LungAnatomy
from longisynth.errors import LesionDoesNotFitError
from longisynth.families.base import Inputs, typed_stream
from longisynth.geometry import Box, Geometry
from longisynth.growth.nodule import NoduleShape, lentiform
from longisynth.placement import center_candidates, choose_center, explicit_point_world
from longisynth.spec import ATTACHMENT_FREQUENCIES, Attachment

MAX_TRIES = 150  # candidate centres checked at full resolution per attachment type
SIZE_MARGIN = 1.1  # the predicted nodule is drawn 10 % larger than its largest size ...
CONTACT_MARGIN_MM = 1.0  # ... plus this and one voxel: the reader's contour and its outer shell
MAX_VESSEL_FRACTION = 0.4  # ... and fill less than this of the nodule's core (it is a vessel, not a hilum)
FISSURE_DEPTH = 0.5  # a perifissural nodule's centre sits this fraction of its half-thickness off the fissure
LENTIFORM_THICKNESS = (0.35, 0.55)  # thickness / width of a perifissural nodule (Ahn, Radiology 2010)
# A juxtapleural nodule abuts the pleura on one side: at most this fraction of it (as drawn) would
# lie beyond the lung surface. The centre band (0.4–0.8 radii deep) cuts off at most ≈ 22 % of a
# sphere; more means the nodule would fill the lung from wall to wall.
MAX_OUTSIDE_FRACTION = 0.3


@dataclass(frozen=True)
class NoduleSite:
    """The placed nodule: centre (world RAS+ mm), its shape (flattened when perifissural), the
    attachment and how it was chosen, and the lobe label at the centre (0 when lobes are unknown)."""

    center_world: NDArray[np.float64]
    shape: NoduleShape
    attachment: Attachment | None
    drawn: bool
    lobe: int
    notes: tuple[str, ...] = ()


def smooth_lungs(anatomy: LungAnatomy, geometry: Geometry, box: Box) -> NDArray[np.bool_]:
    """The coarse (vessel-filled) lungs upsampled and smoothed onto ``box`` of the full grid."""
    coarse = anatomy.mask_in_box(geometry, box).astype(np.float32)
    step = np.asarray(anatomy.geometry.spacing_mm) / np.asarray(geometry.spacing_mm)
    return np.asarray(ndimage.gaussian_filter(coarse, sigma=np.maximum(step / 2.5, 0.5)) >= 0.5)


def crop_structures(inputs: Inputs, anatomy: LungAnatomy, box: Box) -> HostStructures:
    """Pleura, vessels and (with a label map) other lobes on ``box`` of the host CT."""
    scan = inputs.scans["ct"]
    lobes = None
    if anatomy.lobes_exact and inputs.labels is not None:
        lobes = np.asarray(inputs.labels[box.slices])
    return host_structures(
        scan.values_in(box), smooth_lungs(anatomy, scan.geometry, box), scan.geometry.spacing_mm, lobes
    )


def attachment_order(inputs: Inputs, anatomy: LungAnatomy) -> tuple[list[Attachment], bool]:
    """The attachments to try, in order, and whether they were drawn (not asked for).

    An unset attachment is drawn from :data:`~longisynth.spec.ATTACHMENT_FREQUENCIES` over what the
    scan offers (perifissural needs exact lobes; ``juxtapleural: false`` rules out the pleura); the
    others follow by frequency, to fall back on where the drawn one finds no place.
    """
    loc = inputs.spec.location
    if loc.attachment is not None:
        return [loc.attachment], False
    options = {
        a: w
        for a, w in ATTACHMENT_FREQUENCIES.items()
        if (a != Attachment.PERIFISSURAL or anatomy.lobes_exact)
        and (a != Attachment.JUXTAPLEURAL or loc.juxtapleural is not False)
    }
    names = list(options)
    weights = np.array([options[a] for a in names])
    rng = typed_stream(inputs.rng["place"], "attachment")
    first = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    rest = sorted((a for a in names if a != first), key=lambda a: -options[a])
    return [first, *rest], True


def place_nodule(
    inputs: Inputs,
    anatomy: LungAnatomy,
    shape: NoduleShape,
    diameters_mm: list[float],
    region: NDArray[np.bool_],
    what: str,
) -> NoduleSite:
    """Place a nodule of clinical sizes ``diameters_mm`` with ``shape`` in ``region`` (coarse lungs).

    Raises:
        LesionDoesNotFitError: an attachment asked for that the region cannot offer, or no room.
    """
    order, drawn = attachment_order(inputs, anatomy)
    reasons = []
    for attachment in order:
        try:
            site = _place(inputs, anatomy, shape, diameters_mm, region, what, attachment, not drawn)
        except LesionDoesNotFitError as exc:
            if not drawn:
                raise
            reasons.append(str(exc))
            continue
        notes = (
            ()
            if attachment == order[0]
            else (
                f"the drawn attachment ({order[0].value}) found no place in this region; "
                f"the nodule is {attachment.value}",
            )
        )
        return replace(site, drawn=drawn, notes=notes)
    explicit = explicit_point_world(inputs.spec.location, inputs.scans["ct"].geometry)
    if explicit is None:
        # the user asked for no attachment: the plain "no room" reason speaks to them best
        room = [r for r in reasons if "deepest point" in r]
        raise LesionDoesNotFitError((room or reasons)[0])
    # A point was asked for and no attachment: the nodule goes there, touching what it touches.
    return _at_point(inputs, anatomy, shape, diameters_mm, region, what, explicit)


def _at_point(
    inputs: Inputs,
    anatomy: LungAnatomy,
    shape: NoduleShape,
    diameters_mm: list[float],
    region: NDArray[np.bool_],
    what: str,
    explicit: NDArray[np.float64],
) -> NoduleSite:
    geometry = inputs.scans["ct"].geometry
    lo, _ = _clearance_mm(inputs, anatomy, shape, diameters_mm, Attachment.ISOLATED)
    rng = inputs.rng["place"]
    center = choose_center(anatomy.lungs, region, anatomy.geometry, lo, None, explicit, what, rng)
    lobe = 0
    if anatomy.lobes_exact and inputs.labels is not None:
        ijk = np.clip(
            np.round(geometry.world_to_voxel(center)).astype(int), 0, np.asarray(geometry.shape) - 1
        )
        lobe = int(inputs.labels[tuple(ijk)])
    note = (
        "at the requested point the nodule touches more than one structure: its attachment is not classified"
    )
    return NoduleSite(center, shape, None, True, lobe, (note,))


def _place(
    inputs: Inputs,
    anatomy: LungAnatomy,
    shape: NoduleShape,
    diameters_mm: list[float],
    region: NDArray[np.bool_],
    what: str,
    attachment: Attachment,
    asked: bool,
) -> NoduleSite:
    geometry = inputs.scans["ct"].geometry
    if asked:
        what = f"{what} ({attachment.value})"
    lo, hi = _clearance_mm(inputs, anatomy, shape, diameters_mm, attachment)
    if attachment == Attachment.PERIFISSURAL:
        if not anatomy.lobes_exact:
            raise LesionDoesNotFitError(
                f"{what}: fissures are only known from a lobe label map; pass one (--labels, "
                "TotalSegmentator lobes 10-14) or ask for another attachment"
            )
        region = region & _fissure_voxels(anatomy.lobes)
        if not region.any():
            raise LesionDoesNotFitError(f"{what}: no interlobar fissure in that region")
    explicit = explicit_point_world(inputs.spec.location, geometry)
    rng = typed_stream(inputs.rng["place"], attachment.value)
    if explicit is not None:
        candidates = [choose_center(anatomy.lungs, region, anatomy.geometry, lo, hi, explicit, what, rng)]
    else:
        candidates = center_candidates(anatomy.lungs, region, anatomy.geometry, lo, hi, what, rng, MAX_TRIES)
    d_max = max(diameters_mm)
    for center in candidates:
        site = _check(inputs, anatomy, shape, d_max, center, attachment, rng)
        if site is not None:
            return site
    where = (
        "at the requested point no placement"
        if explicit is not None
        else f"none of {len(candidates)} candidate centres"
    )
    raise LesionDoesNotFitError(
        f"{what} does not fit: {where} {_requirement(attachment)}; "
        "ask for another attachment, location or size"
    )


def _clearance_mm(
    inputs: Inputs,
    anatomy: LungAnatomy,
    shape: NoduleShape,
    diameters_mm: list[float],
    attachment: Attachment,
) -> tuple[float, float | None]:
    """Least and (juxtapleural) largest distance of the centre from the lung surface, mm."""
    geometry = inputs.scans["ct"].geometry
    r_max_mm = max(shape.body_radius_mm(d, geometry.world_axis_index(2)[0]) for d in diameters_mm)
    coarse_step = max(anatomy.geometry.spacing_mm)
    if attachment == Attachment.JUXTAPLEURAL:
        return 0.4 * r_max_mm, 0.8 * r_max_mm + coarse_step
    # the lesion, 1.5 mm of lung, half a coarse voxel of mask uncertainty and half an input voxel
    # of partial-volume edge
    return r_max_mm + 1.5 + 0.5 * coarse_step + 0.5 * max(geometry.spacing_mm), None


def _requirement(attachment: Attachment) -> str:
    need = REQUIRED[attachment]
    if need is None:
        return "keeps the nodule clear of the pleura, vessels and fissures"
    named = {"pleura": "the pleura", "vessel": "a vessel", "fissure": "a fissure"}
    others = " or ".join(named[s] for s in STRUCTURES if s != need)
    return f"lets the nodule touch {named[need]} without touching {others}"


def _fissure_voxels(lobes: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Lung voxels with a face neighbour in another lobe (coarse grid)."""
    out = np.zeros(lobes.shape, dtype=bool)
    for axis in range(3):
        a = np.moveaxis(lobes, axis, 0)
        o = np.moveaxis(out, axis, 0)
        differ = (a[1:] != a[:-1]) & (a[1:] > 0) & (a[:-1] > 0)
        o[1:] |= differ
        o[:-1] |= differ
    return out


def _check(
    inputs: Inputs,
    anatomy: LungAnatomy,
    shape: NoduleShape,
    d_max: float,
    center_world: NDArray[np.float64],
    attachment: Attachment,
    rng: np.random.Generator,
) -> NoduleSite | None:
    """The nodule placed at (or moved from) ``center_world`` if it touches what it must and nothing
    else; None otherwise."""
    geometry = inputs.scans["ct"].geometry
    spacing = np.asarray(geometry.spacing_mm)
    axial = geometry.world_axis_index(2)[0]
    reach_mm = shape.bounding_radius_mm(d_max, axial)
    margin_mm = CONTACT_MARGIN_MM + float(spacing.max())
    box = geometry.box_around(geometry.world_to_voxel(center_world), reach_mm + margin_mm + 5.0)
    st = crop_structures(inputs, anatomy, box)
    c = geometry.world_to_voxel(center_world) - np.asarray(box.start, dtype=np.float64)
    lobe = _label_at(st.lobes, c)
    if attachment == Attachment.JUXTAVASCULAR:
        moved = _nearest(st.vessel, c, spacing, 1.5 * max(anatomy.geometry.spacing_mm))
        if moved is None:
            return None
        c = moved
    elif attachment == Attachment.PERIFISSURAL:
        if st.lobes is None or lobe == 0:
            return None
        p = _nearest(st.fissure(lobe), c, spacing, 1.5 * max(anatomy.geometry.spacing_mm))
        if p is None:
            return None
        normal = _inward_normal(st.lobes == lobe, p, spacing)
        if normal is None:
            return None
        shape = lentiform(shape, normal, float(rng.uniform(*LENTIFORM_THICKNESS)))
        half_thickness_mm = d_max / shape.axial_size(axial) * float(shape.radius_factor(normal[None])[0])
        c = p + normal * FISSURE_DEPTH * half_thickness_mm / spacing
    scale = d_max / shape.axial_size(axial)
    dist, radius = _polar(st.pleura.shape, c, spacing, shape)
    inside = dist <= scale * SIZE_MARGIN * radius + margin_mm
    if (inside & _scan_edge(box, geometry)).any():
        return None  # the field of view would cut the nodule (its edge is not pleura)
    body = dist <= scale * radius
    if np.count_nonzero(body & ~st.lungs) > MAX_OUTSIDE_FRACTION * np.count_nonzero(body):
        return None
    for name in STRUCTURES:
        if bool((inside & st.of(name, lobe)).any()) != (REQUIRED[attachment] == name):
            return None
    if attachment == Attachment.JUXTAVASCULAR:
        # a vessel runs through the nodule's core and on out of it (not a dead end inside)
        core = dist <= 0.5 * scale * shape.min_factor
        vessels, _ = ndimage.label(st.vessel)
        through = np.unique(vessels[core & st.vessel])
        through = through[through > 0]
        if through.size == 0 or not (np.isin(vessels, through) & ~inside).any():
            return None
        if np.count_nonzero(st.dense & core) > MAX_VESSEL_FRACTION * np.count_nonzero(core):
            return None
    world = geometry.voxel_to_world(c + np.asarray(box.start, dtype=np.float64))
    return NoduleSite(world, shape, attachment, False, lobe)


def _scan_edge(box: Box, geometry: Geometry) -> NDArray[np.bool_]:
    """Voxels of ``box`` on the first or last plane of the scan along any axis."""
    edge = np.zeros(box.shape, dtype=bool)
    for axis in range(3):
        view = np.moveaxis(edge, axis, 0)
        if box.start[axis] == 0:
            view[0] = True
        if box.stop[axis] == geometry.shape[axis]:
            view[-1] = True
    return edge


def _label_at(lobes: NDArray[np.uint8] | None, c: NDArray[np.float64]) -> int:
    if lobes is None:
        return 0
    ijk = np.clip(np.round(c).astype(int), 0, np.asarray(lobes.shape) - 1)
    return int(lobes[tuple(ijk)])


def _nearest(
    mask: NDArray[np.bool_], c: NDArray[np.float64], spacing: NDArray[np.float64], within_mm: float
) -> NDArray[np.float64] | None:
    """The voxel of ``mask`` nearest to ``c`` (crop voxels), if within ``within_mm``."""
    pts = np.argwhere(mask)
    if pts.size == 0:
        return None
    d = np.sqrt((((pts - c) * spacing) ** 2).sum(axis=1))
    k = int(np.argmin(d))
    return pts[k].astype(np.float64) if d[k] <= within_mm else None


def _inward_normal(
    own: NDArray[np.bool_], p: NDArray[np.float64], spacing: NDArray[np.float64]
) -> NDArray[np.float64] | None:
    """Unit normal of the lobe boundary at ``p``, pointing into ``own`` (array-axis mm space)."""
    smooth = ndimage.gaussian_filter(own.astype(np.float32), sigma=2.0 / spacing)
    ijk = np.clip(np.round(p).astype(int), 0, np.asarray(own.shape) - 1)
    g = np.zeros(3)
    for a, s in enumerate(spacing):  # central difference at p (one-sided on the crop's faces)
        lo, hi = ijk.copy(), ijk.copy()
        lo[a], hi[a] = max(ijk[a] - 1, 0), min(ijk[a] + 1, own.shape[a] - 1)
        if hi[a] > lo[a]:
            g[a] = float(smooth[tuple(hi)] - smooth[tuple(lo)]) / ((hi[a] - lo[a]) * s)
    n = float(np.linalg.norm(g))
    return None if n == 0 or not math.isfinite(n) else g / n


def _polar(
    crop_shape: tuple[int, ...], c: NDArray[np.float64], spacing: NDArray[np.float64], shape: NoduleShape
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Distance (mm) of every crop voxel from ``c`` and the shape's radius factor in its direction."""
    grids = np.meshgrid(
        *[(np.arange(n) - ci) * s for n, ci, s in zip(crop_shape, c, spacing, strict=True)], indexing="ij"
    )
    vec = np.stack(grids, axis=-1)
    dist = np.sqrt((vec**2).sum(axis=-1))
    u = vec / np.maximum(dist, 1e-9)[..., None]
    u[dist == 0] = (1.0, 0.0, 0.0)
    return dist, shape.radius_factor(u)
