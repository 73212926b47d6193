"""The rule table of the prompt parser (:mod:`longisynth.spec.prompt.parser`).

Each :class:`Rule` is a regular expression over the *normalised* prompt (lower case, ASCII
hyphens, ``x`` for ``×``, see :func:`longisynth.spec.prompt.parser.normalise`) and a handler that writes spec
fields into a :class:`Sink`. Rules run in the order of :data:`RULES` and every match is consumed,
so specific phrases ("doubling time 300 days", "scans at 0, 3 and 6 months", "8 mm at baseline")
must come before the generic ones that would otherwise steal their numbers ("6 months", "2 cm").

Numbers and units are in :mod:`longisynth.spec.prompt.units`, the handlers that convert matches
into spec values in :mod:`longisynth.spec.prompt.handlers`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from longisynth.errors import PromptNotUnderstoodError
from longisynth.spec.prompt.handlers import (
    GLIOMA,
    LIST_SEP,
    LUNG,
    Handler,
    Sink,
    count,
    count_every,
    duration,
    every,
    every_for,
    grade,
    pace,
    place,
    plain_size,
    point,
    rate,
    seed,
    sets,
    size_field,
    size_range,
    size_word,
    solid_fraction,
    time_list,
    volume_change,
)
from longisynth.spec.prompt.units import (
    NUM,
    NUM_START,
    SEP,
    SIZE_UNIT,
    SNUM,
    TIME_UNIT,
    size_re,
    time_re,
)

# --- the rule machinery ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    handler: Handler


def _rule(regex: str, handler: Handler | Mapping[str, object]) -> Rule:
    """A rule that calls ``handler``, or sets the constant fields of a mapping."""
    return Rule(re.compile(regex), sets(handler) if isinstance(handler, Mapping) else handler)


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
    r"intraventricular|spinal\s+cord|hypothalam(?:us|ic)|optic\s+(?:nerves?|chiasma?|pathways?|tracts?)"
    r"|pineal(?:\s+(?:gland|region))?"
)
_BRAIN_SUPPORTED = (
    "frontal, parietal, temporal or occipital lobe, insula, thalamus, basal ganglia, corpus callosum, "
    "cerebellum or brainstem"
)
_CALLOSUM = "corpus_callosum"
# Deep and infratentorial regions (spec value -> words); an optional side may precede them.
_BRAIN_REGIONS: dict[str, str] = {
    "insula": r"insula(?:r)?(?:\s+(?:cortex|lobe|region))?",
    "thalamus": r"thalam(?:us|i|ic)",
    "basal_ganglia": (
        r"basal\s+gangli(?:a|on)|caudate(?:\s+nucleus)?|putamen|putaminal|lentiform(?:\s+nucleus)?"
        r"|striatum|striatal|globus\s+pallidus|pallidal"
    ),
    _CALLOSUM: r"(?:(?:genu|splenium|body|rostrum)\s+of\s+(?:the\s+)?)?corpus\s+callosum|callosal",
    "cerebellum": r"cerebell(?:um|ar)(?:\s+(?:hemisphere|vermis))?|(?:cerebellar\s+)?vermis",
    "brainstem": (
        r"brain[\s-]?stem|pons|pontine|midbrain|mesencephal(?:on|ic)|medulla(?:\s+oblongata)?"
        r"|tect(?:um|al)(?:\s+plate)?"
    ),
}
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
        _reject("brain location '{word}' is not supported: " + _BRAIN_SUPPORTED),
    ),
    _rule(r"\bleft\s+middle\s+lobe\b", _reject("'{word}': the left lung has no middle lobe (try 'lingula')")),
    _rule(r"\b[23]-?d\b", _skip),  # "3D" (not 3 days)
    # a glioma's pace is its grade (docs/design.md §3.2); before the sizes, which read "growing to"
    _rule(
        r"\b(?:slow(?:ly)?[\s-]*(?:growing|progressing|evolving|enlarging)|indolent|slow)\b",
        pace("slow"),
    ),
    _rule(
        r"\b(?:(?:fast|rapid(?:ly)?|quick(?:ly)?)[\s-]*(?:growing|progressing|evolving|enlarging)"
        r"|(?:highly\s+)?aggressive|fast|rapid)\b",
        pace("fast"),
    ),
    # explicit points: before any rule that reads bare numbers
    _rule(
        rf"\bvoxels?(?:\s+(?:index|indices|coordinates?|position))?\s*(?:at|=|:)?\s*\(?\s*{_TRIPLE}\s*\)?",
        point("location.point_voxel"),
    ),
    _rule(rf"\(?\s*{_TRIPLE}\s*\)?\s*(?:in\s+)?voxels?\b", point("location.point_voxel")),
    _rule(
        rf"\bi\s*=\s*(?P<a>{SNUM})[,;\s]+j\s*=\s*(?P<b>{SNUM})[,;\s]+k\s*=\s*(?P<c>{SNUM})",
        point("location.point_voxel"),
    ),
    _rule(
        rf"\bx\s*=\s*(?P<a>{SNUM})\s*(?:mm)?[,;\s]+y\s*=\s*(?P<b>{SNUM})\s*(?:mm)?[,;\s]+z\s*=\s*(?P<c>{SNUM})"
        r"(?:\s*mm\b)?(?:\s*\(?(?P<frame>ras\+?|lps)\)?)?",
        point("location.point_mm"),
    ),
    _rule(
        rf"\(?\s*{_TRIPLE}\s*\)?\s*mm\b(?:\s*\(?(?P<frame>ras\+?|lps)\b\)?)?",
        point("location.point_mm"),
    ),
    _rule(
        rf"\(\s*{_TRIPLE}\s*\)",
        _reject("coordinates '{word}' need a unit: '(x, y, z) mm' (world RAS+) or 'voxel (i, j, k)'"),
    ),
    _rule(r"\b(?:random\s+|rng\s+)?seed(?:ed)?(?:\s+(?:of|with|is))?\s*[:=#]?\s*(?P<v>\d+)\b", seed),
    # growth parameters
    _rule(
        r"\b(?:plateau(?:ing|s)?|saturat(?:ing|es)|levell?ing\s+off)\s+(?:at|around|near|of)\s+(?:about\s+)?"
        + size_re("s"),
        size_field("growth.max_diameter_mm", {"growth.law": "gompertz"}),
    ),
    _rule(
        rf"\b(?:max(?:imum)?|asymptotic|plateau)\s+(?:diameter|size){SEP}" + size_re("s"),
        size_field("growth.max_diameter_mm", {"growth.law": "gompertz"}),
    ),
    *(
        _rule(regex + time_re("t"), rate("growth.doubling_time_days"))
        for regex in (
            rf"\b(?:(?:volume|tumou?r)\s+)?doubling[\s-]+time\s*(?:\(vdt\)\s*)?{SEP}",
            rf"\bvdt{SEP}",
            r"\bdoubl(?:es|ing)(?:\s+in\s+(?:volume|size))?\s+(?:every|in)\s+",
        )
    ),
    _rule(time_re("t") + r"\s+(?:volume\s+)?(?:doubling\s+time|vdt)\b", rate("growth.doubling_time_days")),
    *(
        _rule(regex + time_re("t"), rate("growth.halving_time_days", implies={"growth.law": "regressing"}))
        for regex in (
            rf"\b(?:(?:volume\s+)?halving[\s-]+time|half[\s-]+life){SEP}",
            r"\bhalv(?:es|ing)(?:\s+in\s+(?:volume|size))?\s+(?:every|in)\s+",
        )
    ),
    # what happens to the volume over the study ("doubles", "shrinks by half", "grows by 50 %")
    _rule(
        r"\b(?:(?:shrink|decreas|reduc|regress|diminish)(?:es|s|ing|ed)?\s+by\s+(?:a\s+|one\s+)?(?P<mult>half)"
        r"|(?P<mult2>doubl|tripl|quadrupl|halv)(?:es|ed|ing|e)\b(?!\s+(?:every|time|in\s+(?:\d|one|two)))"
        r"(?:\s+(?:in|its)\s+(?:(?P<diam>diameter)|volume|size))?)",
        volume_change,
    ),
    _rule(
        rf"\b(?:(?P<down>shrink|decreas|reduc|regress|diminish)|grow|increas|enlarg|expand)(?:es|s|ing|ed|e)?"
        rf"\s+by\s+(?:about\s+)?(?P<pct>{NUM})\s*(?:%|percent)(?:\s+(?:in|of)\s+(?:(?P<vol>volume)|diameter|size))?",
        volume_change,
    ),
    _rule(
        rf"(?:\bproliferation(?:\s+rate)?|\brho\b|ρ){SEP}(?P<v>{NUM})"
        r"(?:\s*(?:(?:1\s*)?/\s*|per\s+)(?P<u>days?|d|years?|yrs?|y)\b)?",
        rate("growth.proliferation_per_day"),
    ),
    _rule(
        r"(?:(?<!reaction-)(?<!reaction )\b(?:diffusion|diffusivity)(?:\s+(?:coefficient|rate))?"
        rf"(?:\s+in\s+(?:the\s+)?white\s+matter)?|\bd(?:_white|_w)?(?=\s*[=:])){SEP}(?P<v>{NUM})"
        r"\s*(?:(?P<cm>cm)|mm)\s*\^?2\s*(?:/|per\s+)\s*(?P<u>days?|d|years?|yrs?|y)\b",
        rate("growth.diffusion_mm2_per_day"),
    ),
    # timepoints: lists, regular intervals, counts
    _rule(
        r"(?P<fu>\bfollow[\s-]?ups?(?:\s+(?:scans?|visits?|imaging))?\s+)?(?:\b(?:at|on)\s+)?"
        rf"(?P<list>(?:baseline|{NUM_START}{NUM})(?:{LIST_SEP}{NUM_START}{NUM})+)\s*-?\s*(?P<u>{TIME_UNIT})",
        time_list,
    ),
    _rule(
        rf"(?:\b(?:at|on)\s+)?\b(?P<u>days?|weeks?|months?|years?)\s+"
        rf"(?P<list>{NUM_START}{NUM}(?:{LIST_SEP}{NUM_START}{NUM})+){_NO_UNIT_AFTER}",
        time_list,
    ),
    _rule(rf"{NUM_START}(?P<n>{NUM})\s+" + _EVERY + rf"\s+{_SCANS}", count_every),
    _rule(_EVERY + _SPAN + time_re("t"), every_for),
    _rule(_EVERY, every),
    _rule(time_re("i") + r"\s+(?:apart|intervals?)\b", every),  # "6 months apart", "at 3-month intervals"
    _rule(
        r"\b(?:(?:follow(?:ing)?|per|using|according\s+to|as\s+in|with)\s+)?(?:the\s+)?fleischner"
        r"(?:\s+(?:2017|society))?(?:\s+(?:guidelines?|schedule|follow[\s-]?ups?|intervals?|"
        r"recommendations?|protocol|criteria))?",
        {"schedule": "fleischner", **LUNG},
    ),
    _rule(
        r"\b(?:even(?:ly)?[\s-]+(?:spaced|spacing|schedule|intervals?)|(?:at\s+)?regular\s+intervals"
        r"|equally\s+spaced|equal\s+intervals)\b",
        {"schedule": "even"},
    ),
    # "3 follow-ups" = 3 scans after the baseline scan, so 4 timepoints in all
    _rule(
        rf"{NUM_START}(?P<n>{NUM})\s+(?:more\s+|additional\s+|further\s+|subsequent\s+)?(?:follow[\s-]?ups?"
        r"(?:\s+(?:scans?|visits?|exams?|studies|cts|mris))?|(?<=additional\s)scans?)\b",
        count(1),
    ),
    _rule(rf"{NUM_START}(?P<n>{NUM})\s+(?:additional|further|more|subsequent)\s+{_SCANS}", count(1)),
    _rule(rf"{NUM_START}(?P<n>{NUM})\s+(?:(?:ct|mri?|serial|longitudinal|total)\s+)?{_SCANS}", count(0)),
    _rule(rf"\b(?:number\s+of\s+)?(?:time[\s-]?points|scans)\s*[:=]\s*(?P<n>{NUM})", count(0)),
    # part-solid by solid fraction; a solid component in mm needs a diameter we may not know
    _rule(
        rf"\bsolid\s+(?:component|core|fraction|portion|part){SEP}(?P<v>{NUM})\s*(?P<pct>%|percent)?",
        solid_fraction,
    ),
    _rule(
        rf"{NUM_START}(?P<v>{NUM})\s*(?P<pct>%|percent)\s+solid(?:\s+(?:component|core|portion|part))?",
        solid_fraction,
    ),
    _rule(
        size_re("s") + r"\s+solid\s+(?:component|core|part|portion)",
        _reject("'{word}': give the solid component as a fraction ('solid fraction 0.5' or '50% solid')"),
    ),
    # size adjectives ("small", "very large"); "small cell" is a histology, not a size
    _rule(
        r"\b(?P<very>very\s+|really\s+)?(?P<w>tiny|small|little|large|big|huge|sizeable|massive|giant"
        r"|medium(?:[\s-]+sized)?|intermediate(?:[\s-]+sized)?|moderate(?:[\s-]+sized)?)\b"
        r"(?!\s+cell)(?:[\s-]+sized)?",
        size_word,
    ),
    # sizes
    _rule(
        rf"{NUM_START}{NUM}\s*-\s*{NUM}\s*{SIZE_UNIT}",
        _reject("size range '{word}' is ambiguous: say 'from 8 to 12 mm' (baseline to final) or one size"),
    ),
    _rule(
        rf"(?:\bfrom\s+)?{NUM_START}(?P<a_n>{NUM})\s*(?:(?P<a_u>{SIZE_UNIT})\s*)?(?:to|until)\s+(?:about\s+)?"
        + size_re("s"),
        size_range,
    ),
    _rule(
        r"\b(?:(?:starting|starts|start|beginning|begins|begin)\s+(?:at|from|with|as)|initially|"
        r"initial(?:\s+(?:size|diameter))?|(?:at\s+)?baseline(?:\s+(?:size|diameter))?|from)"
        rf"{SEP}(?:with\s+)?(?:an?\s+)?" + size_re("s"),
        size_field("baseline_diameter_mm"),
    ),
    _rule(
        size_re("s") + r"(?:\s+(?:at|on)\s+(?:the\s+)?(?:baseline|first\s+scan|start|onset|t0)"
        r"|\s+(?:initially|at\s+first|baseline))\b",
        size_field("baseline_diameter_mm"),
    ),
    _rule(
        rf"\b(?:(?P<verb>{_VERB})\s+(?:up\s+)?to|reaching|reaches|reach|(?:ending|ends)\s+(?:at|with)"
        rf"|final(?:\s+(?:size|diameter))?|up\s+to|to){SEP}(?:an?\s+)?" + size_re("s"),
        size_field("diameter_mm"),
    ),
    _rule(
        size_re("s") + r"\s+(?:at\s+the\s+(?:end|last\s+(?:scan|time\s*point))|finally|final)\b",
        size_field("diameter_mm"),
    ),
    _rule(size_re("s"), plain_size),
    _rule(
        rf"\b(?:over|for|across|during|within|spanning|lasting|throughout|in)?\s*{time_re('t')}",
        duration,
    ),
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
        {"nodule_type": "part_solid", **LUNG},
    ),
    _rule(
        r"\b(?:pure\s+)?(?:non[\s-]?solid|ground[\s-]?glass(?:[\s-]+(?:opacity|opacities|attenuation|density))?"
        r"|ggos?|ggns?)\b",
        {"nodule_type": "ground_glass", **LUNG},
    ),
    _rule(r"\bsolid\b", {"nodule_type": "solid", **LUNG}),
    _rule(r"\bsubsolid\b", _reject("'{word}' covers part-solid and ground-glass nodules: say which")),
    _rule(
        r"\b(?:glioblastomas?(?:\s+multiforme)?|gbm|anaplastic\s+\w*gliomas?|anaplastic\s+astrocytomas?)\b",
        {"grade": "high", **GLIOMA},
    ),
    # diffuse midline glioma, H3 K27-altered: WHO grade 4; the pons (DIPG) is its most frequent site
    _rule(
        r"\b(?:dipg|diffuse\s+intrinsic\s+pontine\s+gliomas?)\b",
        {"grade": "high", "location.brain_lobe": "brainstem", **GLIOMA},
    ),
    _rule(
        r"\b(?:diffuse\s+midline\s+gliomas?|dmg)(?:[\s,]+(?:h3[\s-]?)?k27(?:m|[\s-]?(?:altered|mutant))?)?\b",
        sets({"grade": "high", **GLIOMA}, implies={"location.brain_lobe": "brainstem"}),
    ),
    _rule(r"\b(?:high[\s-]?grade|hgg)\b", {"grade": "high", **GLIOMA}),
    # high grade: ring-enhancing rim around a necrotic core; low grade: no enhancement (docs/design.md §3.2)
    _rule(
        r"\b(?:(?:ring|rim)[\s-]?enhanc(?:ing|ement)|enhancing\s+(?:rim|ring|component)|necrotic(?:\s+core)?"
        r"|(?:central\s+)?necrosis)\b",
        {"grade": "high", **GLIOMA},
    ),
    _rule(r"\bnon[\s-]?enhancing\b|\b(?:no|without)\s+enhancement\b", {"grade": "low", **GLIOMA}),
    _rule(r"\b(?:low[\s-]?grade|lgg)\b", {"grade": "low", **GLIOMA}),
    _rule(
        r"\b(?:who\s+)?(?:cns\s+)?grade[\s-]*(?P<g>iv|iii|ii|i|[1-4]|one|two|three|four)\b"
        r"|\bwho\s+(?P<g2>iv|iii|ii|i|[1-4])\b",
        grade,
    ),
    # histology without a grade: diffuse astrocytoma and oligodendroglioma are most often WHO
    # grade 2 (low); a grade word ("grade IV astrocytoma") or "anaplastic" overrides this
    _rule(
        r"\b(?:(?:diffuse\s+)?astrocytomas?|oligodendrogliomas?|oligoastrocytomas?)\b",
        sets(GLIOMA, implies={"grade": "low"}),
    ),
    _rule(
        r"\b(?:gliomas?|glial\s+tumou?rs?|brain\s+(?:tumou?rs?|neoplasms?|lesions?|mass(?:es)?|cancer))\b",
        GLIOMA,
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
    # glioma crossing the midline through the corpus callosum ("butterfly"); naming the callosum
    # also implies it as the start when no other region is given
    _rule(
        r"\bbutterfly(?:[\s-]+(?:glioma|glioblastoma|gbm|tumou?r|pattern|lesion)s?)?\b"
        r"|\b(?:cross(?:es|ing)?|spread(?:s|ing)?|extend(?:s|ing)?|grow(?:s|ing)?)?\s*(?:across|through)"
        r"\s+(?:the\s+)?(?:corpus\s+callosum|callosum)\b",
        sets({"location.crosses_midline": True, **GLIOMA}, implies={"location.brain_lobe": _CALLOSUM}),
    ),
    _rule(
        r"\b(?:cross(?:es|ing)?|spread(?:s|ing)?\s+across|extend(?:s|ing)?\s+across|across)\s+(?:the\s+)?"
        r"midline\b|\bbi[\s-]?hemispheric\b",
        {"location.crosses_midline": True, **GLIOMA},
    ),
    # deep and infratentorial brain regions ("left thalamus", "right insular glioma", "pons")
    *(
        _rule(
            rf"\b(?:(?P<side>right|left)[\s-]+(?:sided\s+)?)?(?:{words})\b",
            place({"location.brain_lobe": region, **GLIOMA}),
        )
        for region, words in _BRAIN_REGIONS.items()
    ),
    # lung location
    _rule(
        r"\b(?P<lvl>upper|middle|lower|superior|inferior)\s+lobe\s+of\s+(?:the\s+)?(?P<side>right|left)\s+lung\b",
        place(LUNG, lung_lobe=True),
    ),
    _rule(
        r"\b(?P<side>right|left)[\s-]+(?:lung[\s,]+)?(?P<lvl>upper|middle|lower|superior|inferior)[\s-]+lobe\b",
        place(LUNG, lung_lobe=True),
    ),
    _rule(r"\b(?P<abbr>rul|rml|rll|lul|lll)\b", place(LUNG, lung_lobe=True)),
    _rule(
        r"\blingula(?:r)?(?:\s+(?:segment|lobe))?\b",
        {"location.lung_lobe": "left_upper", "location.side": "left", **LUNG},
    ),
    _rule(
        r"\bmiddle\s+lobe\b",
        {"location.lung_lobe": "right_middle", "location.side": "right", "location.level": "middle", **LUNG},
    ),
    _rule(r"\b(?P<lvl>upper|lower|superior|inferior)\s+lobes?\b", place(LUNG)),
    _rule(
        r"\b(?:(?P<side>right|left)\s+)?(?:lung\s+)?(?:bases?|basal(?:\s+segments?)?|basilar)\b",
        place({"location.level": "lower", **LUNG}),
    ),
    _rule(
        r"\bbase\s+of\s+(?:the\s+)?(?:(?P<side>right|left)\s+)?lungs?\b",
        place({"location.level": "lower", **LUNG}),
    ),
    _rule(
        r"\b(?:(?P<side>right|left)\s+)?(?:lung\s+)?(?:apex|apices|apical(?:ly)?)\b",
        place({"location.level": "upper", **LUNG}),
    ),
    _rule(
        r"\bapex\s+of\s+(?:the\s+)?(?:(?P<side>right|left)\s+)?lungs?\b",
        place({"location.level": "upper", **LUNG}),
    ),
    _rule(r"\b(?P<lvl>upper|mid(?:dle)?|lower)[\s-]+(?:lung\s+)?zone\b", place(LUNG)),
    _rule(r"\bmid[\s-]?lung\b", place({"location.level": "middle", **LUNG})),
    _rule(
        r"\b(?P<side>right|left)\s+(?:lung|hemithorax)\b",
        place(LUNG),
    ),
    # brain location
    _rule(
        r"\b(?P<lobe>frontal|parietal|temporal|occipital)(?:\s+lobe)?\s+of\s+(?:the\s+)?(?P<side>right|left)"
        r"\s+(?:cerebral\s+)?hemisphere\b",
        place(GLIOMA),
    ),
    _rule(
        r"\b(?P<side>right|left)[\s-]+(?:sided\s+)?(?P<lobe>frontal|parietal|temporal|occipital)(?:\s+lobe)?\b",
        place(GLIOMA),
    ),
    _rule(r"\b(?P<lobe>frontal|parietal|temporal|occipital)(?:\s+(?:lobe|region|cortex))?\b", place(GLIOMA)),
    _rule(r"\b(?P<side>right|left)\s+(?:cerebral\s+)?hemisphere\b", place(GLIOMA)),
    # benign calcification (before depth: "centrally calcified" is not a central nodule)
    _rule(r"\b(?:non[\s-]?calcified|without\s+calcifications?)\b", {"calcification": "none", **LUNG}),
    _rule(
        r"\b(?:laminated|lamellar|concentric(?:ally)?|onion[\s-]?skin)\s+calcifi(?:ed|cations?)\b",
        {"calcification": "laminated", **LUNG},
    ),
    _rule(r"\bpopcorn(?:[\s-]+(?:like\s+)?calcifi(?:ed|cations?))?\b", {"calcification": "popcorn", **LUNG}),
    _rule(
        r"\b(?:central(?:ly)?|diffusely)\s+calcifi(?:ed|cations?)\b|\bcalcified\s+(?:granuloma|nidus)\b"
        r"|\bcalcified\b",
        {"calcification": "central", **LUNG},
    ),
    # attachment: vessel, fissure, none
    _rule(
        r"\bjuxta[\s-]?vascular\b|\b(?:attached|adjacent|abutting|touching|along|on)\s+(?:to\s+)?"
        r"(?:an?\s+|the\s+)?(?:pulmonary\s+)?(?:vessel|artery|vein)s?\b|\bvessel[\s-]attached\b",
        {"location.attachment": "juxtavascular", **LUNG},
    ),
    _rule(
        r"\bperi[\s-]?fissural\b|\b(?:attached|adjacent|abutting|touching|along|on|against)\s+(?:to\s+)?"
        r"(?:an?\s+|the\s+)?(?:(?:major|minor|oblique|horizontal|interlobar)\s+)?fissure\b",
        {"location.attachment": "perifissural", **LUNG},
    ),
    _rule(
        r"\bisolated\b|\bfree[\s-]?standing\b|\bnot\s+attached\s+to\s+anything\b",
        {"location.attachment": "isolated", **LUNG},
    ),
    # depth, pleura, side
    _rule(
        r"\b(?:central(?:ly)?|perihilar|para[\s-]?hilar|hilar|deep(?:\s+white\s+matter)?|periventricular)\b",
        {"location.depth": "central"},
    ),
    _rule(r"\b(?:peripheral(?:ly)?|periphery|sub[\s-]?pleural|cortical)\b", {"location.depth": "peripheral"}),
    _rule(
        r"\b(?:not|without)\s+(?:touching|attached\s+to|abutting|contacting)\s+(?:the\s+)?pleura\b"
        r"|\baway\s+from\s+(?:the\s+)?pleura\b|\bintraparenchymal\b|\b(?:not\s+|non[\s-]?)juxta[\s-]?pleural\b",
        {"location.juxtapleural": False, **LUNG},
    ),
    _rule(
        r"\bjuxta[\s-]?pleural\b|\bpleura(?:l)?[\s-]?based\b|\b(?:attached|adjacent|abutting|touching|"
        r"contacting|against|on|in\s+contact\s+with)\s+(?:to\s+)?(?:the\s+)?(?:visceral\s+)?pleura\b",
        {"location.juxtapleural": True, **LUNG},
    ),
    _rule(r"\b(?:nodules?|pulmonary|lungs?)\b", LUNG),
    _rule(r"\b(?P<side>right|left)(?:[\s-]+sided|[\s-]+side)?\b", place({})),
]
