"""Free-text prompt -> :class:`~longisynth.spec.LesionSpec` (only the fields the prompt sets).

The parser is a list of regular-expression rules (:mod:`longisynth.spec.prompt.rules`) applied, most
specific first, to a normalised copy of the prompt. Each match is *consumed* (blanked) and records
``(phrase, field)``; whatever words remain and are not filler ("simulate", "the", "scan"...) are
the prompt's unknown words. Following the design ("a prompt that cannot be understood is an error
that says which words were not understood, never a silent default"), :func:`spec_from_prompt`
refuses unknown words unless ``lenient``; contradictions ("glioma in the right upper lobe",
"solid ground-glass", two final sizes) and out-of-range values ("a 500 cm nodule") are errors
even when lenient.

Conventions decided here (documented because a prompt can be read more than one way):

- a size with no qualifier is the FINAL longest diameter (``diameter_mm``), except that a single
  plain size next to an explicit final size ("a 2 cm nodule growing to 3 cm") is the baseline;
- a volume (``500 mm3``, ``0.5 cc``) becomes the diameter of the sphere of that volume,
  d = (6 V / pi)^(1/3) mm; ``2 x 1.5 cm`` means a longest diameter of 20 mm;
- "N follow-ups" means N scans after the baseline scan, so N + 1 timepoints; "follow-up at 3 and
  6 months" prepends the implied baseline (day 0), "scans at 3 and 6 months" does not;
- "every 3 months" with no span takes the span from "N scans" or "over ..." (the duration is then
  expressed by the timepoints), else :data:`~longisynth.spec.defaults.DEFAULT_N_TIMEPOINTS` scans;
- durations are rounded to 3 decimals of a day, scan times to 4 (so month multiples stay exact);
- a decimal comma is accepted in sizes only ("1,5 cm"), where it cannot be a list separator;
- a field that exists for one family only (nodule_type, grade, lung lobe, brain lobe, pleura)
  also sets that family, which is how "glioma in the right upper lobe" is caught;
- coordinates need a unit: "(x, y, z) mm" is a world RAS+ point ("... mm LPS" is converted),
  "voxel (i, j, k)" an array index;
- some words only *imply* a value, which an explicit word overrides without contradiction:
  "astrocytoma" / "oligodendroglioma" alone are low grade ("grade IV astrocytoma" is high),
  "diffuse midline glioma" starts in the brainstem and "butterfly" / "across the corpus callosum"
  in the corpus callosum unless another region is named;
- pace words are a glioma's grade ("slow-growing" low, "fast-growing" / "aggressive" high) and a
  lung nodule's doubling time (:data:`~longisynth.spec.prompt.handlers.LUNG_PACE_VDT_DAYS`; not for
  a stable or shrinking nodule);
- size adjectives ("tiny", "small", "large"...) are the final diameter on the family's scale
  (:data:`~longisynth.spec.prompt.handlers.SIZE_WORDS`), or, next to an explicit size, a check of it;
- multipliers ("doubles", "halves", "shrinks by half") are volumes, as the doubling time is, unless
  "in diameter" follows; percentages ("grows by 50 %") are diameters (RECIST) unless "in volume"
  follows; both become ``growth.volume_ratio`` over the study;
- an archetype's name or alias ("aggressive solid nodule", "GBM", "archetype indolent_ggn") names
  it (:attr:`ParsedPrompt.archetype`; the longest phrase wins); a histology whose archetype
  contradicts the prompt's own grade or type ("grade IV astrocytoma") keeps its plain meaning, and
  two archetypes, or an outright "archetype X" against the prompt's family, type or grade, are a
  contradiction.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from longisynth.errors import InvalidInputError, PromptNotUnderstoodError
from longisynth.spec.defaults import DEFAULT_N_TIMEPOINTS
from longisynth.spec.prompt.handlers import LUNG_PACE_VDT_DAYS, MAX_TIMEPOINTS, SIZE_WORDS, regular_times
from longisynth.spec.prompt.rules import RULES
from longisynth.spec.schema import LesionSpec

if TYPE_CHECKING:
    from longisynth.archetypes import ArchetypeRegistry

__all__ = ["MAX_PROMPT_CHARS", "ParsedPrompt", "normalise", "parse_prompt", "read_prompt", "spec_from_prompt"]

MAX_PROMPT_CHARS = 4000  # keeps regex time bounded and every number far below int()'s digit limit

_CHAR_MAP = str.maketrans(
    {
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # figure dash
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2212": "-",  # minus sign
        "\u00d7": " x ",  # multiplication sign in "2 × 1.5 cm"
        "\u2192": " to ",  # arrow in "8 → 12 mm"
        "~": " about ",
        "\u2248": " about ",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
    }
)
# "1,5 cm" -> "1.5 cm"; not in "0,30,60 days" or "120,88,40" (a list, no size unit after it)
_DECIMAL_COMMA = re.compile(r"(?<![\d,])(\d+),(\d{1,2})(?![\d,])(?=\s*(?:mm|cm|cc|ml)\b)")
_TOKEN = re.compile(r"[^\W_]+(?:\.[^\W_]+)*")
_BLANK = "#"  # consumed text; no rule pattern can match across it


# Words that carry no field but are fine in a prompt (never reported as unknown).
_FILLER_TEXT = """
    a an the of in on at with and or over for to from into by its it that which this these those there
    is are be been being was were will would should could can may might must shall please kindly
    i me my we us our you your let lets s simulate simulated simulating simulation generate generated
    generating create creating make making add adding insert inserting synthesize synthesise synthesized
    synthesised synthesizing synthesising synthetic render produce model modelling modeling show showing
    give giving put place placed want need like patient patients subject case scan scans ct cts chest
    thorax thoracic mri mris mr brain head cranial intracranial cerebral lesion lesions tumour tumours
    tumor tumors mass masses image images imaging volume volumes study studies series new longitudinal
    pattern patterns course period periods time times day days week weeks month months year years
    growth growing grow grows grown enlarging enlarge enlarges enlargement progressing progression
    progressive progresses increasing increase increases expanding expand expands expansion evolving
    evolution diameter diameters size sized measuring measures measure measured long longest axis
    located location situated positioned centred centered centre center region area site side lobe
    lobes parenchyma parenchymal tissue appearing appears appearance looking type kind follow
    following followed up baseline initial final first last end timepoint timepoints visit visits
    exam exams t1 t1c t1ce t2 flair contrast enhanced then than also both per as about approximately
    approx around roughly nearly some so very just total overall across during within throughout
    after before until cancer carcinoma neoplasm malignant malignancy diffuse infiltrative infiltrating
    white matter coordinates coordinate point position world ras space opacity opacities margin
    margins border borders rate oedema edema peritumoral perilesional vasogenic surrounding
    """
FILLER = frozenset(_FILLER_TEXT.split())


@dataclass(frozen=True)
class ParsedPrompt:
    """What :func:`parse_prompt` understood.

    Attributes:
        spec: a LesionSpec with only the fields the prompt set (``model_fields_set`` shows which).
        unknown_words: words that could not be placed, in order of appearance (lower case).
        matched: ``(phrase, field)`` for every field set, in order of appearance (for metadata).
        archetype: the progression archetype the prompt names ("aggressive solid nodule",
            "glioblastoma"), or None; kept apart from ``spec``, which holds the fields the words
            themselves set (:func:`longisynth.api.merge_request` puts it into the request).
        archetype_phrase: the words that named it.
    """

    spec: LesionSpec
    unknown_words: list[str]
    matched: list[tuple[str, str]]
    archetype: str | None = None  # the archetype the prompt names (not a field of ``spec``)
    archetype_phrase: str | None = None


def normalise(text: str) -> str:
    """Lower case, NFKC (``mm³`` -> ``mm3``, no-break space -> space), ASCII dashes, ``×`` -> ``x``."""
    t = unicodedata.normalize("NFKC", text).lower().translate(_CHAR_MAP).replace("->", " to ")
    return _DECIMAL_COMMA.sub(r"\1.\2", t)


class _Builder:
    """Collects fields from the rules, detecting contradictions (implements ``Sink``)."""

    def __init__(self) -> None:
        self.fields: dict[str, tuple[Any, str]] = {}  # field -> (value, phrase that set it)
        self.matched: list[tuple[int, str, str]] = []  # (position, phrase, field)
        self.plain_sizes: list[tuple[float, str, int]] = []
        self.intervals: list[tuple[float, str, int]] = []
        self.defaults: dict[str, tuple[Any, str, int]] = {}  # field -> (value, phrase, position)
        self.glioma_words: list[tuple[str, Any, str, int, int]] = []  # (field, value, phrase, start, end)
        self.not_placed: list[tuple[int, int]] = []  # consumed spans that turned out to mean nothing
        self.paces: list[tuple[str, str, int, int]] = []  # (slow|fast, phrase, start, end)
        self.size_words: list[tuple[str, str, int, int]] = []  # (kind, phrase, start, end)
        self.archetype: tuple[str, str, int, int] | None = None  # (name, phrase, start, end)

    def put(self, field: str, value: object, m: re.Match[str]) -> None:
        self._put(field, value, " ".join(m.group(0).split()), m.start())

    def plain_size(self, diameter_mm: float, m: re.Match[str]) -> None:
        self.plain_sizes.append((diameter_mm, " ".join(m.group(0).split()), m.start()))

    def every(self, interval_days: float, m: re.Match[str]) -> None:
        self.intervals.append((interval_days, " ".join(m.group(0).split()), m.start()))

    def default(self, field: str, value: object, m: re.Match[str]) -> None:
        phrase = " ".join(m.group(0).split())
        if field in self.defaults and self.defaults[field][0] != value:
            old, old_phrase, _ = self.defaults[field]
            raise PromptNotUnderstoodError(
                f'prompt contradicts itself: "{old_phrase}" implies {field} = {_show(old)} '
                f'but "{phrase}" implies {field} = {_show(value)}; say which'
            )
        self.defaults.setdefault(field, (value, phrase, m.start()))

    def if_glioma(self, field: str, value: object, m: re.Match[str]) -> None:
        self.glioma_words.append((field, value, " ".join(m.group(0).split()), m.start(), m.end()))

    def pace(self, kind: str, m: re.Match[str]) -> None:
        self.paces.append((kind, " ".join(m.group(0).split()), m.start(), m.end()))

    def size_word(self, kind: str, m: re.Match[str]) -> None:
        self.size_words.append((kind, " ".join(m.group(0).split()), m.start(), m.end()))

    def _put(self, field: str, value: object, phrase: str, pos: int) -> None:
        if field in self.fields:
            old, old_phrase = self.fields[field]
            if old != value:
                raise PromptNotUnderstoodError(
                    f'prompt contradicts itself: "{old_phrase}" gives {field} = {_show(old)} '
                    f'but "{phrase}" gives {field} = {_show(value)}'
                )
        else:
            self.fields[field] = (value, phrase)
        self.matched.append((pos, phrase, field))

    def choose_archetype(
        self, candidates: list[tuple[str, str, int, int]], registry: ArchetypeRegistry, understood: str
    ) -> None:
        """Keep the archetype the prompt names (see :func:`parse_prompt`).

        ``candidates``: ``(name, phrase, start, end)`` of every archetype phrase found;
        ``understood``: the prompt with the rules' matches blanked (to tell whether a phrase's words
        mean something without the archetype)."""
        kept: list[tuple[str, str, int, int]] = []
        for name, phrase, start, end in candidates:
            arch = registry.get(name)
            fixed = arch.fixed_fields()
            given = dict(self.fields)
            if arch.family.value == "glioma" and "grade" not in given:  # a glioma's pace is its grade
                for kind, pace_phrase, pace_start, _ in self.paces:
                    if not start <= pace_start < end:
                        given["grade"] = ("low" if kind == "slow" else "high", pace_phrase)
            clash = [
                f
                for f in ("family", "nodule_type", "grade")
                if f in fixed and f in given and given[f][0] != fixed[f]
            ]
            outright = phrase.startswith("archetype")  # "archetype gbm": a clash is an error
            words_alone = not outright and not any(
                w not in FILLER for w in _TOKEN.findall(understood[start:end])
            )
            if clash and (words_alone or outright or "family" in clash):
                if words_alone:
                    continue  # "grade IV astrocytoma": the words mean their fields, not the archetype
                f = clash[0]
                raise PromptNotUnderstoodError(
                    f'prompt contradicts itself: "{phrase}" is the {arch.family.value.replace("_", " ")} '
                    f'archetype {name} but "{given[f][1]}" gives {f} = {_show(given[f][0])}'
                )
            kept.append((name, phrase, start, end))
        names = list(dict.fromkeys(k[0] for k in kept))
        if len(names) > 1:
            first, second = (next(k for k in kept if k[0] == n) for n in names[:2])
            raise PromptNotUnderstoodError(
                f'prompt contradicts itself: "{first[1]}" names archetype {first[0]} and "{second[1]}" '
                f"archetype {second[0]}; name one"
            )
        if kept:
            self.archetype = kept[0]

    def _in_archetype(self, start: int) -> bool:
        return self.archetype is not None and self.archetype[2] <= start < self.archetype[3]

    def finish(self, archetype_family: str | None = None) -> None:
        """Apply implied values, resolve plain sizes and open intervals; check counts against
        lists and spans. ``archetype_family``: the family of the archetype the prompt names (tempo
        and size words inside its phrase, "aggressive solid nodule", belong to it and set nothing)."""
        family = self.fields.get("family", (None, ""))[0] or archetype_family
        lung = family == "lung_nodule"
        for field, value, phrase, start, end in self.glioma_words:
            if lung:
                self.not_placed.append((start, end))
            else:
                self._put(field, value, phrase, start)
        self._finish_paces(lung)
        for field, (value, phrase, pos) in self.defaults.items():
            if field not in self.fields:
                self._put(field, value, phrase, pos)
        sizes = self.plain_sizes
        if len(sizes) > 1 or (
            sizes and "diameter_mm" in self.fields and "baseline_diameter_mm" in self.fields
        ):
            given = ", ".join(f'"{p}"' for _, p, _ in sizes)
            raise PromptNotUnderstoodError(
                f"prompt contradicts itself: more than one final size ({given}); "
                "mark the first one as the baseline ('8 mm at baseline') or say 'from 8 to 12 mm'"
            )
        if sizes:
            mm, phrase, pos = sizes[0]
            field = "baseline_diameter_mm" if "diameter_mm" in self.fields else "diameter_mm"
            self._put(field, mm, phrase, pos)
        self._finish_size_words(family)
        if len(self.intervals) > 1:
            raise PromptNotUnderstoodError("prompt contradicts itself: more than one scan interval")
        if self.intervals:
            self._resolve_interval(*self.intervals[0])
        times = self.fields.get("timepoints_days")
        if times is not None:
            days: list[float] = times[0]
            count = self.fields.get("n_timepoints")
            if count is not None and count[0] != len(days):
                raise PromptNotUnderstoodError(
                    f'prompt contradicts itself: "{count[1]}" but "{times[1]}" lists {len(days)} scans'
                )
            span = self.fields.get("duration_days")
            if span is not None and abs(days[-1] - days[0] - float(span[0])) > 1.0:
                raise PromptNotUnderstoodError(
                    f'prompt contradicts itself: "{span[1]}" but "{times[1]}" spans '
                    f"{days[-1] - days[0]:g} days"
                )

    def _finish_paces(self, lung: bool) -> None:
        """Tempo words: a glioma's grade; a lung nodule's doubling time unless one is given (only
        for an exponential law: "slow-growing" says nothing about a stable or shrinking nodule)."""
        for kind, phrase, start, end in self.paces:
            if self._in_archetype(start):
                continue
            if not lung:
                self._put("grade", "low" if kind == "slow" else "high", phrase, start)
                continue
            law = self.fields.get("growth.law", (None, ""))[0]
            if law not in (None, "exponential") or "growth.volume_ratio" in self.fields:
                self.not_placed.append((start, end))
            elif "growth.doubling_time_days" not in self.fields:
                self._put("growth.doubling_time_days", LUNG_PACE_VDT_DAYS[kind], phrase, start)

    def _finish_size_words(self, family: str | None) -> None:
        """Size adjectives: the final diameter of the family's scale, or a check of the size given."""
        for kind, phrase, start, _end in self.size_words:
            if self._in_archetype(start):
                continue
            if family is None:
                raise PromptNotUnderstoodError(
                    f'"{phrase}" depends on the lesion: say "{phrase} nodule" or "{phrase} glioma", '
                    "or give the size in mm",
                    [phrase],
                )
            meaning = SIZE_WORDS[kind]
            lung = family == "lung_nodule"
            value, (lo, hi) = (
                (meaning.lung_mm, meaning.lung_band) if lung else (meaning.glioma_mm, meaning.glioma_band)
            )
            given = self.fields.get("diameter_mm") or self.fields.get("baseline_diameter_mm")
            if given is None:
                self._put("diameter_mm", value, phrase, start)
            elif not lo <= float(given[0]) <= hi:  # type: ignore[arg-type]
                what = "lung nodule" if lung else "glioma"
                raise PromptNotUnderstoodError(
                    f'prompt contradicts itself: "{phrase}" means {lo:g}–{hi:g} mm for a {what} but '
                    f'"{given[1]}" gives {_show(given[0])} mm; drop one'
                )
            else:
                self.matched.append((start, phrase, "diameter_mm"))

    def _resolve_interval(self, step_days: float, phrase: str, pos: int) -> None:
        if "timepoints_days" in self.fields:
            raise PromptNotUnderstoodError(
                f'prompt contradicts itself: "{phrase}" and "{self.fields["timepoints_days"][1]}" '
                "both give the scan times"
            )
        count = self.fields.get("n_timepoints")
        span = self.fields.pop("duration_days", None)
        if count is not None:
            n = int(count[0])
            if not 1 <= n <= MAX_TIMEPOINTS:
                raise InvalidInputError(f"n_timepoints must be between 1 and {MAX_TIMEPOINTS}, got {n}")
            days = [round(i * step_days, 4) for i in range(n)]
            if span is not None and abs(days[-1] - float(span[0])) > 1.0:
                raise PromptNotUnderstoodError(
                    f'prompt contradicts itself: "{count[1]}" at "{phrase}" span {days[-1]:g} days '
                    f'but "{span[1]}" gives {float(span[0]):g}'
                )
        elif span is not None:
            days = regular_times(step_days, float(span[0]))
        else:
            days = [round(i * step_days, 4) for i in range(DEFAULT_N_TIMEPOINTS)]
        self._put("timepoints_days", days, phrase, pos)

    def spec(self) -> LesionSpec:
        nested: dict[str, Any] = {}
        for field, (value, _) in self.fields.items():
            *parents, leaf = field.split(".")
            node = nested
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        try:
            return LesionSpec.model_validate(nested)
        except ValidationError as exc:
            raise InvalidInputError(self._explain(exc)) from None

    def _explain(self, exc: ValidationError) -> str:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
            msg = str(err["msg"]).removeprefix("Value error, ")
            if loc:
                value, phrase = self.fields.get(loc, (err.get("input"), ""))
                source = f' (from "{phrase}")' if phrase else ""
                parts.append(f"invalid {loc} = {_show(value)}{source}: {msg}")
            else:
                parts.append(f"invalid prompt: {msg}")
        return "; ".join(parts)


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def parse_prompt(text: str, archetypes: ArchetypeRegistry | None = None) -> ParsedPrompt:
    """Parse a free-text prompt into the LesionSpec fields it sets.

    Args:
        text: e.g. "part-solid nodule, 8 mm at baseline, doubling time 300 days, scans at 0, 3,
            6 and 12 months". Sizes may be in mm/cm or volumes (mm³, cc, ml), times in
            days/weeks/months/years (month = 30.4375 days, year = 365.25 days).
        archetypes: the archetypes whose names and aliases the prompt may use (default: the
            shipped set).

    Returns:
        the spec (only fields the prompt set), the unknown words and the matched phrases.

    Raises:
        PromptNotUnderstoodError: the prompt contradicts itself, names an unsupported organ or
            brain region, or gives coordinates without a unit.
        InvalidInputError: a value is out of range (e.g. "a 500 cm nodule"), or the prompt is longer
            than :data:`MAX_PROMPT_CHARS`.
    """
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidInputError(
            f"prompt is {len(text)} characters long; at most {MAX_PROMPT_CHARS} are accepted"
        )
    from longisynth.archetypes import builtin_registry

    registry = archetypes or builtin_registry()
    original = normalise(text)
    work = original
    builder = _Builder()
    explicit: list[tuple[str, str, int, int]] = []
    for m in _EXPLICIT_ARCHETYPE.finditer(work):
        name = registry.get(m["name"].replace("-", "_")).name  # unknown: an error naming close ones
        explicit.append((name, " ".join(m.group(0).split()), m.start(), m.end()))
        work = work[: m.start()] + _BLANK * (m.end() - m.start()) + work[m.end() :]
    for rule in RULES:
        spans = []
        for m in rule.pattern.finditer(work):
            if m.group(0).strip():
                rule.handler(m, builder)
                spans.append(m.span())
        for start, end in spans:
            work = work[:start] + _BLANK * (end - start) + work[end:]
    builder.choose_archetype(explicit + _archetype_phrases(original, registry, explicit), registry, work)
    chosen = builder.archetype
    builder.finish(registry.get(chosen[0]).family.value if chosen else None)
    for start, end in builder.not_placed:  # words that mean nothing here count as unknown
        work = work[:start] + original[start:end] + work[end:]
    if chosen is not None:  # the archetype's words are understood: they name it
        work = work[: chosen[2]] + _BLANK * (chosen[3] - chosen[2]) + work[chosen[3] :]
    spec = builder.spec()
    unknown = list(dict.fromkeys(w for w in _TOKEN.findall(work) if w not in FILLER))
    matched = [(phrase, field) for _, phrase, field in sorted(builder.matched)]
    if chosen is not None:
        matched.append((chosen[1], "archetype"))
    return ParsedPrompt(spec, unknown, matched, chosen[0] if chosen else None, chosen[1] if chosen else None)


_EXPLICIT_ARCHETYPE = re.compile(r"\barchetype\s*[:=]?\s*\"?(?P<name>[a-z][a-z0-9_-]{1,47})\"?")
_ALIAS_PATTERNS: dict[tuple[tuple[str, str], ...], list[tuple[re.Pattern[str], str, str]]] = {}


def _alias_patterns(registry: ArchetypeRegistry) -> list[tuple[re.Pattern[str], str, str]]:
    """One regular expression per archetype phrase (words joined by spaces or hyphens, plural
    allowed), longest phrase first; cached per set of phrases."""
    key = tuple(registry.aliases())
    if key not in _ALIAS_PATTERNS:
        out = []
        for phrase, name in key:
            words = [re.escape(w) for w in phrase.split()]
            regex = r"(?<![\w-])" + r"[\s-]+".join(words) + r"(?:e?s)?(?![\w-])"
            out.append((re.compile(regex), phrase, name))
        _ALIAS_PATTERNS[key] = out
    return _ALIAS_PATTERNS[key]


def _archetype_phrases(
    text: str, registry: ArchetypeRegistry, taken: list[tuple[str, str, int, int]]
) -> list[tuple[str, str, int, int]]:
    """``(name, phrase, start, end)`` of archetype phrases in the normalised prompt, longest first
    where phrases overlap ("aggressive solid nodule" wins over "aggressive nodule")."""
    found: list[tuple[str, str, int, int]] = []
    spans = [(t[2], t[3]) for t in taken]
    for pattern, _, name in _alias_patterns(registry):
        for m in pattern.finditer(text):
            if all(m.end() <= a or m.start() >= b for a, b in spans):
                found.append((name, " ".join(m.group(0).split()), m.start(), m.end()))
                spans.append(m.span())
    return sorted(found, key=lambda f: f[2])


def read_prompt(
    text: str, lenient: bool = False, archetypes: ArchetypeRegistry | None = None
) -> ParsedPrompt:
    """:func:`parse_prompt`, refusing unknown words unless ``lenient``.

    Raises:
        PromptNotUnderstoodError: unknown words remain and not ``lenient``: the message names them
            with the closest known words and archetypes (``err.unknown_words`` lists them).
    """
    parsed = parse_prompt(text, archetypes)
    if parsed.unknown_words and not lenient:
        from longisynth.spec.prompt.vocabulary import suggestions

        words = ", ".join(f'"{w}"' for w in parsed.unknown_words)
        hint = suggestions(parsed.unknown_words, archetypes)
        raise PromptNotUnderstoodError(
            f"prompt not understood: could not place {words}{hint} (use --lenient to ignore them)",
            parsed.unknown_words,
        )
    return parsed


def spec_from_prompt(
    text: str, lenient: bool = False, archetypes: ArchetypeRegistry | None = None
) -> tuple[LesionSpec, list[str]]:
    """The spec a prompt asks for, and the words that were not understood.

    Args:
        text: the prompt; empty or whitespace gives an empty spec.
        lenient: accept unknown words (they are returned, e.g. for metadata) instead of failing.
        archetypes: see :func:`parse_prompt`. The archetype a prompt names is not part of the
            returned spec (:func:`read_prompt` gives it).

    Raises:
        PromptNotUnderstoodError: unknown words remain and not ``lenient`` (the message names them,
            ``err.unknown_words`` lists them), or see :func:`parse_prompt`.
        InvalidInputError: see :func:`parse_prompt`.
    """
    parsed = read_prompt(text, lenient, archetypes)
    return parsed.spec, parsed.unknown_words
