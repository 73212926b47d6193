"""Prompt parser: free text -> the LesionSpec fields it sets, unknown words and contradictions refused."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longisynth.errors import InvalidInputError, LongisynthError, PromptNotUnderstoodError
from longisynth.spec import Family, GliomaGrade, GrowthLaw, LesionSpec, Modality, NoduleType, resolve_spec
from longisynth.spec.prompt import MAX_PROMPT_CHARS, normalise, parse_prompt, spec_from_prompt

LUNG = {"family": "lung_nodule"}
GLIOMA = {"family": "glioma"}
M = 30.4375  # days per month (365.25 / 12)

ISSUE_PROMPTS = [
    (
        "simulate a 2cm growth in the upper lobe with a 6-month growth pattern",
        {**LUNG, "diameter_mm": 20.0, "location": {"level": "upper"}, "duration_days": 182.625},
        Modality.CT,
    ),
    (
        "part-solid nodule, 8 mm at baseline, doubling time 300 days, scans at 0, 3, 6 and 12 months",
        {
            **LUNG,
            "nodule_type": "part_solid",
            "baseline_diameter_mm": 8.0,
            "growth": {"doubling_time_days": 300.0},
            "timepoints_days": [0.0, 3 * M, 6 * M, 12 * M],
        },
        Modality.CT,
    ),
    (
        "high-grade glioma in the left frontal lobe, 4 timepoints over 90 days",
        {
            **GLIOMA,
            "grade": "high",
            "location": {"side": "left", "brain_lobe": "frontal"},
            "n_timepoints": 4,
            "duration_days": 90.0,
        },
        Modality.MR,
    ),
]

RUL = {"side": "right", "level": "upper", "lung_lobe": "right_upper"}

# (prompt, exactly the fields it must set)
ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    *((p, fields) for p, fields, _ in ISSUE_PROMPTS),
    ("", {}),
    ("   \t\n ", {}),
    ("simulate a lesion", {}),
    ("please generate a new longitudinal study of a tumour growth", {}),
    ("a 2 cm nodule", {**LUNG, "diameter_mm": 20.0}),
    ("20mm pulmonary nodule", {**LUNG, "diameter_mm": 20.0}),
    ("1.5-cm solid nodule", {**LUNG, "nodule_type": "solid", "diameter_mm": 15.0}),
    ("2 centimetres", {"diameter_mm": 20.0}),
    ("1,5 cm nodule", {**LUNG, "diameter_mm": 15.0}),
    ("2 × 1.5 cm mass", {"diameter_mm": 20.0}),
    # equivalent-sphere diameter: (6 * 500 / pi)^(1/3) = 9.847 mm; 100 mm3 ~ 6 mm (Fleischner)
    ("500 mm³ nodule", {**LUNG, "diameter_mm": 9.847}),
    ("a 100 mm3 nodule", {**LUNG, "diameter_mm": 5.759}),
    ("0.5 cc GGO", {**LUNG, "nodule_type": "ground_glass", "diameter_mm": 9.847}),
    ("0.5 ml", {"diameter_mm": 9.847}),
    ("starting at 8 mm", {"baseline_diameter_mm": 8.0}),
    ("initially 8 mm, reaching 15 mm", {"baseline_diameter_mm": 8.0, "diameter_mm": 15.0}),
    (
        "from 8 to 12 mm over 1 year",
        {"baseline_diameter_mm": 8.0, "diameter_mm": 12.0, "duration_days": 365.25},
    ),
    ("grows from 8 mm → 12 mm", {"baseline_diameter_mm": 8.0, "diameter_mm": 12.0}),
    ("a 2 cm nodule growing to 3 cm", {**LUNG, "baseline_diameter_mm": 20.0, "diameter_mm": 30.0}),
    (
        "shrinking from 10 mm to 5 mm",
        {"baseline_diameter_mm": 10.0, "diameter_mm": 5.0, "growth": {"law": "regressing"}},
    ),
    ("over 6 months", {"duration_days": 182.625}),
    ("for 2 years", {"duration_days": 730.5}),
    ("across 12 weeks", {"duration_days": 84.0}),
    ("over half a year", {"duration_days": 182.625}),
    ("four scans", {"n_timepoints": 4}),
    ("5 time points", {"n_timepoints": 5}),
    ("3 visits", {"n_timepoints": 3}),
    ("baseline and 3 follow-ups", {"n_timepoints": 4}),
    ("timepoints 0/90/180 days", {"timepoints_days": [0.0, 90.0, 180.0]}),
    ("at days 0, 30, 60", {"timepoints_days": [0.0, 30.0, 60.0]}),
    ("at baseline, 3 and 6 months", {"timepoints_days": [0.0, 3 * M, 6 * M]}),
    ("follow-up at 3 and 6 months", {"timepoints_days": [0.0, 3 * M, 6 * M]}),
    ("every 3 months for a year", {"timepoints_days": [0.0, M * 3, M * 6, M * 9, M * 12]}),
    ("four scans every 3 months", {"n_timepoints": 4, "timepoints_days": [0.0, 3 * M, 6 * M, 9 * M]}),
    ("follow the Fleischner schedule", {**LUNG, "schedule": "fleischner"}),
    (
        "a 15 mm nodule, 3 time points, 6 months apart",
        {**LUNG, "diameter_mm": 15.0, "n_timepoints": 3, "timepoints_days": [0.0, 6 * M, 12 * M]},
    ),
    ("5 yearly scans", {"n_timepoints": 5, "timepoints_days": [0.0, 365.25, 730.5, 1095.75, 1461.0]}),
    # the span is then carried by the scan times, so duration_days stays unset
    (
        "scans every 2 months, 4 scans, over 6 months",
        {"n_timepoints": 4, "timepoints_days": [0.0, 2 * M, 4 * M, 6 * M]},
    ),
    ("doubling time 300 days", {"growth": {"doubling_time_days": 300.0}}),
    ("VDT of 400 d", {"growth": {"doubling_time_days": 400.0}}),
    ("doubles every 6 months", {"growth": {"doubling_time_days": 182.625}}),
    ("volume doubling time 1 year", {"growth": {"doubling_time_days": 365.25}}),
    ("Gompertz growth plateauing at 25 mm", {"growth": {"law": "gompertz", "max_diameter_mm": 25.0}}),
    ("stable, no growth", {"growth": {"law": "stable"}}),
    (
        "regressing nodule, halving time 100 days",
        {**LUNG, "growth": {"law": "regressing", "halving_time_days": 100.0}},
    ),
    ("exponential", {"growth": {"law": "exponential"}}),
    (
        "Fisher-Kolmogorov glioma, proliferation rate 0.01/day, diffusion 0.1 mm2/day",
        {
            **GLIOMA,
            "growth": {
                "law": "reaction_diffusion",
                "proliferation_per_day": 0.01,
                "diffusion_mm2_per_day": 0.1,
            },
        },
    ),
    ("spiculated nodule in the RUL", {**LUNG, "shape": "spiculated", "location": RUL}),
    ("lobulated nodule in the upper lobe of the right lung", {**LUNG, "shape": "lobulated", "location": RUL}),
    ("smooth well-circumscribed lesion", {"shape": "smooth"}),
    ("LLL", {**LUNG, "location": {"side": "left", "level": "lower", "lung_lobe": "left_lower"}}),
    ("middle lobe", {**LUNG, "location": {"side": "right", "level": "middle", "lung_lobe": "right_middle"}}),
    ("lingula", {**LUNG, "location": {"side": "left", "lung_lobe": "left_upper"}}),
    ("left lung base", {**LUNG, "location": {"side": "left", "level": "lower"}}),
    ("apical, subpleural", {**LUNG, "location": {"level": "upper", "depth": "peripheral"}}),
    ("perihilar juxtapleural nodule", {**LUNG, "location": {"depth": "central", "juxtapleural": True}}),
    ("touching the pleura", {**LUNG, "location": {"juxtapleural": True}}),
    ("juxtavascular nodule", {**LUNG, "location": {"attachment": "juxtavascular"}}),
    ("nodule abutting a pulmonary vessel", {**LUNG, "location": {"attachment": "juxtavascular"}}),
    ("perifissural nodule", {**LUNG, "location": {"attachment": "perifissural"}}),
    ("against the major fissure", {**LUNG, "location": {"attachment": "perifissural"}}),
    ("isolated nodule", {**LUNG, "location": {"attachment": "isolated"}}),
    ("centrally calcified nodule", {**LUNG, "calcification": "central"}),
    ("calcified granuloma", {**LUNG, "calcification": "central"}),
    ("laminated calcification", {**LUNG, "calcification": "laminated"}),
    ("popcorn calcification", {**LUNG, "calcification": "popcorn"}),
    ("non-calcified central nodule", {**LUNG, "calcification": "none", "location": {"depth": "central"}}),
    ("GGO", {**LUNG, "nodule_type": "ground_glass"}),
    ("pure ground glass nodule", {**LUNG, "nodule_type": "ground_glass"}),
    ("mixed nodule", {**LUNG, "nodule_type": "part_solid"}),
    ("subsolid nodule with a solid component", {**LUNG, "nodule_type": "part_solid"}),
    ("50% solid", {**LUNG, "nodule_type": "part_solid", "solid_fraction": 0.5}),
    ("GBM", {**GLIOMA, "grade": "high"}),
    ("ring-enhancing tumour with a necrotic core and oedema", {**GLIOMA, "grade": "high"}),
    ("WHO grade II oligodendroglioma", {**GLIOMA, "grade": "low"}),
    ("grade IV astrocytoma", {**GLIOMA, "grade": "high"}),
    # histology and pace: implied grades, overridden by an explicit grade word
    ("glioblastoma", {**GLIOMA, "grade": "high"}),
    ("astrocytoma", {**GLIOMA, "grade": "low"}),
    ("diffuse astrocytoma", {**GLIOMA, "grade": "low"}),
    ("anaplastic astrocytoma", {**GLIOMA, "grade": "high"}),
    ("grade 3 astrocytoma", {**GLIOMA, "grade": "high"}),
    ("oligodendroglioma", {**GLIOMA, "grade": "low"}),
    ("anaplastic oligodendroglioma", {**GLIOMA, "grade": "high"}),
    ("aggressive astrocytoma", {**GLIOMA, "grade": "high"}),
    ("slow-growing glioma", {**GLIOMA, "grade": "low"}),
    ("slowly growing astrocytoma", {**GLIOMA, "grade": "low"}),
    ("fast-growing glioma", {**GLIOMA, "grade": "high"}),
    ("aggressive glioma", {**GLIOMA, "grade": "high"}),
    ("rapidly growing glioma to 4 cm", {**GLIOMA, "grade": "high", "diameter_mm": 40.0}),
    ("aggressive brain tumour", {**GLIOMA, "grade": "high"}),
    ("aggressive tumour", {"grade": "high"}),  # the family then follows from the grade
    (
        "diffuse midline glioma",
        {**GLIOMA, "grade": "high", "location": {"brain_lobe": "brainstem"}},
    ),
    (
        "diffuse midline glioma, H3 K27-altered",
        {**GLIOMA, "grade": "high", "location": {"brain_lobe": "brainstem"}},
    ),
    (
        "diffuse midline glioma of the left thalamus",
        {**GLIOMA, "grade": "high", "location": {"side": "left", "brain_lobe": "thalamus"}},
    ),
    ("DIPG", {**GLIOMA, "grade": "high", "location": {"brain_lobe": "brainstem"}}),
    # crossing the midline
    (
        "butterfly glioma",
        {**GLIOMA, "location": {"crosses_midline": True, "brain_lobe": "corpus_callosum"}},
    ),
    (
        "butterfly glioblastoma",
        {**GLIOMA, "grade": "high", "location": {"crosses_midline": True, "brain_lobe": "corpus_callosum"}},
    ),
    (
        "glioma across the corpus callosum",
        {**GLIOMA, "location": {"crosses_midline": True, "brain_lobe": "corpus_callosum"}},
    ),
    ("glioma crossing the midline", {**GLIOMA, "location": {"crosses_midline": True}}),
    ("bihemispheric glioma", {**GLIOMA, "location": {"crosses_midline": True}}),
    (
        "butterfly glioma in the left frontal lobe",
        {**GLIOMA, "location": {"crosses_midline": True, "side": "left", "brain_lobe": "frontal"}},
    ),
    # deep and infratentorial regions
    ("glioma in the left thalamus", {**GLIOMA, "location": {"side": "left", "brain_lobe": "thalamus"}}),
    ("thalamic glioma", {**GLIOMA, "location": {"brain_lobe": "thalamus"}}),
    ("right insular glioma", {**GLIOMA, "location": {"side": "right", "brain_lobe": "insula"}}),
    ("glioma of the left insula", {**GLIOMA, "location": {"side": "left", "brain_lobe": "insula"}}),
    ("brainstem glioma", {**GLIOMA, "location": {"brain_lobe": "brainstem"}}),
    ("brain stem glioma", {**GLIOMA, "location": {"brain_lobe": "brainstem"}}),
    ("pontine glioma", {**GLIOMA, "location": {"brain_lobe": "brainstem"}}),
    ("glioma in the pons", {**GLIOMA, "location": {"brain_lobe": "brainstem"}}),
    ("midbrain glioma", {**GLIOMA, "location": {"brain_lobe": "brainstem"}}),
    ("glioma of the medulla", {**GLIOMA, "location": {"brain_lobe": "brainstem"}}),
    ("cerebellar glioma", {**GLIOMA, "location": {"brain_lobe": "cerebellum"}}),
    ("glioma in the cerebellum", {**GLIOMA, "location": {"brain_lobe": "cerebellum"}}),
    (
        "glioma of the right cerebellar hemisphere",
        {**GLIOMA, "location": {"side": "right", "brain_lobe": "cerebellum"}},
    ),
    ("basal ganglia glioma", {**GLIOMA, "location": {"brain_lobe": "basal_ganglia"}}),
    ("glioma in the right putamen", {**GLIOMA, "location": {"side": "right", "brain_lobe": "basal_ganglia"}}),
    ("left caudate glioma", {**GLIOMA, "location": {"side": "left", "brain_lobe": "basal_ganglia"}}),
    ("lentiform nucleus glioma", {**GLIOMA, "location": {"brain_lobe": "basal_ganglia"}}),
    ("glioma of the corpus callosum", {**GLIOMA, "location": {"brain_lobe": "corpus_callosum"}}),
    ("splenium of the corpus callosum", {**GLIOMA, "location": {"brain_lobe": "corpus_callosum"}}),
    (
        "LGG in the right temporal lobe",
        {**GLIOMA, "grade": "low", "location": {"side": "right", "brain_lobe": "temporal"}},
    ),
    (
        "frontal lobe of the right hemisphere",
        {**GLIOMA, "location": {"side": "right", "brain_lobe": "frontal"}},
    ),
    ("a brain tumour in the left hemisphere", {**GLIOMA, "location": {"side": "left"}}),
    (
        "occipital glioma, deep white matter",
        {**GLIOMA, "location": {"brain_lobe": "occipital", "depth": "central"}},
    ),
    ("at (12.5, -30, 40) mm", {"location": {"point_mm": [12.5, -30.0, 40.0]}}),
    ("centred at x=12 y=-30 z=40 mm", {"location": {"point_mm": [12.0, -30.0, 40.0]}}),
    ("at (10, 20, 30) mm LPS", {"location": {"point_mm": [-10.0, -20.0, 30.0]}}),
    ("at voxel (120, 88, 40)", {"location": {"point_voxel": [120.0, 88.0, 40.0]}}),
    ("voxel 120,88,40", {"location": {"point_voxel": [120.0, 88.0, 40.0]}}),
    ("seed 42", {"seed": 42}),
    ("with seed=7", {"seed": 7}),
    ("random seed 3, no mass effect", {"seed": 3, "mass_effect": False}),
    ("with mass effect", {"mass_effect": True}),
    (
        "SIMULATE A 3D SOLID NODULE IN THE RIGHT\u00a0UPPER LOBE",
        {**LUNG, "nodule_type": "solid", "location": RUL},
    ),
]

# (prompt, error type, text the message must contain)
REJECTED: list[tuple[str, type[LongisynthError], str]] = [
    ("glioma in the right upper lobe of the lung", PromptNotUnderstoodError, "family"),
    ("solid ground-glass nodule", PromptNotUnderstoodError, "nodule_type"),
    ("2 cm nodule growing over 6 months, 3 cm", PromptNotUnderstoodError, "more than one final size"),
    ("over 6 months for 2 years", PromptNotUnderstoodError, "duration_days"),
    ("4 scans at 0, 3, 6 months", PromptNotUnderstoodError, "lists 3 scans"),
    ("right upper lobe nodule in the left lung", PromptNotUnderstoodError, "location.side"),
    ("solid glioma", PromptNotUnderstoodError, "family"),
    ("high-grade nodule", PromptNotUnderstoodError, "family"),
    ("scans every 2 months, 4 scans, over 1 year", PromptNotUnderstoodError, "span"),
    ("a 500 cm nodule", InvalidInputError, "diameter_mm"),
    ("seed 99999999999999999999999", InvalidInputError, "seed"),
    ("21 scans", InvalidInputError, "n_timepoints"),
    ("every 1 day for 2 years", InvalidInputError, "at most 20"),
    ("a nodule in the liver", PromptNotUnderstoodError, "location 'liver' is not supported"),
    (
        "glioma in the spinal cord",
        PromptNotUnderstoodError,
        "brain location 'spinal cord' is not supported: frontal, parietal, temporal or occipital lobe, "
        "insula, thalamus, basal ganglia, corpus callosum, cerebellum or brainstem",
    ),
    ("hypothalamic glioma", PromptNotUnderstoodError, "'hypothalamic' is not supported"),
    ("slow-growing glioblastoma", PromptNotUnderstoodError, "grade"),
    ("aggressive low-grade glioma", PromptNotUnderstoodError, "grade"),
    ("butterfly nodule", PromptNotUnderstoodError, "family"),
    ("diffuse midline glioma, butterfly", PromptNotUnderstoodError, "implies location.brain_lobe"),
    ("left middle lobe", PromptNotUnderstoodError, "no middle lobe"),
    ("8-12 mm nodule", PromptNotUnderstoodError, "ambiguous"),
    ("subsolid nodule", PromptNotUnderstoodError, "say which"),
    ("at (1, 2, 3)", PromptNotUnderstoodError, "need a unit"),
    ("x" * (MAX_PROMPT_CHARS + 1), InvalidInputError, "characters"),
]


def _assert_same(actual: Any, expected: Any, path: str = "spec") -> None:
    """Nested equality with float tolerance 1e-9 relative."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"{path}: {actual} != {expected}"
        for key in expected:
            _assert_same(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual} != {expected}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_same(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


@pytest.mark.parametrize(("prompt", "expected"), ACCEPTED, ids=[p[:50] or "empty" for p, _ in ACCEPTED])
def test_prompt_sets_exactly_these_fields(prompt: str, expected: dict[str, Any]) -> None:
    spec, unknown = spec_from_prompt(prompt)
    assert unknown == []
    _assert_same(spec.model_dump(mode="json", exclude_unset=True), expected)


@pytest.mark.parametrize(("prompt", "error", "text"), REJECTED, ids=[p[:40] for p, _, _ in REJECTED])
def test_prompt_is_rejected_with_a_clear_message(prompt: str, error: type[Exception], text: str) -> None:
    for lenient in (False, True):  # contradictions and absurd values are not excused by lenient mode
        with pytest.raises(error) as info:
            spec_from_prompt(prompt, lenient=lenient)
        message = str(info.value)
        assert text in message and "\n" not in message


@pytest.mark.parametrize("kind", ["lung", "glioma"])
def test_demo_prompts_parse_completely(kind: str) -> None:
    from longisynth.demo import DEMO_PROMPTS

    parsed = parse_prompt(DEMO_PROMPTS[kind])
    assert parsed.unknown_words == []
    expected_family = Family.LUNG_NODULE if kind == "lung" else Family.GLIOMA
    assert parsed.spec.family == expected_family


def test_unknown_words_are_named_in_order() -> None:
    with pytest.raises(PromptNotUnderstoodError) as info:
        spec_from_prompt("a purple 2 cm banana nodule, purple")
    assert info.value.unknown_words == ["purple", "banana"]
    assert str(info.value) == (
        'prompt not understood: could not place "purple", "banana" (use --lenient to ignore them)'
    )


def test_lenient_mode_returns_the_unknown_words_and_the_rest_of_the_spec() -> None:
    spec, unknown = spec_from_prompt("purple 8 mm nodule, banana, 4 scans", lenient=True)
    assert unknown == ["purple", "banana"]
    assert spec.diameter_mm == 8.0 and spec.n_timepoints == 4 and spec.family == Family.LUNG_NODULE


def test_pace_words_are_a_glioma_grade_and_a_nodule_doubling_time() -> None:
    # issue 15: tempo words mean something for nodules too (a doubling time), no longer refused
    spec, _ = spec_from_prompt("fast-growing nodule, 8 mm")
    assert spec.growth.doubling_time_days == 67.0 and spec.diameter_mm == 8.0
    parsed = parse_prompt("slow-growing glioma")
    assert ("slow-growing", "grade") in parsed.matched
    with pytest.raises(PromptNotUnderstoodError) as info:  # a stable nodule has no pace
        spec_from_prompt("stable fast-growing nodule, 8 mm")
    assert info.value.unknown_words == ["fast"]


def test_leftover_numbers_are_unknown_words() -> None:
    parsed = parse_prompt("2 cm nodule 17")
    assert parsed.unknown_words == ["17"] and parsed.spec.diameter_mm == 20.0


def test_matched_phrases_record_which_field_each_set_in_text_order() -> None:
    parsed = parse_prompt("part-solid nodule, 8 mm at baseline, seed 5")
    assert parsed.matched == [
        ("part-solid", "family"),
        ("part-solid", "nodule_type"),
        ("nodule", "family"),
        ("8 mm at baseline", "baseline_diameter_mm"),
        ("seed 5", "seed"),
    ]


def test_unset_fields_stay_unset_so_structured_overrides_merge() -> None:
    spec = parse_prompt("2 cm nodule").spec
    assert spec.model_fields_set == {"family", "diameter_mm"}
    assert spec.location.model_fields_set == set() and spec.growth.model_fields_set == set()


def test_normalise_handles_unicode() -> None:
    assert normalise("2\u2013cm \u00d7 1,5 cm mm\u00b3 \u00a0") == "2-cm  x  1.5 cm mm3  "


@pytest.mark.parametrize(
    ("prompt", "fields", "modality"), ISSUE_PROMPTS, ids=["upper-lobe", "part-solid", "glioma"]
)
def test_resolve_spec_accepts_the_issue_prompts(
    prompt: str, fields: dict[str, Any], modality: Modality
) -> None:
    spec, _ = spec_from_prompt(prompt)
    resolved = resolve_spec(spec, modality, np.random.default_rng(0))
    assert resolved.diameter_mm is not None and resolved.seed is not None
    if modality == Modality.CT:
        assert resolved.family == Family.LUNG_NODULE and resolved.growth.law == GrowthLaw.EXPONENTIAL
        assert resolved.baseline_diameter_mm is not None
        assert resolved.baseline_diameter_mm < resolved.diameter_mm
    else:
        assert resolved.family == Family.GLIOMA and resolved.grade == GliomaGrade.HIGH
        assert resolved.timepoints_days == [0.0, 30.0, 60.0, 90.0]
    if "part-solid" in prompt:
        assert resolved.nodule_type == NoduleType.PART_SOLID
        # final = baseline * 2^(365.25 / 300 / 3): the parser's VDT and schedule are honoured
        assert math.isclose(resolved.diameter_mm, 8.0 * 2 ** (365.25 / 300 / 3), rel_tol=1e-3)


@settings(max_examples=150, deadline=None)
@given(hundredths=st.integers(min_value=100, max_value=10_000), unit=st.sampled_from(["mm", " mm", "-mm"]))
def test_any_size_in_mm_is_the_final_diameter(hundredths: int, unit: str) -> None:
    n = hundredths / 100
    text = f"{n:.2f}".rstrip("0").rstrip(".")
    spec, unknown = spec_from_prompt(f"a {text}{unit} nodule")
    assert unknown == [] and spec.diameter_mm == pytest.approx(n)
    assert spec.model_fields_set == {"family", "diameter_mm"}


@settings(max_examples=100, deadline=None)
@given(n=st.integers(min_value=1, max_value=20), unit=st.sampled_from(["days", "weeks", "months", "years"]))
def test_any_duration_converts_to_days(n: int, unit: str) -> None:
    days = {"days": 1.0, "weeks": 7.0, "months": M, "years": 365.25}[unit] * n
    spec, _ = spec_from_prompt(f"over {n} {unit}")
    assert spec.duration_days == pytest.approx(round(days, 3))


_PIECE_TEXT = (
    "2 cm mm 0 3 6 12 months every for over to from at baseline , / and ( ) - x voxel seed = glioma nodule "
    "right left upper lobe frontal solid part-solid ggo grade iv doubling time vdt halving diffusion "
    "mm2/day % follow-ups scans fleischner 99999999999999999999999 .5 -3 one twenty half a plateauing "
    "mm3 cc x= y= z= lps no mass effect stable ; : 3d \u00b3 \u2013 \u2192 \u00d7 liver banana"
)
_PIECES = _PIECE_TEXT.split()


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=6)), max_size=14),
    sep=st.sampled_from([" ", "", ", "]),
)
def test_junk_never_raises_anything_but_a_longisynth_error(words: list[str], sep: str) -> None:
    try:
        parsed = parse_prompt(sep.join(words))
    except LongisynthError:
        return
    assert isinstance(parsed.spec, LesionSpec)
    assert all(w == w.lower() for w in parsed.unknown_words)
