"""The refiner's hand-off with the driver: whether it runs for a study, and running it over every
timepoint and contrast of the study in one batched pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from longisynth.refine.model import (
    DEFAULT_OFF_REASON,
    MODEL_ENV,
    Denoiser,
    RefinerStatus,
    default_refiner,
    model_path,
    on_by_default,
)
from longisynth.refine.patches import TILE, Intensity, centred_tile, nearest_distance, region_of
from longisynth.refine.sampler import RefineSettings, refine_crops


@dataclass
class RefineContext:
    """The learned refiner for one study: what runs it (None: rule-based only) and how."""

    denoise: Denoiser | None
    status: RefinerStatus
    settings: RefineSettings = field(default_factory=RefineSettings)


def refine_context(
    refine: bool | None, refiner: Denoiser | None, settings: RefineSettings | None
) -> RefineContext:
    """Decide whether and how the refiner runs for one study (see :func:`longisynth.generate`).

    ``refine``: True runs it (the configured or shipped model), False does not, None (default)
    runs it only when ``LONGISYNTH_REFINER`` names a model or a ``refiner`` is handed over (the
    server's batcher, which exists only then): off by default since issue 18."""
    settings = settings or RefineSettings()
    if refine is False:
        return RefineContext(None, RefinerStatus("disabled", reason="refine=False"), settings)
    if refine is None and refiner is None and not on_by_default():
        reason = DEFAULT_OFF_REASON if model_path() is not None else f"switched off ({MODEL_ENV}=off)"
        return RefineContext(None, RefinerStatus("disabled", reason=reason), settings)
    if refiner is not None:
        status = refiner.status() if hasattr(refiner, "status") else RefinerStatus("applied")
        return RefineContext(refiner, status, card_settings(refiner, settings))
    model, reason = default_refiner()
    if model is None:
        return RefineContext(None, RefinerStatus("unavailable", reason=reason), settings)
    return RefineContext(model, model.status(), card_settings(model, settings))


def card_settings(model: object, settings: RefineSettings) -> RefineSettings:
    """``settings`` with the sampler a model's card asks for (``card["sampler"]``: steps,
    strength, eta, region, grid_mm; a lesion-texture model's differ from the boundary refiner's).
    The caller's batch size is kept."""
    card = _model_attr(model, "card")
    sampler = card.get("sampler") if isinstance(card, dict) else None
    if not sampler:
        return settings
    keys = ("steps", "strength", "eta", "region", "grid_mm")
    return replace(settings, **{k: sampler[k] for k in keys if k in sampler})


def refine_timepoints(
    images: list[dict[str, NDArray[np.float32]]],
    masks: Sequence[NDArray[np.uint8]],
    intensities: dict[str, Intensity],
    ctx: RefineContext,
    rng: np.random.Generator,
    spacing_mm: tuple[float, float, float] | None = None,
) -> list[dict[str, NDArray[np.float32]]]:
    """Run the refiner over every contrast of every timepoint in one batched pass.

    ``spacing_mm``: the crops' voxel size; a model trained on an isotropic grid (its card's
    ``grid_mm``) runs on the crops resampled to that grid, and only the voxels of its region are
    written back on the scan's grid.

    Each contrast keeps one noise field over time (temporally consistent texture). Records the
    band size per timepoint (voxels) and the steps in ``ctx.status``.
    """
    if ctx.denoise is None:
        return images
    names = list(images[0])
    trained_on, study = model_modality(ctx.denoise), "ct" if names == ["ct"] else "mr"
    if trained_on is not None and trained_on != study:
        ctx.status.status = "skipped"
        ctx.status.reason = (
            f"the model was trained on {trained_on.upper()} lesions and this study is "
            f"{study.upper()}; the rule-based lesion is kept"
        )
        return images
    seed = int(rng.integers(2**63 - 1))
    flat = [images[i][c] for i in range(len(images)) for c in names]
    lesions = [masks[i] > 0 for i in range(len(images)) for _ in names]
    groups = [k for _ in images for k in range(len(names))]
    its = [intensities[c] for _ in images for c in names]
    grid = ctx.settings.grid_mm
    if grid is None or spacing_mm is None:
        out, sizes = refine_crops(flat, lesions, its, groups, ctx.denoise, seed, ctx.settings)
    else:
        out, sizes = _on_model_grid(flat, lesions, its, groups, ctx, seed, spacing_mm, grid)
    ctx.status.extra.update(
        steps=ctx.settings.steps,
        strength=ctx.settings.strength,
        band_voxels=[sizes[i * len(names)] for i in range(len(images))],
    )
    return [{c: out[i * len(names) + k] for k, c in enumerate(names)} for i in range(len(images))]


def _on_model_grid(
    images: list[NDArray[np.float32]],
    lesions: list[NDArray[np.bool_]],
    intensities: list[Intensity],
    groups: list[int],
    ctx: RefineContext,
    seed: int,
    spacing_mm: tuple[float, float, float],
    grid_mm: float,
) -> tuple[list[NDArray[np.float32]], list[int]]:
    """:func:`refine_crops` on the crops resampled to an isotropic ``grid_mm`` grid (linear for
    images, nearest for masks); the result is sampled back at the scan's voxel centres and written
    only inside the model's region on the scan's grid (all else stays bit-identical)."""
    from scipy import ndimage

    assert ctx.denoise is not None
    shape = images[0].shape
    factors = [s / grid_mm for s in spacing_mm]
    fine_shape = tuple(max(1, round(n * f)) for n, f in zip(shape, factors, strict=True))
    # voxel-centre mapping: fine index j ↔ scan index (j + 0.5) / f − 0.5
    axes_fine = [(np.arange(m) + 0.5) / f - 0.5 for m, f in zip(fine_shape, factors, strict=True)]
    at_fine = np.meshgrid(*axes_fine, indexing="ij")
    fine = [
        ndimage.map_coordinates(img, at_fine, order=1, mode="nearest").astype(np.float32) for img in images
    ]
    fine_les = [
        ndimage.map_coordinates(les.astype(np.uint8), at_fine, order=0, mode="nearest").astype(bool)
        for les in lesions
    ]
    # "interior": the model re-synthesises the lesion and its band as trained; only the interior
    # is written back, at the rule-based render's mean (the model lends texture, the rules keep
    # their calibrated density and margin)
    interior = ctx.settings.region == "interior"
    settings = replace(ctx.settings, region="lesion") if interior else ctx.settings
    out_fine, _ = refine_crops(fine, fine_les, intensities, groups, ctx.denoise, seed, settings)
    _memorisation_flag(ctx, out_fine, fine_les, intensities)
    axes_back = [(np.arange(n) + 0.5) * f - 0.5 for n, f in zip(shape, factors, strict=True)]
    at_back = np.meshgrid(*axes_back, indexing="ij")
    out, sizes = [], []
    for img, les, res in zip(images, lesions, out_fine, strict=True):
        region = region_of(les, ctx.settings.region)
        back = ndimage.map_coordinates(res, at_back, order=1, mode="nearest").astype(np.float32)
        if interior and region.any():
            back += np.float32(float(img[region].mean()) - float(back[region].mean()))
        new = img.copy()
        new[region] = back[region]
        out.append(new)
        sizes.append(int(region.sum()))
    return out, sizes


def model_modality(model: object) -> str | None:
    """The modality ("ct" or "mr") a model's card says it was trained on (``card["modality"]``,
    or the library record of its training), None when the card does not say (the boundary
    refiner, trained on phantom tiles of both)."""
    card = _model_attr(model, "card")
    if not isinstance(card, dict):
        return None
    library = (card.get("training") or {}).get("library") or {}
    value = card.get("modality") or library.get("modality")
    return str(value).lower() if value else None


def _model_attr(model: object, name: str) -> Any:
    """An attribute of the model, or of the model a batcher wraps (``model.model``)."""
    return getattr(model, name, None) or getattr(getattr(model, "model", None), name, None)


@lru_cache(maxsize=4)
def _training_bank(path: str, mtime_ns: int) -> NDArray[np.float32]:
    """A texture model's training tiles, read once per file version (every study checks them)."""
    return np.load(path)["tiles"].astype(np.float32)


def _memorisation_flag(
    ctx: RefineContext,
    images: list[NDArray[np.float32]],
    lesions: list[NDArray[np.bool_]],
    intensities: list[Intensity],
) -> None:
    """Issue 18: a generated lesion closer to a training lesion than the 1st percentile of the
    real-to-real nearest-neighbour distances (the model card's report) is flagged in the study's
    metadata (``simulation.refiner.memorisation_flag``). Needs the model's training-tile bank next to
    it (``card["bank"]``); distances are RMS over the lesion region of a tile around its centre,
    in model units, on the model's grid (:func:`~longisynth.refine.patches.nearest_distance`)."""
    card, path = _model_attr(ctx.denoise, "card"), _model_attr(ctx.denoise, "path")
    if not isinstance(card, dict) or not card.get("bank") or path is None:
        return
    threshold = (card.get("memorisation") or {}).get("real_to_real_p1")
    bank_path = Path(path).with_name(str(card["bank"]))
    if threshold is None or not bank_path.is_file():
        ctx.status.extra["memorisation_flag"] = {
            "checked": False,
            "reason": "no training-tile bank beside the model",
        }
        return
    bank = _training_bank(str(bank_path), bank_path.stat().st_mtime_ns)
    nearest = []
    for img, les, it in zip(images, lesions, intensities, strict=True):
        if not les.any() or any(n < TILE for n in img.shape):
            continue
        sl = centred_tile(img.shape, np.round(np.argwhere(les).mean(axis=0)).astype(int))
        region = region_of(les[sl], "lesion")
        if region.any():
            nearest.append(nearest_distance(it.forward(img[sl]), region, bank))
    if nearest:
        ctx.status.extra["memorisation_flag"] = {
            "checked": True,
            "nearest_training_distance": round(min(nearest), 4),
            "real_to_real_p1": round(float(threshold), 4),
            "flagged": bool(min(nearest) < float(threshold)),
        }
