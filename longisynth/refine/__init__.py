"""Learned lesion-boundary refiner (docs/design.md §5): a small diffusion model, run with ONNX Runtime,
that re-synthesises the lesion boundary and a thin band around it so texture, noise and partial
volume match the surrounding scan. Everything outside the band is left bit-identical.

The conventions shared by training (``models/train_refiner.py``) and inference live here: the
noise schedule (:mod:`.schedule`), tiles, bands, intensity normalisation and training pairs
(:mod:`.patches`), the sampler (:mod:`.sampler`) and the model loader (:mod:`.model`).
"""

from longisynth.refine.model import Denoiser, OnnxRefiner, RefinerStatus, default_refiner, load_refiner
from longisynth.refine.sampler import RefineSettings, refine_crops

__all__ = [
    "Denoiser",
    "OnnxRefiner",
    "RefineSettings",
    "RefinerStatus",
    "default_refiner",
    "load_refiner",
    "refine_crops",
]
