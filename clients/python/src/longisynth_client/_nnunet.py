"""nnU-Net v2 raw-dataset writing (``imagesTr``, ``labelsTr``, ``dataset.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longisynth_client._format import CHANNEL_NAMES

FILE_ENDING = ".nii.gz"


def channel_name(contrast: str) -> str:
    """nnU-Net channel name (the bundle format's table): ``CT`` selects nnU-Net's CT normalisation;
    MR contrasts (``T1``, ``T1c``, ``T2``, ``FLAIR``) get z-scoring."""
    return CHANNEL_NAMES.get(contrast.lower(), contrast.upper())


def write_nnunet(
    root: Path,
    contrasts: list[str],
    labels: dict[str, int],
    images: dict[str, bytes],
    label_maps: dict[str, bytes],
) -> Path:
    """Write ``images`` into ``imagesTr``, ``label_maps`` into ``labelsTr`` and (re)write
    ``dataset.json``, merging an existing one. Returns ``root``."""
    channels = {str(i): channel_name(c) for i, c in enumerate(contrasts)}
    path = root / "dataset.json"
    existing: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for key, ours in (("channel_names", channels), ("labels", labels)):
        if key in existing and existing[key] != ours:
            raise ValueError(f"{path}: {key} {existing[key]} differ from this bundle's {ours}")
    if existing.get("file_ending", FILE_ENDING) != FILE_ENDING:
        raise ValueError(f"{path}: file_ending {existing['file_ending']!r} is not {FILE_ENDING!r}")
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        (root / "imagesTr" / name).write_bytes(data)
    for name, data in label_maps.items():
        (root / "labelsTr" / name).write_bytes(data)
    n_cases = sum(1 for p in (root / "labelsTr").iterdir() if p.name.endswith(FILE_ENDING))
    dataset = {
        "name": root.name,
        **existing,
        "channel_names": channels,
        "labels": labels,
        "numTraining": n_cases,
        "file_ending": FILE_ENDING,
    }
    path.write_text(json.dumps(dataset, indent=2) + "\n")
    return root
