"""Train the lesion-boundary refiner: a small conditional 3D diffusion model (MONAI DiffusionModelUNet).

    python models/train_refiner.py                 # the shipped model (2 CPU cores: ≈ 10 min)
    python models/train_refiner.py --quick         # a few minutes, same recipe, fewer steps
    python models/train_refiner.py --device cuda --steps 20000 --width 16   # longer/larger on a GPU
    python models/train_refiner.py --data /my/healthy/niftis  # add your own scans (files or folders)

What it learns (docs/design.md §5): given a 24³ tile in which a thin band around a lesion boundary holds
the rule-based render (right structure, wrong texture), and real tissue everywhere else, predict the
noise of a DDPM forward process so that the sampler (``longisynth.refine.sampler``) can re-synthesise
the band with texture and noise that match the surrounding scan. Training pairs come only from
**healthy** tissue (``longisynth.refine.patches.training_example``): a soft blob of constant
intensity offset is added to a real patch (so the "lesion" carries real texture), and the guide is
that target blurred with white noise inside the band.

Data (all offline): the embedded thorax CT phantom (HU), the four MRI contrasts of the brain
phantom built from the MNI152 template shipped in nilearn (z-scored in the brain), and the healthy
scans given with ``--data`` (NIfTI files, DICOM series folders, or folders of NIfTI files; CT
detected by its HU range, MRI z-scored in the foreground). Phantom instance 0 is for training;
instance 1 is held apart for the memorisation check.

Writes ``OUT/refiner.pt`` (weights + config) and ``OUT/refiner_train.json`` (config, losses,
patch-pool provenance, wall time). ``models/export_onnx.py`` turns them into ``refiner.onnx``.
Seeded and reproducible for a given device and thread count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from longisynth.refine.patches import CT_INTENSITY, TILE, noise_std_estimate, training_example
from longisynth.refine.schedule import alphas_cumprod

OUTSIDE_BAND_LOSS_WEIGHT = 0.1


@dataclass(frozen=True)
class Config:
    """Everything that defines a training run (stored with the weights)."""

    steps: int = 1500
    batch: int = 8
    lr: float = 2e-3
    width: int = 8  # channels of the first level; levels are (w, 2w, 4w)
    patches_per_volume: int = 1000
    seed: int = 0
    # Timesteps trained: [0, max_t). The sampler works at low noise (strength ≤ 0.15 of T: it
    # re-synthesises texture, it does not invent structure), so capacity goes there.
    max_t: int = 150
    device: str = "cpu"
    threads: int = 2

    @property
    def channels(self) -> tuple[int, int, int]:
        return (self.width, 2 * self.width, 4 * self.width)


PRESETS = {
    "full": Config(),
    "quick": Config(steps=250, patches_per_volume=200),
    "tiny": Config(steps=4, batch=2, width=4, patches_per_volume=6),
}


def build_model(width: int) -> Any:  # a torch.nn.Module (torch is imported lazily)
    """The network: 4 input channels (x_t, guide, band, lesion), ε̂ out, no attention."""
    from monai.networks.nets import DiffusionModelUNet

    return DiffusionModelUNet(
        spatial_dims=3,
        in_channels=4,
        out_channels=1,
        channels=(width, 2 * width, 4 * width),
        attention_levels=(False, False, False),
        num_res_blocks=1,
        norm_num_groups=min(4, width),
    )


# ---------------------------------------------------------------------------------------------- data


@dataclass
class PatchPool:
    """Healthy patches in model units with where they came from."""

    patches: NDArray[np.float32]  # (N, TILE, TILE, TILE)
    noise_std: NDArray[np.float32]  # (N,) white-noise level estimate per patch, model units
    source: list[str]


def _sample_patches(
    volume: NDArray[np.float32], allowed: NDArray[np.bool_], n: int, rng: np.random.Generator
) -> list[NDArray[np.float32]]:
    """``n`` tiles whose centre lies in ``allowed`` (voxel indices drawn uniformly from it)."""
    half = TILE // 2
    inner = np.zeros_like(allowed)
    inner[half:-half, half:-half, half:-half] = allowed[half:-half, half:-half, half:-half]
    centers = np.argwhere(inner)
    if len(centers) == 0:
        return []
    pick = centers[rng.choice(len(centers), size=min(n, len(centers)), replace=False)]
    return [
        volume[c[0] - half : c[0] + half, c[1] - half : c[1] + half, c[2] - half : c[2] + half] for c in pick
    ]


def _ct_volume(hu: NDArray, rng: np.random.Generator, n: int) -> list[NDArray[np.float32]]:
    """CT tiles centred in the body (lung, soft tissue, mediastinum) — not in outside air."""
    from scipy import ndimage

    x = CT_INTENSITY.forward(hu.astype(np.float32))
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[:, :, 1] = ndimage.generate_binary_structure(2, 1)
    body = ndimage.binary_fill_holes(hu > -300, structure=in_plane)  # lungs are holes in each slice
    return _sample_patches(x, np.asarray(body), n, rng)


def _mr_volume(values: NDArray, rng: np.random.Generator, n: int) -> list[NDArray[np.float32]]:
    """MR tiles centred in the foreground, z-scored over it (the engine's MR units)."""
    v = values.astype(np.float32)
    fg = v > np.percentile(v[v > 0], 10) if np.any(v > 0) else v != 0
    mean, sd = float(v[fg].mean()), float(v[fg].std()) or 1.0
    return _sample_patches((v - mean) / sd, fg, n, rng)


def data_paths(items: list[Path]) -> list[Path]:
    """The scans named by ``--data``: a NIfTI file, a DICOM series folder (it holds no NIfTI), or a
    folder whose ``*.nii*`` files are each a scan; sorted within each folder."""
    out: list[Path] = []
    for item in items:
        niftis = sorted(item.glob("*.nii*")) if item.is_dir() else []
        out += niftis if niftis else [item]
    return out


def patch_pool(instance: int, cfg: Config, data: list[Path] | None) -> PatchPool:
    """All tiles of phantom instance ``instance`` (0: training, 1: held apart) plus the ``data`` scans."""
    from longisynth.phantoms.brain import make_brain_phantom
    from longisynth.phantoms.thorax import make_thorax_phantom

    rng = np.random.default_rng([cfg.seed, instance])
    tiles: list[NDArray[np.float32]] = []
    source: list[str] = []
    hu, _ = make_thorax_phantom(seed=instance)
    got = _ct_volume(hu, rng, cfg.patches_per_volume)
    tiles += got
    source += [f"thorax_phantom_{instance}"] * len(got)
    images, _ = make_brain_phantom(seed=instance)
    for contrast, img in images.items():
        got = _mr_volume(img, rng, cfg.patches_per_volume // 2)
        tiles += got
        source += [f"mni152_{contrast}_{instance}"] * len(got)
    if data and instance == 0:
        from longisynth.anatomy.modality import detect_modality
        from longisynth.io import read_scan
        from longisynth.spec import Modality

        for path in data_paths(data):
            scan = read_scan(path)
            values = scan.values()
            ct = detect_modality(values, scan.raw.dtype) == Modality.CT
            got = (
                _ct_volume(values, rng, cfg.patches_per_volume)
                if ct
                else _mr_volume(values, rng, cfg.patches_per_volume)
            )
            if not got:
                print(f"warning: {path.name}: no {TILE}^3 tile fits inside it; skipped", file=sys.stderr)
            tiles += got
            source += [path.name] * len(got)
    arr = np.stack(tiles).astype(np.float32)
    noise = np.array([noise_std_estimate(p) for p in arr], dtype=np.float32)
    return PatchPool(arr, noise, source)


# ------------------------------------------------------------------------------------------ training


def fit_diffusion(
    draw: Callable[[np.random.Generator], NDArray[np.float32]],
    cfg: Any,
    stream: int,
    outside_weight: float,
    log: Callable[[str], None],
    log_every: int,
) -> tuple[Any, list[float]]:
    """The DDPM ε-training both models share: a :func:`build_model` of ``cfg.width`` (torch seeded
    with ``cfg.seed``, ``cfg.threads`` threads) trained ``cfg.steps`` AdamW steps (one-cycle
    learning rate ``cfg.lr``, gradient clipping at 1) on batches ``draw(rng)`` of (B, 4, T, T, T)
    stacks (x0, guide, region, lesion), t uniform below ``cfg.max_t``, the generator seeded with
    (``cfg.seed``, ``stream``); the ε loss weighted 1 in the region and ``outside_weight``
    elsewhere. Logs the mean loss ``log_every`` times; returns the model and every loss."""
    import torch

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng([cfg.seed, stream])
    model = build_model(cfg.width).to(cfg.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=max(cfg.steps, 2), pct_start=0.1
    )
    ab = torch.tensor(alphas_cumprod(), dtype=torch.float32, device=cfg.device)
    losses: list[float] = []
    t_train = time.perf_counter()
    every = max(1, cfg.steps // log_every)
    for step in range(cfg.steps):
        batch = torch.from_numpy(draw(rng)).to(cfg.device)
        x0, guide, region, lesion = batch[:, 0:1], batch[:, 1:2], batch[:, 2:3], batch[:, 3:4]
        t = torch.from_numpy(rng.integers(0, cfg.max_t, size=cfg.batch)).to(cfg.device)
        noise = torch.from_numpy(rng.standard_normal(x0.shape, dtype=np.float32)).to(cfg.device)
        a = ab[t].sqrt().view(-1, 1, 1, 1, 1)
        s = (1 - ab[t]).sqrt().view(-1, 1, 1, 1, 1)
        pred = model(torch.cat([a * x0 + s * noise, guide, region, lesion], dim=1), t)
        weight = region + outside_weight * (1 - region)
        loss = ((pred - noise) ** 2 * weight).sum() / weight.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if (step + 1) % every == 0 or step == cfg.steps - 1:
            recent = float(np.mean(losses[-every:]))
            log(f"step {step + 1}/{cfg.steps}  loss {recent:.4f}  ({time.perf_counter() - t_train:.0f} s)")
    return model, losses


def train(
    cfg: Config, out: Path, data: list[Path] | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Train and write ``out/refiner.pt`` and ``out/refiner_train.json``; returns the log dict."""
    import torch

    t0 = time.perf_counter()
    pool = patch_pool(0, cfg, data)
    log(
        f"patch pool: {len(pool.patches)} tiles of {TILE}^3 from {len(set(pool.source))} volumes "
        f"({time.perf_counter() - t0:.1f} s)"
    )

    def draw(rng: np.random.Generator) -> NDArray[np.float32]:
        idx = rng.integers(len(pool.patches), size=cfg.batch)
        return np.stack([training_example(pool.patches[i], float(pool.noise_std[i]), rng) for i in idx])

    model, losses = fit_diffusion(draw, cfg, 99, OUTSIDE_BAND_LOSS_WEIGHT, log, log_every=20)
    n_params = sum(p.numel() for p in model.parameters())
    wall = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    data_files = [str(p) for p in data_paths(data or [])]
    torch.save(
        {"state_dict": model.state_dict(), "config": asdict(cfg), "data": data_files}, out / "refiner.pt"
    )
    window = max(1, len(losses) // 10)
    record = {
        "config": asdict(cfg),
        "parameters": n_params,
        "tile": TILE,
        "patches": len(pool.patches),
        "patch_sources": sorted(set(pool.source)),
        "patches_per_source": {k: pool.source.count(k) for k in sorted(set(pool.source))},
        "loss_first": float(np.mean(losses[:window])),
        "loss_last": float(np.mean(losses[-window:])),
        "loss_curve": [
            round(float(np.mean(losses[i : i + window])), 5) for i in range(0, len(losses), window)
        ],
        "train_wall_s": round(wall, 1),
        "torch": torch.__version__,
    }
    (out / "refiner_train.json").write_text(json.dumps(record, indent=2) + "\n")
    log(
        f"wrote {out / 'refiner.pt'}: {n_params} parameters, loss {record['loss_first']:.4f} → "
        f"{record['loss_last']:.4f}, {wall:.0f} s"
    )
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="a few minutes on CPU")
    group.add_argument("--tiny", action="store_true", help="seconds; for the test suite")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", default=None, help="cpu (default) or cuda")
    parser.add_argument(
        "--data",
        "--data-dir",
        type=Path,
        action="append",
        help="healthy scans to add: a NIfTI file, a DICOM folder or a folder of NIfTI files (repeatable)",
    )
    args = parser.parse_args(argv)
    cfg = PRESETS["tiny" if args.tiny else "quick" if args.quick else "full"]
    overrides = {
        k: getattr(args, k)
        for k in ("steps", "batch", "width", "seed", "device")
        if getattr(args, k) is not None
    }
    cfg = Config(**{**asdict(cfg), **overrides})
    missing = [str(p) for p in args.data or [] if not p.exists()]
    if missing:
        print(f"error: --data {', '.join(missing)} does not exist", file=sys.stderr)
        return 2
    train(cfg, args.out, args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
