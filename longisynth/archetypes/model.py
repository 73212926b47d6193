"""Progression archetypes: named, versioned, expert-editable bundles of spec distributions.

An archetype is one YAML file (``<name>.yaml``): a family, a description written for clinicians,
literature references, fixed spec fields (``spec``, the archetype's definition: a solid nodule, a
high-grade glioma) and distributions over the other fields (``sample``), written in the dataset
design's distribution syntax (:mod:`longisynth.dataset.distributions`)::

    name: aggressive_solid
    version: 1
    family: lung_nodule
    title: Aggressive solid nodule
    aliases: [aggressive solid nodule, aggressive nodule]
    description: >
      A solid, spiculated nodule that doubles its volume in one to five months ...
    references:
      - Hasegawa M et al. Br J Radiol 2000;73:1252-9 (solid cancers: VDT 149 ± 125 days)
    spec:
      nodule_type: solid
      shape: spiculated
      growth: {law: exponential}
    sample:
      growth.doubling_time_days: {loguniform: [30, 150], round: 1}
      baseline_diameter_mm: {uniform: [8, 20], round: 1}

The shipped set is package data (``longisynth/archetypes/data``); a user folder (``--archetypes
DIR``) adds archetypes and replaces shipped ones of the same name. :func:`apply_archetype`
turns a request naming an archetype into a request with the archetype's values in every field
the request leaves unset, drawn with the request's seed (see its docstring for the precedence).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from longisynth.dataset import fields
from longisynth.dataset.design import check_distribution, design_error_message
from longisynth.dataset.distributions import Choice, Conditional, Distribution
from longisynth.errors import InvalidInputError
from longisynth.spec.schema import ARCHETYPE_NAME, Family, LesionSpec, merge_specs

__all__ = [
    "Archetype",
    "ArchetypeRegistry",
    "ArchetypeUse",
    "apply_archetype",
    "builtin_registry",
    "load_registry",
]

MAX_ARCHETYPE_BYTES = 256 * 1024  # one YAML file; an archetype is a page of text, not data


class Archetype(BaseModel):
    """One archetype as written in its YAML file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ARCHETYPE_NAME, description="Unique name; the spec's `archetype` value.")
    version: int = Field(ge=1, description="Raised by the editor on every change of content.")
    family: Family
    title: str = Field(min_length=3, max_length=120)
    description: str = Field(min_length=20, description="For clinicians: what it is, what it looks like.")
    references: list[str] = Field(min_length=1, description="Literature behind the numbers.")
    aliases: list[str] = Field(
        default_factory=list,
        description="Prompt phrases that name it (lower case words; 'glioblastoma', 'gbm').",
    )
    review: str = Field(
        "draft",
        pattern=r"^(draft|reviewed)$",
        description="draft: numbers from the literature, not yet signed off by an expert panel.",
    )
    reviewed_by: list[str] = Field(
        default_factory=list, description="Who signed it off (roles, not patients)."
    )
    spec: LesionSpec = Field(default_factory=LesionSpec, description="Fixed fields: what defines it.")
    sample: dict[str, Distribution] = Field(
        default_factory=dict, description="Spec field (dotted) -> distribution, drawn in this order."
    )

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, v: list[str]) -> list[str]:
        out = []
        for alias in v:
            words = alias.lower().replace("-", " ").split()
            if not words or not all(w.replace("'", "").isalnum() for w in words):
                raise ValueError(f"alias {alias!r}: letters, digits, spaces and hyphens only")
            out.append(" ".join(words))
        return out

    @model_validator(mode="after")
    def _check(self) -> Archetype:
        if self.spec.family not in (None, self.family):
            raise ValueError(f"spec.family {self.spec.family.value} differs from family {self.family.value}")
        if self.spec.seed is not None or self.spec.archetype is not None:
            raise ValueError("spec may not fix seed or archetype")
        fixed = self.fixed_fields()
        seen = list(fixed)
        for path, dist in self.sample.items():
            if path == "archetype":
                raise ValueError("sample.archetype: an archetype cannot sample another archetype")
            check_distribution(path, dist, seen)
            if path in fixed:
                raise ValueError(f"sample.{path}: the field is also fixed in spec; keep one")
            seen.append(path)
        return self

    def fixed_fields(self) -> dict[str, Any]:
        """The fixed fields as dotted path → JSON value (``family`` included)."""
        data = self.spec.model_dump(mode="json", exclude_none=True)
        data["family"] = self.family.value
        return flatten(data)

    @property
    def key(self) -> str:
        """``name@version``, as metadata and manifests write it."""
        return f"{self.name}@{self.version}"

    def sha256(self) -> str:
        """Hash of the archetype's content (not of its file's formatting)."""
        data = self.model_dump(mode="json", exclude_none=True)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def reference_draws(self, n: int, seed: int = 12345) -> list[dict[str, Any]]:
        """``n`` independent draws of the sampled fields as the archetype intends them (the
        dataset summary compares realised cases with these)."""
        rng = np.random.default_rng(seed)
        fixed = self.fixed_fields()
        return [self._draw_all({}, fixed, lambda _p: rng) for _ in range(n)]

    def _draw_all(self, given: dict[str, Any], fixed: dict[str, Any], rng_for: Any) -> dict[str, Any]:
        """Draw every sampled field not in ``given``; conditionals read given, fixed or drawn values."""
        from longisynth.dataset.plan import draw_value

        out: dict[str, Any] = {}
        for path, dist in self.sample.items():
            if path in given:
                continue
            rng = rng_for(path)
            if isinstance(dist, Conditional):
                known = {**fixed, **out, **given}
                key = known.get(dist.by)
                subs = {str(fields.canonical(dist.by, k)): d for k, d in dist.cases.items()}
                if key is None or str(key) not in subs:
                    continue  # no case for this value: the engine's default applies
                dist = subs[str(key)]
            out[path] = draw_value(path, dist, rng)
        return out


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


@dataclass(frozen=True)
class LoadedArchetype:
    """An archetype and where it came from (``builtin`` or the user folder's file name)."""

    archetype: Archetype
    origin: str


@dataclass
class ArchetypeRegistry:
    """Every archetype known to a request: the shipped set plus a user folder's."""

    entries: dict[str, LoadedArchetype] = field(default_factory=dict)
    user_dir: str | None = None

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> Archetype:
        """The archetype called ``name``.

        ``name`` may also be one of its aliases ("gbm" is the glioblastoma).

        Raises:
            InvalidInputError: unknown name (the message lists the closest known names).
        """
        if name in self.entries:
            return self.entries[name].archetype
        phrase = " ".join(name.lower().replace("_", " ").replace("-", " ").split())
        for alias, canonical in self.aliases():
            if alias == phrase:
                return self.entries[canonical].archetype
        import difflib

        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InvalidInputError(
            f"unknown archetype {name!r}{hint} (known: {', '.join(self.names())}; "
            "longisynth archetypes list)",
            field="archetype",
        )

    def origin(self, name: str) -> str:
        return self.entries[self.get(name).name].origin

    def aliases(self) -> list[tuple[str, str]]:
        """``(phrase, name)`` for every name and alias, longest phrase first (the prompt's
        archetype words: "aggressive solid nodule" before "aggressive nodule")."""
        out: dict[str, str] = {}
        for name, loaded in self.entries.items():
            for phrase in [name.replace("_", " "), *loaded.archetype.aliases]:
                out.setdefault(phrase, name)
        return sorted(out.items(), key=lambda kv: (-len(kv[0].split()), -len(kv[0]), kv[0]))


def _read(text: str, source: str) -> Archetype:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise InvalidInputError(
            f"{source}: not valid YAML: {getattr(exc, 'problem', None) or exc}{line}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{source}: an archetype is a mapping (name, version, family, ...)")
    try:
        arch = Archetype.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(design_error_message(exc, source)) from None
    stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if arch.name != stem:
        raise InvalidInputError(f"{source}: name {arch.name!r} must equal the file name {stem!r}")
    return arch


_BUILTIN: ArchetypeRegistry | None = None


def builtin_registry() -> ArchetypeRegistry:
    """The shipped archetypes (package data, read once per process)."""
    global _BUILTIN
    if _BUILTIN is None:
        reg = ArchetypeRegistry()
        folder = resources.files("longisynth.archetypes").joinpath("data")
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.endswith(".yaml"):
                arch = _read(item.read_text(encoding="utf-8"), f"archetypes/{item.name}")
                reg.entries[arch.name] = LoadedArchetype(arch, "builtin")
        _BUILTIN = reg
    return ArchetypeRegistry(dict(_BUILTIN.entries))


def load_registry(user_dir: str | Path | ArchetypeRegistry | None = None) -> ArchetypeRegistry:
    """The shipped archetypes plus those of ``user_dir`` (``*.yaml``/``*.yml``; a user archetype
    replaces a shipped one of the same name).

    Raises:
        InvalidInputError: the folder is missing or holds an invalid archetype (one line naming
            the file and the problem).
    """
    if isinstance(user_dir, ArchetypeRegistry):
        return user_dir
    reg = builtin_registry()
    if user_dir is None:
        return reg
    root = Path(user_dir)
    if not root.is_dir():
        raise InvalidInputError(f"archetype folder {root.name!r} does not exist or is not a folder")
    files = sorted([*root.glob("*.yaml"), *root.glob("*.yml")])
    if not files:
        raise InvalidInputError(f"archetype folder {root.name!r} holds no .yaml files")
    for path in files:
        if path.stat().st_size > MAX_ARCHETYPE_BYTES:
            raise InvalidInputError(f"{path.name}: larger than {MAX_ARCHETYPE_BYTES // 1024} KiB")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"cannot read archetype {path.name!r}: {exc}") from None
        arch = _read(text, path.name)
        reg.entries[arch.name] = LoadedArchetype(arch, f"user:{path.name}")
    reg.user_dir = str(root)
    return reg


# --- applying an archetype to a request ---------------------------------------------------------

_SIZES = ("diameter_mm", "baseline_diameter_mm")
_RATES = ("growth.doubling_time_days", "growth.halving_time_days", "growth.volume_ratio")
_TIMING = ("timepoints_days", "n_timepoints", "duration_days", "schedule")
_PLACE = (
    "location.side",
    "location.level",
    "location.lung_lobe",
    "location.brain_lobe",
    "location.depth",
    "location.point_mm",
    "location.point_voxel",
)
_GROWTH_PARAMS = (
    *_RATES,
    "growth.max_diameter_mm",
    "growth.proliferation_per_day",
    "growth.diffusion_mm2_per_day",
)


def left_to_request(given: dict[str, Any], arch_paths: list[str], arch_law: Any) -> set[str]:
    """Archetype fields that must yield to the request's own fields, beyond the same field.

    The request's sizes, rates, schedule and place are whole: a request that gives one size keeps
    the archetype's rate but not its other size; two sizes also drop its rate (they imply one);
    its own rate drops the archetype's rate and span (an archetype's span fits its pace); its
    own scan times drop the archetype's count, span and schedule; a place ('left lung')
    drops the archetype's place preferences; another growth law drops the archetype's growth
    parameters."""
    drop: set[str] = set()
    if any(p in given for p in _SIZES):
        drop |= set(_SIZES)
        if all(p in given for p in _SIZES):
            drop |= set(_RATES)
    if any(p in given for p in _RATES):
        drop |= set(_RATES) | {"n_timepoints", "duration_days", "schedule"}  # the span fits the pace
    if any(p in given for p in _TIMING):
        drop |= {"schedule", "timepoints_days"}
        if "timepoints_days" in given or "schedule" in given:
            drop |= set(_TIMING)
    if any(p in given for p in _PLACE):
        drop |= set(_PLACE)
    law = given.get("growth.law")
    if law is not None and arch_law is not None and law != arch_law:
        drop |= set(_GROWTH_PARAMS)
    return {p for p in arch_paths if p in drop and p not in given}


@dataclass(frozen=True)
class ArchetypeUse:
    """What an archetype contributed to one study (``metadata.json → simulation.archetype``)."""

    name: str
    version: int
    origin: str
    sha256: str
    values: dict[str, Any]  # dotted field -> value the archetype set (fixed or drawn)
    from_request: list[str]  # archetype fields the request gave itself (the request's value kept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "origin": self.origin,
            "sha256": self.sha256,
            "values": self.values,
            "from_request": self.from_request,
        }


def apply_archetype(
    request: LesionSpec, registry: ArchetypeRegistry | None = None
) -> tuple[LesionSpec, ArchetypeUse | None]:
    """The request with its archetype's values in the fields it leaves unset.

    Precedence: every field the request sets (prompt words or structured fields) wins over the
    archetype, fixed fields included (what was overridden is listed in ``from_request``), except
    the family, which must agree. Fields tied to a request's field yield with it (see
    :func:`left_to_request`). Draws use a generator seeded by the request's seed, the archetype's
    name and the field (the same request gives the same values; adding an archetype field does not
    change the others).

    Raises:
        InvalidInputError: unknown archetype, or one of the other family.
    """
    if request.archetype is None:
        return request, None
    reg = registry or builtin_registry()
    arch = reg.get(request.archetype)
    if request.family is not None and request.family != arch.family:
        raise InvalidInputError(
            f"archetype {arch.name} is a {arch.family.value.replace('_', ' ')}; the request asks for a "
            f"{request.family.value.replace('_', ' ')}",
            field="archetype",
        )
    given = flatten(request.model_dump(mode="json", exclude_none=True))
    fixed = arch.fixed_fields()
    seed = int(request.seed or 0)
    name_key = zlib.crc32(arch.name.encode())

    def rng_for(path: str) -> np.random.Generator:
        return np.random.default_rng([seed, name_key, zlib.crc32(path.encode())])

    drawn = arch._draw_all(given, fixed, rng_for)
    proposed = {**fixed, **drawn}
    law = proposed.get("growth.law")
    skip = left_to_request(given, list(proposed), law)
    values = {p: v for p, v in proposed.items() if p not in given and p not in skip}
    own = set(fixed) | set(arch.sample)
    from_request = sorted(p for p in own if (p in given and p != "family") or p in skip)
    patch: dict[str, Any] = {}
    for path, value in values.items():
        node = patch
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        merged = merge_specs(LesionSpec.model_validate(patch), request)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInputError(
            f"archetype {arch.name}: {loc}: {str(err['msg']).removeprefix('Value error, ')}",
            field="archetype",
        ) from None
    merged = merged.model_copy(update={"archetype": arch.name})  # an alias becomes the name
    use = ArchetypeUse(arch.name, arch.version, reg.origin(arch.name), arch.sha256(), values, from_request)
    return merged, use


def describe_choice(dist: Any) -> str:
    """A distribution in words, for ``archetypes show`` (``{uniform: [8, 20]}`` → ``uniform 8–20``)."""
    if dist == "any":
        return "any value"
    if isinstance(dist, Choice):
        return ", ".join(f"{v} {p:.0%}" for v, p in dist.options())
    data = dist.model_dump(mode="json", exclude_none=True, exclude={"round"})
    return json.dumps(data, separators=(", ", ": "))
