"""The realism report: self-contained HTML (in the style of ``longisynth evaluate``) and JSON."""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from longisynth import __version__
from longisynth.evaluate.figures import _png
from longisynth.evaluate.realism import RealismReport
from longisynth.evaluate.realism.classifier import BOOTSTRAP, REPEATS, RIDGE_C
from longisynth.evaluate.report import CSS, fmt

TOP_FEATURES = 8
EXAMPLES = 8
FEW_HOSTS = 5  # fewer synthetic host groups than this: the interval is wide, say so

UNITS = {"lung_nodule": "HU (edges HU/mm; shape dimensionless)", "glioma": "brain z-scores (edges z/mm)"}


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return None if not math.isfinite(x) else round(x, 6)
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def _groups(report: RealismReport) -> dict[str, int]:
    real = {lesion.group for lesion in report.lesions if lesion.real}
    syn = {lesion.group for lesion in report.lesions if not lesion.real}
    return {"real": len(real), "synthetic": len(syn), "shared": len(real & syn)}


_TIMEPOINTS = {
    "all": "every timepoint",
    "first": "first timepoint of each study",
    "last": "last timepoint of each study",
}


def realism_json(report: RealismReport) -> str:
    """Deterministic JSON: AUCs and intervals, per-feature separation, every lesion's features."""
    r, s = report.result, report.study_grouped
    out = {
        "longisynth_version": __version__,
        "family": report.family,
        "real": report.real_source,
        "contrasts": report.contrasts,
        "seed": report.seed,
        "timepoints": report.timepoints,
        "auc": r.auc,
        "auc_ci95": list(r.ci),
        "auc_study_grouped": s.auc,
        "auc_study_grouped_ci95": list(s.ci),
        "size_auc": report.size_auc,
        "per_host": report.per_host,
        "per_kind": report.per_kind,
        "n_real": report.n_real,
        "n_synthetic": report.n_synthetic,
        "groups": _groups(report),
        "classifier": {
            "model": f"logistic regression, L2 (C={RIDGE_C}), standardised, median-imputed",
            "cv": f"StratifiedGroupKFold, {r.n_splits} folds x {REPEATS} repeats",
            "bootstrap": f"{BOOTSTRAP} cluster resamples of groups",
        },
        "features": report.features,
        "lesions": [
            {
                "name": lesion.name,
                "real": lesion.real,
                "group": lesion.group,
                "diameter_mm": lesion.diameter_mm,
                "score_synthetic": float(r.scores[i]),
                "features": lesion.features,
            }
            for i, lesion in enumerate(report.lesions)
        ],
    }
    return json.dumps(_clean(out), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _distributions(report: RealismReport) -> str:
    names = [f["name"] for f in report.features[:TOP_FEATURES]]
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    y = np.array([0 if lesion.real else 1 for lesion in report.lesions])
    for ax, name in zip(axes.flat, names, strict=False):
        ax.axis("on")
        v = np.array([lesion.features.get(name, math.nan) for lesion in report.lesions])
        ok = np.isfinite(v)
        lo, hi = np.percentile(v[ok], [1, 99]) if ok.any() else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 25)
        for cls, colour, label in ((0, "#0a64a0", "real"), (1, "#d2691e", "synthetic")):
            sel = ok & (y == cls)
            ax.hist(np.clip(v[sel], lo, hi), bins=bins, density=True, alpha=0.55, color=colour, label=label)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _examples(report: RealismReport) -> str:
    """Thumbnails: a row of real lesions and a row of synthetic ones, closest to each class's median size."""
    fig, axes = plt.subplots(2, EXAMPLES, figsize=(1.45 * EXAMPLES, 3.2), squeeze=False)
    for row, real in enumerate((True, False)):
        pool = [lesion for lesion in report.lesions if lesion.real is real]
        step = max(1, len(pool) // EXAMPLES)
        chosen = sorted(pool, key=lambda lesion: lesion.diameter_mm)[::step][:EXAMPLES]
        for ax in axes[row]:
            ax.axis("off")
        for ax, lesion in zip(axes[row], chosen, strict=False):
            ax.imshow(
                lesion.thumbnail.T, cmap="gray", vmin=0, vmax=1, origin="lower", interpolation="nearest"
            )
            ax.set_title(f"{lesion.diameter_mm:.0f} mm", fontsize=7)
        axes[row][0].text(
            -0.1,
            0.5,
            "real" if real else "synthetic",
            transform=axes[row][0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=9,
        )
    fig.tight_layout()
    return _png(fig)


def _feature_rows(report: RealismReport) -> str:
    rows = []
    for f in report.features:
        r, s = f["real"], f["synthetic"]

        def q(d: dict[str, Any]) -> str:
            return "—" if d["median"] is None else f"{d['median']:.3g} [{d['q1']:.3g}, {d['q3']:.3g}]"

        sep = abs(f["auc"] - 0.5) if math.isfinite(f["auc"]) else 0.0
        cls = "bad" if sep >= 0.25 else ("warn" if sep >= 0.1 else "ok")
        rows.append(
            f"<tr><td class=l>{html.escape(f['name'])}</td><td class={cls}>{fmt(f['auc'], '.2f')}</td>"
            f"<td>{q(r)}</td><td>{q(s)}</td></tr>"
        )
    head = (
        "<tr><th class=l>feature</th><th>AUC alone</th><th>real median [IQR]</th>"
        "<th>synthetic median [IQR]</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _host_rows(report: RealismReport) -> str:
    rows = "".join(
        f"<tr><td class=l>{html.escape(h['group'])}</td><td>{h['n']}</td><td>{fmt(h['auc'], '.2f')}</td></tr>"
        for h in report.per_host
    )
    return (
        "<table><tr><th class=l>host scan (synthetic)</th><th>lesions</th><th>AUC vs all real</th></tr>"
        f"{rows}</table>"
    )


def _kind_rows(report: RealismReport) -> str:
    if not report.per_kind:
        return ""
    rows = "".join(
        f"<tr><td class=l>{html.escape(k['kind'])}</td><td>{k['n_real']}</td><td>{k['n_synthetic']}</td>"
        f"<td>{fmt(k['auc'], '.2f')}</td></tr>"
        for k in report.per_kind
    )
    return (
        "<h2>By nodule type</h2><p>The same out-of-fold scores, real and synthetic lesions of one type "
        "only (real: the readers' texture score). Few lesions of a type make a wide interval.</p>"
        "<table><tr><th class=l>type</th><th>real</th><th>synthetic</th><th>AUC</th></tr>"
        f"{rows}</table>"
    )


def realism_html(report: RealismReport) -> str:
    """The whole page: verdict, why (features ranked, distributions), examples, method."""
    r, s = report.result, report.study_grouped
    groups = _groups(report)
    per_host = Counter(lesion.group for lesion in report.lesions if not lesion.real)
    warn = ""
    if groups["synthetic"] < FEW_HOSTS and groups["shared"] == 0:
        warn = (
            f"<p class=warn>Only {groups['synthetic']} host scans hold the synthetic lesions: held-out "
            "hosts are few, so the interval is wide and the host-grouped AUC can under-state how "
            "recognisable the lesions are. Grow lesions on more host scans.</p>"
        )
    verdict = (
        f"<p style='font-size:20px'><b>{html.escape(report.line())}</b> — real vs synthetic "
        f"{html.escape(report.family)}, grouped cross-validation (0.5 = indistinguishable).</p>"
    )
    method = (
        f"<p>{report.n_real} real lesions ({groups['real']} patients) from "
        f"<code>{html.escape(report.real_source)}</code>; {report.n_synthetic} synthetic lesions "
        f"({_TIMEPOINTS[report.timepoints]} at least the minimum size) from {groups['synthetic']} host scans "
        f"({', '.join(f'{html.escape(k)}: {v}' for k, v in sorted(per_host.items()))}). "
        f"Classifier: L2 logistic regression (C = {RIDGE_C}) on standardised features, "
        f"StratifiedGroupKFold ({r.n_splits} folds × {REPEATS} repeats, groups = patient / host scan"
        f"{'; real and synthetic tumours of one brain share a group' if groups['shared'] else ''}), "
        f"95 % interval from {BOOTSTRAP} cluster bootstrap resamples of the groups. Features are in "
        f"{UNITS[report.family]}; no feature measures size. Size alone separates the classes at "
        f"AUC {report.size_auc:.2f}. With synthetic lesions grouped by study instead of host (the "
        f"classifier may then learn a host's background): AUC {s.auc:.2f} [{s.ci[0]:.2f}–{s.ci[1]:.2f}].</p>"
    )
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>longisynth realism</title>"
        f"<style>{CSS}</style></head><body><h1>How real is it? — machine Visual Turing Test</h1>"
        f"{verdict}{warn}{method}"
        "<h2>What gives the lesions away</h2><p>Each feature alone: AUC of synthetic vs real (0.5 = same "
        "distribution; above 0.5 synthetic values are larger). Red: |AUC − 0.5| ≥ 0.25.</p>"
        f'<p><img alt="distributions" src="data:image/png;base64,{_distributions(report)}"></p>'
        f"{_feature_rows(report)}"
        "<h2>By host scan</h2><p>Each host's synthetic lesions against every real lesion (out-of-fold "
        "scores of the same classifier): a host far above the rest gives its lesions away.</p>"
        f"{_host_rows(report)}"
        f"{_kind_rows(report)}"
        "<h2>Examples</h2><p>Top row real, bottom row synthetic, spread over each class's sizes "
        f"(same window).</p><p><img alt=examples src='data:image/png;base64,{_examples(report)}'></p>"
        "</body></html>\n"
    )
