"""The one place that knows the order: spec → anatomy → seed → growth → deformation → appearance
→ checks. Everything heavy runs on a crop around the lesion; the rest of the scan is untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from longisynth import checks as ck
from longisynth.anatomy.modality import detect_modality, require_hounsfield
from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.io.scan import Scan
from longisynth.pipeline_common import RefineContext
from longisynth.refine.model import Denoiser, RefinerStatus, default_refiner
from longisynth.refine.sampler import RefineSettings
from longisynth.result import Study
from longisynth.spec import Contrast, Family, LesionSpec, Modality, merge_specs, resolve_spec
from longisynth.spec.prompt import spec_from_prompt

ProgressFn = Callable[[str, float], None]
DEFAULT_SEED = 0


def _noop(stage: str, fraction: float) -> None:
    return None


class _Clock:
    """Wall time per stage (s) for ``timings_s`` in the metadata, plus progress reporting."""

    def __init__(self, progress: ProgressFn) -> None:
        self.timings: dict[str, float] = {}
        self._progress = progress
        self._stage = ""
        self._t0 = time.perf_counter()

    def stage(self, name: str, fraction: float) -> None:
        now = time.perf_counter()
        if self._stage:
            self.timings[self._stage] = round(self.timings.get(self._stage, 0.0) + now - self._t0, 4)
        self._stage, self._t0 = name, now
        self._progress(name, fraction)

    def done(self) -> dict[str, float]:
        self.stage("", 1.0)
        return self.timings


def _as_scans(scans: Scan | Mapping[str, Scan], contrast: str | None) -> dict[str, Scan]:
    if isinstance(scans, Scan):
        return {(contrast or "").lower(): scans}
    out = {str(k).lower(): v for k, v in scans.items()}
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
    prompt: str, spec: LesionSpec | Mapping[str, Any] | None, seed: int | None, lenient: bool
) -> tuple[LesionSpec, list[str]]:
    """Prompt → partial spec; structured fields override; ``seed`` overrides both (default 0).

    Returns the merged (unresolved) spec and the prompt words that were not understood (only
    non-empty with ``lenient=True``; otherwise they raise :class:`PromptNotUnderstoodError`).
    """
    from_prompt, unknown = spec_from_prompt(prompt or "", lenient=lenient)
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
) -> Study:
    """Simulate a longitudinal lesion study on a healthy scan.

    Args:
        scans: one scan (CT, or one MRI contrast named by ``contrast``) or a mapping contrast name →
            scan (MRI: "t1", "t1c", "t2", "flair"; all on the same grid).
        prompt: free text, e.g. "2 cm solid nodule in the right upper lobe growing over 6 months".
        spec: structured fields (a :class:`LesionSpec` or a dict); they override the prompt.
        labels: optional region label map on the scan's grid (TotalSegmentator lung lobes 10–14).
        seed: overrides ``spec.seed``; default 0. Same inputs + seed ⇒ identical study.
        contrast: name of the single MRI contrast when ``scans`` is one scan (default "t1").
        lenient: accept prompts with words we could not place (they are listed in metadata).
        brain_tissues: known "csf"/"gm"/"wm" probability maps (skips registration; the demo uses it).
        progress: called as ``progress(stage_name, fraction_done)``.
        refine: run the learned boundary refiner (default: yes when a model is available; a
            missing or corrupt model falls back to the rule-based image, and metadata says why).
        refiner: what runs the model (default: the shipped ONNX model via ONNX Runtime); the
            service passes a cross-request batcher here.
        refine_settings: sampler steps, strength and batch size.

    Raises:
        InvalidInputError, PromptNotUnderstoodError, LesionDoesNotFitError (incl. PlausibilityError).
    """
    clock = _Clock(progress or _noop)
    clock.stage("spec", 0.0)
    scan_map = _as_scans(scans, contrast)
    main = next(iter(scan_map.values()))
    modality = detect_modality(main.values(), main.raw.dtype)
    merged, unknown = merge_request(prompt, spec, seed, lenient)
    if merged.family == Family.LUNG_NODULE or (merged.family is None and modality == Modality.CT):
        # A lung request on something that is not HU gets the specific reason (8-bit export...).
        require_hounsfield(main.values(), main.raw.dtype)
    assert merged.seed is not None
    resolved = resolve_spec(merged, modality, np.random.default_rng(merged.seed))
    scan_map = _validate_contrasts(scan_map, modality)
    if labels is not None and tuple(labels.shape) != main.geometry.shape:
        raise InvalidInputError(
            f"label map shape {tuple(labels.shape)} differs from the scan's {main.geometry.shape}"
        )
    _check_fov(resolved, main)
    ctx = refine_context(refine, refiner, refine_settings)
    if resolved.family == Family.LUNG_NODULE:
        from longisynth.pipeline_lung import simulate_nodule_study

        study = simulate_nodule_study(scan_map, resolved, labels, clock.stage, ctx)
    else:
        from longisynth.pipeline_glioma import simulate_glioma_study

        study = simulate_glioma_study(scan_map, resolved, brain_tissues, clock.stage, ctx)
    if ctx.status.status == "unavailable":
        study.notes.append(f"learned refiner not used: {ctx.status.reason}")
    study.prompt = prompt
    study.unparsed_words = unknown
    clock.stage("checks", 0.95)
    ck.enforce(study.checks)
    study.timings_s = clock.done()
    return study


def refine_context(
    refine: bool | None, refiner: Denoiser | None, settings: RefineSettings | None
) -> RefineContext:
    """Decide whether and how the refiner runs for one study (see :func:`generate`)."""
    settings = settings or RefineSettings()
    if refine is False:
        return RefineContext(None, RefinerStatus("disabled", reason="refine=False"), settings)
    if refiner is not None:
        status = refiner.status() if hasattr(refiner, "status") else RefinerStatus("applied")
        return RefineContext(refiner, status, settings)
    model, reason = default_refiner()
    if model is None:
        return RefineContext(None, RefinerStatus("unavailable", reason=reason), settings)
    return RefineContext(model, model.status(), settings)


def _check_fov(spec: LesionSpec, scan: Scan) -> None:
    """Fail before heavy work when the final lesion is larger than the field of view."""
    assert spec.diameter_mm is not None
    extent = np.asarray(scan.geometry.shape) * np.asarray(scan.geometry.spacing_mm)
    if spec.diameter_mm + 4.0 > float(extent.min()):
        raise LesionDoesNotFitError(
            f"a {spec.diameter_mm:g} mm lesion does not fit in a field of view of "
            f"{' x '.join(f'{e:.0f}' for e in extent)} mm"
        )
