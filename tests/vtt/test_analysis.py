"""Scores of :mod:`longisynth.vtt.analysis` against a hand-computed example."""

from __future__ import annotations

import pytest

from longisynth.vtt.analysis import analyze, cohens_kappa, format_report
from longisynth.vtt.store import Answer

# Items i1-i3 synthetic, i4-i6 real (i4 a healthy region, i5-i6 real lesions).
KEY = {
    "items": {
        "i1": {"truth": "synthetic", "kind": "synthetic"},
        "i2": {"truth": "synthetic", "kind": "synthetic"},
        "i3": {"truth": "synthetic", "kind": "synthetic"},
        "i4": {"truth": "real", "kind": "healthy"},
        "i5": {"truth": "real", "kind": "real_lesion"},
        "i6": {"truth": "real", "kind": "real_lesion"},
    }
}
S, R = "synthetic", "real"
ANSWERS = [
    # reader A: i1 S5 ok, i2 S4 ok, i3 R2 wrong, i4 R5 ok, i5 R3 ok, i6 S2 wrong
    Answer("A", "i1", S, 5),
    Answer("A", "i2", S, 4),
    Answer("A", "i3", R, 2),
    Answer("A", "i4", R, 5),
    Answer("A", "i5", R, 3),
    Answer("A", "i6", S, 2),
    # reader B (no i6): i1 S3 ok, i2 R3 wrong, i3 R1 wrong, i4 R4 ok, i5 S2 wrong
    Answer("B", "i1", S, 3),
    Answer("B", "i2", R, 3),
    Answer("B", "i3", R, 1),
    Answer("B", "i4", R, 4),
    Answer("B", "i5", S, 2),
    Answer("B", "zz", S, 5),  # an item not in the key is ignored
]


def test_scores_match_hand_computation() -> None:
    res = analyze(ANSWERS, KEY)
    a, b, pooled = res["readers"]["A"], res["readers"]["B"], res["pooled"]
    # A: 4 of 6 correct; sensitivity 2/3 (i1, i2 of i1-i3); specificity 2/3 (i4, i5 of i4-i6).
    # Binomial, n=6, k=4: P(X>=4) = (C(6,4)+C(6,5)+C(6,6))/2^6 = (15+6+1)/64 = 22/64; two-sided 44/64.
    assert (a["n"], a["correct"]) == (6, 4)
    assert a["accuracy"] == pytest.approx(4 / 6)
    assert a["sensitivity"] == pytest.approx(2 / 3)
    assert a["specificity"] == pytest.approx(2 / 3)
    assert a["binomial_p_two_sided"] == pytest.approx(44 / 64)
    # Calibration A: conf 2 -> i3, i6 both wrong; 3 -> i5 ok; 4 -> i2 ok; 5 -> i1, i4 ok.
    assert a["calibration"] == {
        "2": {"n": 2, "accuracy": 0.0},
        "3": {"n": 1, "accuracy": 1.0},
        "4": {"n": 1, "accuracy": 1.0},
        "5": {"n": 2, "accuracy": 1.0},
    }
    # B: 2 of 5; sensitivity 1/3 (i1); specificity 1/2 (i4 of i4, i5).
    # Binomial, n=5, k=2: P(X<=2) = (1+5+10)/32 = 1/2, doubled -> 1.0.
    assert (b["n"], b["correct"]) == (5, 2)
    assert b["accuracy"] == pytest.approx(0.4)
    assert b["sensitivity"] == pytest.approx(1 / 3)
    assert b["specificity"] == pytest.approx(0.5)
    assert b["binomial_p_two_sided"] == pytest.approx(1.0)
    assert b["calibration"]["3"] == {"n": 2, "accuracy": 0.5}
    # Pooled: 11 answers, 6 correct; sensitivity (2+1)/6; specificity (2+1)/5.
    # Binomial, n=11, k=6: P(X>=6) = 1/2 by symmetry, doubled -> 1.0.
    assert (pooled["n"], pooled["correct"]) == (11, 6)
    assert pooled["sensitivity"] == pytest.approx(0.5)
    assert pooled["specificity"] == pytest.approx(0.6)
    assert pooled["binomial_p_two_sided"] == pytest.approx(1.0)
    # By kind: synthetic 3/6; healthy i4 2/2; real lesions A-i5 ok, A-i6 wrong, B-i5 wrong -> 1/3.
    assert pooled["accuracy_by_kind"]["synthetic"]["accuracy"] == pytest.approx(0.5)
    assert pooled["accuracy_by_kind"]["healthy"] == {"n": 2, "accuracy": 1.0}
    assert pooled["accuracy_by_kind"]["real_lesion"]["accuracy"] == pytest.approx(1 / 3)
    # Kappa A vs B on i1-i5: A = S S R R R, B = S R R R S. Agreement po = 3/5 (i1, i3, i4).
    # Marginals: A S 2/5 R 3/5, B S 2/5 R 3/5 -> pe = 0.4*0.4 + 0.6*0.6 = 0.52.
    # kappa = (0.6 - 0.52) / (1 - 0.52) = 0.08 / 0.48 = 1/6.
    (k,) = res["kappa"]
    assert k["readers"] == ["A", "B"] and k["n_common"] == 5
    assert k["kappa"] == pytest.approx(1 / 6)
    text = format_report(res)
    assert "kappa A vs B: 0.167 on 5 common items" in text
    assert " 66.7" in text


def test_kappa_edge_cases() -> None:
    assert cohens_kappa([S, R, S], [S, R, S]) == pytest.approx(1.0)
    assert cohens_kappa([S, R], [R, S]) == pytest.approx(-1.0)
    assert cohens_kappa([S, S], [S, S]) is None  # chance agreement 1: undefined
    assert cohens_kappa([], []) is None
