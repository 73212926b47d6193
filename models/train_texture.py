"""Train, export and check a lesion-texture model: the same small conditional 3D diffusion network
as the boundary refiner (MONAI DiffusionModelUNet), trained on *real lesions* from a lesion
library, generating the lesion's interior and its boundary band.

    python models/train_texture.py --library lib/ --out texture/          # CPU: 19 min on 2 shared cores
    python models/train_texture.py --library lib/ --out texture/ --quick  # a few minutes
    python models/train_texture.py --library lib/ --out texture/ --device cuda --steps 20000 --width 16
    LONGISYNTH_REFINER=texture/texture.onnx longisynth generate ...        # use it (or refine=True)

What it learns. Each training example is a 24³ tile on a real lesion of the library (CT in HU;
MRI: one contrast at a time, in the library's brain z-scores; ``longisynth library build``),
resampled to an isotropic ``--grid-mm`` grid (default 1 mm for CT, 2 mm for MRI, where gliomas
span several tiles: a tile is then centred on a random voxel of the lesion). The guide is
what the rule-based renderer gives: the lesion's mean intensity per label (solid / ground glass)
with white noise of the tile's own noise level, blurred across the boundary; outside the region
(the lesion dilated by 2 voxels) the guide is the real tile. The network predicts the noise of the
DDPM forward process (ε, t < ``max_t``) with the loss weighted 1 in the region and 0.1 outside.
At inference (``longisynth.refine.sampler`` with the card's ``sampler`` settings: region
``lesion``, SDEdit strength 0.6, 10 DDIM steps) the region is re-synthesised from the rule-based
render, everything else re-imposed at every step; one noise field per contrast is shared by all
timepoints, so the texture is stable over time.

Outputs (in ``--out``; never commit them when the library holds patient data — they are derived
from it): ``texture.pt`` (weights + config), ``texture.onnx`` (dynamic batch, opset 17) and
``texture.json`` (its card: sha256, sampler settings, training record, ONNX parity, the
memorisation report). A tenth of the library's lesions (by id) is held apart for the report:
nearest-neighbour RMS distances (model units, over the region) from generated lesions to the
training lesions, against the same distance from the held-apart *real* lesions (real-to-real);
a generated lesion closer than the 1st percentile of real-to-real is counted as flagged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export_onnx import checked_onnx
from train_refiner import build_model, fit_diffusion

from longisynth.refine.patches import (
    CT_INTENSITY,
    TILE,
    Intensity,
    centred_tile,
    nearest_distance,
    noise_std_estimate,
    region_of,
)
from longisynth.refine.sampler import RefineSettings, refine_crops
from longisynth.refine.schedule import BETA_END, BETA_START, NUM_TRAIN_TIMESTEPS

OUTSIDE_REGION_LOSS_WEIGHT = 0.1
SAMPLER = {"region": "lesion", "strength": 0.6, "steps": 10, "eta": 1.0}


@dataclass(frozen=True)
class Config:
    """Everything that defines a training run (stored with the weights)."""

    steps: int = 1500
    batch: int = 8
    lr: float = 2e-3
    width: int = 8
    seed: int = 0
    max_t: int = 650  # the sampler starts at t = 600 (strength 0.6): capacity goes there
    grid_mm: float = 1.0
    hold_out: float = 0.1  # fraction of the library's lesions (by id) kept for the report
    device: str = "cpu"
    threads: int = 2


PRESETS = {
    "full": Config(),
    "quick": Config(steps=300),
    "tiny": Config(steps=3, batch=2, width=4),
}


# ---------------------------------------------------------------------------------------- data


@dataclass
class Lesion:
    """One library lesion (one contrast of it, for MRI) on the model grid: image in model units,
    labels, its centre (voxels)."""

    id: str  # the library lesion's id (shared by its contrasts: they are split together)
    image: NDArray[np.float32]
    labels: NDArray[np.uint8]
    centre: NDArray[np.int64]
    noise_std: float
    contrast: str = "ct"


MR_INTENSITY = Intensity(0.0, 1.0)  # MRI libraries hold brain z-scores: model units as they are
DEFAULT_GRID_MM = {"ct": 1.0, "mr": 2.0}


def intensity_of(lesion: Lesion) -> Intensity:
    """Stored units → model units for this lesion's contrast."""
    return CT_INTENSITY if lesion.contrast == "ct" else MR_INTENSITY


def _to_grid(
    image: NDArray, labels: NDArray, spacing: tuple[float, ...], grid_mm: float
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Resample to ``grid_mm`` (linear / nearest) and pad (edge) to at least a tile per axis."""
    factors = [s / grid_mm for s in spacing]
    img = ndimage.zoom(image.astype(np.float32), factors, order=1, mode="nearest", grid_mode=True)
    lab = ndimage.zoom(labels.astype(np.uint8), factors, order=0, mode="nearest", grid_mode=True)
    pad = [(max(0, TILE + 8 - n) // 2, max(0, TILE + 8 - n) - max(0, TILE + 8 - n) // 2) for n in img.shape]
    return np.pad(img, pad, mode="reflect").astype(np.float32), np.pad(lab, pad, mode="constant")


def library_modality(library: Path) -> str:
    """ "ct" or "mr", from the library's own record."""
    return str(json.loads((library / "library.json").read_text()).get("modality", "ct")).lower()


def load_lesions(library: Path, grid_mm: float) -> list[Lesion]:
    """The lesions of a library on the model grid, sorted by id (MRI: one item per contrast; the
    library's NaN outside the source's tissue becomes the image's darkest value).

    Raises:
        SystemExit: no lesions.
    """
    from longisynth.library import Library

    lib = Library.open(library)
    out = []
    for entry in sorted(lib.entries, key=lambda e: e.id):
        lesion = lib.load(entry)
        spacing = tuple(float(v) for v in np.linalg.norm(lesion.affine[:3, :3], axis=0))
        for contrast in sorted(lesion.images):
            raw = lesion.images[contrast]
            finite = np.isfinite(raw)
            if not finite.any():
                continue
            filled = np.where(finite, raw, float(raw[finite].min())).astype(np.float32)
            img, lab = _to_grid(filled, lesion.labels, spacing, grid_mm)
            if not (lab > 0).any():
                continue
            x = (CT_INTENSITY if contrast == "ct" else MR_INTENSITY).forward(img)
            centre = np.round(np.argwhere(lab > 0).mean(axis=0)).astype(np.int64)
            out.append(Lesion(entry.id, x, lab, centre, noise_std_estimate(x), contrast))
    if not out:
        raise SystemExit(f"error: {library.name} holds no lesion")
    return out


def split(lesions: list[Lesion], hold_out: float) -> tuple[list[Lesion], list[Lesion]]:
    """Training and held-apart lesions: the held-apart ones are those whose id hash falls in the
    last ``hold_out`` of the range (stable when lesions are added); at least one when there are
    two or more lesions. The contrasts of one lesion stay together."""

    def frac(lesion_id: str) -> float:
        return int(hashlib.sha256(lesion_id.encode()).hexdigest()[:8], 16) / 2**32

    ids = sorted({les.id for les in lesions})
    held_ids = {i for i in ids if frac(i) >= 1.0 - hold_out}
    if not held_ids and len(ids) >= 2 and hold_out > 0:  # a small library still gets a report
        held_ids = {max(ids, key=frac)}
    train = [les for les in lesions if les.id not in held_ids]
    held = [les for les in lesions if les.id in held_ids]
    return train, held


def tile_of(
    lesion: Lesion, rng: np.random.Generator | None = None
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """The 24³ tile around the lesion's centre; with ``rng``, shifted by up to 3 voxels, or, for a
    lesion wider than a tile (a glioma), centred on a random voxel of it half of the time."""
    centre = lesion.centre
    if rng is not None:
        idx = np.argwhere(lesion.labels > 0)
        wide = bool(np.any(idx.max(axis=0) - idx.min(axis=0) + 1 > TILE - 8))
        if wide and rng.random() < 0.5:
            centre = idx[int(rng.integers(len(idx)))]
        else:
            centre = centre + rng.integers(-3, 4, size=3)
    sl = centred_tile(lesion.image.shape, centre)
    return lesion.image[sl], lesion.labels[sl]


def rule_guide(
    x0: NDArray[np.float32], labels: NDArray[np.uint8], noise_std: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    """What the rule-based renderer gives for this lesion: its mean per label plus white noise of
    about the tile's noise level, blurred across the boundary; the real tile outside the region."""
    core = x0.copy()
    for value in np.unique(labels[labels > 0]):
        inside = labels == value
        core[inside] = float(x0[inside].mean())
    white = rng.standard_normal(x0.shape).astype(np.float32) * noise_std * float(rng.uniform(0.7, 1.3))
    guide = ndimage.gaussian_filter(core, float(rng.uniform(0.5, 1.0))) + white
    region = region_of(labels > 0, "lesion")
    return np.where(region, guide, x0).astype(np.float32)


def example(lesion: Lesion, rng: np.random.Generator) -> NDArray[np.float32]:
    """(4, T, T, T): target x0, guide, region, lesion (x_t is made by the trainer)."""
    x0, labels = tile_of(lesion, rng)
    if rng.random() < 0.5:  # flips: the texture has no handedness
        axes = [a for a in range(3) if rng.random() < 0.5]
        x0, labels = np.flip(x0, axes).copy(), np.flip(labels, axes).copy()
    guide = rule_guide(x0, labels, lesion.noise_std, rng)
    lesion_mask = labels > 0
    region = region_of(lesion_mask, "lesion")
    return np.stack([x0, guide, region.astype(np.float32), lesion_mask.astype(np.float32)])


# ------------------------------------------------------------------------------------------ train


def train(cfg: Config, library: Path, out: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train on ``library`` and write ``out/texture.pt`` and ``out/texture_train.json``."""
    import torch

    t0 = time.perf_counter()
    lesions = load_lesions(library, cfg.grid_mm)
    training, held = split(lesions, cfg.hold_out)
    n = len({les.id for les in lesions})
    contrasts = sorted({les.contrast for les in lesions})
    log(
        f"library: {n} lesions ({', '.join(contrasts)}) → {len({les.id for les in training})} for "
        f"training, {len({les.id for les in held})} held apart"
    )

    def draw(rng: np.random.Generator) -> NDArray[np.float32]:
        return np.stack([example(training[i], rng) for i in rng.integers(len(training), size=cfg.batch)])

    model, losses = fit_diffusion(draw, cfg, 7, OUTSIDE_REGION_LOSS_WEIGHT, log, log_every=10)
    n_params = sum(p.numel() for p in model.parameters())
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "config": asdict(cfg)}, out / "texture.pt")
    window = max(1, len(losses) // 10)
    record = {
        "config": asdict(cfg),
        "parameters": n_params,
        "library": _library_record(library),
        "lesions_train": len({les.id for les in training}),
        "lesions_held_apart": len({les.id for les in held}),
        "contrasts": sorted({les.contrast for les in lesions}),
        "loss_first": float(np.mean(losses[:window])),
        "loss_last": float(np.mean(losses[-window:])),
        "train_wall_s": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
    }
    (out / "texture_train.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"trained: {n_params} parameters, loss {record['loss_first']:.4f} → {record['loss_last']:.4f}")
    return record


def _library_record(library: Path) -> dict[str, Any]:
    """What the card says about the training data: the library's own summary (no case names)."""
    data = json.loads((library / "library.json").read_text())
    keep = ("format", "version", "family", "modality", "n_lesions", "sources")
    return {k: data[k] for k in keep if k in data}


# ----------------------------------------------------------------------------------------- export


def export(cfg_src: Path, library: Path, out: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """ONNX export, parity, memorisation report and card (``out/texture.onnx``, ``texture.json``)."""
    import torch

    ckpt = torch.load(cfg_src / "texture.pt", map_location="cpu", weights_only=False)
    cfg = Config(**ckpt["config"])
    model = build_model(cfg.width)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    data, denoise, parity = checked_onnx(model, (10, 500), cfg.max_t, log)

    memo = memorisation_report(cfg, library, denoise, log)
    modality = library_modality(library)
    (out / "texture.onnx").write_bytes(data)
    # the training lesions' tiles, for the engine's per-study memorisation flag (derived from the
    # library: keep it with the model, never commit it when the library holds patient data)
    training, _ = split(load_lesions(library, cfg.grid_mm), cfg.hold_out)
    bank = np.stack([tile_of(les)[0] for les in training]).astype(np.float16)
    np.savez_compressed(out / "texture_bank.npz", tiles=bank)
    train_path = cfg_src / "texture_train.json"
    training = json.loads(train_path.read_text()) if train_path.is_file() else {}
    card: dict[str, Any] = {
        "name": f"longisynth-texture-w{cfg.width}-s{cfg.steps}",
        "kind": "lesion-texture",
        # the engine applies the model only to studies of this modality
        "modality": modality,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "inputs": {"x": ["batch", 4, TILE, TILE, TILE], "t": ["batch"]},
        "channels": ["x_t", "guide", "region", "lesion"],
        "output": "predicted noise (epsilon), model units "
        + ("((HU + 500) / 500)" if modality == "ct" else "(brain z-scores of each contrast)"),
        "sampler": {**SAMPLER, "grid_mm": cfg.grid_mm},
        "schedule": {"kind": "linear", "T": NUM_TRAIN_TIMESTEPS, "beta": [BETA_START, BETA_END]},
        "opset": 17,
        "parity_max_abs_diff": parity,
        "training": training,
        "memorisation": memo,
        "bank": "texture_bank.npz",
        "command": f"python models/train_texture.py --library {library} --out {out}",
    }
    (out / "texture.json").write_text(json.dumps(card, indent=2) + "\n")
    log(f"wrote {out / 'texture.onnx'} ({len(data) / 1e6:.2f} MB) and its card")
    return card


def memorisation_report(
    cfg: Config, library: Path, denoise: Callable[..., NDArray[np.float32]], log: Callable[[str], None]
) -> dict[str, Any]:
    """Generated vs real-to-real nearest-neighbour distances to the training lesions (module doc)."""
    lesions = load_lesions(library, cfg.grid_mm)
    training, held = split(lesions, cfg.hold_out)
    if not held:
        return {"skipped": "no held-apart lesion (library too small)"}
    bank = np.stack([tile_of(les)[0] for les in training])
    rng = np.random.default_rng([cfg.seed, 11])
    settings = RefineSettings(
        steps=int(SAMPLER["steps"]),
        strength=float(SAMPLER["strength"]),
        eta=1.0,
        region="lesion",
        max_batch=16,
    )
    real, generated = [], []
    for k, les in enumerate(held):
        x0, labels = tile_of(les)
        region = region_of(labels > 0, "lesion")
        guide = rule_guide(x0, labels, les.noise_std, rng)
        it = intensity_of(les)
        stored = it.backward(guide)
        (out,), _ = refine_crops([stored], [labels > 0], [it], [0], denoise, 1000 + k, settings)
        generated.append(nearest_distance(it.forward(out), region, bank))
        real.append(nearest_distance(x0, region, bank))
    p1 = float(np.percentile(real, 1))
    flagged = int(sum(g < p1 for g in generated))
    report = {
        "held_apart_lesions": len({les.id for les in held}),
        "training_lesions": len({les.id for les in training}),
        "held_apart_items": len(held),
        "units": "RMS over the lesion region, model units "
        + ("((HU + 500) / 500)" if held[0].contrast == "ct" else "(brain z-scores)"),
        "real_to_real_median": float(np.median(real)),
        "real_to_real_p1": p1,
        "generated_median": float(np.median(generated)),
        "flagged": flagged,
        "flag_rate": flagged / len(generated),
    }
    log(
        f"memorisation: generated median NN distance {report['generated_median']:.3f} vs real-to-real "
        f"{report['real_to_real_median']:.3f}; {flagged}/{len(generated)} below the real 1st percentile"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="a few minutes on CPU")
    group.add_argument("--tiny", action="store_true", help="seconds; for the test suite")
    parser.add_argument(
        "--library", type=Path, required=True, help="a CT or MRI lesion library (longisynth library build)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for texture.pt / .onnx / .json")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--grid-mm", dest="grid_mm", type=float, help="model grid, mm (CT 1, MRI 2)")
    parser.add_argument("--device", default=None, help="cpu (default) or cuda")
    args = parser.parse_args(argv)
    if not (args.library / "library.json").is_file():
        print(f"error: {args.library} is not a lesion library (longisynth library build)", file=sys.stderr)
        return 2
    cfg = PRESETS["tiny" if args.tiny else "quick" if args.quick else "full"]
    overrides = {
        k: getattr(args, k)
        for k in ("steps", "batch", "width", "seed", "grid_mm", "device")
        if getattr(args, k) is not None
    }
    overrides.setdefault("grid_mm", DEFAULT_GRID_MM.get(library_modality(args.library), 1.0))
    cfg = Config(**{**asdict(cfg), **overrides})
    train(cfg, args.library, args.out)
    export(args.out, args.library, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
