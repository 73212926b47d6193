"""The refiner's hand-off with the driver: whether it runs for a study, and running it over every
timepoint and contrast of the study in one batched pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from longisynth.refine.model import (
    DEFAULT_OFF_REASON,
    Denoiser,
    RefinerStatus,
    default_refiner,
    on_by_default,
)
from longisynth.refine.patches import Intensity
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
        return RefineContext(None, RefinerStatus("disabled", reason=DEFAULT_OFF_REASON), settings)
    if refiner is not None:
        status = refiner.status() if hasattr(refiner, "status") else RefinerStatus("applied")
        return RefineContext(refiner, status, settings)
    model, reason = default_refiner()
    if model is None:
        return RefineContext(None, RefinerStatus("unavailable", reason=reason), settings)
    return RefineContext(model, model.status(), settings)


def refine_timepoints(
    images: list[dict[str, NDArray[np.float32]]],
    masks: Sequence[NDArray[np.uint8]],
    intensities: dict[str, Intensity],
    ctx: RefineContext,
    rng: np.random.Generator,
) -> list[dict[str, NDArray[np.float32]]]:
    """Run the refiner over every contrast of every timepoint in one batched pass.

    Each contrast keeps one noise field over time (temporally consistent texture). Records the
    band size per timepoint (voxels) and the steps in ``ctx.status``.
    """
    if ctx.denoise is None:
        return images
    seed = int(rng.integers(2**63 - 1))
    names = list(images[0])
    flat = [images[i][c] for i in range(len(images)) for c in names]
    lesions = [masks[i] > 0 for i in range(len(images)) for _ in names]
    groups = [k for _ in images for k in range(len(names))]
    its = [intensities[c] for _ in images for c in names]
    out, sizes = refine_crops(flat, lesions, its, groups, ctx.denoise, seed, ctx.settings)
    ctx.status.extra.update(
        steps=ctx.settings.steps,
        strength=ctx.settings.strength,
        band_voxels=[sizes[i * len(names)] for i in range(len(images))],
    )
    return [{c: out[i * len(names) + k] for k, c in enumerate(names)} for i in range(len(images))]
