"""nnU-Net v2 raw-dataset writing (``imagesTr``, ``labelsTr``, ``dataset.json``, ``splits_final.json``).

Same layout, labels, channel names and channel order as the dataset tool's nnU-Net export
(``longisynth dataset run --format nnunet``), so bundles can be added to a folder it made: each
timepoint is a case ``<case>_tp<NN>``, and ``splits_final.json`` (5 folds that never split a case)
is recomputed over everything in ``labelsTr`` after each bundle, keeping the dataset tool's groups
(``dataset.json`` → ``validation_groups``: cases made from one source scan stay together).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from longisynth_client._folds import N_FOLDS, case_of, group_of, nnunet_splits
from longisynth_client._format import CHANNEL_NAMES

FILE_ENDING = ".nii.gz"
SPLITS = "splits_final.json"
CASE_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def channel_name(contrast: str) -> str:
    """nnU-Net channel name (the bundle format's table): ``CT`` selects nnU-Net's CT normalisation;
    MR contrasts (``T1``, ``T1c``, ``T2``, ``FLAIR``) get z-scoring."""
    return CHANNEL_NAMES.get(contrast.lower(), contrast.upper())


def identifier(case: str, index: int) -> str:
    """nnU-Net identifier of timepoint ``index`` of ``case`` (``case00042_tp01``), as the dataset tool."""
    return f"{case}_tp{index:02d}"


def check_case_prefix(case_prefix: str) -> None:
    """Raise ``ValueError`` (one line) for a prefix that is not a plain file-name word."""
    if not CASE_PREFIX.fullmatch(case_prefix) or case_of(f"{case_prefix}_tp00") != case_prefix:
        raise ValueError(
            f"case_prefix {case_prefix!r}: use letters, digits, '_' and '-' (starting with a letter or digit)"
        )


def _load_dataset_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg}); fix or remove it") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object; fix or remove it")
    return data


def _check_free(root: Path, case: str, label_maps: dict[str, bytes]) -> None:
    """Refuse to overwrite another bundle's images: ``case``'s existing labels must be these bytes."""
    existing = sorted((root / "labelsTr").glob(f"{case}_tp*{FILE_ENDING}"))
    for path in existing:
        if case_of(path.name.removesuffix(FILE_ENDING)) != case:
            continue
        if label_maps.get(path.name) != path.read_bytes():
            raise ValueError(
                f"{root}: case {case!r} already holds another bundle's images (labelsTr/{path.name}); "
                "pass another case_prefix"
            )


def label_identifiers(root: Path) -> list[str]:
    """The nnU-Net identifiers of ``root/labelsTr`` (file names without ``.nii.gz``), sorted."""
    names = (p.name for p in (root / "labelsTr").iterdir())
    return sorted(n.removesuffix(FILE_ENDING) for n in names if n.endswith(FILE_ENDING))


def write_splits(root: Path, dataset: dict[str, Any]) -> list[dict[str, list[str]]]:
    """(Re)write ``root/splits_final.json`` over every label in ``labelsTr``; return the splits."""
    identifiers = label_identifiers(root)
    groups = dataset.get("validation_groups") or {}
    splits = nnunet_splits(identifiers, groups)
    (root / SPLITS).write_text(json.dumps(splits, indent=2) + "\n")
    return splits


def _notes(identifiers: list[str], groups: dict[str, str]) -> list[str]:
    n = len({group_of(i, groups) for i in identifiers})
    notes = [
        f"{SPLITS}: {N_FOLDS} folds over {n} group(s) ({min(n, N_FOLDS)} distinct); "
        "a case's timepoints are never split"
    ]
    if n == 1:
        notes.append("one case: every fold trains and validates on all images (like fold 'all')")
    elif n < N_FOLDS:
        notes.append(f"only {n} groups for {N_FOLDS} folds: fold f repeats the split of fold f mod {n}")
    return notes


def write_nnunet(
    root: Path,
    contrasts: list[str],
    labels: dict[str, int],
    case: str,
    images: dict[str, bytes],
    label_maps: dict[str, bytes],
) -> Path:
    """Write ``images`` into ``imagesTr`` and ``label_maps`` into ``labelsTr`` (the timepoints of
    ``case``), (re)write ``dataset.json`` (merging an existing one) and ``splits_final.json``.
    Returns ``root``.

    Raises:
        ValueError: the folder's channels, labels or file ending differ from this bundle's, or
            ``case`` already holds another bundle's images; nothing is written.
    """
    channels = {str(i): channel_name(c) for i, c in enumerate(contrasts)}
    path = root / "dataset.json"
    existing = _load_dataset_json(path)
    for key, ours in (("channel_names", channels), ("labels", labels)):
        if key in existing and existing[key] != ours:
            raise ValueError(
                f"{path}: {key} {existing[key]} differ from this bundle's {ours}; "
                "export it into another DatasetNNN_Name folder"
            )
    if existing.get("file_ending", FILE_ENDING) != FILE_ENDING:
        raise ValueError(f"{path}: file_ending {existing['file_ending']!r} is not {FILE_ENDING!r}")
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    _check_free(root, case, label_maps)
    for name, data in images.items():
        (root / "imagesTr" / name).write_bytes(data)
    for name, data in label_maps.items():
        (root / "labelsTr" / name).write_bytes(data)
    identifiers = label_identifiers(root)
    groups = existing.get("validation_groups") or {}
    dataset = {
        "name": root.name,
        **existing,
        "channel_names": channels,
        "labels": labels,
        "numTraining": len(identifiers),
        "file_ending": FILE_ENDING,
        "validation_notes": _notes(identifiers, groups),
    }
    path.write_text(json.dumps(dataset, indent=2) + "\n")
    write_splits(root, dataset)
    return root
