"""The clinical vocabulary (issue 15): real-world phrasings and the spec + archetype each gives.

Each row: the prompt, the fields its words set (exactly these, as the other prompt tests compare),
and the archetype it names (None: none). Fields an archetype draws are not in the parsed spec;
:func:`longisynth.api.resolve` fills them (tested in tests/archetypes).
"""

from __future__ import annotations

from typing import Any

import pytest

from longisynth.errors import InvalidInputError, PromptNotUnderstoodError
from longisynth.spec.prompt import parse_prompt, read_prompt

LUNG = {"family": "lung_nodule"}
GLIOMA = {"family": "glioma"}
M = 30.4375  # days per month
FAST, SLOW = 67.0, 950.0  # lung tempo words' doubling times, days

PHRASES: list[tuple[str, dict[str, Any], str | None]] = [
    # the refused phrases
    (
        "aggressive adenocarcinoma in the right lung",
        {**LUNG, "location": {"side": "right"}, "growth": {"doubling_time_days": FAST}},
        "part_solid_adenocarcinoma",
    ),
    ("small 5 mm nodule", {**LUNG, "diameter_mm": 5.0}, None),
    (
        "nodule that shrinks by half over 3 months",
        {**LUNG, "growth": {"volume_ratio": 0.5}, "duration_days": 91.312},
        None,
    ),
    ("slow-growing astrocytoma", {**GLIOMA, "grade": "low"}, "low_grade_glioma"),
    # archetypes by name and alias
    ("aggressive solid nodule", {**LUNG, "nodule_type": "solid"}, "aggressive_solid"),
    (
        "glioblastoma, 3 scans over 4 months",
        {**GLIOMA, "grade": "high", "n_timepoints": 3, "duration_days": 4 * M},
        "glioblastoma",
    ),
    (
        "GBM in the left temporal lobe",
        {**GLIOMA, "grade": "high", "location": {"side": "left", "brain_lobe": "temporal"}},
        "glioblastoma",
    ),
    ("glioblastoma multiforme", {**GLIOMA, "grade": "high"}, "glioblastoma"),
    (
        "butterfly glioblastoma",
        {**GLIOMA, "grade": "high", "location": {"crosses_midline": True, "brain_lobe": "corpus_callosum"}},
        "butterfly_glioblastoma",
    ),
    (
        "oligodendroglioma in the right frontal lobe",
        {**GLIOMA, "grade": "low", "location": {"side": "right", "brain_lobe": "frontal"}},
        "oligodendroglioma",
    ),
    ("low-grade glioma", {**GLIOMA, "grade": "low"}, "low_grade_glioma"),
    ("diffuse astrocytoma", {**GLIOMA, "grade": "low"}, "low_grade_glioma"),
    ("DIPG", {**GLIOMA, "grade": "high", "location": {"brain_lobe": "brainstem"}}, "diffuse_midline_glioma"),
    ("insular glioma", {**GLIOMA, "location": {"brain_lobe": "insula"}}, "insular_glioma"),
    ("granuloma", {}, "granuloma"),
    ("calcified granuloma", {**LUNG, "calcification": "central"}, "granuloma"),
    ("hamartoma", {}, "hamartoma"),
    ("hamartoma with popcorn calcification", {**LUNG, "calcification": "popcorn"}, "hamartoma"),
    ("metastasis", {}, "metastasis"),
    ("lung metastases in the lower lobes", {**LUNG, "location": {"level": "lower"}}, "metastasis"),
    ("pulmonary metastasis, 8 mm", {**LUNG, "diameter_mm": 8.0}, "metastasis"),
    ("adenocarcinoma", {}, "part_solid_adenocarcinoma"),
    ("part-solid adenocarcinoma", {**LUNG, "nodule_type": "part_solid"}, "part_solid_adenocarcinoma"),
    ("minimally invasive adenocarcinoma", {}, "part_solid_adenocarcinoma"),
    ("solid adenocarcinoma", {**LUNG, "nodule_type": "solid"}, "part_solid_adenocarcinoma"),
    ("indolent pure ground-glass nodule", {**LUNG, "nodule_type": "ground_glass"}, "indolent_ggn"),
    ("pure GGN", {**LUNG, "nodule_type": "ground_glass"}, "indolent_ggn"),
    ("inflammatory nodule", {**LUNG}, "inflammatory_regressing"),
    ("transient nodule that resolves", {**LUNG, "growth": {"law": "regressing"}}, "inflammatory_regressing"),
    ("small cell lung cancer", {**LUNG}, "aggressive_solid"),
    ("archetype: gbm", {}, "glioblastoma"),
    ("archetype indolent_ggn, 4 scans", {"n_timepoints": 4}, "indolent_ggn"),
    # a grade word overrides a histology's archetype (the words keep their plain meaning)
    ("grade IV astrocytoma", {**GLIOMA, "grade": "high"}, None),
    ("aggressive astrocytoma", {**GLIOMA, "grade": "high"}, None),
    ("anaplastic astrocytoma", {**GLIOMA, "grade": "high"}, None),
    # size adjectives
    ("tiny nodule", {**LUNG, "diameter_mm": 3.0}, None),
    ("small nodule", {**LUNG, "diameter_mm": 5.0}, None),
    ("very small nodule", {**LUNG, "diameter_mm": 3.0}, None),
    ("medium-sized nodule", {**LUNG, "diameter_mm": 7.0}, None),
    ("large nodule", {**LUNG, "diameter_mm": 20.0}, None),
    ("big solid nodule", {**LUNG, "nodule_type": "solid", "diameter_mm": 20.0}, None),
    ("large 2 cm nodule", {**LUNG, "diameter_mm": 20.0}, None),
    ("small glioma", {**GLIOMA, "diameter_mm": 25.0}, None),
    (
        "large glioma in the left parietal lobe",
        {**GLIOMA, "diameter_mm": 60.0, "location": {"side": "left", "brain_lobe": "parietal"}},
        None,
    ),
    ("huge high-grade glioma", {**GLIOMA, "grade": "high", "diameter_mm": 70.0}, None),
    # tempo
    ("slow-growing nodule", {**LUNG, "growth": {"doubling_time_days": SLOW}}, None),
    ("indolent nodule", {**LUNG, "growth": {"doubling_time_days": SLOW}}, None),
    (
        "fast-growing solid nodule",
        {**LUNG, "nodule_type": "solid"},
        "aggressive_solid",
    ),
    (
        "fast-growing part-solid nodule",
        {**LUNG, "nodule_type": "part_solid", "growth": {"doubling_time_days": FAST}},
        None,
    ),
    (
        "rapidly growing ground-glass nodule",
        {**LUNG, "nodule_type": "ground_glass", "growth": {"doubling_time_days": FAST}},
        None,
    ),
    (
        "aggressive nodule with doubling time 100 days",
        {**LUNG, "growth": {"doubling_time_days": 100.0}},
        "aggressive_solid",
    ),
    ("fast-growing glioma", {**GLIOMA, "grade": "high"}, None),
    ("slowly growing glioma", {**GLIOMA, "grade": "low"}, None),
    ("stable nodule over 2 years", {**LUNG, "growth": {"law": "stable"}, "duration_days": 730.5}, None),
    # multipliers and fractions
    (
        "nodule that doubles over 6 months",
        {**LUNG, "growth": {"volume_ratio": 2.0}, "duration_days": 182.625},
        None,
    ),
    (
        "nodule doubling in volume over a year",
        {**LUNG, "growth": {"volume_ratio": 2.0}, "duration_days": 365.25},
        None,
    ),
    (
        "nodule that triples in volume over 2 years",
        {**LUNG, "growth": {"volume_ratio": 3.0}, "duration_days": 730.5},
        None,
    ),
    (
        "nodule that doubles in diameter over a year",
        {**LUNG, "growth": {"volume_ratio": 8.0}, "duration_days": 365.25},
        None,
    ),
    (
        "nodule that halves over 2 months",
        {**LUNG, "growth": {"volume_ratio": 0.5}, "duration_days": 60.875},
        None,
    ),
    (
        "nodule that grows by 50 % over a year",
        {**LUNG, "growth": {"volume_ratio": 3.375}, "duration_days": 365.25},
        None,
    ),
    (
        "nodule that grows by 50 % in volume over a year",
        {**LUNG, "growth": {"volume_ratio": 1.5}, "duration_days": 365.25},
        None,
    ),
    (
        "nodule that shrinks by 30% over 3 months",
        {**LUNG, "growth": {"volume_ratio": 0.343}, "duration_days": 91.312},
        None,
    ),
    (
        "8 mm nodule that decreases by half over 6 weeks",
        {**LUNG, "diameter_mm": 8.0, "growth": {"volume_ratio": 0.5}, "duration_days": 42.0},
        None,
    ),
    # the existing doubling-time phrasings keep their meaning
    ("nodule doubling every 200 days", {**LUNG, "growth": {"doubling_time_days": 200.0}}, None),
    ("halving time 60 days", {"growth": {"halving_time_days": 60.0, "law": "regressing"}}, None),
]


def _same(actual: Any, expected: Any, path: str = "spec") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"{path}: {actual} != {expected}"
        for key in expected:
            _same(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-3), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def test_the_table_is_large_enough() -> None:
    assert len(PHRASES) >= 60


@pytest.mark.parametrize(("prompt", "fields", "archetype"), PHRASES, ids=[p for p, _, _ in PHRASES])
def test_phrase_gives_spec_and_archetype(prompt: str, fields: dict[str, Any], archetype: str | None) -> None:
    parsed = read_prompt(prompt)  # no unknown words
    _same(parsed.spec.model_dump(mode="json", exclude_unset=True, exclude_none=True), fields)
    assert parsed.archetype == archetype


@pytest.mark.parametrize(
    ("prompt", "error", "needle"),
    [
        ("small 25 mm nodule", PromptNotUnderstoodError, "0.1–6 mm"),
        ("large 5 mm glioma", PromptNotUnderstoodError, "50–150 mm"),
        ("small tumour", PromptNotUnderstoodError, "small nodule"),
        ("glioblastoma in the right upper lobe", PromptNotUnderstoodError, "contradicts"),
        ("glioblastoma, hamartoma", PromptNotUnderstoodError, "archetype"),
        ("archetype banana", InvalidInputError, "unknown archetype"),
        ("nodule that shrinks by 120 % over a year", InvalidInputError, "100 %"),
    ],
)
def test_contradictions_and_impossible_words_are_errors(prompt: str, error: type, needle: str) -> None:
    with pytest.raises(error) as info:
        read_prompt(prompt)
    assert needle in str(info.value)


def test_unknown_words_list_the_closest_known_words_and_archetypes() -> None:
    with pytest.raises(PromptNotUnderstoodError) as info:
        read_prompt("aggresive glioblastomma")
    msg = str(info.value)
    assert info.value.unknown_words == ["aggresive", "glioblastomma"]
    assert '"aggressive"' in msg and '"glioblastoma"' in msg
    assert "closest archetypes:" in msg and "aggressive_solid" in msg and "glioblastoma" in msg


def test_a_prompt_names_at_most_the_matched_phrase_and_records_it() -> None:
    parsed = parse_prompt("aggressive solid nodule in the right upper lobe")
    assert parsed.archetype == "aggressive_solid"
    assert parsed.archetype_phrase == "aggressive solid nodule"
    assert ("aggressive solid nodule", "archetype") in parsed.matched
    assert parsed.spec.growth.doubling_time_days is None  # "aggressive" belongs to the archetype here


def test_an_archetype_named_outright_cannot_be_contradicted() -> None:
    with pytest.raises(PromptNotUnderstoodError, match="archetype glioblastoma"):
        read_prompt("archetype gbm, low-grade")
    assert read_prompt("grade IV astrocytoma").archetype is None  # a histology word yields instead
