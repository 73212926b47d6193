"""What the prompt rules' matches *mean*: handlers that turn a match into spec fields.

The rule table (:mod:`longisynth.spec.prompt.rules`) says *where* a phrase is; each handler here
reads the match groups, converts numbers and units (:mod:`longisynth.spec.prompt.units`) and writes
spec fields to a :class:`Sink` (the parser's builder).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from longisynth.errors import InvalidInputError, PromptNotUnderstoodError
from longisynth.spec.prompt.units import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    days_of,
    mm_of,
    size_mm,
    to_number,
    unit_days,
)

# --- what handlers write to -------------------------------------------------------------------


class Sink(Protocol):
    """Where handlers write what they understood (implemented by the parser's builder)."""

    def put(self, field: str, value: object, m: re.Match[str]) -> None:
        """Set dotted ``field`` (e.g. ``"location.side"``); a different earlier value is a contradiction."""

    def plain_size(self, diameter_mm: float, m: re.Match[str]) -> None:
        """A size with no baseline/final qualifier (resolved once all sizes are known)."""

    def every(self, interval_days: float, m: re.Match[str]) -> None:
        """A scan interval without a total span ("every 3 months")."""

    def default(self, field: str, value: object, m: re.Match[str]) -> None:
        """A value a word implies unless the prompt says otherwise: an explicit ``put`` of the same
        field wins silently ("grade IV astrocytoma" is high grade although "astrocytoma" alone is
        low); two different implied values are a contradiction."""

    def if_glioma(self, field: str, value: object, m: re.Match[str]) -> None:
        """A value that only means something for a glioma; when the prompt is about a lung nodule,
        the words are left as not understood."""

    def pace(self, kind: str, m: re.Match[str]) -> None:
        """A tempo word ("slow-growing", "aggressive"): ``kind`` slow or fast. A glioma's grade, a
        lung nodule's doubling time (:data:`LUNG_PACE_VDT_DAYS`), decided once the family is known."""

    def size_word(self, kind: str, m: re.Match[str]) -> None:
        """A size adjective ("small", "large"): ``kind`` a key of :data:`SIZE_WORDS`; its diameter
        depends on the family, decided once the family is known."""


# Tempo words of a lung nodule: the volume-doubling time they imply (days) unless the prompt gives
# one. The geometric middles of the indolent (600–1500 d) and aggressive (30–150 d) archetypes'
# ranges (Hasegawa et al., Br J Radiol 2000: pure ground-glass 813 ± 375 d, solid 149 ± 125 d).
LUNG_PACE_VDT_DAYS = {"slow": 950.0, "fast": 67.0}


@dataclass(frozen=True)
class SizeWord:
    """What a size adjective means for each family: the final longest diameter it implies (mm) and
    the band of explicit sizes it agrees with (mm, inclusive)."""

    lung_mm: float
    lung_band: tuple[float, float]
    glioma_mm: float
    glioma_band: tuple[float, float]


# Lung: Fleischner 2017's size categories (< 6 mm, 6–8 mm, > 8 mm) and the 30 mm nodule / mass
# limit; "large" starts at Lung-RADS 4B's 15 mm. Gliomas: the 3/5 cm splits of low-grade series
# (Chang 2008; Pignatti 2002) and the engine's 75 mm high-grade bound.
SIZE_WORDS: dict[str, SizeWord] = {
    "tiny": SizeWord(3.0, (0.1, 4.0), 15.0, (0.1, 20.0)),
    "small": SizeWord(5.0, (0.1, 6.0), 25.0, (0.1, 30.0)),
    "medium": SizeWord(7.0, (6.0, 8.0), 40.0, (30.0, 50.0)),
    "large": SizeWord(20.0, (15.0, 30.0), 60.0, (50.0, 150.0)),
    "huge": SizeWord(28.0, (20.0, 30.0), 70.0, (60.0, 150.0)),
}


def pace(kind: str) -> Handler:
    def handler(m: re.Match[str], out: Sink) -> None:
        out.pace(kind, m)

    return handler


def size_word(m: re.Match[str], out: Sink) -> None:
    word = m["w"]
    very = bool(m.groupdict().get("very"))
    kind = {"little": "small", "big": "large", "sizeable": "large", "massive": "huge", "giant": "huge"}.get(
        word, word
    )
    if kind.startswith("medium") or kind in ("intermediate", "moderate"):
        kind = "medium"
    if very and kind in ("small", "large"):
        kind = "tiny" if kind == "small" else "huge"
    out.size_word(kind, m)


def volume_change(m: re.Match[str], out: Sink) -> None:
    """ "doubles", "shrinks by half", "grows by 50 %", "triples in volume": the study's volume ratio.

    Multiplier words ("doubles", "halves", "by half") are volumes unless "in diameter" follows (as
    the doubling time is); percentages are diameters (RECIST) unless "in volume" follows."""
    gd = m.groupdict()
    if gd.get("pct"):
        frac = to_number(gd["pct"]) / 100.0
        factor = 1.0 - frac if gd.get("down") else 1.0 + frac
        if factor <= 0:
            raise InvalidInputError(f'"{m.group(0).strip()}": a lesion cannot shrink by 100 % or more')
        by_volume = bool(gd.get("vol"))
    else:
        word = gd.get("mult") or gd["mult2"]
        factor = {"doubl": 2.0, "tripl": 3.0, "quadrupl": 4.0, "halv": 0.5, "half": 0.5}[
            next(k for k in ("doubl", "tripl", "quadrupl", "halv", "half") if word.startswith(k))
        ]
        by_volume = not gd.get("diam")
    ratio = factor if by_volume else factor**3
    out.put("growth.volume_ratio", float(f"{ratio:.6g}"), m)


def if_glioma(fields: Mapping[str, object]) -> Handler:
    """Set ``fields`` unless the prompt turns out to describe a lung nodule (:meth:`Sink.if_glioma`)."""

    def handler(m: re.Match[str], out: Sink) -> None:
        for field, value in fields.items():
            out.if_glioma(field, value, m)

    return handler


Handler = Callable[[re.Match[str], Sink], None]


def sets(fields: Mapping[str, object], implies: Mapping[str, object] | None = None) -> Handler:
    """Set ``fields``; ``implies`` are defaults (:meth:`Sink.default`) an explicit value overrides."""

    def handler(m: re.Match[str], out: Sink) -> None:
        for field, value in fields.items():
            out.put(field, value, m)
        for field, value in (implies or {}).items():
            out.default(field, value, m)

    return handler


# --- handlers with logic ---------------------------------------------------------------------

LIST_SEP = r"\s*(?:,\s*and\b|,|/|;|\band\b|&)\s*"
LUNG: Mapping[str, object] = {"family": "lung_nodule"}
GLIOMA: Mapping[str, object] = {"family": "glioma"}
_LEVEL = {"upper": "upper", "superior": "upper", "middle": "middle", "mid": "middle"}
_LEVEL |= {"lower": "lower", "inferior": "lower"}
_LOBE_ABBR = {"rul": "right_upper", "rml": "right_middle", "rll": "right_lower"}
_LOBE_ABBR |= {"lul": "left_upper", "lll": "left_lower"}
_ADVERB_DAYS = {"daily": 1.0, "weekly": 7.0, "fortnightly": 14.0, "monthly": DAYS_PER_MONTH}
_ADVERB_DAYS |= {"quarterly": 3 * DAYS_PER_MONTH, "semiannual": DAYS_PER_YEAR / 2, "yearly": DAYS_PER_YEAR}
_ADVERB_DAYS |= {"annual": DAYS_PER_YEAR, "annually": DAYS_PER_YEAR, "semiannually": DAYS_PER_YEAR / 2}
# "biannual(ly)" is left out: twice a year or every 2 years?
MAX_TIMEPOINTS = 20  # LesionSpec.n_timepoints le=20


def point(field: str) -> Handler:
    def handler(m: re.Match[str], out: Sink) -> None:
        x, y, z = (float(m[g]) for g in ("a", "b", "c"))
        if (m.groupdict().get("frame") or "").startswith("lps"):
            x, y = -x, -y  # DICOM LPS -> our RAS+: flip the first two axes
        out.put(field, (x, y, z), m)

    return handler


def time_list(m: re.Match[str], out: Sink) -> None:
    scale = unit_days(m["u"])
    items = re.split(LIST_SEP, m["list"].strip())
    days = [0.0 if it == "baseline" else round(to_number(it) * scale, 4) for it in items]
    if m.groupdict().get("fu") and days[0] > 0:
        days.insert(0, 0.0)  # "follow-up at 3 and 6 months": the baseline scan is implied
    out.put("timepoints_days", days, m)


def _interval(m: re.Match[str]) -> float:
    gd = m.groupdict()
    if gd.get("adv"):
        return _ADVERB_DAYS[gd["adv"].replace("-", "")]
    return (to_number(gd["i_n"]) if gd.get("i_n") else 1.0) * unit_days(gd["i_u"])


def regular_times(step_days: float, span_days: float) -> list[float]:
    """Scan times 0, step, 2 step, ... up to ``span_days`` (days; at most :data:`MAX_TIMEPOINTS`)."""
    if not (step_days > 0 and math.isfinite(span_days) and span_days >= 0):
        raise InvalidInputError(f"scan interval must be > 0 days and the span finite, got {step_days}")
    count = math.floor(span_days / step_days + 1e-9) + 1
    if count > MAX_TIMEPOINTS:
        raise InvalidInputError(
            f"a scan every {step_days:g} days over {span_days:g} days gives {count} timepoints; "
            f"at most {MAX_TIMEPOINTS} are supported"
        )
    return [round(i * step_days, 4) for i in range(count)]


def every_for(m: re.Match[str], out: Sink) -> None:
    out.put("timepoints_days", regular_times(_interval(m), days_of(m, "t")), m)


def count(extra: int) -> Handler:
    def handler(m: re.Match[str], out: Sink) -> None:
        value = to_number(m["n"])
        if not value.is_integer():
            raise PromptNotUnderstoodError(f'"{m.group(0).strip()}": a number of scans must be whole')
        out.put("n_timepoints", int(value) + extra, m)

    return handler


def solid_fraction(m: re.Match[str], out: Sink) -> None:
    value = to_number(m["v"])
    out.put("solid_fraction", value / 100.0 if m["pct"] else value, m)
    sets({"nodule_type": "part_solid", **LUNG})(m, out)


def rate(field: str, implies: Mapping[str, object] | None = None) -> Handler:
    """A time (days, from groups ``t_n``/``t_u``) or a rate per day (``v``, unit ``u``, ``cm`` for cm²)."""

    def handler(m: re.Match[str], out: Sink) -> None:
        gd = m.groupdict()
        if gd.get("t_u"):
            value = days_of(m, "t")
            out.put(field, round(value, 3), m)
        else:
            value = to_number(m["v"]) * (100.0 if gd.get("cm") else 1.0)  # 1 cm2 = 100 mm2
            if (gd.get("u") or "d")[0] == "y":
                value /= DAYS_PER_YEAR  # "4/year" -> per day
            out.put(field, float(f"{value:.6g}"), m)
        sets(implies or {})(m, out)

    return handler


def size_field(field: str, implies: Mapping[str, object] | None = None) -> Handler:
    def handler(m: re.Match[str], out: Sink) -> None:
        out.put(field, mm_of(m, "s"), m)
        verb = m.groupdict().get("verb") or ""
        if re.match(r"shrink|regress|decreas|reduc", verb):
            out.put("growth.law", "regressing", m)
        sets(implies or {})(m, out)

    return handler


def size_range(m: re.Match[str], out: Sink) -> None:
    final = mm_of(m, "s")
    unit = m["a_u"] or m["s_u"]  # "from 8 to 12 mm": the first number takes the last unit
    out.put("baseline_diameter_mm", size_mm(m["a_n"], unit), m)
    out.put("diameter_mm", final, m)


def plain_size(m: re.Match[str], out: Sink) -> None:
    out.plain_size(mm_of(m, "s"), m)


def every(m: re.Match[str], out: Sink) -> None:
    step = _interval(m)
    if step <= 0:
        raise InvalidInputError(f'"{m.group(0).strip()}": the scan interval must be longer than 0 days')
    out.every(step, m)


def count_every(m: re.Match[str], out: Sink) -> None:
    """ "5 yearly scans": a count and an interval."""
    count(0)(m, out)
    every(m, out)


def duration(m: re.Match[str], out: Sink) -> None:
    out.put("duration_days", round(days_of(m, "t"), 3), m)


def seed(m: re.Match[str], out: Sink) -> None:
    out.put("seed", int(m["v"]), m)


def grade(m: re.Match[str], out: Sink) -> None:
    g = m["g"] or m["g2"]
    out.put("grade", "low" if g in ("i", "ii", "1", "2", "one", "two") else "high", m)
    out.put("family", "glioma", m)


def place(fields: Mapping[str, object], lung_lobe: bool = False) -> Handler:
    """Location words: optional groups ``side``, ``lvl`` (lung level), ``lobe`` (brain lobe) and
    ``abbr`` ("rul"...), plus constant ``fields``; ``lung_lobe`` names the lobe from side + level."""

    def handler(m: re.Match[str], out: Sink) -> None:
        gd = m.groupdict()
        side, level = gd.get("side"), _LEVEL.get(gd.get("lvl") or "")
        if gd.get("abbr"):
            side, level = _LOBE_ABBR[gd["abbr"]].split("_")
        if lung_lobe:
            out.put("location.lung_lobe", f"{side}_{level}", m)
        for field, value in (("side", side), ("level", level), ("brain_lobe", gd.get("lobe"))):
            if value:
                out.put(f"location.{field}", value, m)
        sets(fields)(m, out)

    return handler
