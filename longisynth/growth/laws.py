"""Growth laws of lung nodules: longest diameter (mm) at each scan time (days).

Every law is written in **volume** (the quantity radiologists track with the volume-doubling
time, VDT) and converted to diameter with V ∝ d³, so one volume doubling is ×2^(1/3) ≈ ×1.26 in
diameter (PMC5945695). Every schedule is anchored at the LAST timepoint: the final diameter is
exactly ``spec.diameter_mm``, the value the user asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from longisynth.errors import InvalidInputError
from longisynth.spec import GrowthLaw, LesionSpec


def exponential_diameters(
    days: Sequence[float], final_diameter_mm: float, doubling_time_days: float
) -> list[float]:
    """Exponential growth, V(t) = V_end · 2^((t − t_end)/VDT), as diameters in mm.

    Args:
        days: scan times, days (increasing).
        final_diameter_mm: longest diameter at ``days[-1]``, mm.
        doubling_time_days: volume-doubling time, days (mean of malignant solid nodules 267 d,
            part-solid 598 d, pure ground-glass 848 d, PMC5945695).
    """
    t_end = days[-1]
    out = [final_diameter_mm * 2.0 ** ((t - t_end) / doubling_time_days / 3.0) for t in days]
    out[-1] = float(final_diameter_mm)
    return out


def regressing_diameters(
    days: Sequence[float], final_diameter_mm: float, halving_time_days: float
) -> list[float]:
    """Regression, V(t) = V_end · 2^(−(t − t_end)/T½), as diameters in mm (``halving_time_days`` > 0)."""
    t_end = days[-1]
    out = [final_diameter_mm * 2.0 ** (-(t - t_end) / halving_time_days / 3.0) for t in days]
    out[-1] = float(final_diameter_mm)
    return out


def gompertz_rate_per_day(
    baseline_diameter_mm: float, final_diameter_mm: float, max_diameter_mm: float, duration_days: float
) -> float:
    """Rate b (1/day) of V(t) = V_max·exp(ln(V_0/V_max)·e^(−b(t−t0))) with V(t0 + duration) = V_final.

    From ln(V_f/V_max) = ln(V_0/V_max)·e^(−b·Δt): b = −ln(ln(V_f/V_max) / ln(V_0/V_max)) / Δt.
    Requires baseline < final < max.
    """
    if not 0 < baseline_diameter_mm < final_diameter_mm < max_diameter_mm:
        raise InvalidInputError(
            "Gompertz growth needs baseline < final < plateau diameter, got "
            f"{baseline_diameter_mm}, {final_diameter_mm}, {max_diameter_mm} mm"
        )
    if duration_days <= 0:
        raise InvalidInputError("Gompertz growth needs a positive study duration")
    # Volumes ∝ d³, so ln(V/V_max) = 3·ln(d/d_max); the factor 3 cancels in the ratio.
    log_ratio = math.log(final_diameter_mm / max_diameter_mm) / math.log(
        baseline_diameter_mm / max_diameter_mm
    )
    return -math.log(log_ratio) / duration_days


def gompertz_diameters(
    days: Sequence[float], baseline_diameter_mm: float, final_diameter_mm: float, max_diameter_mm: float
) -> list[float]:
    """Gompertz (saturating) growth in volume, as diameters in mm; exact at both ends.

    In diameter the law keeps its form: d(t) = d_max·exp(ln(d_0/d_max)·e^(−b(t−t0))).
    """
    if len(days) == 1:
        return [float(final_diameter_mm)]
    t0 = days[0]
    b = gompertz_rate_per_day(baseline_diameter_mm, final_diameter_mm, max_diameter_mm, days[-1] - t0)
    log0 = math.log(baseline_diameter_mm / max_diameter_mm)
    out = [max_diameter_mm * math.exp(log0 * math.exp(-b * (t - t0))) for t in days]
    out[0] = float(baseline_diameter_mm)
    out[-1] = float(final_diameter_mm)
    return out


def diameter_schedule(spec: LesionSpec) -> list[float]:
    """Longest diameter (mm) at each of ``spec.timepoints_days`` for a resolved lung-nodule spec.

    Raises:
        InvalidInputError: when the spec is not resolved or its law is not a nodule law.
    """
    days = spec.timepoints_days
    final = spec.diameter_mm
    law = spec.growth.law
    if days is None or final is None or law is None:
        raise InvalidInputError("diameter_schedule needs a resolved spec (timepoints, diameter, law)")
    if law == GrowthLaw.STABLE or len(days) == 1:
        return [float(final)] * len(days)
    if law == GrowthLaw.EXPONENTIAL:
        if spec.growth.doubling_time_days is None:
            raise InvalidInputError("exponential growth needs growth.doubling_time_days")
        return exponential_diameters(days, final, spec.growth.doubling_time_days)
    if law == GrowthLaw.REGRESSING:
        if spec.growth.halving_time_days is None:
            raise InvalidInputError("regression needs growth.halving_time_days")
        return regressing_diameters(days, final, spec.growth.halving_time_days)
    if law == GrowthLaw.GOMPERTZ:
        if spec.baseline_diameter_mm is None or spec.growth.max_diameter_mm is None:
            raise InvalidInputError("Gompertz growth needs baseline_diameter_mm and growth.max_diameter_mm")
        return gompertz_diameters(days, spec.baseline_diameter_mm, final, spec.growth.max_diameter_mm)
    raise InvalidInputError(f"the {law.value} law is not a lung-nodule growth law")


def volume_ratio_schedule(diameters_mm: Sequence[float]) -> list[float]:
    """Volume at each timepoint relative to the last one, (d_i / d_last)³ (dimensionless)."""
    last = diameters_mm[-1]
    return [(d / last) ** 3 for d in diameters_mm]


def sphere_volume_mm3(diameter_mm: float) -> float:
    """Volume (mm³) of a sphere of the given diameter (mm): the "equivalent volume" of a nodule."""
    return math.pi / 6.0 * diameter_mm**3


def fit_doubling_time(days: Sequence[float], volumes: Sequence[float] | NDArray[np.floating]) -> float:
    """Volume-doubling time (days) by log-linear least squares on (days, volumes).

    Returns ``inf`` for no growth and a negative number (minus the halving time) for regression.

    Raises:
        InvalidInputError: with fewer than two timepoints or non-positive volumes.
    """
    t = np.asarray(days, dtype=np.float64)
    v = np.asarray(volumes, dtype=np.float64)
    if t.size < 2 or t.shape != v.shape:
        raise InvalidInputError("fit_doubling_time needs at least two (day, volume) pairs of equal length")
    if np.any(v <= 0):
        raise InvalidInputError("volumes must be positive to fit a doubling time")
    slope = float(np.polyfit(t, np.log2(v), 1)[0])  # doublings per day
    if abs(slope) < 1e-12:  # below float noise of the fit: no growth
        return math.inf
    return 1.0 / slope
