"""Export the trained refiner to ONNX, verify it, check it for memorisation, write its card data.

    python models/export_onnx.py    # models/refiner.pt → longisynth/refine/weights/refiner.onnx + .json
    python models/export_onnx.py --src DIR --out DIR

Steps:
1. ``torch.onnx.export`` (TorchScript exporter, opset 17) with a dynamic batch axis on ``x``
   (B, 4, 24, 24, 24) and ``t`` (B,) → ``eps`` (B, 1, 24, 24, 24).
2. Parity: ONNX Runtime (CPU) vs PyTorch on a random batch of 3 and on batch 1; the max absolute
   difference is reported and must stay below 1e-3.
3. Memorisation/privacy check: the sampler (``longisynth.refine.sampler``, default settings)
   re-synthesises the band of held-apart examples (phantom instance 1, never seen in training);
   for each, the distance (RMS over band voxels, model units) to the nearest *training* tile is
   compared with the same nearest-neighbour distance of the real held-apart target and of the
   sampler's input (the guide). Generated bands much closer to training tiles than both would
   mean the model reproduces training tissue rather than synthesising new texture.
4. ``refiner.json``: name, sha256 of the .onnx, I/O, schedule, training record, parity, memorisation.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_refiner import Config, build_model, patch_pool

from longisynth.refine.patches import BAND_IN_VOX, BAND_OUT_VOX, CHANNELS, TILE, training_example
from longisynth.refine.sampler import Denoise, RefineSettings, refine_crops
from longisynth.refine.schedule import BETA_END, BETA_START, NUM_TRAIN_TIMESTEPS

PARITY_TOLERANCE = 1e-3
MEMORISATION_EXAMPLES = 48


def onnx_bytes(model: Any, example_t: tuple[int, int]) -> bytes:
    """The network as ONNX (TorchScript exporter, opset 17, dynamic batch on x, t and eps),
    traced on a seeded example batch of 2 with timesteps ``example_t`` (byte-deterministic)."""
    import torch

    torch.manual_seed(0)
    example = (torch.randn(2, 4, TILE, TILE, TILE), torch.tensor(list(example_t)))
    buffer = io.BytesIO()
    # a BytesIO works with the TorchScript exporter, though the stubs only name paths
    torch.onnx.export(
        model,
        example,
        buffer,  # type: ignore[arg-type]
        dynamo=False,
        opset_version=17,
        input_names=["x", "t"],
        output_names=["eps"],
        dynamic_axes={"x": {0: "batch"}, "t": {0: "batch"}, "eps": {0: "batch"}},
    )
    return buffer.getvalue()


def checked_onnx(
    model: Any, example_t: tuple[int, int], max_t: int, log: Callable[[str], None]
) -> tuple[bytes, Denoise, dict[str, float]]:
    """:func:`onnx_bytes` of ``model`` (eval mode), an ONNX Runtime CPU denoiser on them
    (deterministic compute, as the engine runs it) and their parity with PyTorch: the largest
    absolute difference at batch 1 and 3 on random inputs, t below ``max_t``.

    Raises:
        SystemExit: parity worse than :data:`PARITY_TOLERANCE`.
    """
    import onnxruntime as ort
    import torch

    data = onnx_bytes(model, example_t)
    options = ort.SessionOptions()
    options.use_deterministic_compute = True
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    parity = {}
    for batch in (1, 3):
        x = torch.randn(batch, 4, TILE, TILE, TILE)
        t = torch.randint(0, max_t, (batch,))
        with torch.no_grad():
            ref = model(x, t).numpy()
        got = session.run(None, {"x": x.numpy(), "t": t.numpy()})[0]
        parity[f"batch_{batch}"] = float(np.abs(ref - got).max())
    worst = max(parity.values())
    log(f"ONNX vs PyTorch max abs diff: {worst:.2e} ({parity})")
    if worst > PARITY_TOLERANCE:
        raise SystemExit(f"ONNX output differs from PyTorch by {worst:.2e} > {PARITY_TOLERANCE}")

    def denoise(x: NDArray[np.float32], t: NDArray[np.int64]) -> NDArray[np.float32]:
        return np.asarray(session.run(None, {"x": x, "t": t})[0], dtype=np.float32)

    return data, denoise, parity


def export(src: Path, out: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export ``src/refiner.pt`` to ``out/refiner.onnx`` and write ``out/refiner.json``."""
    import torch

    ckpt = torch.load(src / "refiner.pt", map_location="cpu", weights_only=False)
    cfg = Config(**ckpt["config"])
    model = build_model(cfg.width)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    data, denoise, parity = checked_onnx(model, (10, 200), NUM_TRAIN_TIMESTEPS // 2, log)

    scans = [Path(p) for p in ckpt.get("data", [])]
    missing = [str(p) for p in scans if not p.exists()]
    if missing:
        raise SystemExit(
            f"training scans not found (needed for the memorisation check): {', '.join(missing)}"
        )
    memo = memorisation_check(cfg, denoise, log, scans)
    out.mkdir(parents=True, exist_ok=True)
    (out / "refiner.onnx").write_bytes(data)
    train_path = src / "refiner_train.json"
    training = json.loads(train_path.read_text()) if train_path.is_file() else {}
    training.pop("loss_curve", None)
    digest = hashlib.sha256(data).hexdigest()
    card: dict[str, Any] = {
        "name": f"longisynth-refiner-w{cfg.width}-s{cfg.steps}",
        "sha256": digest,
        "bytes": len(data),
        "inputs": {"x": ["batch", len(CHANNELS), TILE, TILE, TILE], "t": ["batch"]},
        "channels": list(CHANNELS),
        "output": "predicted noise (epsilon), model units",
        "band_voxels": {"outside": BAND_OUT_VOX, "inside": BAND_IN_VOX},
        "schedule": {"kind": "linear", "T": NUM_TRAIN_TIMESTEPS, "beta": [BETA_START, BETA_END]},
        "opset": 17,
        "parity_max_abs_diff": parity,
        "training": training,
        "memorisation": memo,
        "command": " ".join(["python models/train_refiner.py", *[f"--data {p}" for p in scans]])
        + " && python models/export_onnx.py",
    }
    (out / "refiner.json").write_text(json.dumps(card, indent=2) + "\n")
    log(f"wrote {out / 'refiner.onnx'} ({len(data) / 1e6:.2f} MB, sha256 {digest[:12]}…)")
    return card


def memorisation_check(
    cfg: Config, denoise: Denoise, log: Callable[[str], None] = print, data: list[Path] | None = None
) -> dict[str, Any]:
    """Nearest-training-tile distances of generated bands vs. of real held-apart bands (see module doc);
    ``data``: the real scans the model was trained on besides the phantoms."""
    t0 = time.perf_counter()
    train_pool = patch_pool(0, cfg, data).patches
    held = patch_pool(1, cfg, None)
    rng = np.random.default_rng([cfg.seed, 7])
    n = min(MEMORISATION_EXAMPLES, len(held.patches))
    picks = rng.choice(len(held.patches), size=n, replace=False)
    d_gen, d_real, d_guide = [], [], []
    from longisynth.refine.patches import Intensity

    unit = Intensity(0.0, 1.0)
    for k, i in enumerate(picks):
        stack = training_example(held.patches[i], float(held.noise_std[i]), rng)
        x0, guide, band, lesion = stack[0], stack[1], stack[2] > 0, stack[3] > 0
        if not band.any():
            continue
        (gen,), _ = refine_crops([guide], [lesion], [unit], [0], denoise, seed=k, settings=RefineSettings())
        flat_train = train_pool[:, band]
        d_gen.append(float(np.sqrt(((flat_train - gen[band]) ** 2).mean(axis=1)).min()))
        d_real.append(float(np.sqrt(((flat_train - x0[band]) ** 2).mean(axis=1)).min()))
        d_guide.append(float(np.sqrt(((flat_train - guide[band]) ** 2).mean(axis=1)).min()))
    g, r, q = np.asarray(d_gen), np.asarray(d_real), np.asarray(d_guide)
    result = {
        "examples": len(g),
        "training_tiles": len(train_pool),
        "nn_distance_generated_median": round(float(np.median(g)), 4),
        "nn_distance_real_heldout_median": round(float(np.median(r)), 4),
        "ratio_generated_to_real": round(float(np.median(g) / np.median(r)), 4),
        # the model's input alone (no model): smoother tiles sit closer to *some* training tile,
        # so compare the generated distance with this, not only with the real one
        "nn_distance_guide_median": round(float(np.median(q)), 4),
        "ratio_generated_to_guide": round(float(np.median(g) / np.median(q)), 4),
        "fraction_generated_closer_than_5th_percentile_real": round(
            float(np.mean(g < np.percentile(r, 5))), 4
        ),
        "units": "RMS over band voxels, model units (CT: HU/500; MR: z-score)",
    }
    log(f"memorisation: {result} ({time.perf_counter() - t0:.0f} s)")
    return result


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=here, help="folder with refiner.pt")
    parser.add_argument(
        "--out",
        type=Path,
        default=here.parent / "longisynth" / "refine" / "weights",
        help="folder for refiner.onnx/.json (default: the package data the engine ships and loads)",
    )
    args = parser.parse_args(argv)
    if not (args.src / "refiner.pt").is_file():
        print(
            f"error: {args.src / 'refiner.pt'} not found; run models/train_refiner.py first", file=sys.stderr
        )
        return 2
    export(args.src, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
