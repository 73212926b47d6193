"""Refiner speed: ONNX Runtime latency per tile by batch size, sampler cost per demo study, and a
projection of GPU throughput from the model's arithmetic.

    .venv/bin/python benchmarks/bench_refiner.py                 # CPU
    .venv/bin/python benchmarks/bench_refiner.py --provider cuda # on a GPU host (onnxruntime-gpu)
    .venv/bin/python benchmarks/bench_refiner.py --model texture/texture.onnx  # a lesion-texture model

Reports, never asserts: these machines are noisy. The GPU projection is arithmetic only
(convolution MACs of one tile × tiles/s at an assumed sustained fraction of the device's peak);
a real CUDA measurement replaces it when run with ``--provider cuda``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from longisynth.refine.model import DEFAULT_MODEL, OnnxRefiner, RefinerStatus
from longisynth.refine.patches import TILE

BATCHES = (1, 4, 16, 64)
# H200 (SXM): ≈ 67 TFLOP/s FP32 dense. 3D convolutions with 4–32 channels reach a small fraction
# of that; 10 % is the assumption behind the projection (stated in the output).
GPU_PEAK_FP32_TFLOPS = 67.0
GPU_ASSUMED_EFFICIENCY = 0.10


def conv_macs_per_tile(path: Path) -> int:
    """Multiply–accumulates of every Conv node for one tile (shape inference on the exported graph)."""
    import onnx
    from onnx import shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(path)))
    shapes: dict[str, list[int]] = {}
    for v in [*model.graph.value_info, *model.graph.output, *model.graph.input]:
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in v.type.tensor_type.shape.dim]
        shapes[v.name] = dims
    weights = {w.name: list(w.dims) for w in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        w = weights.get(node.input[1])
        out = shapes.get(node.output[0])
        if w is None or out is None:
            continue
        total += int(np.prod(out[1:])) * int(np.prod(w[1:]))
    return total


def latency(model: OnnxRefiner, repeat: int) -> list[tuple[int, float, float]]:
    """(batch, median ms per call, ms per tile) for each batch size."""
    rng = np.random.default_rng(0)
    rows = []
    for b in BATCHES:
        x = rng.standard_normal((b, 4, TILE, TILE, TILE)).astype(np.float32)
        t = rng.integers(0, 300, b).astype(np.int64)
        model(x, t)  # warm-up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            model(x, t)
            times.append(time.perf_counter() - t0)
        med = float(np.median(times)) * 1000
        rows.append((b, med, med / b))
    return rows


def demo_costs(path: Path) -> list[tuple[str, float, int, int]]:
    """(kind, refine stage s, tile evaluations, region voxels of the last timepoint) per demo the
    model applies to (a model trained on CT lesions skips the glioma demo)."""
    import longisynth
    from longisynth.demo import demo_input
    from longisynth.refine.hand_off import model_modality

    out = []
    for kind in ("lung", "glioma"):
        counter = _Counter(path)
        if model_modality(counter.model) not in (None, "ct" if kind == "lung" else "mr"):
            continue
        d = demo_input(kind)
        study = longisynth.generate(d.scans, d.prompt, seed=0, brain_tissues=d.brain_tissues, refiner=counter)
        out.append(
            (
                kind,
                study.timings_s.get("refine", 0.0),
                counter.tiles,
                study.extra["refiner"]["band_voxels"][-1],
            )
        )
    return out


class _Counter:
    """Wraps a model and counts the tiles it sees."""

    def __init__(self, path: Path) -> None:
        self.model = OnnxRefiner(path)
        self.tiles = 0

    def status(self) -> RefinerStatus:
        return self.model.status()

    def __call__(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        self.tiles += len(x)
        return self.model(x, t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-demo", action="store_true", help="skip the per-study sampler costs")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX model with its card")
    args = parser.parse_args()
    providers = ["CPUExecutionProvider"] if args.provider == "cpu" else ["CUDAExecutionProvider"]
    model = OnnxRefiner(args.model, providers=providers)
    sampler = model.card.get("sampler", {})
    print(
        f"model {model.name} ({args.model.stat().st_size / 1e6:.2f} MB), provider {model.provider}, "
        f"{platform.machine()} {platform.processor() or ''}".strip()
    )
    print(f"sampler: {sampler or 'engine defaults'}")
    macs = conv_macs_per_tile(args.model)
    print(f"convolution work per {TILE}³ tile: {macs / 1e6:.0f} M multiply-accumulates\n")
    print("| batch | ms per call | ms per tile | tiles/s | speed-up per tile vs batch 1 |")
    print("|---|---|---|---|---|")
    rows = latency(model, args.repeat)
    base = rows[0][2]
    for b, call, tile in rows:
        print(f"| {b} | {call:.1f} | {tile:.2f} | {1000 / tile:.0f} | {base / tile:.2f} |")
    best = min(r[2] for r in rows)
    achieved = 2 * macs / (best / 1000) / 1e9
    print(f"\nachieved: {achieved:.1f} GFLOP/s ({model.provider})")
    gpu_tiles = GPU_PEAK_FP32_TFLOPS * 1e12 * GPU_ASSUMED_EFFICIENCY / (2 * macs)
    print(
        f"GPU projection (H200, {GPU_ASSUMED_EFFICIENCY:.0%} of {GPU_PEAK_FP32_TFLOPS:.0f} TFLOP/s FP32): "
        f"≈ {gpu_tiles:.0f} tiles/s = {gpu_tiles * best / 1000:.0f}× this run's best"
    )
    if not args.no_demo:
        print("\n| demo study | refine stage (s) | tile evaluations | region voxels (last timepoint) |")
        print("|---|---|---|---|")
        for kind, seconds, tiles, band in demo_costs(args.model):
            print(f"| {kind} | {seconds:.1f} | {tiles} | {band} |")


if __name__ == "__main__":
    main()
