"""The summary table: realised distributions of the sampled fields against the design.

Targets come from independent draws of the design (:func:`~longisynth.dataset.plan.reference_sample`,
strata equally likely), so conditionals, clipping, rounding and balancing are all accounted for.
Categorical fields show the share per value with a z-score (realised − target in binomial
standard errors; |z| > 3 deserves a look); numeric fields show mean and 5/50/95 % quantiles with
the two-sample Kolmogorov–Smirnov p-value.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from longisynth.archetypes import ArchetypeRegistry
from longisynth.archetypes.model import flatten, left_to_request
from longisynth.dataset.design import DatasetDesign, ExportFormat
from longisynth.dataset.folds import describe
from longisynth.dataset.plan import reference_sample

REFERENCE_DRAWS = 10000


def _is_numeric(values: list[Any]) -> bool:
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def field_table(design: DatasetDesign, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per sampled field (and value, for categorical fields); see module docstring."""
    realised_rows = [r for r in rows if r.get("status") in ("ok", "planned")]
    reference = reference_sample(design, REFERENCE_DRAWS)
    out: list[dict[str, Any]] = []
    for path in design.sample:
        real = [r["sampled"][path] for r in realised_rows if path in (r.get("sampled") or {})]
        ref = [d[path] for d in reference if path in d]
        if not ref:
            continue
        out += compare(ref, real, {"field": path})
    return out


def compare(ref: list[Any], real: list[Any], key: dict[str, Any]) -> list[dict[str, Any]]:
    """Design (``ref``: reference draws) against realised values of one field, as table entries
    starting with ``key``: one numeric entry (mean and quantiles, KS p), or one per categorical
    value (shares, count, z = realised − design in binomial standard errors)."""
    n = len(real)
    if _is_numeric(ref):
        return [
            {
                **key,
                "kind": "numeric",
                "n": n,
                "design": _describe(ref),
                "realised": _describe(real) if real else None,
                "ks_p": float(stats.ks_2samp(real, ref).pvalue) if n >= 2 else None,
            }
        ]
    ref_counts, real_counts = Counter(str(v) for v in ref), Counter(str(v) for v in real)
    out = []
    for value in sorted(set(ref_counts) | set(real_counts)):
        p = ref_counts[value] / len(ref)
        phat = real_counts[value] / n if n else 0.0
        se = math.sqrt(p * (1 - p) / n) if n and 0 < p < 1 else 0.0
        z = (phat - p) / se if se > 0 else (0.0 if phat == p else math.inf)
        out.append(
            {
                **key,
                "kind": "categorical",
                "value": value,
                "n": n,
                "design_share": p,
                "realised_share": phat,
                "count": real_counts[value],
                "z": z,
            }
        )
    return out


def _describe(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    q = np.quantile(a, [0.05, 0.5, 0.95])
    return {"mean": float(a.mean()), "q05": float(q[0]), "q50": float(q[1]), "q95": float(q[2])}


def _fmt(d: dict[str, float] | None) -> str:
    if d is None:
        return "—"
    return f"{d['mean']:.4g} [{d['q05']:.4g}, {d['q50']:.4g}, {d['q95']:.4g}]"


def summary_markdown(
    design: DatasetDesign,
    rows: list[dict[str, Any]],
    dry_run: bool = False,
    archetypes: ArchetypeRegistry | None = None,
    formats: Sequence[ExportFormat] = (),
) -> str:
    """Counts, errors, realised vs design per sampled field, per archetype (its own distributions
    against the cases that used it), (for a run) measured vs requested, and how the validation
    folds of the nnU-Net / MONAI exports in ``formats`` are grouped, with a warning when there are
    too few groups.

    A function of the rows only (no run information such as skipped cases or timings), so the
    same dataset gives the same summary bytes however many runs it took."""
    status = Counter(r.get("status") for r in rows)
    done = "planned" if dry_run else "ok"
    lines = [
        f"# {design.name}: {'dry run (specs only)' if dry_run else 'dataset run'}",
        "",
        f"{len(rows)} cases: {status.get(done, 0)} {done}, {status.get('error', 0)} errors"
        + (f", {status.get('pending', 0)} not run yet" if status.get("pending") else ""),
    ]
    errors = Counter(r["error"] for r in rows if r.get("status") == "error")
    if errors:
        lines += ["", "| errors | message |", "|---:|---|"]
        lines += [f"| {n} | {msg} |" for msg, n in errors.most_common(10)]
    table = field_table(design, rows)
    cat = [e for e in table if e["kind"] == "categorical"]
    num = [e for e in table if e["kind"] == "numeric"]
    if cat:
        lines += ["", "| field | value | design | realised (count) | z |", "|---|---|---:|---:|---:|"]
        for e in cat:
            lines.append(
                f"| {e['field']} | {e['value']} | {e['design_share']:.1%} | "
                f"{e['realised_share']:.1%} ({e['count']}) | {e['z']:+.2f} |"
            )
    if num:
        lines += [
            "",
            "| field | design mean [q05, q50, q95] | realised mean [q05, q50, q95] | n | KS p |",
            "|---|---|---|---:|---:|",
        ]
        for e in num:
            p = "—" if e["ks_p"] is None else f"{e['ks_p']:.3f}"
            lines.append(f"| {e['field']} | {_fmt(e['design'])} | {_fmt(e['realised'])} | {e['n']} | {p} |")
    lines += _archetype_tables(design, rows, archetypes)
    if not dry_run:
        lines += _measured(rows)
    lines += fold_lines([r for r in rows if r.get("status") == done], formats)
    from longisynth.review.apply import review_section

    return "\n".join(lines) + "\n" + ("" if dry_run else review_section(rows))


def archetype_table(
    design: DatasetDesign, rows: list[dict[str, Any]], archetypes: ArchetypeRegistry | None = None
) -> list[dict[str, Any]]:
    """Per archetype used by the rows: each field it draws, designed (the archetype's own
    distribution, :meth:`~longisynth.archetypes.Archetype.reference_draws`) against realised (the
    resolved specs of its cases). Fields the design fixes or samples itself, and those tied to
    them (a design's final size drops the archetype's baseline size), are left out (the
    archetype does not decide them); realised values also include what a case's request gave
    itself (its prompt), which is why they may differ."""
    from longisynth.archetypes import builtin_registry
    from longisynth.dataset import fields

    registry = archetypes or builtin_registry()
    done = [r for r in rows if r.get("status") in ("ok", "planned") and r.get("archetype")]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in done:
        by_name.setdefault(str(r["archetype"]), []).append(r)
    fixed = flatten(design.spec.model_dump(mode="json", exclude_none=True))
    given = {**fixed, **{p: None for p in design.sample}}
    out: list[dict[str, Any]] = []
    for name in sorted(by_name):
        arch = registry.get(name)
        cases = by_name[name]
        reference = arch.reference_draws(REFERENCE_DRAWS)
        tied = left_to_request(given, list(arch.sample), arch.fixed_fields().get("growth.law"))
        for path in arch.sample:
            if path in given or path in tied:  # the design decides it, not the archetype
                continue
            real = [v for v in (fields.get(r["spec"], path) for r in cases if r.get("spec")) if v is not None]
            ref = [d[path] for d in reference if path in d]
            if not ref:
                continue
            out += compare(ref, real, {"archetype": arch.key, "field": path})
    return out


def _archetype_tables(
    design: DatasetDesign, rows: list[dict[str, Any]], archetypes: ArchetypeRegistry | None
) -> list[str]:
    table = archetype_table(design, rows, archetypes)
    if not table:
        return []
    counts = Counter(
        str(r["archetype"]) for r in rows if r.get("status") in ("ok", "planned") and r.get("archetype")
    )
    lines = [
        "",
        "Per archetype: its own distributions (design) against the cases that used it (realised); "
        "cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".",
    ]
    cat = [e for e in table if e["kind"] == "categorical"]
    num = [e for e in table if e["kind"] == "numeric"]
    if num:
        lines += [
            "",
            "| archetype | field | design mean [q05, q50, q95] | realised mean [q05, q50, q95] | n | KS p |",
            "|---|---|---|---|---:|---:|",
        ]
        for e in num:
            p = "—" if e["ks_p"] is None else f"{e['ks_p']:.3f}"
            lines.append(
                f"| {e['archetype']} | {e['field']} | {_fmt(e['design'])} | {_fmt(e['realised'])} | "
                f"{e['n']} | {p} |"
            )
    if cat:
        lines += ["", "| archetype | field | value | design | realised (count) |", "|---|---|---|---:|---:|"]
        for e in cat:
            lines.append(
                f"| {e['archetype']} | {e['field']} | {e['value']} | {e['design_share']:.1%} | "
                f"{e['realised_share']:.1%} ({e['count']}) |"
            )
    return lines


def fold_lines(rows: list[dict[str, Any]], formats: Sequence[ExportFormat]) -> list[str]:
    """The summary's paragraph on validation folds (nnU-Net ``splits_final.json``, MONAI ``fold``)."""
    shown = [f.value for f in formats if f in (ExportFormat.NNUNET, ExportFormat.MONAI)]
    if not rows or not shown:
        return []
    line, notes = describe(rows)
    return ["", f"Folds ({', '.join(shown)}): {line}.", *(f"- **Warning:** {n}." for n in notes)]


def _measured(rows: list[dict[str, Any]]) -> list[str]:
    ok = [r for r in rows if r.get("status") == "ok" and r.get("diameters_mm")]
    if not ok:
        return []
    err = np.array([r["diameters_mm"][-1] - float(r["diameter_mm"]) for r in ok])
    warnings = Counter(w for r in ok for w in r.get("soft_warnings") or [])
    refiner = Counter(r.get("refiner") or "unknown" for r in ok)
    lines = [
        "",
        f"Final longest diameter measured on the mask minus requested: mean {err.mean():+.2f} mm, "
        f"sd {err.std():.2f} mm (n = {len(ok)}; voxel size limits small lesions).",
        f"Hard checks passed in {sum(bool(r.get('hard_checks_passed')) for r in ok)}/{len(ok)} cases; "
        f"refiner: {', '.join(f'{k} {v}' for k, v in sorted(refiner.items()))}.",
    ]
    if warnings:
        lines.append("Soft warnings: " + ", ".join(f"{k} ({v})" for k, v in warnings.most_common()) + ".")
    return lines
