"""The rule table of the prompt parser (:mod:`longisynth.prompt`).

Each :class:`Rule` is a regular expression over the *normalised* prompt (lower case, ASCII
hyphens, ``x`` for ``×``, see :func:`longisynth.prompt.normalise`) and a handler that writes spec
fields into a :class:`Sink`. Rules run in the order of :data:`RULES` and every match is consumed,
so specific phrases ("doubling time 300 days", "scans at 0, 3 and 6 months", "8 mm at baseline")
must come before the generic ones that would otherwise steal their numbers ("6 months", "2 cm").

Numbers, units and the handlers that convert matches into spec values are in
:mod:`longisynth._prompt_units`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from longisynth._prompt_units import (
    _B,
    _GLIOMA,
    _LIST_SEP,
    _LUNG,
    NUM,
    SEP,
    SIZE_UNIT,
    SNUM,
    TIME_UNIT,
    Handler,
    Sink,
    _count,
    _count_every,
    _duration,
    _every,
    _every_for,
    _fraction,
    _grade,
    _place,
    _plain_size,
    _point,
    _range,
    _rate,
    _seed,
    _sets,
    _size,
    _size_field,
    _time,
    _time_list,
)
from longisynth.errors import PromptNotUnderstoodError

# --- the rule machinery ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    handler: Handler


def _rule(regex: str, handler: Handler | Mapping[str, object]) -> Rule:
    """A rule that calls ``handler``, or sets the constant fields of a mapping."""
    return Rule(re.compile(regex), _sets(handler) if isinstance(handler, Mapping) else handler)


def _reject(template: str) -> Handler:
    def handler(m: re.Match[str], out: Sink) -> None:
        word = " ".join(m.group(0).split())
        raise PromptNotUnderstoodError(template.format(word=word), [word])

    return handler


def _skip(m: re.Match[str], out: Sink) -> None:
    """Understood, sets nothing (e.g. "3D")."""


# --- the table, most specific first ----------------------------------------------------------

_TRIPLE = rf"(?P<a>{SNUM})\s*[,;]\s*(?P<b>{SNUM})\s*[,;]\s*(?P<c>{SNUM})"
_ORGANS = (
    r"liver|hepatic|kidneys?|renal|pancreas|pancreatic|breasts?|prostate|colon|colonic|bowel|rectum|"
    r"rectal|spleen|splenic|stomach|gastric|bladder|thyroid|adrenal|ovar(?:y|ies|ian)|uterus|uterine|"
    r"heart|cardiac|skin|bones?|spine|vertebra[el]?|abdomen|abdominal|pelvis|pelvic|neck|"
    r"o?esophag\w*|mediastin\w*|lymph\s+nodes?"
)
_BRAIN_ELSEWHERE = (
    r"cerebell\w*|brain\s*stem|pons|pontine|medulla|thalam\w*|basal\s+ganglia|corpus\s+callosum|"
    r"insula|insular|intraventricular|spinal\s+cord|midbrain"
)
_VERB = r"grow(?:s|ing)?|increas(?:es|ing)|enlarg(?:es|ing)|progress(?:es|ing)|expand(?:s|ing)|"
_VERB += r"shrink(?:s|ing)?|regress(?:es|ing)|decreas(?:es|ing)|reduc(?:es|ing)|evolv(?:es|ing)"
_EVERY = rf"(?:\b(?:every|each)\s+(?:(?P<i_n>{NUM})\s*-?\s*)?(?P<i_u>{TIME_UNIT})"
_EVERY += (
    r"|\b(?P<adv>daily|weekly|fortnightly|monthly|quarterly|semi-?annual(?:ly)?|yearly|annual(?:ly)?)\b)"
)
_SPAN = r"\s+(?:for|over|during|across|until|up\s+to|throughout|spanning)\s+"
_SPAN += r"(?:(?:a|the)\s+(?:period|total)\s+of\s+)?"
_SCANS = (
    r"(?:time[\s-]?points?|scans?|visits?|exams?|examinations?|studies|acquisitions?|sessions?|cts|mris)\b"
)
_NO_UNIT_AFTER = rf"(?![\w.]|\s*-?\s*(?:{SIZE_UNIT}|{TIME_UNIT}))"

RULES: list[Rule] = [
    # unsupported anatomy is rejected outright (even in lenient mode): it is never a typo
    _rule(
        rf"\b(?:{_ORGANS})\b",
        _reject("location '{word}' is not supported: lung nodules (chest CT) and gliomas (brain MRI) only"),
    ),
    _rule(
        rf"\b(?:{_BRAIN_ELSEWHERE})\b",
        _reject("brain location '{word}' is not supported: frontal, parietal, temporal or occipital lobe"),
    ),
    _rule(r"\bleft\s+middle\s+lobe\b", _reject("'{word}': the left lung has no middle lobe (try 'lingula')")),
    _rule(r"\b[23]-?d\b", _skip),  # "3D" (not 3 days)
    # explicit points: before any rule that reads bare numbers
    _rule(
        rf"\bvoxels?(?:\s+(?:index|indices|coordinates?|position))?\s*(?:at|=|:)?\s*\(?\s*{_TRIPLE}\s*\)?",
        _point("location.point_voxel"),
    ),
    _rule(rf"\(?\s*{_TRIPLE}\s*\)?\s*(?:in\s+)?voxels?\b", _point("location.point_voxel")),
    _rule(
        rf"\bi\s*=\s*(?P<a>{SNUM})[,;\s]+j\s*=\s*(?P<b>{SNUM})[,;\s]+k\s*=\s*(?P<c>{SNUM})",
        _point("location.point_voxel"),
    ),
    _rule(
        rf"\bx\s*=\s*(?P<a>{SNUM})\s*(?:mm)?[,;\s]+y\s*=\s*(?P<b>{SNUM})\s*(?:mm)?[,;\s]+z\s*=\s*(?P<c>{SNUM})"
        r"(?:\s*mm\b)?(?:\s*\(?(?P<frame>ras\+?|lps)\)?)?",
        _point("location.point_mm"),
    ),
    _rule(
        rf"\(?\s*{_TRIPLE}\s*\)?\s*mm\b(?:\s*\(?(?P<frame>ras\+?|lps)\b\)?)?",
        _point("location.point_mm"),
    ),
    _rule(
        rf"\(\s*{_TRIPLE}\s*\)",
        _reject("coordinates '{word}' need a unit: '(x, y, z) mm' (world RAS+) or 'voxel (i, j, k)'"),
    ),
    _rule(r"\b(?:random\s+|rng\s+)?seed(?:ed)?(?:\s+(?:of|with|is))?\s*[:=#]?\s*(?P<v>\d+)\b", _seed),
    # growth parameters
    _rule(
        r"\b(?:plateau(?:ing|s)?|saturat(?:ing|es)|levell?ing\s+off)\s+(?:at|around|near|of)\s+(?:about\s+)?"
        + _size("s"),
        _size_field("growth.max_diameter_mm", {"growth.law": "gompertz"}),
    ),
    _rule(
        rf"\b(?:max(?:imum)?|asymptotic|plateau)\s+(?:diameter|size){SEP}" + _size("s"),
        _size_field("growth.max_diameter_mm", {"growth.law": "gompertz"}),
    ),
    *(
        _rule(regex + _time("t"), _rate("growth.doubling_time_days"))
        for regex in (
            rf"\b(?:(?:volume|tumou?r)\s+)?doubling[\s-]+time\s*(?:\(vdt\)\s*)?{SEP}",
            rf"\bvdt{SEP}",
            r"\bdoubl(?:es|ing)(?:\s+in\s+(?:volume|size))?\s+(?:every|in)\s+",
        )
    ),
    _rule(_time("t") + r"\s+(?:volume\s+)?(?:doubling\s+time|vdt)\b", _rate("growth.doubling_time_days")),
    *(
        _rule(regex + _time("t"), _rate("growth.halving_time_days", implies={"growth.law": "regressing"}))
        for regex in (
            rf"\b(?:(?:volume\s+)?halving[\s-]+time|half[\s-]+life){SEP}",
            r"\bhalv(?:es|ing)(?:\s+in\s+(?:volume|size))?\s+(?:every|in)\s+",
        )
    ),
    _rule(
        rf"(?:\bproliferation(?:\s+rate)?|\brho\b|ρ){SEP}(?P<v>{NUM})"
        r"(?:\s*(?:(?:1\s*)?/\s*|per\s+)(?P<u>days?|d|years?|yrs?|y)\b)?",
        _rate("growth.proliferation_per_day"),
    ),
    _rule(
        r"(?:(?<!reaction-)(?<!reaction )\b(?:diffusion|diffusivity)(?:\s+(?:coefficient|rate))?"
        rf"(?:\s+in\s+(?:the\s+)?white\s+matter)?|\bd(?:_white|_w)?(?=\s*[=:])){SEP}(?P<v>{NUM})"
        r"\s*(?:(?P<cm>cm)|mm)\s*\^?2\s*(?:/|per\s+)\s*(?P<u>days?|d|years?|yrs?|y)\b",
        _rate("growth.diffusion_mm2_per_day"),
    ),
    # timepoints: lists, regular intervals, counts
    _rule(
        r"(?P<fu>\bfollow[\s-]?ups?(?:\s+(?:scans?|visits?|imaging))?\s+)?(?:\b(?:at|on)\s+)?"
        rf"(?P<list>(?:baseline|{_B}{NUM})(?:{_LIST_SEP}{_B}{NUM})+)\s*-?\s*(?P<u>{TIME_UNIT})",
        _time_list,
    ),
    _rule(
        rf"(?:\b(?:at|on)\s+)?\b(?P<u>days?|weeks?|months?|years?)\s+"
        rf"(?P<list>{_B}{NUM}(?:{_LIST_SEP}{_B}{NUM})+){_NO_UNIT_AFTER}",
        _time_list,
    ),
    _rule(rf"{_B}(?P<n>{NUM})\s+" + _EVERY + rf"\s+{_SCANS}", _count_every),
    _rule(_EVERY + _SPAN + _time("t"), _every_for),
    _rule(_EVERY, _every),
    _rule(_time("i") + r"\s+(?:apart|intervals?)\b", _every),  # "6 months apart", "at 3-month intervals"
    _rule(
        r"\b(?:(?:follow(?:ing)?|per|using|according\s+to|as\s+in|with)\s+)?(?:the\s+)?fleischner"
        r"(?:\s+(?:2017|society))?(?:\s+(?:guidelines?|schedule|follow[\s-]?ups?|intervals?|"
        r"recommendations?|protocol|criteria))?",
        {"schedule": "fleischner", **_LUNG},
    ),
    _rule(
        r"\b(?:even(?:ly)?[\s-]+(?:spaced|spacing|schedule|intervals?)|(?:at\s+)?regular\s+intervals"
        r"|equally\s+spaced|equal\s+intervals)\b",
        {"schedule": "even"},
    ),
    # "3 follow-ups" = 3 scans after the baseline scan, so 4 timepoints in all
    _rule(
        rf"{_B}(?P<n>{NUM})\s+(?:more\s+|additional\s+|further\s+|subsequent\s+)?(?:follow[\s-]?ups?"
        r"(?:\s+(?:scans?|visits?|exams?|studies|cts|mris))?|(?<=additional\s)scans?)\b",
        _count(1),
    ),
    _rule(rf"{_B}(?P<n>{NUM})\s+(?:additional|further|more|subsequent)\s+{_SCANS}", _count(1)),
    _rule(rf"{_B}(?P<n>{NUM})\s+(?:(?:ct|mri?|serial|longitudinal|total)\s+)?{_SCANS}", _count(0)),
    _rule(rf"\b(?:number\s+of\s+)?(?:time[\s-]?points|scans)\s*[:=]\s*(?P<n>{NUM})", _count(0)),
    # part-solid by solid fraction; a solid component in mm needs a diameter we may not know
    _rule(
        rf"\bsolid\s+(?:component|core|fraction|portion|part){SEP}(?P<v>{NUM})\s*(?P<pct>%|percent)?",
        _fraction,
    ),
    _rule(
        rf"{_B}(?P<v>{NUM})\s*(?P<pct>%|percent)\s+solid(?:\s+(?:component|core|portion|part))?", _fraction
    ),
    _rule(
        _size("s") + r"\s+solid\s+(?:component|core|part|portion)",
        _reject("'{word}': give the solid component as a fraction ('solid fraction 0.5' or '50% solid')"),
    ),
    # sizes
    _rule(
        rf"{_B}{NUM}\s*-\s*{NUM}\s*{SIZE_UNIT}",
        _reject("size range '{word}' is ambiguous: say 'from 8 to 12 mm' (baseline to final) or one size"),
    ),
    _rule(
        rf"(?:\bfrom\s+)?{_B}(?P<a_n>{NUM})\s*(?:(?P<a_u>{SIZE_UNIT})\s*)?(?:to|until)\s+(?:about\s+)?"
        + _size("s"),
        _range,
    ),
    _rule(
        r"\b(?:(?:starting|starts|start|beginning|begins|begin)\s+(?:at|from|with|as)|initially|"
        r"initial(?:\s+(?:size|diameter))?|(?:at\s+)?baseline(?:\s+(?:size|diameter))?|from)"
        rf"{SEP}(?:with\s+)?(?:an?\s+)?" + _size("s"),
        _size_field("baseline_diameter_mm"),
    ),
    _rule(
        _size("s") + r"(?:\s+(?:at|on)\s+(?:the\s+)?(?:baseline|first\s+scan|start|onset|t0)"
        r"|\s+(?:initially|at\s+first|baseline))\b",
        _size_field("baseline_diameter_mm"),
    ),
    _rule(
        rf"\b(?:(?P<verb>{_VERB})\s+(?:up\s+)?to|reaching|reaches|reach|(?:ending|ends)\s+(?:at|with)"
        rf"|final(?:\s+(?:size|diameter))?|up\s+to|to){SEP}(?:an?\s+)?" + _size("s"),
        _size_field("diameter_mm"),
    ),
    _rule(
        _size("s") + r"\s+(?:at\s+the\s+(?:end|last\s+(?:scan|time\s*point))|finally|final)\b",
        _size_field("diameter_mm"),
    ),
    _rule(_size("s"), _plain_size),
    _rule(rf"\b(?:over|for|across|during|within|spanning|lasting|throughout|in)?\s*{_time('t')}", _duration),
    # mass effect
    _rule(
        r"\b(?:no|without|disabled?)\s+(?:any\s+)?(?:mass[\s-]effect|deformation|tissue\s+displacement)\b"
        r"|\bmass[\s-]effect\s*(?:off|disabled|[=:]\s*(?:false|no|0|off))\b",
        {"mass_effect": False},
    ),
    _rule(
        r"\b(?:with\s+)?mass[\s-]effect(?:\s*(?:on|enabled|[=:]\s*(?:true|yes|1|on))\b)?",
        {"mass_effect": True},
    ),
    # growth laws
    _rule(
        r"\breaction[\s-]+diffusion\b|\bfisher[\s-]+kolmogorov(?:[\s-]+petrovsky[\s-]+piskunov)?\b"
        r"|\bfisher[\s-]?kpp\b|\bfkpp\b|\bproliferation[\s-]+invasion\b",
        {"growth.law": "reaction_diffusion"},
    ),
    _rule(
        r"\b(?:gompertz(?:ian)?|saturat(?:ing|es|ion)|plateau(?:ing|s|ed)?|slowing(?:\s+down)?|"
        r"decelerating|levell?ing\s+off|sigmoid(?:al)?)\b",
        {"growth.law": "gompertz"},
    ),
    _rule(
        r"\b(?:no|without)\s+(?:growth|change|progression|interval\s+change)\b|\bnot\s+(?:growing|changing)\b"
        r"|\b(?:stable|unchanged|static|non[\s-]?growing|stability)\b",
        {"growth.law": "stable"},
    ),
    _rule(
        r"\b(?:regress(?:ing|ion|es|ive)?|shrink(?:ing|s|age)?|resolv(?:ing|es|e)|involut(?:ing|ion)"
        r"|decreasing|getting\s+smaller)\b",
        {"growth.law": "regressing"},
    ),
    _rule(r"\bexponential(?:ly)?\b", {"growth.law": "exponential"}),
    # lung nodule type, glioma grade, family
    _rule(
        r"\b(?:ground[\s-]?glass|ggo|ggn|subsolid|non[\s-]?solid)(?:\s+(?:opacity|nodule|lesion))?\s+with\s+"
        r"(?:an?\s+)?solid\s+(?:component|core|part|portion)\b|\bpart[\s-]*solid\b|\bsemi[\s-]?solid\b"
        r"|\bmixed(?:[\s-]+(?:density|attenuation))?(?:[\s-]+(?:ground[\s-]?glass(?:\s+opacity)?|ggo|ggn))?\b",
        {"nodule_type": "part_solid", **_LUNG},
    ),
    _rule(
        r"\b(?:pure\s+)?(?:non[\s-]?solid|ground[\s-]?glass(?:[\s-]+(?:opacity|opacities|attenuation|density))?"
        r"|ggos?|ggns?)\b",
        {"nodule_type": "ground_glass", **_LUNG},
    ),
    _rule(r"\bsolid\b", {"nodule_type": "solid", **_LUNG}),
    _rule(r"\bsubsolid\b", _reject("'{word}' covers part-solid and ground-glass nodules: say which")),
    _rule(
        r"\b(?:glioblastomas?(?:\s+multiforme)?|gbm|anaplastic\s+\w*gliomas?|anaplastic\s+astrocytomas?)\b",
        {"grade": "high", **_GLIOMA},
    ),
    _rule(r"\b(?:high[\s-]?grade|hgg)\b", {"grade": "high", **_GLIOMA}),
    # high grade: ring-enhancing rim around a necrotic core; low grade: no enhancement (DESIGN.md)
    _rule(
        r"\b(?:(?:ring|rim)[\s-]?enhanc(?:ing|ement)|enhancing\s+(?:rim|ring|component)|necrotic(?:\s+core)?"
        r"|(?:central\s+)?necrosis)\b",
        {"grade": "high", **_GLIOMA},
    ),
    _rule(r"\bnon[\s-]?enhancing\b|\b(?:no|without)\s+enhancement\b", {"grade": "low", **_GLIOMA}),
    _rule(r"\b(?:low[\s-]?grade|lgg)\b", {"grade": "low", **_GLIOMA}),
    _rule(
        r"\b(?:who\s+)?(?:cns\s+)?grade[\s-]*(?P<g>iv|iii|ii|i|[1-4]|one|two|three|four)\b"
        r"|\bwho\s+(?P<g2>iv|iii|ii|i|[1-4])\b",
        _grade,
    ),
    _rule(
        r"\b(?:gliomas?|astrocytomas?|oligodendrogliomas?|glial\s+tumou?rs?"
        r"|brain\s+(?:tumou?rs?|neoplasms?|lesions?|mass(?:es)?|cancer))\b",
        _GLIOMA,
    ),
    # shape
    _rule(
        r"\b(?:smooth(?:ly)?(?:[\s-]+(?:margins?|marginated|bordered|contoured))?|round(?:ed)?|spherical"
        r"|oval|ovoid|well[\s-]+(?:circumscribed|defined|demarcated|marginated)|regular)\b",
        {"shape": "smooth"},
    ),
    _rule(r"\b(?:multi)?lobulat(?:ed|ion|ions)\b|\blobular\b", {"shape": "lobulated"}),
    _rule(
        r"\b(?:spiculat(?:ed|ion|ions)|spiky|stellate|ill[\s-]defined"
        r"|irregular(?:ly)?(?:[\s-]+(?:margins?|shaped|bordered))?)\b",
        {"shape": "spiculated"},
    ),
    # lung location
    _rule(
        r"\b(?P<lvl>upper|middle|lower|superior|inferior)\s+lobe\s+of\s+(?:the\s+)?(?P<side>right|left)\s+lung\b",
        _place(_LUNG, lung_lobe=True),
    ),
    _rule(
        r"\b(?P<side>right|left)[\s-]+(?:lung[\s,]+)?(?P<lvl>upper|middle|lower|superior|inferior)[\s-]+lobe\b",
        _place(_LUNG, lung_lobe=True),
    ),
    _rule(r"\b(?P<abbr>rul|rml|rll|lul|lll)\b", _place(_LUNG, lung_lobe=True)),
    _rule(
        r"\blingula(?:r)?(?:\s+(?:segment|lobe))?\b",
        {"location.lung_lobe": "left_upper", "location.side": "left", **_LUNG},
    ),
    _rule(
        r"\bmiddle\s+lobe\b",
        {"location.lung_lobe": "right_middle", "location.side": "right", "location.level": "middle", **_LUNG},
    ),
    _rule(r"\b(?P<lvl>upper|lower|superior|inferior)\s+lobes?\b", _place(_LUNG)),
    _rule(
        r"\b(?:(?P<side>right|left)\s+)?(?:lung\s+)?(?:bases?|basal(?:\s+segments?)?|basilar)\b",
        _place({"location.level": "lower", **_LUNG}),
    ),
    _rule(
        r"\bbase\s+of\s+(?:the\s+)?(?:(?P<side>right|left)\s+)?lungs?\b",
        _place({"location.level": "lower", **_LUNG}),
    ),
    _rule(
        r"\b(?:(?P<side>right|left)\s+)?(?:lung\s+)?(?:apex|apices|apical(?:ly)?)\b",
        _place({"location.level": "upper", **_LUNG}),
    ),
    _rule(
        r"\bapex\s+of\s+(?:the\s+)?(?:(?P<side>right|left)\s+)?lungs?\b",
        _place({"location.level": "upper", **_LUNG}),
    ),
    _rule(r"\b(?P<lvl>upper|mid(?:dle)?|lower)[\s-]+(?:lung\s+)?zone\b", _place(_LUNG)),
    _rule(r"\bmid[\s-]?lung\b", _place({"location.level": "middle", **_LUNG})),
    _rule(
        r"\b(?P<side>right|left)\s+(?:lung|hemithorax)\b",
        _place(_LUNG),
    ),
    # brain location
    _rule(
        r"\b(?P<lobe>frontal|parietal|temporal|occipital)(?:\s+lobe)?\s+of\s+(?:the\s+)?(?P<side>right|left)"
        r"\s+(?:cerebral\s+)?hemisphere\b",
        _place(_GLIOMA),
    ),
    _rule(
        r"\b(?P<side>right|left)[\s-]+(?:sided\s+)?(?P<lobe>frontal|parietal|temporal|occipital)(?:\s+lobe)?\b",
        _place(_GLIOMA),
    ),
    _rule(
        r"\b(?P<lobe>frontal|parietal|temporal|occipital)(?:\s+(?:lobe|region|cortex))?\b", _place(_GLIOMA)
    ),
    _rule(r"\b(?P<side>right|left)\s+(?:cerebral\s+)?hemisphere\b", _place(_GLIOMA)),
    # depth, pleura, side
    _rule(
        r"\b(?:central(?:ly)?|perihilar|para[\s-]?hilar|hilar|deep(?:\s+white\s+matter)?|periventricular)\b",
        {"location.depth": "central"},
    ),
    _rule(r"\b(?:peripheral(?:ly)?|periphery|sub[\s-]?pleural|cortical)\b", {"location.depth": "peripheral"}),
    _rule(
        r"\b(?:not|without)\s+(?:touching|attached\s+to|abutting|contacting)\s+(?:the\s+)?pleura\b"
        r"|\baway\s+from\s+(?:the\s+)?pleura\b|\bintraparenchymal\b|\b(?:not\s+|non[\s-]?)juxta[\s-]?pleural\b",
        {"location.juxtapleural": False, **_LUNG},
    ),
    _rule(
        r"\bjuxta[\s-]?pleural\b|\bpleura(?:l)?[\s-]?based\b|\b(?:attached|adjacent|abutting|touching|"
        r"contacting|against|on|in\s+contact\s+with)\s+(?:to\s+)?(?:the\s+)?(?:visceral\s+)?pleura\b",
        {"location.juxtapleural": True, **_LUNG},
    ),
    _rule(r"\b(?:nodules?|pulmonary|lungs?)\b", _LUNG),
    _rule(r"\b(?P<side>right|left)(?:[\s-]+sided|[\s-]+side)?\b", _place({})),
]
