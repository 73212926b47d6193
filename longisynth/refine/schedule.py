"""DDPM noise schedule and the DDIM timesteps the sampler visits (shared by training and inference)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

NUM_TRAIN_TIMESTEPS = 1000
BETA_START = 1e-4
BETA_END = 0.02


@lru_cache(maxsize=1)
def alphas_cumprod() -> NDArray[np.float64]:
    """ᾱ_t for t = 0 … T−1 of the linear β schedule (Ho et al. 2020)."""
    betas = np.linspace(BETA_START, BETA_END, NUM_TRAIN_TIMESTEPS, dtype=np.float64)
    return np.asarray(np.cumprod(1.0 - betas), dtype=np.float64)


def ddim_timesteps(strength: float, steps: int) -> list[int]:
    """Decreasing timesteps from ``strength·T`` down towards 0 (SDEdit start, DDIM stride).

    ``strength`` in (0, 1]: how much of the forward process the guide is pushed through before
    denoising; 1 would start from pure noise.
    """
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    start = round(strength * (NUM_TRAIN_TIMESTEPS - 1))
    ts = np.linspace(start, 0, steps, endpoint=False)
    return sorted({round(float(t)) for t in ts}, reverse=True)
