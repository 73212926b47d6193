"""``preview.png``: an axial slice through the lesion at every timepoint, mask outlines, growth curve."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
from typing import Any

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from longisynth.geometry import Box
from longisynth.result import Study
from longisynth.spec import Family

LUNG_WINDOW_HU = (-1350.0, 150.0)  # window 1500 / level -600, the usual lung window
PREVIEW_ORDER = ["ct", "flair", "t1c", "t2", "t1"]  # most informative contrasts for gliomas first
MASK_COLOURS = {1: "#ff3b30", 2: "#ffcc00", 3: "#34c759"}
DAYS_PER_MONTH = 365.25 / 12


def scan_time_label(days: float) -> str:
    """A scan's time as a reader writes it: "baseline", "day 10", "3 mo", "18 mo", "2 y".

    Whole months (within a day) are written in months below two years and in years when whole;
    other times in whole days.
    """
    if days <= 0:
        return "baseline"
    months = days / DAYS_PER_MONTH
    if abs(months - round(months)) * DAYS_PER_MONTH <= 1.0 and round(months) >= 1:
        m = round(months)
        return f"{m // 12} y" if m >= 24 and m % 12 == 0 else f"{m} mo"
    return f"day {round(days)}"


def _view_box(study: Study) -> Box:
    """The crop enlarged by half on each side (clipped), to show the lesion in context."""
    g = study.geometry
    start = np.asarray(study.box.start)
    stop = np.asarray(study.box.stop)
    pad = (stop - start) // 2
    lo = np.maximum(start - pad, 0)
    hi = np.minimum(stop + pad, np.asarray(g.shape))
    return Box(tuple(int(v) for v in lo), tuple(int(v) for v in hi))  # type: ignore[arg-type]


def _ras(array: NDArray[Any], affine: NDArray[np.float64]) -> NDArray[Any]:
    ornt = nib.orientations.io_orientation(affine)
    return nib.orientations.apply_orientation(array, ornt)


def _axial(volume_ras: NDArray[Any], z: int) -> NDArray[Any]:
    # Radiological convention: patient's right on the viewer's left, anterior up.
    return np.asarray(volume_ras[::-1, :, z]).T


def render_preview(study: Study, contrasts: int = 2) -> bytes:
    """PNG bytes of the preview figure."""
    view = _view_box(study)
    g = study.geometry.crop(view)
    ornt = nib.orientations.io_orientation(g.affine)
    spacing_ras = np.asarray(g.spacing_mm)[ornt[:, 0].argsort()]
    names = sorted(study.contrasts, key=lambda c: PREVIEW_ORDER.index(c) if c in PREVIEW_ORDER else 9)[
        :contrasts
    ]
    n_t = len(study.timepoints)
    last_mask = _ras(_crop_of(study, view, -1, None), g.affine)
    z = int(np.argmax((last_mask > 0).sum(axis=(0, 1)))) if last_mask.any() else last_mask.shape[2] // 2
    fig, axes = plt.subplots(
        len(names) + 1, n_t, figsize=(2.6 * n_t, 2.7 * (len(names) + 1)), squeeze=False, facecolor="black"
    )
    extent = (0, spacing_ras[0] * last_mask.shape[0], 0, spacing_ras[1] * last_mask.shape[1])
    for row, name in enumerate(names):
        first = _ras(_crop_of(study, view, 0, name), g.affine).astype(np.float32)
        scan = study.scans[name]
        first = first * scan.slope + scan.inter
        if study.spec.family == Family.LUNG_NODULE:
            vmin, vmax = LUNG_WINDOW_HU
        else:
            vmin, vmax = (float(v) for v in np.percentile(first[first > np.percentile(first, 30)], [1, 99.5]))
        for col, tp in enumerate(study.timepoints):
            img = (
                _ras(_crop_of(study, view, col, name), g.affine).astype(np.float32) * scan.slope + scan.inter
            )
            mask = _ras(_crop_of(study, view, col, None), g.affine)
            ax = axes[row, col]
            ax.imshow(_axial(img, z), cmap="gray", vmin=vmin, vmax=vmax, origin="lower", extent=extent)
            for label, colour in MASK_COLOURS.items():
                m = _axial(mask, z) == label
                if m.any():
                    ax.contour(
                        m.astype(float),
                        levels=[0.5],
                        colors=colour,
                        linewidths=0.8,
                        origin="lower",
                        extent=extent,
                    )
            ax.set_title(f"{name.upper()}  {scan_time_label(tp.days)}", color="white", fontsize=8)
            ax.axis("off")
    gs = axes[-1, 0].get_gridspec()
    for ax in axes[-1, :]:
        ax.remove()
    curve = fig.add_subplot(gs[-1, :])
    days = [tp.days for tp in study.timepoints]
    vols = [tp.lesion_volume_mm3 for tp in study.timepoints]
    clinical = study.spec.family == Family.LUNG_NODULE  # a nodule's size is its clinical diameter
    diam = [tp.clinical_diameter_mm if clinical else tp.longest_diameter_mm for tp in study.timepoints]
    curve.set_facecolor("white")
    curve.plot(days, vols, "o-", color="#0a84ff", label="volume (mm³)")
    curve.set_xlabel("days", color="white")
    curve.set_ylabel("volume (mm³)", color="#0a84ff")
    curve.tick_params(colors="white")
    twin = curve.twinx()
    twin.plot(days, diam, "s--", color="#ff9500")
    twin.set_ylabel("size (mm)" if clinical else "longest diameter (mm)", color="#ff9500")
    twin.tick_params(colors="white")
    spec = study.spec
    kind = (
        spec.nodule_type.value
        if spec.nodule_type
        else f"{spec.grade.value if spec.grade else ''} grade glioma"
    )
    curve.set_title(
        f"{kind.replace('_', ' ')} · {spec.growth.law.value if spec.growth.law else ''} · seed {spec.seed}",
        color="white",
        fontsize=9,
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, facecolor=fig.get_facecolor(), metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _crop_of(study: Study, view: Box, index: int, contrast: str | None) -> NDArray[Any]:
    """Timepoint ``index`` image (``contrast``) or mask (None) within the view box."""
    tp = study.timepoints[index]
    if contrast is None:
        out = np.zeros(view.shape, dtype=np.uint8)
        src = tp.mask
    else:
        out = study.scans[contrast].raw[view.slices].copy()
        src = tp.crops[contrast]
    inner = tuple(
        slice(b0 - v0, b1 - v0)
        for b0, b1, v0 in zip(study.box.start, study.box.stop, view.start, strict=True)
    )
    out[inner] = src
    return out
