"""Plausibility rules (DESIGN.md §8), evaluated per study and recorded in the metadata.

Each check has a value, a limit and whether it passed. *Hard* checks guard against a silently
bad study (the lesion leaves its organ, tissue outside the influence zone changes, the
deformation folds): if one fails, :func:`enforce` raises :class:`PlausibilityError`. *Soft*
checks report clinical plausibility (growth rate in the clinical range) without failing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from longisynth.errors import PlausibilityError


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


def at_least(name: str, value: float, minimum: float, hard: bool, timepoint: int | None = None) -> Check:
    return Check(name, round(float(value), 6), f">= {minimum:g}", bool(value >= minimum), hard, timepoint)


def at_most(name: str, value: float, maximum: float, hard: bool, timepoint: int | None = None) -> Check:
    return Check(name, round(float(value), 6), f"<= {maximum:g}", bool(value <= maximum), hard, timepoint)


def within(
    name: str, value: float, low: float, high: float, hard: bool, timepoint: int | None = None
) -> Check:
    return Check(
        name, round(float(value), 6), f"[{low:g}, {high:g}]", bool(low <= value <= high), hard, timepoint
    )


def is_true(name: str, value: bool, hard: bool, timepoint: int | None = None) -> Check:
    return Check(name, bool(value), "true", bool(value), hard, timepoint)


def enforce(checks: list[Check]) -> None:
    """Raise :class:`PlausibilityError` naming every failed hard check."""
    failed = [c for c in checks if c.hard and not c.passed]
    if failed:
        parts = [
            f"{c.name}{'' if c.timepoint is None else f'[t{c.timepoint}]'}={c.value} (limit {c.limit})"
            for c in failed
        ]
        raise PlausibilityError("plausibility check failed: " + "; ".join(parts))
