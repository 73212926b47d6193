"""Read a finished (or partly finished) dataset run folder without its design file or inputs.

What ``longisynth review`` and ``longisynth dataset export`` need: the design recorded in
``design.json`` and the finished cases, each with its manifest row as recorded in its done
marker (``cases/<case_id>.done.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longisynth.dataset.design import DatasetDesign, parse_design
from longisynth.dataset.store import Layout, read_marker
from longisynth.errors import InvalidInputError


@dataclass(frozen=True)
class RunFolder:
    """A dataset run folder.

    Attributes:
        root: the folder.
        design: the design it was made from (``design.json``).
        fingerprint: the design fingerprint recorded with it.
        cases: manifest rows of the finished cases (status ok, bundle present), by row.
    """

    root: Path
    design: DatasetDesign
    fingerprint: str
    cases: list[dict[str, Any]]

    @property
    def layout(self) -> Layout:
        return Layout(self.root, self.design.name, self.design.dataset_id)

    def bundle(self, case_id: str) -> Path:
        return self.root / self.layout.bundle(case_id)


def open_run(root: Path | str) -> RunFolder:
    """Read ``root`` as a run folder of ``longisynth dataset run``.

    Raises:
        InvalidInputError: not a folder, no readable ``design.json``, or a design that no longer
            validates.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidInputError(f"{str(root)!r} is not a folder")
    try:
        record = json.loads((root / "design.json").read_text())
        data = record["design"]
        order = record.get("sample_order") or list(data.get("sample") or {})
        data["sample"] = {k: data["sample"][k] for k in order}  # the design's order, not sorted
        design = parse_design(data, f"{root.name}/design.json")
        fingerprint = str(record["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InvalidInputError(
            f"{str(root)!r} is not a dataset run folder (no readable design.json); give the output "
            "folder of 'longisynth dataset run'"
        ) from None
    layout = Layout(root, design.name, design.dataset_id)
    rows = []
    for marker_path in sorted((root / "cases").glob("*.done.json")):
        marker = read_marker(layout, marker_path.name.removesuffix(".done.json"))
        if marker is None or marker.get("fingerprint") != fingerprint:
            continue
        row = marker.get("row")
        if not isinstance(row, dict) or row.get("status") != "ok":
            continue
        if not (root / layout.bundle(str(row.get("case_id")))).is_file():
            continue
        rows.append(row)
    rows.sort(key=lambda r: int(r["row"]))
    return RunFolder(root, design, fingerprint, rows)
