"""The public API: what the CLI, the service, the dataset tool and users call.

* :func:`generate` — a healthy scan + a request → a longitudinal :class:`~longisynth.result.Study`;
* :func:`resolve` — the same request → the concrete spec it would simulate, without any pixels
  of work (for validation, planning and previews of a request);
* :func:`write_bundle` / :func:`read_scan` — the output bundle and the input readers.

The request (prompt, structured fields, seed) is merged and resolved here; the simulation itself
is the driver's (:func:`longisynth.pipeline.simulate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from longisynth import checks as ck
from longisynth.anatomy.modality import detect_modality, require_hounsfield
from longisynth.archetypes import ArchetypeRegistry, apply_archetype, load_registry
from longisynth.bundle import read_metadata, write_bundle
from longisynth.demo import DemoInput, demo_input
from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.io import read_dicom_series, read_nifti, read_scan
from longisynth.io.contrasts import contrast_key
from longisynth.io.scan import Scan
from longisynth.library import Library, LibraryLesion, choose_lesion
from longisynth.library.transplant import conditioned_lesion
from longisynth.measure import clinical_diameter_mm, longest_diameter_mm
from longisynth.pipeline import Clock, ProgressFn, simulate
from longisynth.refine import Denoiser, RefinerStatus, RefineSettings, default_refiner
from longisynth.refine.hand_off import refine_context
from longisynth.refine.model import choose_providers
from longisynth.result import Study
from longisynth.spec import Contrast, Family, LesionSource, LesionSpec, Modality, merge_specs, resolve_spec
from longisynth.spec.prompt import read_prompt

__all__ = [
    "DemoInput",
    "Denoiser",
    "LesionSpec",
    "Library",
    "RefineSettings",
    "RefinerStatus",
    "Scan",
    "Study",
    "choose_providers",
    "default_refiner",
    "demo_input",
    "detect_modality",
    "generate",
    "merge_request",
    "read_dicom_series",
    "read_metadata",
    "read_nifti",
    "read_scan",
    "resolve",
    "write_bundle",
]

DEFAULT_SEED = 0


def _as_scans(scans: Scan | Mapping[str, Scan], contrast: str | None) -> dict[str, Scan]:
    """Contrast name → scan, names as ours (``t1ce`` → ``t1c``: :func:`contrast_key`)."""
    if isinstance(scans, Scan):
        return {contrast_key(contrast or ""): scans}
    out: dict[str, Scan] = {}
    for k, v in scans.items():
        key = contrast_key(str(k))
        if key in out:
            raise InvalidInputError(f"contrast {key!r} is given twice (as {str(k)!r} and another name)")
        out[key] = v
    if not out:
        raise InvalidInputError("no input scan given")
    return out


def _validate_contrasts(scans: dict[str, Scan], modality: Modality) -> dict[str, Scan]:
    if modality == Modality.CT:
        if len(scans) != 1:
            raise InvalidInputError("a CT study takes exactly one scan")
        return {Contrast.CT.value: next(iter(scans.values()))}
    known = {c.value for c in Contrast} - {Contrast.CT.value}
    fixed: dict[str, Scan] = {}
    for name, scan in scans.items():
        key = name or "t1"
        if key not in known:
            raise InvalidInputError(f"unknown MRI contrast {name!r}: use one of {', '.join(sorted(known))}")
        fixed[key] = scan
    first = next(iter(fixed.values())).geometry
    for name, scan in fixed.items():
        if scan.geometry.shape != first.shape or not np.allclose(
            scan.geometry.affine, first.affine, atol=1e-3
        ):
            raise InvalidInputError(
                f"contrast {name!r} is not on the same grid as the others; co-register first"
            )
    return fixed


def merge_request(
    prompt: str,
    spec: LesionSpec | Mapping[str, Any] | None,
    seed: int | None,
    lenient: bool,
    archetypes: ArchetypeRegistry | None = None,
) -> tuple[LesionSpec, list[str]]:
    """Prompt → partial spec; structured fields override; ``seed`` overrides both (default 0).

    The archetype the prompt names becomes the request's ``archetype`` unless the structured
    fields name one. Returns the merged (unresolved) spec and the prompt words that were not
    understood (only non-empty with ``lenient=True``; otherwise they raise
    :class:`PromptNotUnderstoodError`).
    """
    parsed = read_prompt(prompt or "", lenient=lenient, archetypes=archetypes)
    from_prompt, unknown = parsed.spec, parsed.unknown_words
    if parsed.archetype is not None:
        from_prompt = merge_specs(from_prompt, LesionSpec(archetype=parsed.archetype))
    try:
        override = spec if isinstance(spec, LesionSpec) else LesionSpec.model_validate(dict(spec or {}))
        merged = merge_specs(from_prompt, override)
        chosen = seed if seed is not None else merged.seed
        merged = merge_specs(merged, LesionSpec(seed=DEFAULT_SEED if chosen is None else chosen))
    except ValidationError as exc:
        raise InvalidInputError(_validation_message(exc)) from None
    return merged, unknown


def _validation_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    where = f"invalid spec field {field}" if field else "invalid spec"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}"


def generate(
    scans: Scan | Mapping[str, Scan],
    prompt: str = "",
    spec: LesionSpec | Mapping[str, Any] | None = None,
    *,
    labels: NDArray[np.integer] | None = None,
    seed: int | None = None,
    contrast: str | None = None,
    lenient: bool = False,
    brain_tissues: Mapping[str, NDArray[np.floating]] | None = None,
    progress: ProgressFn | None = None,
    refine: bool | None = None,
    refiner: Denoiser | None = None,
    refine_settings: RefineSettings | None = None,
    library: Library | str | Path | None = None,
    lesion_mask: NDArray[Any] | None = None,
    archetypes: ArchetypeRegistry | str | Path | None = None,
) -> Study:
    """Simulate a longitudinal lesion study on a healthy scan.

    Args:
        scans: one scan (CT, or one MRI contrast named by ``contrast``) or a mapping contrast name →
            scan (MRI: "t1", "t1c", "t2", "flair", or aliases such as BraTS' "t1ce"; all on the
            same grid). MRI may be raw, min–max normalised or z-scored, skull-stripped or not; the
            outputs keep the input's value convention (recorded in the metadata).
        prompt: free text, e.g. "2 cm solid nodule in the right upper lobe growing over 6 months".
        spec: structured fields (a :class:`LesionSpec` or a dict); they override the prompt.
        labels: optional region label map on the scan's grid (TotalSegmentator lung lobes 10–14).
        seed: overrides ``spec.seed``; default 0. Same inputs + seed ⇒ identical study.
        contrast: name of the single MRI contrast when ``scans`` is one scan (default "t1").
        lenient: accept prompts with words we could not place (they are listed in metadata).
        brain_tissues: known "csf"/"gm"/"wm" probability maps (skips registration; the demo uses it).
        progress: called as ``progress(stage_name, fraction_done)``.
        refine: run the learned boundary refiner. Default (None): off, unless the environment
            names a model in ``LONGISYNTH_REFINER`` (it showed no measured benefit on the
            real-lesion yardsticks; models/README.md); True: on. A missing or corrupt model
            falls back to the rule-based image; metadata says why it did or did not run.
        refiner: what runs the model (default: the shipped ONNX model via ONNX Runtime); the
            service passes a cross-request batcher here.
        refine_settings: sampler steps, strength and batch size.
        library: a lesion library (:mod:`longisynth.library`; a folder or an opened one). With it
            the lesion is a real one copied from the library (``spec.source`` defaults to
            ``library``; ``rules`` keeps rule-based lesions); the refiner is then off unless
            ``refine=True``, so the real texture is kept.
        lesion_mask: the baseline lesion's shape and place, drawn by the user on the scan's grid
            (non-zero = lesion, e.g. from ITK-SNAP); the law grows it, and its texture comes from a
            library lesion of its kind and size, or without a library (or with ``source: rules``)
            from a rule-based lesion rendered on this scan at the mask's place and size.
        archetypes: a folder of user archetypes added to the shipped ones (or a loaded registry);
            the request's ``archetype`` (or the one its prompt names) fills the fields it leaves
            unset (:func:`longisynth.archetypes.apply_archetype`), recorded in
            ``metadata.json → simulation.archetype``.

    Raises:
        InvalidInputError, PromptNotUnderstoodError, LesionDoesNotFitError (incl. PlausibilityError).
    """
    clock = Clock(progress)
    clock.stage("spec")
    scan_map = _as_scans(scans, contrast)
    main = next(iter(scan_map.values()))
    modality = detect_modality(main.values(), main.raw.dtype)
    registry = load_registry(archetypes)
    merged, unknown = merge_request(prompt, spec, seed, lenient, registry)
    merged, archetype = apply_archetype(merged, registry)
    if merged.family == Family.LUNG_NODULE or (merged.family is None and modality == Modality.CT):
        # A lung request on something that is not HU gets the specific reason (8-bit export...).
        require_hounsfield(main.values(), main.raw.dtype)
    fixed_center = None
    lesion: LibraryLesion | None
    if lesion_mask is not None:
        merged, lesion, fixed_center = _mask_lesion(
            merged, modality, library, lesion_mask, scan_map, labels, brain_tissues
        )
    else:
        merged, lesion = _library_lesion(merged, modality, library)
    resolved = _resolve(merged, modality)
    scan_map = _validate_contrasts(scan_map, modality)
    if lesion is not None:
        missing = sorted(set(scan_map) - set(lesion.images))
        if missing:
            raise InvalidInputError(
                f"library lesion {lesion.entry.id} has no {', '.join(missing)} image (it has "
                f"{', '.join(sorted(lesion.images))}); give only those contrasts"
            )
        if refine is None:
            refine = False
    if labels is not None and tuple(labels.shape) != main.geometry.shape:
        raise InvalidInputError(
            f"label map shape {tuple(labels.shape)} differs from the scan's {main.geometry.shape}"
        )
    _check_fov(resolved, main)
    ctx = refine_context(refine, refiner, refine_settings)
    if lesion is not None and not lesion.host_units and ctx.status.status == "disabled":
        ctx.status.reason = "a library lesion keeps its real texture (refine=True turns the refiner on)"
    study = simulate(scan_map, resolved, clock, ctx, labels, brain_tissues, lesion, fixed_center)
    if ctx.status.status == "unavailable":
        study.notes.append(f"learned refiner not used: {ctx.status.reason}")
    study.prompt = prompt
    study.unparsed_words = unknown
    if archetype is not None:
        study.extra["archetype"] = archetype.to_dict()
    ck.enforce(study.checks)
    study.timings_s = clock.done()
    return study


def resolve(
    scans: Scan | Mapping[str, Scan] | Modality | str,
    prompt: str = "",
    spec: LesionSpec | Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    contrast: str | None = None,
    lenient: bool = False,
    library: Library | str | Path | None = None,
    exclude_lesions: frozenset[str] = frozenset(),
    archetypes: ArchetypeRegistry | str | Path | None = None,
) -> LesionSpec:
    """The concrete spec :func:`generate` would simulate for this request, without simulating.

    Args:
        scans: the input scan(s) (only their modality is read), or the modality itself
            (``"ct"`` / ``"mr"``) when no scan is at hand (dataset planning).
        prompt, spec, seed, contrast, lenient, library, archetypes: as for :func:`generate` (with a
            library, the chosen lesion's id is ``library_lesion_id`` of the result; its patch is
            not read).
        exclude_lesions: library lesion ids not to choose (a dataset's reuse cap).

    Raises:
        InvalidInputError, PromptNotUnderstoodError: a request that cannot be resolved.
    """
    if isinstance(scans, Modality | str):
        try:
            modality = Modality(str(scans).lower())
        except ValueError:
            raise InvalidInputError(f"unknown modality {scans!r}: use ct or mr") from None
    else:
        main = next(iter(_as_scans(scans, contrast).values()))
        modality = detect_modality(main.values(), main.raw.dtype)
    registry = load_registry(archetypes)
    merged, _ = merge_request(prompt, spec, seed, lenient, registry)
    merged, _ = apply_archetype(merged, registry)
    merged, _ = _library_lesion(merged, modality, library, load=False, exclude=exclude_lesions)
    return _resolve(merged, modality)


def _library_lesion(
    merged: LesionSpec,
    modality: Modality,
    library: Library | str | Path | None,
    load: bool = True,
    exclude: frozenset[str] = frozenset(),
) -> tuple[LesionSpec, LibraryLesion | None]:
    """The request completed with its library lesion (loaded with ``load``), when it asks for one
    or gives a library and does not ask for rule-based lesions."""
    wants = merged.source == LesionSource.LIBRARY or (merged.source is None and merged.library_lesion_id)
    if library is None:
        if wants:
            raise InvalidInputError(
                "source library needs a lesion library (CLI: --library DIR; server: LONGISYNTH_LIBRARY)"
            )
        return merged, None
    if merged.source == LesionSource.RULES:
        return merged, None
    lib = library if isinstance(library, Library) else Library.open(library)
    spec, entry = choose_lesion(lib, merged, modality.value, exclude)
    return spec, lib.load(entry) if load else None


def _mask_lesion(
    merged: LesionSpec,
    modality: Modality,
    library: Library | str | Path | None,
    lesion_mask: NDArray[Any],
    scans: Mapping[str, Scan],
    labels: NDArray[np.integer] | None,
    brain_tissues: Mapping[str, NDArray[np.floating]] | None,
) -> tuple[LesionSpec, LibraryLesion, NDArray[np.float64]]:
    """The request completed for a user's baseline mask: its size, its centroid as the location,
    and the lesion that lends the texture (:func:`conditioned_lesion`): a library lesion of its
    kind and size, or — without a library, or with ``source: rules`` — a rule-based lesion
    rendered on this scan at the mask's place and size (:func:`_rules_texture`)."""
    geometry = next(iter(scans.values())).geometry
    mask = np.asarray(lesion_mask)
    if tuple(mask.shape) != geometry.shape:
        raise InvalidInputError(
            f"lesion mask shape {tuple(mask.shape)} differs from the scan's {geometry.shape}"
        )
    mask = mask > 0
    if not mask.any():
        raise InvalidInputError("the lesion mask is empty (no non-zero voxel)")
    lung = modality == Modality.CT
    spacing = geometry.spacing_mm
    size = (
        clinical_diameter_mm(mask, spacing, geometry.world_axis_index(2)[0])
        if lung
        else longest_diameter_mm(mask, spacing)
    )
    center = geometry.voxel_to_world(np.argwhere(mask).mean(axis=0))
    if library is None or merged.source == LesionSource.RULES:
        spec, texture = _rules_texture(scans, merged, size, center, labels, brain_tissues)
    else:
        lib = library if isinstance(library, Library) else Library.open(library)
        request = merged.model_copy(deep=True)
        request.baseline_diameter_mm = round(size, 3)
        spec, entry = choose_lesion(lib, request, modality.value)
        texture = lib.load(entry)
    spec.baseline_diameter_mm = round(size, 3)
    spec.location.point_mm = (float(center[0]), float(center[1]), float(center[2]))
    spec.location.point_voxel = None
    lesion = conditioned_lesion(texture, mask, geometry, size)
    return spec, lesion, center


def _rules_texture(
    scans: Mapping[str, Scan],
    merged: LesionSpec,
    size_mm: float,
    center_world: NDArray[np.float64],
    labels: NDArray[np.integer] | None,
    brain_tissues: Mapping[str, NDArray[np.floating]] | None,
) -> tuple[LesionSpec, LibraryLesion]:
    """A rule-based lesion of the request's kind, rendered on this scan at the user's mask (its
    centroid, its size in the family's convention, mm) with the request's seed, as a library
    lesion in the host's own units (:attr:`LibraryLesion.host_units`): it lends the texture and
    labels of a user's baseline mask when no library does. Returns the request with the rule
    lesion's kind fields filled (nodule type, grade...), so that texture and spec agree."""
    from longisynth.families.lung import LUNG_AIR_HU
    from longisynth.library.format import LibraryEntry

    inner = merged.model_copy(deep=True)
    inner.baseline_diameter_mm = None
    inner.diameter_mm = round(size_mm, 3)
    inner.location.point_mm = (float(center_world[0]), float(center_world[1]), float(center_world[2]))
    inner.location.point_voxel = None
    inner.source = LesionSource.RULES
    inner.library_lesion_id = None
    # one scan, at the mask's size: the texture source needs no timeline
    inner.timepoints_days, inner.n_timepoints, inner.duration_days, inner.schedule = [0.0], None, None, None
    inner.growth.volume_ratio = None
    try:
        study = generate(scans, spec=inner, labels=labels, brain_tissues=brain_tissues, refine=False)
    except LesionDoesNotFitError as err:
        raise LesionDoesNotFitError(f"no rule-based texture fits the lesion mask: {err}") from None
    tp = study.timepoints[0]
    crop = study.geometry.crop(study.box)
    images = {
        c: (tp.crops[c].astype(np.float32) * np.float32(s.slope) + np.float32(s.inter))
        for c, s in study.scans.items()
    }
    family = study.spec.family
    assert family is not None
    lung = family == Family.LUNG_NODULE
    noise = study.extra.get("noise_model") or {}
    noise_sd = (
        {"ct": float(noise.get("sigma", 0.0))}
        if lung
        else {c: float(n.get("sigma", 0.0)) for c, n in noise.items()}
    )
    reference = {}
    if lung:
        hu = images["ct"]
        air = hu < LUNG_AIR_HU
        reference["lung_hu"] = float(np.median(hu[air])) if air.sum() > 100 else -850.0
    grade = study.spec.grade.value if study.spec.grade is not None else "high"
    kind = study.spec.nodule_type.value if lung and study.spec.nodule_type else grade
    measured = tp.clinical_diameter_mm if lung and tp.clinical_diameter_mm else tp.longest_diameter_mm
    entry = LibraryEntry(
        id="rules",
        family=str(family.value),
        modality="ct" if lung else "mr",
        kind=kind,
        shape=str(study.spec.shape.value) if study.spec.shape else "smooth",
        contrasts=sorted(images),
        size_mm=round(float(measured), 3),
        longest_diameter_mm=round(float(tp.longest_diameter_mm), 3),
        volume_mm3=round(float(tp.lesion_volume_mm3), 3),
        spacing_mm=[float(v) for v in crop.spacing_mm],
        grid=[int(v) for v in crop.shape],
        reference=reference,
        noise_sd=noise_sd,
        source_dataset="longisynth rules",
        source_case="",
        licence="generated (no patient data)",
        sha256="",
        file="",
    )
    lesion = LibraryLesion(entry, images, np.asarray(tp.mask, dtype=np.uint8), crop.affine, host_units=True)
    spec = merged.model_copy(deep=True)
    for name in ("nodule_type", "grade", "shape", "solid_fraction", "calcification"):
        if getattr(spec, name, None) is None:
            setattr(spec, name, getattr(study.spec, name))
    spec.source = LesionSource.RULES
    return spec, lesion


def _resolve(merged: LesionSpec, modality: Modality) -> LesionSpec:
    assert merged.seed is not None
    return resolve_spec(merged, modality, np.random.default_rng(merged.seed))


def _check_fov(spec: LesionSpec, scan: Scan) -> None:
    """Fail before heavy work when the final lesion is larger than the field of view."""
    assert spec.diameter_mm is not None
    extent = np.asarray(scan.geometry.shape) * np.asarray(scan.geometry.spacing_mm)
    if spec.diameter_mm + 4.0 > float(extent.min()):
        raise LesionDoesNotFitError(
            f"a {spec.diameter_mm:g} mm lesion does not fit in a field of view of "
            f"{' x '.join(f'{e:.0f}' for e in extent)} mm"
        )
