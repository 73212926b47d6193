"""The design's input scans: a glob or a manifest CSV, resolved to :class:`ScanEntry` rows.

Nothing is read here but file names and the CSV: a corrupt scan is found by the case that
reads it, and becomes that case's error row.
"""

from __future__ import annotations

import csv
import glob as globlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from longisynth.dataset.design import DatasetDesign
from longisynth.errors import InvalidInputError
from longisynth.io.contrasts import CONTRAST_ALIASES
from longisynth.spec import Contrast, Modality

MRI_CONTRASTS = [c.value for c in Contrast if c != Contrast.CT]
RESERVED = {"scan", "scan_id", "labels", "modality", "cases", *MRI_CONTRASTS, *CONTRAST_ALIASES}


@dataclass(frozen=True)
class ScanEntry:
    """One healthy input.

    Attributes:
        scan_id: stable name (the manifest's ``scan_id`` or the file stem).
        paths: contrast → absolute path ("ct" for CT; "t1", "flair"... for MRI).
        labels: absolute path of the region label map, if any.
        modality: declared modality (checked against the image when it is read).
        attributes: free per-scan attributes (sex, age band, scanner...) as strings.
        n_cases: cases to make from this scan.
        source: the scan's path as written in the design/manifest (for the manifest; no absolute paths).
    """

    scan_id: str
    paths: dict[str, str]
    labels: str | None
    modality: Modality
    attributes: dict[str, str] = field(default_factory=dict)
    n_cases: int = 1
    source: str = ""


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "scan"


def resolve_inputs(design: DatasetDesign, base_dir: Path) -> list[ScanEntry]:
    """The design's scans in a fixed order (sorted paths for a glob, file order for a manifest).

    Raises:
        InvalidInputError: no scan matches, a manifest is unreadable or malformed, duplicate ids.
    """
    cfg = design.inputs
    base_dir = Path(base_dir).resolve()
    modality = design.modality()
    if cfg.demo is not None:
        entries = _from_demo(design)
    elif cfg.glob is not None:
        entries = _from_glob(design, base_dir, modality)
    else:
        assert cfg.manifest is not None
        entries = _from_manifest(design, base_dir / cfg.manifest, modality)
    ids = [e.scan_id for e in entries]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InvalidInputError(f"duplicate scan ids {', '.join(dupes[:3])}: give a scan_id column")
    return entries


DEMO_PREFIX = "demo:"  # a ScanEntry path of an embedded phantom: demo:<kind>:<seed>:<size>


def demo_path(kind: str, seed: int, size: str) -> str:
    return f"{DEMO_PREFIX}{kind}:{seed}:{size}"


def parse_demo_path(path: str) -> tuple[str, int, str] | None:
    """``(kind, seed, size)`` of a demo path, or None for a file path."""
    if not path.startswith(DEMO_PREFIX):
        return None
    kind, seed, size = path.removeprefix(DEMO_PREFIX).split(":")
    return kind, int(seed), size


def _from_demo(design: DatasetDesign) -> list[ScanEntry]:
    """The embedded phantoms: ``demo_scans`` of them, phantom noise seeds 0, 1, ..."""
    from longisynth.phantoms.brain import CONTRASTS as BRAIN_CONTRASTS

    kind, size = design.inputs.demo, design.inputs.demo_size
    assert kind is not None
    keys = [Contrast.CT.value] if kind == "lung" else list(BRAIN_CONTRASTS)
    return [
        ScanEntry(
            scan_id=f"demo_{kind}{k}",
            paths={key: demo_path(kind, k, size) for key in keys},
            labels=None,
            modality=Modality.CT if kind == "lung" else Modality.MR,
            n_cases=design.cases_per_scan,
            source=f"{DEMO_PREFIX}{kind}",
        )
        for k in range(design.inputs.demo_scans)
    ]


def _contrast_key(design: DatasetDesign, modality: Modality) -> str:
    if modality == Modality.CT:
        return Contrast.CT.value
    return (design.inputs.contrast or Contrast.T1).value


def _from_glob(design: DatasetDesign, base_dir: Path, modality: Modality) -> list[ScanEntry]:
    pattern = design.inputs.glob
    assert pattern is not None
    full = pattern if Path(pattern).is_absolute() else str(base_dir / pattern)
    matches = sorted(Path(p) for p in globlib.glob(full, recursive=True))
    matches = [p for p in matches if p.is_dir() or p.name.endswith((".nii", ".nii.gz"))]
    if not matches:
        raise InvalidInputError(f"inputs.glob {pattern!r} matches no NIfTI file or folder")
    key = _contrast_key(design, modality)
    out = []
    for p in matches:
        labels = None
        if design.inputs.labels is not None:
            lab = design.inputs.labels.format(stem=_stem(p), name=p.name)
            labels = str(lab if Path(lab).is_absolute() else base_dir / lab)
        out.append(
            ScanEntry(
                scan_id=_safe_id(_stem(p)),
                paths={key: str(p)},
                labels=labels,
                modality=modality,
                n_cases=design.cases_per_scan,
                source=_relative(p, base_dir),
            )
        )
    return out


def _relative(path: Path, base_dir: Path) -> str:
    try:
        return str(path.relative_to(base_dir))
    except ValueError:
        return path.name


def _from_manifest(design: DatasetDesign, path: Path, default_modality: Modality) -> list[ScanEntry]:
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise InvalidInputError(f"cannot read inputs.manifest {path.name!r}: {exc.strerror or exc}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path.name}: not a readable CSV: {exc}") from None
    if not rows:
        raise InvalidInputError(f"{path.name}: the manifest lists no scans")
    base = path.parent
    out = []
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        where = f"{path.name} line {n}"
        for alias, ours in CONTRAST_ALIASES.items():  # BraTS' t1ce column is our t1c
            if row.get(alias):
                if row.get(ours):
                    raise InvalidInputError(f"{where}: give either a {ours} or a {alias} column, not both")
                row[ours] = row[alias]
        modality = default_modality
        if row.get("modality"):
            try:
                modality = Modality(row["modality"].lower())
            except ValueError:
                raise InvalidInputError(f"{where}: modality {row['modality']!r} is not ct or mr") from None
        paths: dict[str, str] = {}
        if row.get("scan"):
            paths[_contrast_key(design, modality)] = row["scan"]
        for c in MRI_CONTRASTS:
            if row.get(c):
                if modality == Modality.CT:
                    raise InvalidInputError(f"{where}: a {c} column on a CT row")
                paths[c] = row[c]
        if not paths:
            raise InvalidInputError(f"{where}: no scan (column scan, or t1/t1c/t2/flair for MRI)")
        if row.get("scan") and len(paths) > 1:
            raise InvalidInputError(f"{where}: give either scan or per-contrast columns, not both")
        n_cases = design.cases_per_scan
        if row.get("cases"):
            try:
                n_cases = int(row["cases"])
            except ValueError:
                n_cases = -1
            if n_cases < 0:
                raise InvalidInputError(f"{where}: cases must be a whole number >= 0, got {row['cases']!r}")
        first = next(iter(paths.values()))
        scan_id = _safe_id(row.get("scan_id") or _stem(Path(first)))
        labels = row.get("labels") or None
        out.append(
            ScanEntry(
                scan_id=scan_id,
                paths={c: str(_under(base, p)) for c, p in paths.items()},
                labels=str(_under(base, labels)) if labels else None,
                modality=modality,
                attributes={k: v for k, v in row.items() if k and k not in RESERVED},
                n_cases=n_cases,
                source=first,
            )
        )
    return out


def _under(base: Path, p: str) -> Path:
    return Path(p) if Path(p).is_absolute() else base / p
