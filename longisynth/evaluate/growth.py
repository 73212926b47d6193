"""Growth-law fits of re-measured volumes (mm³) against scan days, and the spec's own curve."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from longisynth.growth.laws import (
    exponential_diameters,
    fit_doubling_time,
    gompertz_diameters,
    gompertz_rate_per_day,
    regressing_diameters,
)

GROWING_LAWS = ("exponential", "gompertz", "reaction_diffusion")


def rel_error(value: float | None, reference: float | None) -> float | None:
    """(value − reference) / |reference|, or None when either is missing or the reference is 0/inf."""
    if value is None or reference is None or not math.isfinite(reference) or reference == 0:
        return None
    if not math.isfinite(value):
        return None
    return (value - reference) / abs(reference)


def effective_doubling_time(days: list[float], volumes_mm3: list[float]) -> float | None:
    """Volume-doubling time (days) by log-linear least squares; None when it cannot be fitted.

    ``inf`` means no growth; a negative value is minus the halving time (regression).
    """
    if len(days) < 2 or any(v <= 0 for v in volumes_mm3):
        return None
    return fit_doubling_time(days, volumes_mm3)


def fit_gompertz_rate(
    days: list[float], volumes_mm3: list[float], max_diameter_mm: float, final_diameter_mm: float
) -> float | None:
    """Gompertz rate b (1/day) of V(t) = V_max·exp(ln(V_0/V_max)·e^(−b(t−t0))) fitted to log volumes.

    The plateau is taken from the spec and expressed relative to the measured final volume
    (V_max = V_end·(d_max/d_end)³), because longest diameter and volume of an irregular nodule are not
    those of a sphere; b and V_0 are fitted.
    """
    t = np.asarray(days, dtype=np.float64) - days[0]
    v = np.asarray(volumes_mm3, dtype=np.float64)
    if t.size < 3 or np.any(v <= 0):
        return None
    log_vmax = math.log(v[-1]) + 3.0 * math.log(max_diameter_mm / final_diameter_mm)
    if np.any(np.log(v) >= log_vmax):
        return None

    def residual(p: np.ndarray) -> np.ndarray:
        log_v0_rel, b = p
        return log_vmax + log_v0_rel * np.exp(-b * t) - np.log(v)

    b0 = 1.0 / max(float(t[-1]), 1.0)
    res = least_squares(residual, x0=[float(np.log(v[0]) - log_vmax), b0], bounds=([-50, 0], [0, 1.0]))
    return float(res.x[1]) if res.success else None


def spec_diameter_curve(
    growth: dict[str, Any], spec: dict[str, Any], days: list[float]
) -> list[float] | None:
    """Requested longest diameter (mm) at ``days`` (ending at the last scan) per the spec's law, or None."""
    law, final = growth.get("law"), spec.get("diameter_mm")
    if final is None or not days:
        return None
    if law == "stable":
        return [float(final)] * len(days)
    if law == "exponential" and growth.get("doubling_time_days"):
        return exponential_diameters(days, final, growth["doubling_time_days"])
    if law == "regressing" and growth.get("halving_time_days"):
        return regressing_diameters(days, final, growth["halving_time_days"])
    if law == "gompertz" and spec.get("baseline_diameter_mm") and growth.get("max_diameter_mm"):
        return gompertz_diameters(days, spec["baseline_diameter_mm"], final, growth["max_diameter_mm"])
    return None


def growth_fit(spec: dict[str, Any], days: list[float], volumes_mm3: list[float]) -> dict[str, Any]:
    """Fit the spec's law to re-measured volumes and compare its parameters with the spec.

    Keys: law, vdt_spec_days, vdt_fit_days (effective log-linear VDT, for every law), vdt_rel_error,
    plus halving-time fields (regressing), Gompertz rate fields (gompertz, 1/day) or the relative volume
    change first → last scan (stable).
    """
    growth = spec.get("growth") or {}
    law = growth.get("law")
    out: dict[str, Any] = {"law": law}
    vdt = effective_doubling_time(days, volumes_mm3)
    out["vdt_fit_days"] = vdt if vdt is None or math.isfinite(vdt) else None
    out["vdt_spec_days"] = growth.get("doubling_time_days") if law == "exponential" else None
    out["vdt_rel_error"] = rel_error(vdt, out["vdt_spec_days"])
    if law == "regressing":
        spec_half = growth.get("halving_time_days")
        fit_half = -vdt if vdt is not None and vdt < 0 else None
        out.update(halving_spec_days=spec_half, halving_fit_days=fit_half)
        out["halving_rel_error"] = rel_error(fit_half, spec_half)
    if law == "gompertz":
        d0, d1, dmax = (
            spec.get("baseline_diameter_mm"),
            spec.get("diameter_mm"),
            growth.get("max_diameter_mm"),
        )
        b_spec = None
        if d0 and d1 and dmax and len(days) > 1 and d0 < d1 < dmax:
            b_spec = gompertz_rate_per_day(d0, d1, dmax, days[-1] - days[0])
        b_fit = fit_gompertz_rate(days, volumes_mm3, dmax, d1) if dmax and d1 else None
        out.update(gompertz_rate_spec_per_day=b_spec, gompertz_rate_fit_per_day=b_fit)
        out["gompertz_rate_rel_error"] = rel_error(b_fit, b_spec)
    if law == "stable" and volumes_mm3 and volumes_mm3[0] > 0:
        out["volume_change_rel"] = volumes_mm3[-1] / volumes_mm3[0] - 1.0
    return out
