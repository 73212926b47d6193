"""Numbers and units of the prompt: number words, regular-expression fragments, conversions.

Units: sizes become millimetres, times days (week = 7 d, month = 365.25 / 12 = 30.4375 d,
year = 365.25 d, the Julian year), volumes the diameter of the sphere of that volume.
"""

from __future__ import annotations

import math
import re

_NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
_NUMBER_WORDS += "fifteen sixteen seventeen eighteen nineteen twenty"
_WORD_NUMBERS = {w: i for i, w in enumerate(_NUMBER_WORDS.split())}
_WORDS = "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True))  # "seventeen" before "seven"
NUM_START = r"(?<![\w.])"  # a number starts here: not inside a word or after a decimal point
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
    Fleischner 2017 correspondence 100 mm³ ≈ 6 mm and 250 mm³ ≈ 8 mm (docs/design.md §3.1).
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


def size_re(name: str) -> str:
    """A size (``2 cm``, ``1.5-cm``, ``2 x 1.5 cm``, ``0.5 cc``) in groups ``{name}_n``/``{name}_u``."""
    return rf"{NUM_START}(?P<{name}_n>{NUM}(?:\s*x\s*{NUM}){{0,2}})\s*-?\s*(?P<{name}_u>{SIZE_UNIT})"


def time_re(name: str) -> str:
    """A duration (``6 months``, ``6-month``, ``a year``, ``half a year``) in ``{name}_n``/``{name}_u``."""
    return rf"{NUM_START}(?P<{name}_n>{NUM}|half\s+an?\s|an?\s)\s*-?\s*(?P<{name}_u>{TIME_UNIT})"


def days_of(m: re.Match[str], name: str) -> float:
    return to_number(m[f"{name}_n"]) * unit_days(m[f"{name}_u"])


def mm_of(m: re.Match[str], name: str) -> float:
    return size_mm(m[f"{name}_n"], m[f"{name}_u"])
