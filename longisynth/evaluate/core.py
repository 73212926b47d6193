"""Evaluate one bundle: stream its timepoints, re-measure everything from the images, run the checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from longisynth import checks as ck
from longisynth.bundle.reader import BundleReader
from longisynth.checks import Check
from longisynth.errors import InvalidInputError
from longisynth.evaluate.growth import GROWING_LAWS, growth_fit, rel_error
from longisynth.evaluate.remeasure import (
    compare_outside,
    dilate_mm,
    jacobian_stats,
    label_intensities,
    reference_stats,
)
from longisynth.geometry import Geometry
from longisynth.measure import clinical_diameter_mm, longest_diameter_mm

CT_WINDOW_HU = (-1000.0, 400.0)
MONTAGE_CONTRASTS = ("ct", "t1c", "flair")


@dataclass
class SliceSet:
    """2D crops through the lesion centre, oriented for display (rows anterior→posterior, cols R→L)."""

    images: dict[str, list[NDArray[np.float32]]] = field(default_factory=dict)
    masks: list[NDArray[np.uint8]] = field(default_factory=list)
    aspect: float = 1.0  # pixel height / width, for imshow
    window: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class BundleReport:
    """Everything measured on one bundle. Lengths mm, volumes mm³, times days, CT intensities HU."""

    path: str
    family: str | None = None
    kind: str | None = None  # nodule type or glioma grade
    law: str | None = None
    diameter_spec_mm: float | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    timepoints: list[dict[str, Any]] = field(default_factory=list)
    growth: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    error: str | None = None
    slices: SliceSet | None = None

    @property
    def hard_failures(self) -> list[Check]:
        return [c for c in self.checks if c.hard and not c.passed]

    @property
    def soft_failures(self) -> list[Check]:
        return [c for c in self.checks if not c.hard and not c.passed]

    @property
    def passed(self) -> bool:
        return self.error is None and not self.hard_failures

    @property
    def diameter_final_mm(self) -> float | None:
        """The last timepoint's size in the family's convention (what the spec's diameter_mm means)."""
        if not self.timepoints:
            return None
        key = "clinical_diameter_mm" if _size_convention(self.family) == "clinical" else "longest_diameter_mm"
        return self.timepoints[-1][key]

    @property
    def diameter_rel_error(self) -> float | None:
        return rel_error(self.diameter_final_mm, self.diameter_spec_mm)

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "path": self.path,
                "error": self.error,
                "family": self.family,
                "kind": self.kind,
                "law": self.law,
                "passed": self.passed,
                "diameter_spec_mm": self.diameter_spec_mm,
                "diameter_final_mm": self.diameter_final_mm,
                "diameter_rel_error": self.diameter_rel_error,
                "growth": self.growth,
                "spec": self.spec,
                "timepoints": self.timepoints,
                "checks": [c.to_dict() for c in self.checks],
            }
        )


def _size_convention(family: str | None) -> str:
    """ "clinical" or "longest": what a family's diameter_mm means (the family module owns it)."""
    from longisynth.families import FAMILIES
    from longisynth.spec import Family

    try:
        return FAMILIES[Family(family or "")].size_convention
    except ValueError:
        return "longest"


def _clean(x: Any) -> Any:
    """JSON-safe and deterministic: floats rounded to 6 significant digits, NaN/inf → None."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, bool | str) or x is None:
        return x
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        v = float(x)
        return float(f"{v:.6g}") if math.isfinite(v) else None
    return str(x)


def _days(meta: dict[str, Any], indices: list[int], path: Path) -> list[float]:
    by_index = {int(t["index"]): float(t["days"]) for t in meta.get("timepoints", []) if "days" in t}
    if any(i not in by_index for i in indices):
        days = (meta.get("spec") or {}).get("timepoints_days")
        if not days or len(days) != len(indices):
            raise InvalidInputError(f"{path}: metadata has no scan days for every timepoint")
        return [float(d) for d in days]
    return [by_index[i] for i in indices]


def _display_axes(geometry: Geometry) -> tuple[int, int, int, bool, bool]:
    """(slice axis, row axis (A), column axis (R), flip rows, flip cols) for an axial radiological view."""
    k_s = geometry.world_axis_index(2)[0]
    rest = [k for k in range(3) if k != k_s]
    dirs = geometry.axis_directions
    k_a = max(rest, key=lambda k: abs(dirs[1, k]))
    k_r = next(k for k in rest if k != k_a)
    return k_s, k_a, k_r, bool(dirs[1, k_a] > 0), bool(dirs[0, k_r] > 0)


def _slice2d(
    vol: NDArray[Any], centre: NDArray[np.int64], half: NDArray[np.int64], geometry: Geometry
) -> NDArray[Any]:
    k_s, k_a, k_r, flip_rows, flip_cols = _display_axes(geometry)
    sl: list[Any] = [slice(None)] * 3
    sl[k_s] = int(centre[k_s])
    for k in (k_a, k_r):
        sl[k] = slice(max(int(centre[k] - half[k]), 0), int(centre[k] + half[k] + 1))
    plane = vol[tuple(sl)]
    plane = plane if k_a < k_r else plane.T  # rows = A axis, columns = R axis
    if flip_rows:
        plane = plane[::-1, :]
    if flip_cols:
        plane = plane[:, ::-1]
    return np.ascontiguousarray(plane)


def evaluate_bundle(path: Path | str, *, keep_slices: bool = True) -> BundleReport:
    """Re-measure one bundle from its images and compare with its spec.

    Only one timepoint's images (plus the first timepoint's, the stability reference) are in memory.

    Raises:
        InvalidInputError: the zip, its metadata or an image is unreadable or inconsistent.
    """
    path = Path(path)
    with BundleReader(path) as reader:
        return _evaluate(reader, path, keep_slices)


def _evaluate(reader: BundleReader, path: Path, keep_slices: bool) -> BundleReport:
    meta = reader.metadata
    spec: dict[str, Any] = meta.get("spec") or {}
    growth_spec = spec.get("growth") or {}
    family = spec.get("family")
    law = growth_spec.get("law")
    report = BundleReport(
        str(path),
        family=family,
        kind=spec.get("nodule_type") or spec.get("grade"),
        law=law,
        diameter_spec_mm=spec.get("diameter_mm"),
        spec=spec,
    )
    indices = reader.indices
    days = _days(meta, indices, path)
    simulation = meta.get("simulation") or {}
    # how far from the lesion the study changed voxels: the mass effect of a glioma reaches beyond
    # the influence radius (older bundles have only the radius)
    influence_mm = max(
        float(simulation.get("influence_radius_mm") or 0.0), float(simulation.get("changed_within_mm") or 0.0)
    )
    growing = law in GROWING_LAWS
    is_ct = family == "lung_nodule" or "ct" in reader.contrasts_of(indices[0])

    # Pre-pass on the (small) final mask: the lesion centre and crop for the montage.
    final_mask, grid = reader.mask(indices[-1])
    lesion = np.argwhere(final_mask > 0)
    centre = np.rint(lesion.mean(axis=0)).astype(np.int64) if lesion.size else np.asarray(grid.shape) // 2
    extent = max(float(np.ptp(lesion, axis=0).max() * max(grid.spacing_mm)) if lesion.size else 0.0, 10.0)
    half = np.ceil(max(1.2 * extent, 30.0) / np.asarray(grid.spacing_mm)).astype(np.int64)
    del final_mask, lesion
    _, k_a, k_r, _, _ = _display_axes(grid)
    slices = SliceSet(aspect=grid.spacing_mm[k_a] / grid.spacing_mm[k_r]) if keep_slices else None

    prev: NDArray[np.bool_] | None = None
    ref_images: dict[str, tuple[NDArray[Any], float]] = {}
    ref_zone: NDArray[np.bool_] | None = None
    for t, (index, day) in enumerate(zip(indices, days, strict=True)):
        mask, geometry = reader.mask(index)
        if geometry.shape != grid.shape or not np.allclose(geometry.affine, grid.affine, atol=1e-4):
            raise InvalidInputError(f"{path}: timepoint {index} mask is on a different grid than the others")
        lesion_mask = mask > 0
        row: dict[str, Any] = {
            "index": index,
            "days": day,
            "voxels": int(np.count_nonzero(lesion_mask)),
            "volume_mm3": float(np.count_nonzero(lesion_mask)) * geometry.voxel_volume_mm3,
            "longest_diameter_mm": longest_diameter_mm(lesion_mask, geometry.spacing_mm),
            "clinical_diameter_mm": clinical_diameter_mm(
                lesion_mask, geometry.spacing_mm, geometry.world_axis_index(2)[0]
            ),
        }
        if prev is not None:
            row["voxels_lost_since_previous"] = int(np.count_nonzero(prev & ~lesion_mask))
        disp = reader.displacement(index)
        if disp is not None:
            field_mm, dgeom = disp
            if dgeom.shape != grid.shape:
                raise InvalidInputError(f"{path}: timepoint {index} displacement grid differs from the mask")
            row["jacobian"] = jacobian_stats(field_mm, dgeom)
            zone = lesion_mask | np.any(field_mm != 0, axis=-1)
            row["zone"] = "displacement"
            del field_mm, disp
        elif influence_mm:
            zone = dilate_mm(lesion_mask, geometry, float(influence_mm))
            row["zone"] = f"mask dilated by {float(influence_mm):g} mm"
        else:
            zone = lesion_mask.copy()
            row["zone"] = "mask only"
        pair_zone = zone if ref_zone is None else (zone | ref_zone)
        row["stability"] = {}
        row["intensity"] = {}
        for contrast in reader.contrasts_of(index):
            raw, igeom, slope, inter = reader.raw(index, contrast)
            if igeom.shape != grid.shape:
                raise InvalidInputError(f"{path}: {contrast} of timepoint {index} is not on the mask's grid")
            stats = label_intensities(raw, slope, inter, mask)
            if not is_ct and stats and t == len(indices) - 1:
                mean, std = reference_stats(raw, slope, inter, mask)
                for s in stats.values():
                    s["z"] = (s["mean"] - mean) / std if std > 0 else float("nan")
            row["intensity"][contrast] = stats
            if ref_zone is None:
                ref_images[contrast] = (raw, slope)
            elif contrast in ref_images:
                p = compare_outside(ref_images[contrast][0], raw, pair_zone, slope)
                row["stability"][contrast] = {
                    "ncc": p.ncc,
                    "max_abs_diff": p.max_abs_diff,
                    "changed_voxels": p.changed_voxels,
                    "outside_voxels": p.outside_voxels,
                }
            wanted = contrast in MONTAGE_CONTRASTS or (not slices.images and t == 0) if slices else False
            if slices is not None and wanted and (t == 0 or contrast in slices.images):
                plane = _slice2d(raw, centre, half, geometry).astype(np.float32) * slope + inter
                slices.images.setdefault(contrast, []).append(plane)
            del raw
        if slices is not None:
            slices.masks.append(_slice2d(mask, centre, half, geometry))
        if ref_zone is None:
            ref_zone = zone
        prev = lesion_mask
        report.timepoints.append(row)
        del mask, zone, pair_zone

    if slices is not None:
        for contrast, planes in slices.images.items():
            if is_ct:
                slices.window[contrast] = CT_WINDOW_HU
            else:
                lo, hi = np.percentile(planes[0], [1, 99])
                slices.window[contrast] = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
    report.slices = slices
    report.growth = growth_fit(spec, days, [r["volume_mm3"] for r in report.timepoints])
    report.checks = _checks(report, growing, is_ct, grid)
    return report


def _checks(report: BundleReport, growing: bool, is_ct: bool, grid: Geometry) -> list[Check]:
    """The rules of :data:`longisynth.checks.RULES` on the re-measured numbers."""
    out: list[Check] = []
    rows = report.timepoints
    if growing and len(rows) > 1:
        lost = sum(r.get("voxels_lost_since_previous", 0) for r in rows)
        out.append(ck.check("mask_voxels_not_nested", lost))
    for r in rows:
        jac = r.get("jacobian")
        if jac is not None:
            out.append(ck.check("jacobian_determinant_min", jac["min"], timepoint=r["index"]))
        for contrast, s in sorted(r["stability"].items()):
            out.append(
                ck.check(
                    "anatomy_max_abs_diff_outside_zone",
                    s["max_abs_diff"],
                    timepoint=r["index"],
                    suffix=contrast,
                )
            )
            out.append(ck.check("anatomy_ncc_outside_zone", s["ncc"], timepoint=r["index"], suffix=contrast))
    final = rows[-1]
    out.append(ck.check("final_lesion_voxels", final["voxels"]))
    if report.diameter_rel_error is not None:
        out.append(ck.check("final_diameter_relative_error", abs(report.diameter_rel_error)))
    g = report.growth
    for key in ("vdt_rel_error", "halving_rel_error", "gompertz_rate_rel_error", "volume_change_rel"):
        if g.get(key) is not None:
            out.append(ck.check(key, g[key]))
    if is_ct:
        ct = final["intensity"].get("ct", {})
        for label, name in (("1", "solid_mean_hu"), ("2", "ground_glass_mean_hu")):
            if label in ct and ct[label]["voxels"] >= 5:
                out.append(ck.check(name, ct[label]["mean"], timepoint=final["index"]))
    return out
