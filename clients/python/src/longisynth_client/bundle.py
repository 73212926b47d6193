"""A result bundle: the zip returned by ``/generate``, ``/generate/demo`` and ``/jobs/{id}/result``.

Layout (written by the engine): ``metadata.json``, ``timepoint_NN/<contrast>.nii.gz``,
``timepoint_NN/mask.nii.gz``, ``timepoint_NN/displacement.nii.gz`` and ``preview.png``.
Reading images as arrays needs the ``numpy`` extra (``pip install 'longisynth-client[numpy]'``);
everything else (metadata, :meth:`Bundle.save`, :meth:`Bundle.to_nnunet`) does not.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from longisynth_client._format import CONTRASTS, LABEL_KEYS
from longisynth_client._nnunet import check_case_prefix, identifier, write_nnunet

__all__ = ["Bundle", "Timepoint"]

NON_IMAGE_FILES = frozenset({"mask.nii.gz", "displacement.nii.gz"})
NIFTI1_HEADER_BYTES = 348


@dataclass(frozen=True)
class Timepoint:
    """One scan of the simulated series (``metadata.json`` → ``timepoints[i]``)."""

    index: int
    days: float
    files: tuple[str, ...]
    lesion_volume_mm3: float | None
    longest_diameter_mm: float | None
    centroid_mm: tuple[float, ...] | None


def _numpy_nibabel() -> tuple[Any, Any]:
    try:
        import nibabel
        import numpy
    except ImportError as exc:
        raise ImportError(
            "reading bundle images as arrays needs numpy and nibabel: pip install 'longisynth-client[numpy]'"
        ) from exc
    return numpy, nibabel


def unsafe_member(name: str) -> bool:
    """A zip member name that would escape the target folder (absolute, drive, or ``..``)."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return True
    return any(part == ".." for part in norm.split("/"))


class Bundle:
    """A bundle held in memory.

    Args:
        data: the zip bytes.
        filename: the name the server gave it (``Content-Disposition``).
    """

    def __init__(self, data: bytes, filename: str = "longisynth-bundle.zip") -> None:
        self.bytes = bytes(data)
        self.filename = filename
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(self.bytes))
        except zipfile.BadZipFile as exc:
            raise ValueError(f"not a bundle: the response body is not a zip ({len(data)} bytes)") from exc

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Bundle:
        """Open a bundle saved as a zip file."""
        p = Path(path)
        return cls(p.read_bytes(), filename=p.name)

    def __repr__(self) -> str:
        return f"Bundle({self.filename!r}, {len(self.bytes)} bytes, {len(self.timepoints)} timepoints)"

    @property
    def names(self) -> list[str]:
        """Member names of the zip."""
        return self._zip.namelist()

    def read(self, member: str) -> bytes:
        """Raw bytes of one member (e.g. ``"preview.png"``)."""
        return self._zip.read(member)

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """``metadata.json`` (resolved spec, seed, input summary, labels, timepoints, checks...)."""
        meta = json.loads(self._zip.read("metadata.json"))
        if not isinstance(meta, dict):
            raise ValueError("metadata.json is not a JSON object")
        return meta

    @cached_property
    def timepoints(self) -> list[Timepoint]:
        """The timepoints, in order."""
        out = []
        for tp in self.metadata.get("timepoints", []):
            centroid = tp.get("centroid_mm")
            out.append(
                Timepoint(
                    index=int(tp["index"]),
                    days=float(tp.get("days", 0.0)),
                    files=tuple(tp.get("files", [])),
                    lesion_volume_mm3=tp.get("lesion_volume_mm3"),
                    longest_diameter_mm=tp.get("longest_diameter_mm"),
                    centroid_mm=tuple(float(c) for c in centroid) if centroid is not None else None,
                )
            )
        return out

    @cached_property
    def contrasts(self) -> list[str]:
        """Image contrasts (``ct``, or ``t1``/``t1c``/``t2``/``flair``) in channel order (ct, t1,
        t1c, t2, flair — whatever order they were uploaded in), so channel k means one thing."""
        from_input = [
            f["contrast"] for f in self.metadata.get("input", {}).get("files", []) if "contrast" in f
        ]
        names = from_input or sorted(
            {
                PurePosixPath(n).name.removesuffix(".nii.gz")
                for n in self.names
                if n.startswith("timepoint_")
                and n.endswith(".nii.gz")
                and PurePosixPath(n).name not in NON_IMAGE_FILES
            }
        )
        return sorted(names, key=lambda c: (CONTRASTS.index(c) if c in CONTRASTS else len(CONTRASTS), c))

    @cached_property
    def labels(self) -> dict[str, int]:
        """Label key → value of the masks (the exports' keys, e.g. ``solid``, ``enhancing_tumor``),
        background 0; for an unknown family, from ``metadata.json`` → ``labels``."""
        family = str((self.metadata.get("spec") or {}).get("family") or "")
        if family in LABEL_KEYS:
            return dict(LABEL_KEYS[family])
        raw = self.metadata.get("labels") or {"0": "background", "1": "lesion"}
        out = {str(name): int(value) for value, name in raw.items()}
        out.pop("background", None)
        return {"background": 0, **dict(sorted(out.items(), key=lambda kv: kv[1]))}

    def member(self, index: int, name: str) -> str:
        """Zip path of ``timepoint_NN/<name>.nii.gz`` (checked to exist)."""
        path = f"timepoint_{index:02d}/{name}.nii.gz"
        if path not in self._zip.NameToInfo:
            raise KeyError(f"{path} not in bundle (contrasts: {', '.join(self.contrasts)})")
        return path

    def nifti(self, member: str) -> Any:
        """One image as a ``nibabel.Nifti1Image`` (needs the ``numpy`` extra)."""
        _, nib = _numpy_nibabel()
        return nib.Nifti1Image.from_bytes(gzip.decompress(self._zip.read(member)))

    def image(self, index: int, contrast: str | None = None) -> Any:
        """The image of timepoint ``index`` as a numpy array (scaled values; first contrast by default)."""
        np, _ = _numpy_nibabel()
        img = self.nifti(self.member(index, contrast or self.contrasts[0]))
        return np.asanyarray(img.dataobj)

    def mask(self, index: int) -> Any:
        """The lesion label map of timepoint ``index`` as a uint8 numpy array."""
        np, _ = _numpy_nibabel()
        return np.asanyarray(self.nifti(self.member(index, "mask")).dataobj).astype(np.uint8, copy=False)

    @cached_property
    def affine(self) -> Any:
        """The 4×4 voxel → RAS+ mm affine shared by every image (numpy array)."""
        _, nib = _numpy_nibabel()
        member = self.member(self.timepoints[0].index if self.timepoints else 0, self.contrasts[0])
        with self._zip.open(member) as raw, gzip.GzipFile(fileobj=raw) as gz:
            header = nib.Nifti1Header.from_fileobj(io.BytesIO(gz.read(NIFTI1_HEADER_BYTES)))
        return header.get_best_affine()

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Extract every file into ``directory`` (created); return it.

        Raises:
            ValueError: a member has an absolute path or ``..`` (zip-slip); nothing is written.
        """
        bad = [n for n in self.names if unsafe_member(n)]
        if bad:
            raise ValueError(f"refusing to extract unsafe zip member(s): {', '.join(bad)}")
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        resolved = root.resolve()
        for info in self._zip.infolist():
            target = (root / info.filename).resolve()
            if not target.is_relative_to(resolved):  # symlinked folders inside root
                raise ValueError(f"refusing to extract {info.filename}: outside {root}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self._zip.read(info))
        return root

    @cached_property
    def case_id(self) -> str:
        """A name for this bundle's case: ``bundle_`` + the first 10 hex digits of the sha256 of its
        ``metadata.json`` (different bundles get different names; the same bundle the same one)."""
        return "bundle_" + hashlib.sha256(self._zip.read("metadata.json")).hexdigest()[:10]

    def to_nnunet(self, dataset_dir: str | os.PathLike[str], case_prefix: str | None = None) -> Path:
        """Add the timepoints to an nnU-Net v2 dataset folder (``DatasetNNN_Name``); return it.

        The layout is the dataset tool's (``longisynth dataset run --format nnunet``), so the folder
        may be one it made: each timepoint is an nnU-Net case ``<case>_tp<NN>`` with
        ``imagesTr/<case>_tp<NN>_<CCCC>.nii.gz`` (channels in the order ct, t1, t1c, t2, flair,
        whatever order the scans were uploaded in) and ``labelsTr/<case>_tp<NN>.nii.gz``;
        ``dataset.json`` (``channel_names``, ``labels``, ``numTraining`` recounted from
        ``labelsTr``, ``file_ending``) is merged with an existing one, whose channels and labels
        must match; ``splits_final.json`` (5 folds that never split a case, keeping the dataset
        tool's source-scan groups) is recomputed: copy it to ``nnUNet_preprocessed/DatasetNNN_Name/``.
        Files are copied as they are (no numpy needed).

        Args:
            dataset_dir: the ``DatasetNNN_Name`` folder (created if missing).
            case_prefix: the case name (default :attr:`case_id`, unique per bundle, so bundles
                added one after the other never overwrite each other).

        Raises:
            ValueError: a bad ``case_prefix``, a folder with other channels / labels, or a
                ``case_prefix`` already used by another bundle in that folder.
        """
        case = self.case_id if case_prefix is None else case_prefix
        check_case_prefix(case)
        images: dict[str, bytes] = {}
        labels: dict[str, bytes] = {}
        for tp in self.timepoints:
            ident = identifier(case, tp.index)
            for channel, contrast in enumerate(self.contrasts):
                images[f"{ident}_{channel:04d}.nii.gz"] = self._zip.read(self.member(tp.index, contrast))
            labels[f"{ident}.nii.gz"] = self._zip.read(self.member(tp.index, "mask"))
        return write_nnunet(Path(dataset_dir), self.contrasts, self.labels, case, images, labels)
