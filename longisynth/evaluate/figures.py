"""Figures of the report (matplotlib, Agg backend), returned as base64 PNG strings for embedding."""

from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from longisynth.evaluate.core import BundleReport
from longisynth.evaluate.growth import spec_diameter_curve

LABEL_COLOURS = {1: "#ff3b30", 2: "#00c7be", 3: "#ffcc00"}


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def growth_figure(report: BundleReport) -> str:
    """Volume (mm³) and longest diameter (mm) vs days: re-measured points and the spec's curve.

    The spec curve is anchored at the last scan (as the engine anchors its schedules): volume
    V_end,measured·(d(t)/d_end)³, diameter d(t) from the law.
    """
    days = [float(r["days"]) for r in report.timepoints]
    vols = [float(r["volume_mm3"]) for r in report.timepoints]
    diam = [float(r["longest_diameter_mm"]) for r in report.timepoints]
    fig, (ax_v, ax_d) = plt.subplots(1, 2, figsize=(9, 3.2))
    dense = [float(d) for d in np.linspace(days[0], days[-1], 100)] if len(days) > 1 else days
    curve = spec_diameter_curve(report.spec.get("growth") or {}, report.spec, dense)
    if curve is not None:
        ratio = [(d / curve[-1]) ** 3 for d in curve]
        ax_v.plot(dense, [vols[-1] * r for r in ratio], "-", color="#888", label=f"spec ({report.law})")
        ax_d.plot(dense, curve, "-", color="#888", label=f"spec ({report.law})")
    elif report.diameter_spec_mm:
        ax_d.axhline(report.diameter_spec_mm, color="#888", ls="--", label="requested final")
    ax_v.plot(days, vols, "o-", color="#0a64a0", label="re-measured")
    ax_d.plot(days, diam, "o-", color="#0a64a0", label="re-measured")
    ax_v.set(xlabel="days", ylabel="volume (mm³)", title="Lesion volume")
    ax_d.set(xlabel="days", ylabel="longest diameter (mm)", title="Longest diameter")
    for ax in (ax_v, ax_d):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def montage_figure(report: BundleReport) -> str | None:
    """Axial slices through the final lesion centre at every timepoint, with the mask outline per label."""
    s = report.slices
    if s is None or not s.images:
        return None
    n = len(s.masks)
    contrasts = list(s.images)
    cols = min(n, 6)
    rows_per = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows_per * len(contrasts), cols, figsize=(2.3 * cols, 2.8 * rows_per * len(contrasts)), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for ci, contrast in enumerate(contrasts):
        lo, hi = s.window[contrast]
        for t, plane in enumerate(s.images[contrast]):
            ax = axes[ci * rows_per + t // cols, t % cols]
            ax.imshow(plane, cmap="gray", vmin=lo, vmax=hi, aspect=s.aspect, interpolation="nearest")
            mask = s.masks[t]
            for label, colour in LABEL_COLOURS.items():
                if np.any(mask == label):
                    ax.contour(mask == label, levels=[0.5], colors=colour, linewidths=0.9)
            r = report.timepoints[t]
            ax.set_title(
                f"{contrast} t{r['index']} · {r['days']:.0f} d\n{r['longest_diameter_mm']:.1f} mm", fontsize=8
            )
    fig.tight_layout()
    return _png(fig)
