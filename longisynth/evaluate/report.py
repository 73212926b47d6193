"""Report writers: self-contained HTML (base64 PNGs, collapsible sections), JSON, and a text summary."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from typing import Any

from longisynth import __version__
from longisynth.evaluate.core import BundleReport

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:13px;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left}
.ok{color:#137333;font-weight:600}.bad{color:#c5221f;font-weight:600}.warn{color:#b06000}
details{border:1px solid #ddd;border-radius:6px;margin:0.4em 0;padding:0.3em 0.8em}
summary{cursor:pointer;font-weight:600} img{max-width:100%}
"""


def fmt(x: Any, spec: str = ".3g", pct: bool = False) -> str:
    """Compact number; '—' for missing; percentages with a sign."""
    if x is None:
        return "—"
    if isinstance(x, float) and pct:
        return f"{100 * x:+.1f}%"
    if isinstance(x, float):
        return format(x, spec)
    return str(x)


def summary_row(r: BundleReport) -> dict[str, str]:
    """One bundle's row of the summary tables (strings, already formatted)."""
    g = r.growth
    status = "ERROR" if r.error else ("PASS" if r.passed else "FAIL")
    return {
        "bundle": r.path,
        "family": r.family or "—",
        "type": r.kind or "—",
        "law": r.law or "—",
        "VDT spec (d)": fmt(g.get("vdt_spec_days"), ".0f"),
        "VDT fit (d)": fmt(g.get("vdt_fit_days"), ".0f"),
        "VDT err": fmt(g.get("vdt_rel_error"), pct=True),
        "diam spec (mm)": fmt(r.diameter_spec_mm, ".1f"),
        "diam (mm)": fmt(r.diameter_final_mm, ".1f"),
        "diam err": fmt(r.diameter_rel_error, pct=True),
        "hard": status,
        "soft fails": str(len(r.soft_failures)),
    }


def text_summary(reports: list[BundleReport], max_rows: int = 25) -> str:
    """Fixed-width table: one row per bundle up to ``max_rows``, else per family/type plus the failures."""
    rows = [summary_row(r) for r in reports]
    if len(rows) > max_rows:
        groups: dict[tuple[str, str], list[BundleReport]] = {}
        for r in reports:
            groups.setdefault((r.family or "—", r.kind or "—"), []).append(r)
        agg = []
        for (fam, kind), rs in sorted(groups.items()):
            errs = sorted(abs(x.diameter_rel_error) for x in rs if x.diameter_rel_error is not None)
            vdt = sorted(
                abs(x.growth["vdt_rel_error"]) for x in rs if x.growth.get("vdt_rel_error") is not None
            )
            agg.append(
                {
                    "family": fam,
                    "type": kind,
                    "bundles": str(len(rs)),
                    "pass": str(sum(x.passed for x in rs)),
                    "median |diam err|": fmt(errs[len(errs) // 2] if errs else None, pct=True),
                    "median |VDT err|": fmt(vdt[len(vdt) // 2] if vdt else None, pct=True),
                }
            )
        bad = [row for r, row in zip(reports, rows, strict=True) if not r.passed]
        text = _table(agg)
        return text + ("\nfailed bundles:\n" + _table(bad) if bad else "")
    return _table(rows)


def _table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "(no bundles)"
    keys = list(rows[0])
    width = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(width[k]) for k in keys)]
    lines += ["  ".join(r[k].ljust(width[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def json_report(reports: Iterable[BundleReport], longitudinal: dict[str, Any] | None = None) -> str:
    """Deterministic JSON (sorted keys, rounded floats) of every bundle's numbers.

    ``longitudinal``: the real-vs-synthetic change comparison (``--progression``), when made.
    """
    items = [r.to_json() for r in reports]
    out: dict[str, Any] = {
        "longisynth_version": __version__,
        "bundles": items,
        "n_bundles": len(items),
        "n_passed": sum(1 for i in items if i["passed"]),
    }
    if longitudinal is not None:
        out["longitudinal"] = _rounded(longitudinal)
    return json.dumps(out, indent=2, sort_keys=True, allow_nan=False) + "\n"


def _checks_table(r: BundleReport) -> str:
    rows = []
    for c in r.checks:
        cls = "ok" if c.passed else ("bad" if c.hard else "warn")
        tp = "" if c.timepoint is None else str(c.timepoint)
        rows.append(
            f"<tr><td class=l>{html.escape(c.name)}</td><td>{tp}</td><td>{fmt(c.value, '.6g')}</td>"
            f"<td>{html.escape(c.limit)}</td><td>{'hard' if c.hard else 'soft'}</td>"
            f"<td class={cls}>{'pass' if c.passed else 'FAIL'}</td></tr>"
        )
    head = "<tr><th class=l>check</th><th>t</th><th>value</th><th>limit</th><th>kind</th><th>result</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _timepoint_table(r: BundleReport) -> str:
    head = (
        "<tr><th>t</th><th>days</th><th>voxels</th><th>volume (mm³)</th><th>longest diam (mm)</th>"
        "<th>Jacobian min / p1 / median</th><th>NCC outside zone</th><th>max |Δ| outside</th>"
        "<th class=l>lesion mean per label (HU for CT; z-score for MRI)</th></tr>"
    )
    rows = []
    for t in r.timepoints:
        jac = t.get("jacobian")
        jtxt = "—" if jac is None else f"{jac['min']:.3f} / {jac['p1']:.3f} / {jac['median']:.3f}"
        st = t["stability"]
        ncc = min((s["ncc"] for s in st.values()), default=None)
        mad = max((s["max_abs_diff"] for s in st.values()), default=None)
        parts = []
        for contrast, labels in sorted(t["intensity"].items()):
            vals = ", ".join(
                f"{k}: {v['mean']:.0f}"
                + (f" (z {v['z']:.2f})" if v.get("z") is not None and v["z"] == v["z"] else "")
                for k, v in sorted(labels.items())
            )
            parts.append(f"{contrast} [{vals}]")
        rows.append(
            f"<tr><td>{t['index']}</td><td>{t['days']:.1f}</td><td>{t['voxels']}</td>"
            f"<td>{t['volume_mm3']:.1f}</td>"
            f"<td>{t['longest_diameter_mm']:.2f}</td><td>{jtxt}</td><td>{fmt(ncc, '.6f')}</td>"
            f"<td>{fmt(mad)}</td>"
            f"<td class=l>{html.escape('; '.join(parts))}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def bundle_section(r: BundleReport, figures: dict[str, str]) -> str:
    """Collapsible HTML section of one bundle (open when it failed)."""
    row = summary_row(r)
    cls = "ok" if r.passed else "bad"
    title = (
        f"{html.escape(r.path)} — {row['family']} / {row['type']} — <span class={cls}>{row['hard']}</span>"
    )
    if r.error:
        return f"<details open><summary>{title}</summary><p class=bad>{html.escape(r.error)}</p></details>"
    g = ", ".join(f"{k} = {fmt(v)}" for k, v in sorted(r.growth.items()))
    imgs = "".join(f'<p><img alt="{k}" src="data:image/png;base64,{v}"></p>' for k, v in figures.items() if v)
    return (
        f"<details{' open' if not r.passed else ''}><summary>{title}</summary>"
        f"<p>Growth fit: {html.escape(g)}</p>{imgs}{_timepoint_table(r)}{_checks_table(r)}</details>"
    )


def _rounded(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 6) if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    return x


def html_report(reports: list[BundleReport], sections: list[str], extra: str = "") -> str:
    """The whole self-contained page: summary table across bundles, ``extra`` (e.g. the longitudinal
    comparison), then one section per bundle."""
    rows = [summary_row(r) for r in reports]
    keys = list(rows[0]) if rows else []
    head = "".join(f"<th class=l>{html.escape(k)}</th>" for k in keys)
    body = []
    for row in rows:
        cells = []
        for k in keys:
            v = html.escape(row[k])
            cls = {"PASS": "ok", "FAIL": "bad", "ERROR": "bad"}.get(row[k], "") if k == "hard" else ""
            cells.append(f"<td class='l {cls}'>{v}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    n_pass = sum(r.passed for r in reports)
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>longisynth evaluation</title>"
        f"<style>{CSS}</style></head><body><h1>longisynth evaluation</h1>"
        f"<p>{len(reports)} bundles, {n_pass} pass every hard check. Numbers are re-measured from the images "
        "(volumes mm³, diameters mm, times days, CT intensities HU); metadata supplies only the scan days "
        "and the requested spec.</p>"
        f"<table><tr>{head}</tr>{''.join(body)}</table>{extra}<h2>Bundles</h2>{''.join(sections)}</body></html>\n"
    )
