"""What the downstream benchmarks share: samples, the small MONAI 3D U-Net, its training, metrics.

A *sample* is one lesion volume already on the benchmark's grid: channels-first float32 image,
integer labels, and a voxel weight (0 where the labels are unknown — e.g. the real tumour of a
BraTS brain that hosts a synthetic one — so the loss ignores those voxels). Every sample carries
its *group* (patient or host scan) so that splits never put one patient on both sides.

Training is seeded (``torch.manual_seed``, one NumPy generator for batches and augmentation) and
runs on the CPU with 2 threads; every arm of a comparison gets the same steps and batch size.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass
class Sample:
    image: NDArray[np.float32]  # (C, X, Y, Z)
    labels: NDArray[np.int64]  # (X, Y, Z): 0 background, 1…K classes
    group: str  # patient (real) or host scan (synthetic)
    name: str
    weight: NDArray[np.float32] | None = None  # (X, Y, Z); None = every voxel counts
    info: dict[str, Any] = field(default_factory=dict)  # e.g. nodule type, for per-kind tables


@dataclass
class NetConfig:
    in_channels: int
    classes: int  # including background
    patch: tuple[int, int, int]
    channels: tuple[int, ...] = (16, 32, 64, 128)
    batch: int = 8
    steps: int = 800
    lr: float = 3e-3


def build_net(cfg: NetConfig) -> Any:
    """The small MONAI 3D U-Net every arm trains (residual units, 3 down-samplings)."""
    from monai.networks.nets import UNet

    return UNet(3, cfg.in_channels, cfg.classes, channels=cfg.channels, strides=(2, 2, 2), num_res_units=1)


def masked_dice_ce(logits: Any, target: Any, weight: Any) -> Any:
    """Soft Dice (foreground classes) + cross-entropy, both restricted to voxels with weight > 0."""
    import torch
    from torch.nn import functional

    ce = functional.cross_entropy(logits, target, reduction="none")
    ce = (ce * weight).sum() / weight.sum().clamp_min(1.0)
    probs = torch.softmax(logits, dim=1)
    onehot = functional.one_hot(target, logits.shape[1]).permute(0, 4, 1, 2, 3).to(probs.dtype)
    w = weight[:, None]
    dims = (0, 2, 3, 4)
    inter = (probs * onehot * w).sum(dims)[1:]
    denom = ((probs + onehot) * w).sum(dims)[1:]
    dice = (2 * inter + 1e-5) / (denom + 1e-5)
    return ce + (1 - dice).mean()


def random_patch(
    sample: Sample, patch: tuple[int, int, int], rng: np.random.Generator, p_lesion: float = 0.8
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    """A training patch: centred near a lesion voxel with probability ``p_lesion``, else anywhere."""
    shape = np.asarray(sample.labels.shape)
    size = np.asarray(patch)
    lesion = np.argwhere(sample.labels > 0)
    if len(lesion) and rng.random() < p_lesion:
        centre = lesion[rng.integers(len(lesion))]
    else:
        centre = np.array([rng.integers(0, s) for s in shape])
    start = np.clip(centre - size // 2, 0, np.maximum(shape - size, 0))
    sl = tuple(slice(int(a), int(a) + int(n)) for a, n in zip(start, size, strict=True))
    image, labels = sample.image[(slice(None), *sl)], sample.labels[sl]
    weight = np.ones(labels.shape, np.float32) if sample.weight is None else sample.weight[sl]
    pad = [(0, int(n) - s) for n, s in zip(size, labels.shape, strict=True)]
    if any(p[1] for p in pad):
        image = np.pad(image, [(0, 0), *pad])
        labels = np.pad(labels, pad)
        weight = np.pad(weight, pad)  # padding carries no loss
    return image, labels, weight


def augment(
    image: NDArray[np.float32],
    labels: NDArray[np.int64],
    weight: NDArray[np.float32],
    rng: np.random.Generator,
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    """Flips along each axis and an in-plane quarter turn when the patch is square in-plane."""
    for ax in range(3):
        if rng.random() < 0.5:
            image, labels, weight = np.flip(image, ax + 1), np.flip(labels, ax), np.flip(weight, ax)
    if labels.shape[0] == labels.shape[1] and rng.random() < 0.5:
        image, labels, weight = (
            np.rot90(image, 1, (1, 2)),
            np.rot90(labels, 1, (0, 1)),
            np.rot90(weight, 1, (0, 1)),
        )
    return np.ascontiguousarray(image), np.ascontiguousarray(labels), np.ascontiguousarray(weight)


def train(
    samples: Sequence[Sample], cfg: NetConfig, seed: int, log: Callable[[str], None] | None = None
) -> Any:
    """Train a fresh :func:`build_net` on ``samples`` for ``cfg.steps`` steps; returns it in eval mode."""
    import torch

    if not samples:
        raise ValueError("no training samples")
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(seed)
    net = build_net(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    warm = max(1, cfg.steps // 10)  # linear warm-up, then cosine decay to 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, cfg.steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        batch = [
            augment(*random_patch(samples[i], cfg.patch, rng), rng)
            for i in rng.integers(len(samples), size=cfg.batch)
        ]
        x = torch.from_numpy(np.stack([b[0] for b in batch]))
        y = torch.from_numpy(np.stack([b[1] for b in batch]))
        w = torch.from_numpy(np.stack([b[2] for b in batch]))
        loss = masked_dice_ce(net(x), y, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log is not None and (step + 1) % max(1, cfg.steps // 5) == 0:
            elapsed = time.perf_counter() - t0
            log(f"    step {step + 1}/{cfg.steps}  loss {float(loss.detach()):.3f}  {elapsed:.0f} s")
    return net.eval()


def predict(net: Any, image: NDArray[np.float32], patch: tuple[int, int, int]) -> NDArray[np.int64]:
    """Label map of a whole (C, X, Y, Z) volume: sliding windows of ``patch`` (25 % overlap) when larger."""
    import torch
    from monai.inferers import sliding_window_inference

    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(image[None]))
        if tuple(image.shape[1:]) == tuple(patch):
            logits = net(x)
        else:
            logits = sliding_window_inference(x, patch, 4, net, overlap=0.25, mode="gaussian")
    return np.asarray(logits.argmax(1)[0].numpy(), dtype=np.int64)


def dice(pred: NDArray[np.bool_], truth: NDArray[np.bool_]) -> float:
    """Dice of two binary masks; 1.0 when both are empty."""
    denom = int(pred.sum()) + int(truth.sum())
    return 2.0 * float((pred & truth).sum()) / denom if denom else 1.0


DETECTED_DICE = 0.1  # a real lesion counts as found when the prediction overlaps it at Dice ≥ 0.1


def summarise(values: Sequence[float]) -> str:
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.3f} ± {v.std():.3f}" if v.size else "—"


def log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def split_groups(groups: Sequence[str], test_fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """Seeded split of group names into (train, test) with about ``test_fraction`` of groups in test."""
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    n_test = max(1, round(test_fraction * len(names)))
    return set(order[n_test:]), set(order[:n_test])
