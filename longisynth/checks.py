"""Plausibility rules: one table, read by the engine (every study) and by ``longisynth evaluate``.

Each :class:`Rule` has a name (units in the name: ``_mm``, ``_days``), a test against a limit,
whether it is *hard* and why it exists. A hard rule guards against a silently bad study (the
lesion leaves its organ, tissue outside the influence zone changes, the deformation folds): a
failed hard check makes the engine raise :class:`PlausibilityError` (:func:`enforce`) and
``evaluate`` exit 1. A soft rule reports clinical plausibility (growth rate in the clinical range)
without failing. The outcome of a rule on one study is a :class:`Check`, recorded in
``metadata.json`` and in the evaluation report. The rationale of each rule is in
``docs/design.md`` §Rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from longisynth.errors import PlausibilityError

Test = Literal["at_least", "at_most", "within", "true"]
Limit = float | tuple[float, float] | None


@dataclass(frozen=True)
class Check:
    """One rule's outcome. ``value`` and ``limit`` carry units in ``name`` (e.g. ``_mm``, ``_days``)."""

    name: str
    value: float | int | bool
    limit: str
    passed: bool
    hard: bool
    timepoint: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rule:
    """A named test with its limit (or one limit per *variant*, e.g. per glioma grade)."""

    name: str
    test: Test
    limit: Limit | Mapping[str, Limit]
    hard: bool
    rationale: str

    def limit_for(self, variant: str | None) -> Limit:
        if isinstance(self.limit, Mapping):
            if variant is None or variant not in self.limit:
                raise KeyError(f"rule {self.name} has no limit for {variant!r}")
            return self.limit[variant]
        return self.limit

    def check(
        self,
        value: float | bool,
        *,
        timepoint: int | None = None,
        variant: str | None = None,
        suffix: str = "",
    ) -> Check:
        """Evaluate the rule on ``value``; ``suffix`` names a per-contrast instance (``name_suffix``)."""
        name = f"{self.name}_{suffix}" if suffix else self.name
        limit = self.limit_for(variant)
        if self.test == "true":
            return Check(name, bool(value), "true", bool(value), self.hard, timepoint)
        v = round(float(value), 6)
        if self.test == "within":
            assert isinstance(limit, tuple)
            low, high = limit
            return Check(name, v, f"[{low:g}, {high:g}]", bool(low <= value <= high), self.hard, timepoint)
        assert isinstance(limit, float | int)
        if self.test == "at_least":
            return Check(name, v, f">= {limit:g}", bool(value >= limit), self.hard, timepoint)
        return Check(name, v, f"<= {limit:g}", bool(value <= limit), self.hard, timepoint)


_RULES = (
    # --- every study (engine) and every bundle (evaluate) --------------------------------------
    Rule("lesion_in_allowed_region_fraction", "at_least", 0.99, True,
         "the lesion stays in its organ (lung, brain parenchyma): at most 1 % of its voxels outside"),
    Rule("lesion_voxels", "at_least", 1, False,
         "a lesion smaller than a voxel at a timepoint is legal but worth a warning"),
    Rule("changed_voxels_outside_influence_zone", "at_most", 0, True,
         "anatomy outside the lesion and its mass-effect zone is bit-for-bit the input"),
    Rule("jacobian_determinant_min", "at_least", 1e-6, True,
         "the mass-effect deformation is invertible: no folding (Jacobian determinant > 0)"),
    Rule("masks_nested_over_time", "true", None, True,
         "a growing lesion contains its earlier self unless the spec asks for regression"),
    Rule("volume_monotone_non_decreasing", "true", None, True,
         "a growing lesion's volume never decreases between scans"),
    Rule("zero_background_voxels_nonzero", "at_most", 0, True,
         "an MRI's exact-zero background (air set to 0, or outside a skull-stripped brain) stays "
         "exactly 0: no noise, tumour or blur is written into it (MRI only)"),
    Rule("host_pattern_in_solid_lesion", "at_most", 0.5, False,
         "the host's anatomy (sulci, vessels) does not show through a solid lesion: regression "
         "slope of the output on the displaced host inside the solid interior, largest over the "
         "contrasts, last scan (0 = replaced, 1 = host fully visible)"),
    Rule("final_diameter_relative_error", "at_most", 0.10, False,
         "the last scan's longest diameter is within 10 % of the request (|error|; voxel "
         "quantisation and pleural clipping make larger errors possible, hence soft)"),
    # --- lung nodules -------------------------------------------------------------------------
    Rule("volume_law_relative_error", "at_most", 0.05, False,
         "simulated (partial-volume) volumes follow the growth law within 5 %"),
    Rule("measured_doubling_time_days", "at_least", 20.0, False,
         "a volume-doubling time under 20 d suggests infection rather than a neoplasm (PMC5945695)"),
    Rule("solid_mean_hu", "within", (-100.0, 200.0), False,
         "solid component ≈ soft tissue: 0…+60 HU unenhanced, higher with contrast"),
    Rule("ground_glass_mean_hu", "within", (-800.0, -300.0), False,
         "ground-glass component: hazy, vessels visible (phantoms at −800 and −630 HU)"),
    Rule("lesion_on_host_vessel_fraction", "at_most", 0.5, False,
         "a nodule is not pasted into a vessel: at most half of its last-scan voxels lie on the "
         "host's vessels (a juxtavascular nodule has a vessel running through it, not around it)"),
    # --- gliomas ------------------------------------------------------------------------------
    Rule("diameter_growth_mm_per_year", "within", {"low": (0.5, 20.0), "high": (2.0, 400.0)}, False,
         "low grade ≈ 4.1 mm/year (Mandonnet 2003), bands up to ≥ 12 mm/year (Pallud 2013); high "
         "grade grows much faster"),
    Rule("fraction_across_midline", "at_most", {"falx": 0.0, "butterfly": 1.0}, True,
         "the falx is a barrier: a glioma reaches the other hemisphere (of this brain's own "
         "midline) only through the corpus callosum, and only when the spec asks for it"),
    Rule("lesion_on_requested_side", "true", None, True,
         "a glioma asked for on one side starts on that side of this brain's own midline"),
    # --- re-measured by evaluate --------------------------------------------------------------
    Rule("mask_voxels_not_nested", "at_most", 0, True,
         "re-measured nesting: no voxel of an earlier mask is missing later (growing laws)"),
    Rule("anatomy_max_abs_diff_outside_zone", "at_most", 0, True,
         "re-measured: images outside the lesion ∪ mass-effect zone are identical between timepoints"),
    Rule("anatomy_ncc_outside_zone", "at_least", 0.999999, False,
         "re-measured: normalised cross-correlation outside the zone between timepoints"),
    Rule("final_lesion_voxels", "at_least", 1, True, "the last scan shows a lesion"),
    Rule("vdt_rel_error", "within", (-0.25, 0.25), False,
         "fitted volume-doubling time within 25 % of the spec (quantised masks of few voxels)"),
    Rule("halving_rel_error", "within", (-0.25, 0.25), False,
         "fitted volume-halving time within 25 % of the spec"),
    Rule("gompertz_rate_rel_error", "within", (-0.30, 0.30), False,
         "fitted Gompertz rate within 30 % of the spec"),
    Rule("volume_change_rel", "within", (-0.10, 0.10), False, "a stable lesion changes volume by < 10 %"),
)  # fmt: skip
RULES: dict[str, Rule] = {r.name: r for r in _RULES}


def check(
    name: str,
    value: float | bool,
    *,
    timepoint: int | None = None,
    variant: str | None = None,
    suffix: str = "",
) -> Check:
    """The outcome of rule ``name`` (a key of :data:`RULES`) on ``value``."""
    return RULES[name].check(value, timepoint=timepoint, variant=variant, suffix=suffix)


def enforce(checks: list[Check]) -> None:
    """Raise :class:`PlausibilityError` naming every failed hard check."""
    failed = [c for c in checks if c.hard and not c.passed]
    if failed:
        parts = [
            f"{c.name}{'' if c.timepoint is None else f'[t{c.timepoint}]'}={c.value} (limit {c.limit})"
            for c in failed
        ]
        raise PlausibilityError("plausibility check failed: " + "; ".join(parts))
