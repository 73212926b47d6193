"""Distributions over :class:`~longisynth.spec.LesionSpec` fields, as written in a design file.

Each distribution is a small pydantic model with one key naming its kind, so a design reads like
the maths it stands for::

    diameter_mm: {uniform: [6, 25]}                       # mm, flat between the bounds
    nodule_type: {choice: {solid: 0.6, part_solid: 0.2, ground_glass: 0.2}}
    location.lung_lobe: any                               # every value of the field, equally likely
    growth.doubling_time_days: {lognormal: {range: [100, 900], coverage: 0.9}, clip: [30, 2000]}
    n_timepoints: {integers: [3, 5]}                      # inclusive
    growth.doubling_time_days: {by: nodule_type, cases: {solid: {uniform: [150, 400]}, ...}}

Sampling takes a ``numpy.random.Generator`` and optional band ``bounds`` (stratification draws
from the distribution *truncated* to a band, exactly, by inverse-CDF for the continuous ones).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from scipy import special

Bounds = tuple[float, float] | None


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def is_numeric(self) -> bool:
        return True


class _Numeric(_Dist):
    clip: tuple[float, float] | None = Field(None, description="Clamp draws to [low, high].")
    round: int | None = Field(3, ge=0, le=12, description="Decimals kept (None: full precision).")

    @field_validator("clip")
    @classmethod
    def _clip_order(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not v[0] <= v[1]:
            raise ValueError(f"clip low {v[0]:g} must not exceed high {v[1]:g}")
        return v

    def sample(self, rng: np.random.Generator, bounds: Bounds = None) -> float:
        lo, hi = self._support()
        if self.clip is not None:
            lo, hi = max(lo, self.clip[0]), min(hi, self.clip[1])
        if bounds is not None:
            lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
            if lo > hi:
                raise ValueError(f"band [{bounds[0]:g}, {bounds[1]:g}) lies outside the distribution")
        value = self._draw(rng, lo, hi)
        value = min(max(value, lo), hi)
        return value if self.round is None else round(value, self.round)

    def _support(self) -> tuple[float, float]:
        return -math.inf, math.inf

    def _draw(self, rng: np.random.Generator, lo: float, hi: float) -> float:
        raise NotImplementedError

    def endpoints(self) -> list[float]:
        """Values that must be valid for the target field (checked when the design loads)."""
        lo, hi = self._support()
        if self.clip is not None:
            lo, hi = max(lo, self.clip[0]), min(hi, self.clip[1])
        return [v for v in (lo, hi) if math.isfinite(v)] or [self._typical()]

    def _typical(self) -> float:
        return 0.0


class Uniform(_Numeric):
    """Flat between ``[low, high]``."""

    uniform: tuple[float, float]

    @field_validator("uniform")
    @classmethod
    def _order(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError(f"uniform low {v[0]:g} must be below high {v[1]:g}")
        return v

    def _support(self) -> tuple[float, float]:
        return self.uniform

    def _draw(self, rng: np.random.Generator, lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))


class LogUniform(_Numeric):
    """Flat in log between ``[low, high]`` (both > 0): as many draws in 5–10 as in 10–20."""

    loguniform: tuple[float, float]

    @field_validator("loguniform")
    @classmethod
    def _order(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] < v[1]:
            raise ValueError(f"loguniform needs 0 < low < high, got [{v[0]:g}, {v[1]:g}]")
        return v

    def _support(self) -> tuple[float, float]:
        return self.loguniform

    def _draw(self, rng: np.random.Generator, lo: float, hi: float) -> float:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


class NormalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mean: float
    sd: float = Field(gt=0)


class Normal(_Numeric):
    """Gaussian ``{normal: {mean, sd}}``; use ``clip`` to keep draws inside the field's range."""

    normal: NormalParams

    def _typical(self) -> float:
        return self.normal.mean

    def _draw(self, rng: np.random.Generator, lo: float, hi: float) -> float:
        return _truncated_normal(rng, self.normal.mean, self.normal.sd, lo, hi)


class LogNormalParams(BaseModel):
    """Either ``median`` and ``sigma`` (of the log), or a clinical ``range`` that should hold a
    fraction ``coverage`` of the draws (the central interval, fitted exactly)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    median: float | None = Field(None, gt=0)
    sigma: float | None = Field(None, gt=0)
    range: tuple[float, float] | None = None
    coverage: float = Field(0.9, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_form(self) -> LogNormalParams:
        if self.range is not None:
            if self.median is not None or self.sigma is not None:
                raise ValueError("give either range (+ coverage) or median + sigma, not both")
            if not 0 < self.range[0] < self.range[1]:
                raise ValueError(f"lognormal range needs 0 < low < high, got {list(self.range)}")
        elif self.median is None or self.sigma is None:
            raise ValueError("lognormal needs median + sigma, or range (+ coverage)")
        return self

    def mu_sigma(self) -> tuple[float, float]:
        """Mean and standard deviation of ``log(x)``."""
        if self.range is not None:
            lo, hi = math.log(self.range[0]), math.log(self.range[1])
            z = float(special.ndtri(0.5 + self.coverage / 2))
            return (lo + hi) / 2, (hi - lo) / (2 * z)
        assert self.median is not None and self.sigma is not None
        return math.log(self.median), self.sigma


class LogNormal(_Numeric):
    """Log-normal, e.g. a volume-doubling time fitted to a clinical range (days)."""

    lognormal: LogNormalParams

    def _support(self) -> tuple[float, float]:
        return 0.0, math.inf

    def endpoints(self) -> list[float]:
        if self.clip is not None:
            return list(self.clip)
        return [self._typical()]

    def _typical(self) -> float:
        return math.exp(self.lognormal.mu_sigma()[0])

    def _draw(self, rng: np.random.Generator, lo: float, hi: float) -> float:
        mu, sigma = self.lognormal.mu_sigma()
        log_lo = math.log(lo) if lo > 0 else -math.inf
        log_hi = math.log(hi) if math.isfinite(hi) else math.inf
        return math.exp(_truncated_normal(rng, mu, sigma, log_lo, log_hi))


class Integers(_Dist):
    """Whole numbers from ``low`` to ``high`` inclusive, equally likely (e.g. timepoints 3–5)."""

    integers: tuple[int, int]

    @field_validator("integers")
    @classmethod
    def _order(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not v[0] <= v[1]:
            raise ValueError(f"integers low {v[0]} must not exceed high {v[1]}")
        return v

    def sample(self, rng: np.random.Generator, bounds: Bounds = None) -> int:
        lo, hi = self.integers
        if bounds is not None:  # band [a, b): whole numbers a <= n < b
            lo, hi = max(lo, math.ceil(bounds[0])), min(hi, math.ceil(bounds[1]) - 1)
            if lo > hi:
                raise ValueError(f"band [{bounds[0]:g}, {bounds[1]:g}) holds none of the integers")
        return int(rng.integers(lo, hi + 1))

    def endpoints(self) -> list[float]:
        return [float(v) for v in self.integers]


class Choice(_Dist):
    """One of a few values with weights (``{solid: 0.6, ...}``), or equally likely (a list)."""

    choice: dict[bool | int | str, float] | list[Any]

    @field_validator("choice")
    @classmethod
    def _weights(cls, v: dict[Any, float] | list[Any]) -> dict[Any, float] | list[Any]:
        if len(v) == 0:
            raise ValueError("choice needs at least one value")
        if isinstance(v, dict):
            if any(not math.isfinite(w) or w < 0 for w in v.values()) or sum(v.values()) <= 0:
                raise ValueError("choice weights must be >= 0 with a positive sum")
        elif len({repr(x) for x in v}) != len(v):
            raise ValueError("choice values must be distinct")
        return v

    def is_numeric(self) -> bool:
        return False

    def options(self) -> list[tuple[Any, float]]:
        """``(value, probability)`` pairs with probabilities summing to 1 (zero weights dropped)."""
        if isinstance(self.choice, dict):
            total = sum(self.choice.values())
            return [(k, w / total) for k, w in self.choice.items() if w > 0]
        return [(x, 1.0 / len(self.choice)) for x in self.choice]

    def sample(self, rng: np.random.Generator, bounds: Bounds = None) -> Any:
        opts = self.options()
        idx = int(rng.choice(len(opts), p=np.array([p for _, p in opts])))
        return opts[idx][0]


class Conditional(_Dist):
    """A distribution that depends on another field's value, e.g. the doubling time on the
    nodule type; a value without a case leaves the field to the engine's default."""

    by: str
    cases: dict[str, Distribution]

    def is_numeric(self) -> bool:
        return all(d != "any" and d.is_numeric() for d in self.cases.values())  # type: ignore[union-attr]


_TAGS = ("uniform", "loguniform", "normal", "lognormal", "integers", "choice", "by")


def _tag(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value == "any" else None
    if isinstance(value, dict):
        keys = [k for k in _TAGS if k in value]
        return keys[0] if len(keys) == 1 else None
    if isinstance(value, BaseModel):
        for k in _TAGS:
            if k in type(value).model_fields:
                return k
    return None


Distribution = Annotated[
    Annotated[Uniform, Tag("uniform")]
    | Annotated[LogUniform, Tag("loguniform")]
    | Annotated[Normal, Tag("normal")]
    | Annotated[LogNormal, Tag("lognormal")]
    | Annotated[Integers, Tag("integers")]
    | Annotated[Choice, Tag("choice")]
    | Annotated[Conditional, Tag("by")]
    | Annotated[Literal["any"], Tag("any")],
    Discriminator(
        _tag,
        custom_error_type="distribution",
        custom_error_message=(
            "a distribution is 'any' or a mapping with exactly one of "
            "uniform, loguniform, normal, lognormal, integers, choice, by"
        ),
    ),
]
Conditional.model_rebuild()


def _truncated_normal(rng: np.random.Generator, mu: float, sigma: float, lo: float, hi: float) -> float:
    """Exact draw from N(mu, sigma²) restricted to [lo, hi] by inverse CDF (no rejection loop)."""
    if not math.isfinite(lo) and not math.isfinite(hi):
        return float(rng.normal(mu, sigma))
    p_lo = float(special.ndtr((lo - mu) / sigma)) if math.isfinite(lo) else 0.0
    p_hi = float(special.ndtr((hi - mu) / sigma)) if math.isfinite(hi) else 1.0
    if p_hi - p_lo < 1e-12:
        raise ValueError(f"[{lo:g}, {hi:g}] has (almost) no probability under the distribution")
    u = rng.uniform(p_lo, p_hi)
    return float(mu + sigma * special.ndtri(u))
