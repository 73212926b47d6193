"""Scores of a reading study: accuracy, sensitivity, specificity, binomial test, κ, calibration.

"Positive" is *synthetic*: sensitivity = synthetic items called synthetic / synthetic items,
specificity = real items called real / real items. A reader who cannot tell the two apart scores
about 50 % accuracy; the exact two-sided binomial test asks whether accuracy differs from 0.5.
Pooled figures treat every (reader, item) answer as one trial, which overstates the evidence
when readers are correlated; they are descriptive.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from scipy.stats import binomtest

from longisynth.vtt.store import Answer


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def score(answers: list[Answer], truth: dict[str, str]) -> dict[str, Any]:
    """Accuracy, sensitivity, specificity, binomial p-value and calibration of a set of answers."""
    rows = [a for a in answers if a.item_id in truth]
    n = len(rows)
    correct = sum(a.call == truth[a.item_id] for a in rows)
    tp = sum(a.call == "synthetic" and truth[a.item_id] == "synthetic" for a in rows)
    n_syn = sum(truth[a.item_id] == "synthetic" for a in rows)
    tn = sum(a.call == "real" and truth[a.item_id] == "real" for a in rows)
    n_real = n - n_syn
    by_conf: dict[int, list[bool]] = defaultdict(list)
    for a in rows:
        by_conf[a.confidence].append(a.call == truth[a.item_id])
    return {
        "n": n,
        "correct": correct,
        "accuracy": _ratio(correct, n),
        "sensitivity": _ratio(tp, n_syn),
        "specificity": _ratio(tn, n_real),
        "binomial_p_two_sided": binomtest(correct, n, 0.5).pvalue if n else None,
        "calibration": {
            str(c): {"n": len(v), "accuracy": sum(v) / len(v)} for c, v in sorted(by_conf.items())
        },
    }


def cohens_kappa(calls_a: list[str], calls_b: list[str]) -> float | None:
    """Cohen's κ of two readers' calls on the same items (None when undefined: no items, or both
    readers gave one constant call so chance agreement is 1)."""
    n = len(calls_a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(calls_a, calls_b, strict=True)) / n
    pe = sum((calls_a.count(c) / n) * (calls_b.count(c) / n) for c in ("real", "synthetic"))
    if pe == 1.0:
        return None
    return (po - pe) / (1 - pe)


def analyze(answers: list[Answer], key: dict[str, Any]) -> dict[str, Any]:
    """Per-reader and pooled scores, per-kind accuracy and pairwise κ, from answers and ``key.json``."""
    truth = {item_id: v["truth"] for item_id, v in key["items"].items()}
    kind = {item_id: v["kind"] for item_id, v in key["items"].items()}
    by_reader: dict[str, list[Answer]] = defaultdict(list)
    for a in answers:
        if a.item_id in truth:
            by_reader[a.reader_id].append(a)
    pooled = score([a for rs in by_reader.values() for a in rs], truth)
    kinds: dict[str, list[bool]] = defaultdict(list)
    for rs in by_reader.values():
        for a in rs:
            kinds[kind[a.item_id]].append(a.call == truth[a.item_id])
    pooled["accuracy_by_kind"] = {
        k: {"n": len(v), "accuracy": sum(v) / len(v)} for k, v in sorted(kinds.items())
    }
    kappas = []
    for ra, rb in combinations(sorted(by_reader), 2):
        ca = {a.item_id: a.call for a in by_reader[ra]}
        cb = {a.item_id: a.call for a in by_reader[rb]}
        common = sorted(set(ca) & set(cb))
        kappas.append(
            {
                "readers": [ra, rb],
                "n_common": len(common),
                "kappa": cohens_kappa([ca[i] for i in common], [cb[i] for i in common]),
            }
        )
    return {
        "n_items": len(truth),
        "n_synthetic_items": sum(t == "synthetic" for t in truth.values()),
        "readers": {r: score(rs, truth) for r, rs in sorted(by_reader.items())},
        "pooled": pooled,
        "kappa": kappas,
    }


def _pct(x: float | None) -> str:
    return "  n/a" if x is None else f"{100 * x:5.1f}"


def format_report(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`analyze`'s result."""
    lines = [
        f"{result['n_items']} items ({result['n_synthetic_items']} synthetic); "
        f"{len(result['readers'])} reader(s)",
        f"{'reader':<16}{'n':>4}{'acc %':>7}{'sens %':>8}{'spec %':>8}{'p (vs 50%)':>12}",
    ]
    for name, s in [*result["readers"].items(), ("(pooled)", result["pooled"])]:
        p = s["binomial_p_two_sided"]
        lines.append(
            f"{name:<16}{s['n']:>4}{_pct(s['accuracy']):>7}{_pct(s['sensitivity']):>8}"
            f"{_pct(s['specificity']):>8}{'n/a' if p is None else f'{p:.4g}':>12}"
        )
    cal = result["pooled"]["calibration"]
    if cal:
        lines.append(
            "calibration (pooled): "
            + ", ".join(f"conf {c}: {_pct(v['accuracy']).strip()} % of {v['n']}" for c, v in cal.items())
        )
    for k in result["kappa"]:
        kv = "n/a" if k["kappa"] is None else f"{k['kappa']:.3f}"
        lines.append(f"kappa {k['readers'][0]} vs {k['readers'][1]}: {kv} on {k['n_common']} common items")
    return "\n".join(lines)
