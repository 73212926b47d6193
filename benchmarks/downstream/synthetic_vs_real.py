"""Train on synthetic, test on real: does a segmenter trained on longisynth lesions work on real ones?

    python benchmarks/downstream/synthetic_vs_real.py --family lung   --real ../shared/data/lidc_nodules
    python benchmarks/downstream/synthetic_vs_real.py --family glioma --real ../shared/data/brats2018
    python benchmarks/downstream/synthetic_vs_real.py --family lung --real MY_TRAIN --real-test MY_TEST

The same small MONAI 3D U-Net (:mod:`common`) is trained three ways with the same steps, batch and
seed — (a) **synthetic** lesions only, grown by ``longisynth.generate`` on healthy hosts; (b) **real**
lesions only; (c) **both** — and tested on real lesions that none of them saw:

* ``--real DIR`` holds real lesions with expert masks (``lidc_nodules`` layout for lung, BraTS
  layout for glioma). Without ``--real-test`` it is split by patient: lung, a seeded 60/40 split of
  patients; glioma, two folds of the cases (each case tested once, by a network that never saw it).
* ``--real-test DIR`` (same layout) is a separate test set; all of ``--real`` then trains.

Reported: Dice on each real test lesion (lung: the nodule on a 32×32×16 patch at 0.8×0.8×2 mm cut
like the LIDC-IDRI crops, see :mod:`lung`; glioma: whole tumour and tumour core on the whole brain at
2 mm, see :mod:`glioma`), mean ± sd, and lesion-level sensitivity (Dice ≥ 0.1). Seeded; prints a
Markdown table and writes it with the run's settings to ``--markdown``. Needs ``pip install -e
'.[train]'``; the real data are never downloaded: bring them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import platform
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]  # benchmarks/ (realism_sets) and the repo

from downstream import glioma as gl  # noqa: E402
from downstream import lung as lu  # noqa: E402
from downstream.common import (  # noqa: E402
    DETECTED_DICE,
    NetConfig,
    Sample,
    dice,
    log_stderr,
    predict,
    split_groups,
    summarise,
    train,
)

ARMS = ("synthetic", "real", "both")


def _cached(path: Path | None, make: Any) -> Any:
    if path is not None and path.is_file():
        log_stderr(f"  reusing {path}")
        with open(path, "rb") as fh:
            return pickle.load(fh)
    value = make()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(value, fh)
    return value


# --- lung ------------------------------------------------------------------------------------------


def _refiner_tag() -> str:
    """Cache-key part for the learned model the synthetic arm runs with (none by default)."""
    from longisynth.refine.model import MODEL_ENV

    value = os.environ.get(MODEL_ENV, "")
    if not value or value == "off":
        return ""
    digest = hashlib.sha256(Path(value).read_bytes() + Path(value).with_suffix(".json").read_bytes())
    return f"_refiner{digest.hexdigest()[:10]}"


def _refiner_label() -> str:
    """The learned model of the synthetic arm, as the settings line states it."""
    from longisynth.refine.model import MODEL_ENV

    value = os.environ.get(MODEL_ENV, "")
    if not value or value == "off":
        return "none (rules only, the engine's default)"
    card = json.loads(Path(value).with_suffix(".json").read_text())
    return f"{card.get('name', Path(value).stem)}, sampler {card.get('sampler', {})}"


def lung_config(steps: int) -> NetConfig:
    return NetConfig(
        in_channels=1, classes=2, patch=lu.PATCH, channels=(16, 32, 64, 128), batch=16, steps=steps
    )


def run_lung(
    args: argparse.Namespace, times: dict[str, float]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    t = time.perf_counter()
    real = lu.real_samples(args.real)
    if args.real_test is not None:
        train_real, test = real, lu.real_samples(args.real_test)
    else:
        train_groups, _ = split_groups([s.group for s in real], 0.4, args.seed)
        train_real = [s for s in real if s.group in train_groups]
        test = [s for s in real if s.group not in train_groups]
    times["real data"] = time.perf_counter() - t
    t = time.perf_counter()
    library = None
    if args.library:
        library = _training_library(args, {s.group for s in test})
    tag = ("_library" if library is not None else "") + _refiner_tag()
    cache = (
        None
        if args.work is None
        else args.work / f"lung_synthetic{tag}_{args.per_host}x{args.phantoms}_{args.seed}.pkl"
    )
    synthetic = _cached(cache, lambda: lu.synthetic_samples(args.per_host, args.phantoms, args.seed, library))
    times["synthetic data"] = time.perf_counter() - t
    cfg = lung_config(args.steps)
    rows = []
    for arm, samples in (("synthetic", synthetic), ("real", train_real), ("both", [*synthetic, *train_real])):
        if arm not in args.arms:
            continue
        log_stderr(f"  training on {arm}: {len(samples)} samples, {cfg.steps} steps")
        t = time.perf_counter()
        net = train(samples, cfg, args.seed, log_stderr)
        times[f"train {arm}"] = time.perf_counter() - t
        scores = [dice(predict(net, s.image, cfg.patch) > 0, s.labels > 0) for s in test]
        row: dict[str, Any] = {"arm": arm, "n_train": len(samples), "dice": scores}
        for kind in ("solid", "part-solid", "ground-glass"):
            row[f"dice {kind}"] = [d for d, s in zip(scores, test, strict=True) if s.info.get("type") == kind]
        rows.append(row)
    setting = {
        "test lesions": len(test),
        "test patients": len({s.group for s in test}),
        "real training lesions": len(train_real),
        "real training patients": len({s.group for s in train_real}),
        "synthetic training lesions": len(synthetic),
        "synthetic hosts": len({s.group for s in synthetic}),
        "network": f"MONAI UNet {cfg.channels}, patch {cfg.patch}, batch {cfg.batch}, {cfg.steps} steps",
        "learned model": _refiner_label(),
    }
    return rows, setting


def _training_library(args: argparse.Namespace, test_patients: set[str]) -> Any:
    """A lesion library of the real training nodules only (the test patients left out), built
    in ``--work`` (or a temporary folder)."""
    import tempfile

    from longisynth.library import Library, build_library

    work = args.work or Path(tempfile.mkdtemp(prefix="longisynth_lib_"))
    root = work / f"library_train_{args.seed}"
    if not (root / "index.jsonl").is_file():
        cases = {p.name.split(".nii")[0] for p in (args.real / "image").glob("*.nii*")}
        excluded = frozenset(c for c in cases if c.rsplit("_R_", 1)[0] in test_patients)
        build_library(args.real, root, exclude_cases=excluded)
    library = Library.open(root)
    leaked = {e.source_case.rsplit("_R_", 1)[0] for e in library.entries} & test_patients
    assert not leaked, f"test patients in the library: {sorted(leaked)}"
    log_stderr(f"  library of {len(library.entries)} training nodules (test patients excluded)")
    return library


def lung_table(rows: list[dict[str, Any]]) -> str:
    kinds = ("solid", "part-solid", "ground-glass")
    counts = [len(rows[0][f"dice {kind}"]) for kind in kinds]
    lines = [
        "| trained on | training lesions | Dice, real test nodules | sensitivity | "
        + " | ".join(f"{kind} (n = {n})" for kind, n in zip(kinds, counts, strict=True))
        + " |",
        "|---|---:|---|---:|---|---|---|",
    ]
    for r in rows:
        sens = float(np.mean(np.asarray(r["dice"]) >= DETECTED_DICE))
        lines.append(
            f"| {r['arm']} | {r['n_train']} | {summarise(r['dice'])} | {sens:.2f} "
            + "".join(f"| {summarise(r[f'dice {kind}'])} " for kind in kinds)
            + "|"
        )
    return "\n".join(lines)


# --- glioma ----------------------------------------------------------------------------------------


def glioma_config(steps: int) -> NetConfig:
    return NetConfig(
        in_channels=len(gl.CONTRASTS),
        classes=4,
        patch=(48, 48, 48),
        channels=(8, 16, 32, 64),
        batch=2,
        steps=steps,
    )


def _folds(cases: Sequence[Path], seed: int) -> list[tuple[list[Path], list[Path]]]:
    """Two folds over the cases: every case tested once by a network that never saw it."""
    a, b = split_groups([c.name for c in cases], 0.5, seed)
    first = [c for c in cases if c.name in a]
    second = [c for c in cases if c.name in b]
    return [(first, second), (second, first)]


def run_glioma(
    args: argparse.Namespace, times: dict[str, float]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    t = time.perf_counter()
    cases = gl.brats_cases(args.real)
    folds = (
        [(cases, gl.brats_cases(args.real_test))] if args.real_test is not None else _folds(cases, args.seed)
    )
    real = {c.name: gl.real_sample(c) for c in {*cases, *(x for _, te in folds for x in te)}}
    times["real data"] = time.perf_counter() - t
    if args.library:
        return _run_glioma_library(args, folds, real, times)
    t = time.perf_counter()
    synthetic_by_case: dict[str, list[Sample]] = {}
    prompts: list[str] = []
    for case in cases:
        key = (
            None
            if args.work is None
            else args.work / f"glioma_synthetic_{case.name}{_refiner_tag()}_{args.seed}.pkl"
        )
        case_rng = np.random.default_rng([args.seed, zlib.crc32(case.name.encode())])
        samples, prompt = _cached(key, lambda c=case, r=case_rng: gl.synthetic_on_brats(c, r))
        synthetic_by_case[case.name] = samples
        prompts.append(f"{case.name}: {prompt}")
        log_stderr(f"  {case.name}: {prompt} ({len(samples)} samples)")
    phantom: list[Sample] = []
    for k in range(args.phantoms):
        key = (
            None
            if args.work is None
            else args.work / f"glioma_synthetic_mni152_{k}{_refiner_tag()}_{args.seed}.pkl"
        )
        samples, prompt = _cached(
            key, lambda k=k: gl.synthetic_on_phantom(k, np.random.default_rng([args.seed, k]))
        )
        phantom += samples
        prompts.append(f"mni152 seed {k}: {prompt}")
    times["synthetic data"] = time.perf_counter() - t
    cfg = glioma_config(args.steps)
    results: dict[str, dict[str, list[float]]] = {arm: {"wt": [], "tc": [], "n_train": []} for arm in ARMS}
    for k, (train_cases, test_cases) in enumerate(folds):
        synthetic = [s for c in train_cases for s in synthetic_by_case.get(c.name, [])] + phantom
        train_real = [real[c.name] for c in train_cases]
        fold = f"fold {k + 1}/{len(folds)}"
        _glioma_fold(
            fold,
            args.seed + k,
            synthetic,
            train_real,
            [real[c.name] for c in test_cases],
            cfg,
            times,
            results,
            args.arms,
        )
    return _glioma_report(results, folds, prompts, cfg, "synthetic studies")


def _run_glioma_library(
    args: argparse.Namespace,
    folds: list[tuple[list[Path], list[Path]]],
    real: dict[str, Sample],
    times: dict[str, float],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The glioma arms with library lesions: per fold, a library of the *training* brains' tumours
    only; each training brain receives another training brain's tumour in its free hemisphere, and
    the phantom brains random ones. The test brains' tumours are in no library."""
    import tempfile

    from longisynth.library import Library, build_library

    work = args.work or Path(tempfile.mkdtemp(prefix="longisynth_lib_"))
    cfg = glioma_config(args.steps)
    results: dict[str, dict[str, list[float]]] = {arm: {"wt": [], "tc": [], "n_train": []} for arm in ARMS}
    prompts: list[str] = []
    for k, (train_cases, test_cases) in enumerate(folds):
        t = time.perf_counter()
        root = work / f"glioma_library_fold{k}_{args.seed}"
        if not (root / "index.jsonl").is_file():
            src = work / f"glioma_library_fold{k}_src"
            src.mkdir(parents=True, exist_ok=True)
            for c in train_cases:
                if not (src / c.name).exists():
                    (src / c.name).symlink_to(c.resolve())
            build_library(src, root)
        library = Library.open(root)
        ids = {e.source_case: e.id for e in library.entries}
        assert not set(ids) & {c.name for c in test_cases}, "a test brain's tumour is in the library"
        rng = np.random.default_rng([args.seed, k])
        synthetic: list[Sample] = []
        for case in train_cases:
            donors = sorted(n for n in ids if n != case.name) or sorted(ids)
            donor = donors[int(rng.integers(len(donors)))]
            key = work / f"glioma_library_syn_{case.name}_fold{k}_{args.seed}.pkl"
            samples, prompt = _cached(
                key, lambda c=case, r=rng, lib=library, lid=ids[donor]: gl.synthetic_on_brats(c, r, lib, lid)
            )
            synthetic += samples
            prompts.append(f"fold {k + 1} {case.name} ← {donor}: {prompt}")
        for p in range(args.phantoms):
            donor = sorted(ids)[int(rng.integers(len(ids)))]
            key = work / f"glioma_library_syn_mni152_{p}_fold{k}_{args.seed}.pkl"
            phantom_rng = np.random.default_rng([args.seed, k, p])
            samples, prompt = _cached(
                key,
                lambda p=p, r=phantom_rng, lib=library, lid=ids[donor]: gl.synthetic_on_phantom(
                    p, r, lib, lid
                ),
            )
            synthetic += samples
            prompts.append(f"fold {k + 1} mni152 seed {p} ← {donor}: {prompt}")
        times["synthetic data"] = times.get("synthetic data", 0.0) + time.perf_counter() - t
        train_real = [real[c.name] for c in train_cases]
        fold = f"fold {k + 1}/{len(folds)}"
        _glioma_fold(
            fold,
            args.seed + k,
            synthetic,
            train_real,
            [real[c.name] for c in test_cases],
            cfg,
            times,
            results,
            args.arms,
        )
    return _glioma_report(
        results, folds, prompts, cfg, "synthetic studies (library lesions of the training brains only)"
    )


def _glioma_report(
    results: dict[str, dict[str, list[float]]],
    folds: list[tuple[list[Path], list[Path]]],
    prompts: list[str],
    cfg: NetConfig,
    what: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of the arms that ran and the run's settings (``what``: how the studies are named)."""
    rows = [{"arm": arm, **results[arm]} for arm in ARMS if results[arm]["wt"]]
    setting = {
        "test brains": sum(len(te) for _, te in folds),
        "folds": len(folds),
        what: "; ".join(prompts),
        "network": f"MONAI UNet {cfg.channels}, patch {cfg.patch}, batch {cfg.batch}, "
        f"{cfg.steps} steps per fold",
        "learned model": _refiner_label(),
    }
    return rows, setting


def _glioma_fold(
    fold: str,
    seed: int,
    synthetic: list[Sample],
    train_real: list[Sample],
    test: list[Sample],
    cfg: NetConfig,
    times: dict[str, float],
    results: dict[str, dict[str, list[float]]],
    arms: Sequence[str] = ARMS,
) -> None:
    """Train the arms (default all three) of one fold; append their whole-tumour and core Dice on ``test``."""
    for arm, samples in (("synthetic", synthetic), ("real", train_real), ("both", [*synthetic, *train_real])):
        if arm not in arms:
            continue
        log_stderr(f"  {fold}, training on {arm}: {len(samples)} samples, {cfg.steps} steps")
        t = time.perf_counter()
        net = train(samples, cfg, seed, log_stderr)
        times[f"train {arm}"] = times.get(f"train {arm}", 0.0) + time.perf_counter() - t
        for s in test:
            pred = predict(net, s.image, cfg.patch)
            results[arm]["wt"].append(dice(pred > 0, s.labels > 0))
            results[arm]["tc"].append(dice(np.isin(pred, (1, 3)), np.isin(s.labels, (1, 3))))
        results[arm]["n_train"].append(len(samples))


def glioma_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| trained on | training volumes per fold | Dice whole tumour | Dice tumour core | sensitivity |",
        "|---|---|---|---|---:|",
    ]
    for r in rows:
        sens = float(np.mean(np.asarray(r["wt"]) >= DETECTED_DICE))
        n = " / ".join(str(int(v)) for v in r["n_train"])
        lines.append(f"| {r['arm']} | {n} | {summarise(r['wt'])} | {summarise(r['tc'])} | {sens:.2f} |")
    return "\n".join(lines)


# --- entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", required=True, choices=("lung", "glioma"))
    p.add_argument("--real", required=True, type=Path, help="real lesions with expert masks (trains arm b/c)")
    p.add_argument("--real-test", type=Path, help="a separate real test set in the same layout")
    p.add_argument(
        "--steps", type=int, default=None, help="training steps per arm (lung 2000, glioma 1000 per fold)"
    )
    p.add_argument("--per-host", type=int, default=8, help="lung: synthetic studies per host (default 8)")
    p.add_argument("--phantoms", type=int, default=None, help="phantom hosts (lung 6, glioma 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=None, help="cache synthetic samples here (reruns reuse them)")
    p.add_argument("--markdown", type=Path, default=None, help="write the table and settings here")
    p.add_argument(
        "--arms",
        nargs="+",
        choices=ARMS,
        default=list(ARMS),
        help="train only these arms (default all three; --arms synthetic compares synthetic sets)",
    )
    p.add_argument(
        "--library",
        action="store_true",
        help="the synthetic arm copies real lesions from a library of the real training patients / brains",
    )
    p.add_argument(
        "--refiner",
        type=Path,
        default=None,
        help="run the synthetic arm with this learned model (ONNX with its card; e.g. a lesion-texture "
        "model) instead of the engine's default (off)",
    )
    args = p.parse_args(argv)
    if args.refiner is not None:
        from longisynth.refine.model import MODEL_ENV

        if not args.refiner.is_file() or not args.refiner.with_suffix(".json").is_file():
            print(f"error: {args.refiner}: no model with its .json card there", file=sys.stderr)
            return 2
        os.environ[MODEL_ENV] = str(args.refiner.resolve())
    for folder in (args.real, args.real_test):
        if folder is not None and not folder.is_dir():
            print(f"error: {folder} is not a folder", file=sys.stderr)
            return 2
    args.steps = args.steps or (2000 if args.family == "lung" else 1000)
    if args.phantoms is None:
        args.phantoms = 6 if args.family == "lung" else 3
    t0 = time.perf_counter()
    times: dict[str, float] = {}
    try:
        if args.family == "lung":
            rows, setting = run_lung(args, times)
            table = lung_table(rows)
        else:
            rows, setting = run_glioma(args, times)
            table = glioma_table(rows)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    times["total"] = time.perf_counter() - t0
    info = "; ".join(f"{k}: {v}" for k, v in setting.items())
    clock = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    machine = f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores, torch threads 2"
    text = (
        f"`--family {args.family} --real {args.real}`"
        + (f" `--real-test {args.real_test}`" if args.real_test else "")
        + (" `--library`" if args.library else "")
        + f", seed {args.seed}; {machine}.\n\n{info}.\n\n{table}\n\nTimes: {clock}.\n"
    )
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
