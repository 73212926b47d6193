"""Numbers, units and the value handlers of the prompt parser's rules (:mod:`longisynth._prompt_rules`).

The rule table says *where* a phrase is; this module says what its numbers *mean*: number words
("twelve", "half a"), the regular-expression fragments for numbers, sizes and durations, their
conversion to spec units, and the handlers that turn a rule's match groups into spec fields
written to a :class:`Sink`. Split from the table so that each file stays short.

Units: sizes become millimetres, times days (week = 7 d, month = 365.25 / 12 = 30.4375 d,
year = 365.25 d, the Julian year), volumes the diameter of the sphere of that volume.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Protocol

from longisynth.errors import InvalidInputError, PromptNotUnderstoodError

# --- numbers and units -----------------------------------------------------------------------

_NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
_NUMBER_WORDS += "fifteen sixteen seventeen eighteen nineteen twenty"
_WORD_NUMBERS = {w: i for i, w in enumerate(_NUMBER_WORDS.split())}
_WORDS = "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True))  # "seventeen" before "seven"
_B = r"(?<![\w.])"  # a number starts here: not inside a word or after a decimal point
NUM = rf"(?:\d*\.?\d+|(?:{_WORDS})\b)"
SNUM = r"[-+]?\d*\.?\d+"  # signed, for world coordinates
SEP = r"\s*(?:(?:of|is|about|approximately|approx|around|roughly)\b\.?\s*|[=:]\s*)*"

DAYS_PER_MONTH = 365.25 / 12  # 30.4375 d: a mean Gregorian month, so 12 months are one year
DAYS_PER_YEAR = 365.25
TIME_UNIT = r"(?:days?|d|weeks?|wks?|w|months?|mos?|mths?|years?|yrs?|y)\b"
_MM = r"(?:mm|millimet(?:er|re)s?)"
_CM = r"(?:cm|centimet(?:er|re)s?)"
_MM3 = r"(?:mm\^?3|cubic\s+(?:mm|millimet(?:er|re)s?))"
_ML = r"(?:cc|ml|millilit(?:er|re)s?|cm\^?3|cubic\s+(?:cm|centimet(?:er|re)s?))"
SIZE_UNIT = rf"(?:{_MM3}|{_ML}|{_MM}|{_CM})\b"  # volumes first: "mm3" is not "mm"


def to_number(text: str) -> float:
    """``"12.5"``, ``"twelve"``, ``"a"``/``"an"`` (= 1) or ``"half a"`` (= 0.5) as a float."""
    t = " ".join(text.split())
    if t in _WORD_NUMBERS:
        return float(_WORD_NUMBERS[t])
    if t in ("a", "an"):
        return 1.0
    if t.startswith("half"):
        return 0.5
    return float(t)


def unit_days(unit: str) -> float:
    """Length in days of a time unit matched by :data:`TIME_UNIT`."""
    return {"d": 1.0, "w": 7.0, "m": DAYS_PER_MONTH, "y": DAYS_PER_YEAR}[unit[0]]


def sphere_diameter_mm(volume_mm3: float) -> float:
    """Diameter (mm) of the sphere of ``volume_mm3``: d = (6 V / pi)^(1/3).

    Volumetry reports a nodule by the diameter of its equivalent sphere; this reproduces the
    Fleischner 2017 correspondence 100 mm³ ≈ 6 mm and 250 mm³ ≈ 8 mm (DESIGN.md).
    """
    return round((6.0 * volume_mm3 / math.pi) ** (1.0 / 3.0), 3)


def size_mm(numbers: str, unit: str) -> float:
    """Longest diameter (mm) of ``"20"``/``"2 x 1.5"`` in a length or volume unit."""
    value = max(to_number(p) for p in re.split(r"\s*x\s*", numbers.strip()))
    u = " ".join(unit.split())
    if re.fullmatch(_MM3, u):
        return sphere_diameter_mm(value)
    if re.fullmatch(_ML, u):
        return sphere_diameter_mm(value * 1000.0)  # 1 ml = 1 cm³ = 1000 mm³
    return round(value * 10.0 if re.fullmatch(_CM, u) else value, 3)


def _size(name: str) -> str:
    """A size (``2 cm``, ``1.5-cm``, ``2 x 1.5 cm``, ``0.5 cc``) in groups ``{name}_n``/``{name}_u``."""
    return rf"{_B}(?P<{name}_n>{NUM}(?:\s*x\s*{NUM}){{0,2}})\s*-?\s*(?P<{name}_u>{SIZE_UNIT})"


def _time(name: str) -> str:
    """A duration (``6 months``, ``6-month``, ``a year``, ``half a year``) in ``{name}_n``/``{name}_u``."""
    return rf"{_B}(?P<{name}_n>{NUM}|half\s+an?\s|an?\s)\s*-?\s*(?P<{name}_u>{TIME_UNIT})"


def _days(m: re.Match[str], name: str) -> float:
    return to_number(m[f"{name}_n"]) * unit_days(m[f"{name}_u"])


def _mm(m: re.Match[str], name: str) -> float:
    return size_mm(m[f"{name}_n"], m[f"{name}_u"])


# --- what handlers write to -------------------------------------------------------------------


class Sink(Protocol):
    """Where handlers write what they understood (implemented by the parser's builder)."""

    def put(self, field: str, value: object, m: re.Match[str]) -> None:
        """Set dotted ``field`` (e.g. ``"location.side"``); a different earlier value is a contradiction."""

    def plain_size(self, diameter_mm: float, m: re.Match[str]) -> None:
        """A size with no baseline/final qualifier (resolved once all sizes are known)."""

    def every(self, interval_days: float, m: re.Match[str]) -> None:
        """A scan interval without a total span ("every 3 months")."""


Handler = Callable[[re.Match[str], Sink], None]


def _sets(fields: Mapping[str, object]) -> Handler:
    def handler(m: re.Match[str], out: Sink) -> None:
        for field, value in fields.items():
            out.put(field, value, m)

    return handler


# --- handlers with logic ---------------------------------------------------------------------

_LIST_SEP = r"\s*(?:,\s*and\b|,|/|;|\band\b|&)\s*"
_LUNG: Mapping[str, object] = {"family": "lung_nodule"}
_GLIOMA: Mapping[str, object] = {"family": "glioma"}
_LEVEL = {"upper": "upper", "superior": "upper", "middle": "middle", "mid": "middle"}
_LEVEL |= {"lower": "lower", "inferior": "lower"}
_LOBE_ABBR = {"rul": "right_upper", "rml": "right_middle", "rll": "right_lower"}
_LOBE_ABBR |= {"lul": "left_upper", "lll": "left_lower"}
_ADVERB_DAYS = {"daily": 1.0, "weekly": 7.0, "fortnightly": 14.0, "monthly": DAYS_PER_MONTH}
_ADVERB_DAYS |= {"quarterly": 3 * DAYS_PER_MONTH, "semiannual": DAYS_PER_YEAR / 2, "yearly": DAYS_PER_YEAR}
_ADVERB_DAYS |= {"annual": DAYS_PER_YEAR, "annually": DAYS_PER_YEAR, "semiannually": DAYS_PER_YEAR / 2}
# "biannual(ly)" is left out: twice a year or every 2 years?
MAX_TIMEPOINTS = 20  # LesionSpec.n_timepoints le=20


def _point(field: str) -> Handler:
    def handler(m: re.Match[str], out: Sink) -> None:
        x, y, z = (float(m[g]) for g in ("a", "b", "c"))
        if (m.groupdict().get("frame") or "").startswith("lps"):
            x, y = -x, -y  # DICOM LPS -> our RAS+: flip the first two axes
        out.put(field, (x, y, z), m)

    return handler


def _time_list(m: re.Match[str], out: Sink) -> None:
    scale = unit_days(m["u"])
    items = re.split(_LIST_SEP, m["list"].strip())
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


def _every_for(m: re.Match[str], out: Sink) -> None:
    out.put("timepoints_days", regular_times(_interval(m), _days(m, "t")), m)


def _count(extra: int) -> Handler:
    def handler(m: re.Match[str], out: Sink) -> None:
        value = to_number(m["n"])
        if not value.is_integer():
            raise PromptNotUnderstoodError(f'"{m.group(0).strip()}": a number of scans must be whole')
        out.put("n_timepoints", int(value) + extra, m)

    return handler


def _fraction(m: re.Match[str], out: Sink) -> None:
    value = to_number(m["v"])
    out.put("solid_fraction", value / 100.0 if m["pct"] else value, m)
    _sets({"nodule_type": "part_solid", **_LUNG})(m, out)


def _rate(field: str, implies: Mapping[str, object] | None = None) -> Handler:
    """A time (days, from groups ``t_n``/``t_u``) or a rate per day (``v``, unit ``u``, ``cm`` for cm²)."""

    def handler(m: re.Match[str], out: Sink) -> None:
        gd = m.groupdict()
        if gd.get("t_u"):
            value = _days(m, "t")
            out.put(field, round(value, 3), m)
        else:
            value = to_number(m["v"]) * (100.0 if gd.get("cm") else 1.0)  # 1 cm2 = 100 mm2
            if (gd.get("u") or "d")[0] == "y":
                value /= DAYS_PER_YEAR  # "4/year" -> per day
            out.put(field, float(f"{value:.6g}"), m)
        _sets(implies or {})(m, out)

    return handler


def _size_field(field: str, implies: Mapping[str, object] | None = None) -> Handler:
    def handler(m: re.Match[str], out: Sink) -> None:
        out.put(field, _mm(m, "s"), m)
        verb = m.groupdict().get("verb") or ""
        if re.match(r"shrink|regress|decreas|reduc", verb):
            out.put("growth.law", "regressing", m)
        _sets(implies or {})(m, out)

    return handler


def _range(m: re.Match[str], out: Sink) -> None:
    final = _mm(m, "s")
    unit = m["a_u"] or m["s_u"]  # "from 8 to 12 mm": the first number takes the last unit
    out.put("baseline_diameter_mm", size_mm(m["a_n"], unit), m)
    out.put("diameter_mm", final, m)


def _plain_size(m: re.Match[str], out: Sink) -> None:
    out.plain_size(_mm(m, "s"), m)


def _every(m: re.Match[str], out: Sink) -> None:
    step = _interval(m)
    if step <= 0:
        raise InvalidInputError(f'"{m.group(0).strip()}": the scan interval must be longer than 0 days')
    out.every(step, m)


def _count_every(m: re.Match[str], out: Sink) -> None:
    """ "5 yearly scans": a count and an interval."""
    _count(0)(m, out)
    _every(m, out)


def _duration(m: re.Match[str], out: Sink) -> None:
    out.put("duration_days", round(_days(m, "t"), 3), m)


def _seed(m: re.Match[str], out: Sink) -> None:
    out.put("seed", int(m["v"]), m)


def _grade(m: re.Match[str], out: Sink) -> None:
    g = m["g"] or m["g2"]
    out.put("grade", "low" if g in ("i", "ii", "1", "2", "one", "two") else "high", m)
    out.put("family", "glioma", m)


def _place(fields: Mapping[str, object], lung_lobe: bool = False) -> Handler:
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
        _sets(fields)(m, out)

    return handler
