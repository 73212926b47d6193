"""The output folder: where each case's files go, atomic writes, and done markers.

A case is *finished* when its marker ``cases/<case_id>.done.json`` exists, belongs to the same
design (fingerprint), covers the requested formats, and every file it lists still has the
sha256 it records. Every file is written under a temporary name and renamed into place, and
the marker is written last, so a killed run never leaves a half-written case that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from longisynth import __version__

TMP_SUFFIX = ".part"
MARKER_VERSION = 1


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and a rename (all or nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_json(path: Path, data: Any) -> None:
    atomic_write(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Layout:
    """Paths of one dataset run, relative to the output folder ``root``."""

    def __init__(self, root: Path | str, dataset_name: str, dataset_id: int) -> None:
        self.root = Path(root)
        self.nnunet_dir = f"nnunet/Dataset{dataset_id:03d}_{dataset_name}"

    def bundle(self, case_id: str) -> str:
        return f"cases/{case_id}.zip"

    def marker(self, case_id: str) -> str:
        return f"cases/{case_id}.done.json"

    def error(self, case_id: str) -> str:
        return f"cases/{case_id}.error.json"

    def case_outputs(self, case_id: str) -> list[tuple[str, str]]:
        """(folder, glob) pairs holding every file of a case in any format."""
        return [
            ("cases", f"{case_id}.zip"),
            (f"{self.nnunet_dir}/imagesTr", f"{case_id}_*"),
            (f"{self.nnunet_dir}/labelsTr", f"{case_id}_*"),
            ("monai/images", f"{case_id}_*"),
            ("monai/labels", f"{case_id}_*"),
            ("bids", f"sub-{case_id}"),
            ("bids/derivatives/longisynth", f"sub-{case_id}"),
            ("dicom", case_id),
        ]

    def clear_case(self, case_id: str) -> None:
        """Remove the marker, error record and every output of a case (before redoing it)."""
        for rel in (self.marker(case_id), self.error(case_id)):
            (self.root / rel).unlink(missing_ok=True)
        for folder, pattern in self.case_outputs(case_id):
            for p in (self.root / folder).glob(pattern):
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)

    def remove_temporaries(self) -> int:
        """Delete temporary files left by a killed run; returns how many."""
        n = 0
        for p in self.root.rglob(f".*{TMP_SUFFIX}"):
            p.unlink(missing_ok=True)
            n += 1
        return n


def write_marker(
    layout: Layout,
    case_id: str,
    fingerprint: str,
    formats: Iterable[str],
    files: list[str],
    row: dict[str, Any],
) -> None:
    """Record a finished case: its files with their sha256 and its manifest row (written last)."""
    marker = {
        "version": MARKER_VERSION,
        "case_id": case_id,
        "fingerprint": fingerprint,
        "longisynth": __version__,
        "formats": sorted(set(formats)),
        "files": {rel: sha256_file(layout.root / rel) for rel in sorted(files)},
        "row": row,
    }
    atomic_json(layout.root / layout.marker(case_id), marker)


def read_marker(layout: Layout, case_id: str) -> dict[str, Any] | None:
    path = layout.root / layout.marker(case_id)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == MARKER_VERSION else None


def marker_is_valid(layout: Layout, marker: dict[str, Any], fingerprint: str) -> bool:
    """Same design and software version, and every listed file present with the recorded sha256."""
    if marker.get("fingerprint") != fingerprint or marker.get("longisynth") != __version__:
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for rel, digest in files.items():
        path = layout.root / rel
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return True
