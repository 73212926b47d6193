"""From a design to concrete cases: sampled fields, stratum, seed and resolved spec per row.

Determinism: every random number of a case comes from ``SeedSequence(design.seed,
spawn_key=...)`` keyed by the row index (and, for sampling, by a hash of the field name), so a
case does not change when other rows are added, and adding a sampled field does not change the
values of the others. The resolved spec is computed with the engine's own
:func:`longisynth.api.resolve`, so the
dry run shows exactly the spec a real run generates.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from longisynth.archetypes import ArchetypeRegistry, load_registry
from longisynth.dataset import fields
from longisynth.dataset.design import DatasetDesign
from longisynth.dataset.distributions import Choice, Conditional
from longisynth.dataset.inputs import ScanEntry, resolve_inputs
from longisynth.errors import InvalidInputError, LongisynthError
from longisynth.library import Library
from longisynth.spec import LesionSpec
from longisynth.spec.prompt import spec_from_prompt

# spawn_key namespaces (first element) so the streams of different purposes never coincide
_NS_FIELD, _NS_SEED, _NS_STRATA = 0, 1, 2


@dataclass(frozen=True)
class CasePlan:
    """One row of the dataset before any image is touched.

    Attributes:
        case_id: ``case00042`` (alphanumeric: valid as a BIDS subject label and nnU-Net id).
        row: 0-based index over all cases (scan-major).
        scan: the input it is made from.
        seed: the engine seed of this case (derived from the design seed and the row).
        stratum: stratified field → level/band label of this case.
        sampled: dotted spec field → drawn value (JSON form).
        request: design ``spec`` + sampled fields: what :func:`longisynth.generate` receives.
        resolved: the concrete spec the engine will simulate (None when ``error``).
        error: why this case cannot be made (an impossible spec), else None.
    """

    case_id: str
    row: int
    scan: ScanEntry
    seed: int
    stratum: dict[str, str]
    sampled: dict[str, Any]
    request: LesionSpec | None
    resolved: LesionSpec | None
    error: str | None = None
    library: str | None = None  # absolute path of the design's lesion library, if any
    archetypes: str | None = None  # absolute path of the design's archetype folder, if any


@dataclass(frozen=True)
class Plan:
    design: DatasetDesign
    scans: list[ScanEntry]
    cases: list[CasePlan]
    archetypes: ArchetypeRegistry | None = None  # the shipped ones plus the design's folder


def _ss(design: DatasetDesign, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(design.seed, spawn_key=key)


def _field_key(path: str) -> int:
    return zlib.crc32(path.encode())


def case_seed(design: DatasetDesign, row: int) -> int:
    """The engine seed of row ``row`` (32-bit)."""
    return int(_ss(design, _NS_SEED, row).generate_state(1, np.uint32)[0])


def stratum_of(design: DatasetDesign, row: int) -> list[int]:
    """Level/band index per stratify entry, by block randomisation: every block of S consecutive
    rows (S = number of strata) holds each stratum once, in a seeded order, so counts per
    stratum differ by at most one and each scan's cases spread over the strata."""
    if not design.stratify:
        return []
    n = design.n_strata()
    block, pos = divmod(row, n)
    perm = np.random.default_rng(_ss(design, _NS_STRATA, block)).permutation(n)
    return _unravel(int(perm[pos]), design)


def _unravel(flat: int, design: DatasetDesign) -> list[int]:
    sizes = [len(s.bands or s.levels or []) for s in design.stratify]
    return [int(i) for i in np.unravel_index(flat, sizes)] if sizes else []


def sample_fields(
    design: DatasetDesign, rng_for: Callable[[str], np.random.Generator], strata: list[int]
) -> dict[str, Any]:
    """Draw every ``sample`` field (design order), honouring the stratum's levels and bands.

    Raises:
        ValueError: a drawn value is not valid for its field (e.g. outside the spec's range).
    """
    fixed_level: dict[str, Any] = {}
    band: dict[str, tuple[float, float]] = {}
    for s, idx in zip(design.stratify, strata, strict=True):
        if s.bands is not None:
            band[s.field] = s.bands[idx]
        else:
            assert s.levels is not None
            fixed_level[s.field] = s.levels[idx]
    out: dict[str, Any] = {}
    for path, dist in design.sample.items():
        if path in fixed_level:
            out[path] = fixed_level[path]
            continue
        rng = rng_for(path)
        if isinstance(dist, Conditional):
            key = str(out.get(dist.by))
            subs = {str(fields.canonical(dist.by, k)): d for k, d in dist.cases.items()}
            if key not in subs:
                continue  # no case for this value: the engine's default applies
            dist = subs[key]
        out[path] = draw_value(path, dist, rng, band.get(path))
    return out


def draw_value(
    path: str, dist: Any, rng: np.random.Generator, bounds: tuple[float, float] | None = None
) -> Any:
    """One draw of ``dist`` for spec field ``path`` (canonical JSON value), inside ``bounds``."""
    if dist == "any":
        levels = fields.enum_levels(path) or []
        return levels[int(rng.integers(len(levels)))]
    value = dist.sample(rng) if isinstance(dist, Choice) else dist.sample(rng, bounds)
    return fields.canonical(path, value)


def _request(design: DatasetDesign, sampled: dict[str, Any]) -> LesionSpec:
    from longisynth.spec import merge_specs

    data: dict[str, Any] = {}
    for path, value in sampled.items():
        node = data
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return merge_specs(design.spec, LesionSpec.model_validate(data))


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"impossible spec: {loc + ': ' if loc else ''}{msg}"
    return f"impossible spec: {exc}"


def plan_case(
    design: DatasetDesign,
    scan: ScanEntry,
    row: int,
    width: int = 5,
    library: Library | None = None,
    used: dict[str, int] | None = None,
    archetypes: ArchetypeRegistry | None = None,
) -> CasePlan:
    """The concrete case of row ``row`` (an impossible spec gives a plan with ``error`` set).

    With a lesion ``library`` the chosen lesion's id is written into the request (the worker copies
    exactly that lesion) and counted in ``used``; lesions used ``design.max_lesion_reuse`` times
    are not chosen again.
    """
    from longisynth.api import resolve

    case_id = f"case{row:0{width}d}"
    seed = case_seed(design, row)
    strata = stratum_of(design, row)
    stratum = {s.field: s.label(i) for s, i in zip(design.stratify, strata, strict=True)}

    def rng_for(path: str) -> np.random.Generator:
        return np.random.default_rng(_ss(design, _NS_FIELD, row, _field_key(path)))

    sampled: dict[str, Any] = {}
    try:
        sampled = sample_fields(design, rng_for, strata)
        request = _request(design, sampled)
        cap = design.max_lesion_reuse
        full = frozenset(k for k, n in (used or {}).items() if cap is not None and n >= cap)
        resolved = resolve(
            scan.modality,
            design.prompt,
            request,
            seed=seed,
            lenient=design.lenient,
            library=library,
            exclude_lesions=full,
            archetypes=archetypes,
        )
        if resolved.library_lesion_id is not None:
            request = request.model_copy(update={"library_lesion_id": resolved.library_lesion_id})
            if used is not None:
                used[resolved.library_lesion_id] = used.get(resolved.library_lesion_id, 0) + 1
    except (ValueError, ValidationError, LongisynthError) as exc:
        return CasePlan(case_id, row, scan, seed, stratum, sampled, None, None, _one_line(exc))
    where = None if library is None else str(library.root)
    folder = None if archetypes is None else archetypes.user_dir
    return CasePlan(
        case_id, row, scan, seed, stratum, sampled, request, resolved, library=where, archetypes=folder
    )


def design_archetypes(design: DatasetDesign, base_dir: Path | str) -> ArchetypeRegistry:
    """The archetypes a design may name: the shipped ones plus its ``archetypes`` folder.

    Raises:
        InvalidInputError: an unreadable folder or archetype, or a name in ``spec.archetype`` /
            ``sample.archetype`` that no archetype has.
    """
    folder = None
    if design.archetypes is not None:
        root = Path(design.archetypes)
        folder = root if root.is_absolute() else (Path(base_dir) / root).resolve()
    registry = load_registry(folder)
    names = [design.spec.archetype] if design.spec.archetype else []
    dist = design.sample.get("archetype")
    if isinstance(dist, Choice):
        names += [str(v) for v, _ in dist.options()]
    for name in names:
        try:
            registry.get(name)
        except InvalidInputError as exc:
            raise InvalidInputError(f"design: {exc}") from None
    return registry


def plan_dataset(design: DatasetDesign, base_dir: Path | str) -> Plan:
    """Every case of the design, in row order (scans in input order, then case index).

    Raises:
        InvalidInputError: inputs that resolve to nothing, or a prompt that cannot be understood.
    """
    registry = design_archetypes(design, base_dir)
    if design.prompt:
        try:
            spec_from_prompt(design.prompt, lenient=design.lenient, archetypes=registry)
        except LongisynthError as exc:
            raise InvalidInputError(f"design prompt: {exc}") from None
    scans = resolve_inputs(design, Path(base_dir))
    total = sum(s.n_cases for s in scans)
    if total == 0:
        raise InvalidInputError("the design makes no cases (cases_per_scan / cases column are 0)")
    width = max(5, len(str(total - 1)))
    library = None
    if design.library is not None:
        root = Path(design.library)
        library = Library.open(root if root.is_absolute() else (Path(base_dir) / root).resolve())
    used: dict[str, int] = {}
    cases = []
    row = 0
    for scan in scans:
        for _ in range(scan.n_cases):
            cases.append(plan_case(design, scan, row, width, library, used, registry))
            row += 1
    return Plan(design, scans, cases, registry)


def reference_sample(design: DatasetDesign, n: int = 10000, seed: int = 12345) -> list[dict[str, Any]]:
    """``n`` independent draws of the sampled fields as the design intends them (strata equally
    likely), for comparing a plan's realised distributions with the design."""
    rng = np.random.default_rng(seed)
    n_strata = design.n_strata()
    out = []
    for _ in range(n):
        strata = _unravel(int(rng.integers(n_strata)), design) if design.stratify else []
        try:
            out.append(sample_fields(design, lambda _p: rng, strata))
        except ValueError:
            continue
    return out
