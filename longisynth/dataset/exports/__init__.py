"""Export layouts of a dataset: nnU-Net v2, MONAI datalist, BIDS-like tree, DICOM + DICOM-SEG.

Each format has ``export_case(src) -> [relative paths]`` (run per case, in the worker) and, except
DICOM, ``finalize(layout, design, rows) -> [relative paths]`` (run once at the end over the
manifest rows of the finished cases).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from longisynth.dataset.design import DatasetDesign, ExportFormat
from longisynth.dataset.exports.common import CaseSource
from longisynth.dataset.plan import Plan
from longisynth.dataset.store import Layout
from longisynth.errors import InvalidInputError

CaseExporter = Callable[[CaseSource], list[str]]
Finalizer = Callable[[Layout, DatasetDesign, list[dict[str, Any]]], list[str]]


def _module(fmt: ExportFormat) -> ModuleType:
    """The export module of a format, imported on first use (highdicom only for DICOM)."""
    return importlib.import_module(f"longisynth.dataset.exports.{fmt.value}")


def case_exporter(fmt: ExportFormat) -> CaseExporter:
    """What writes one case in layout ``fmt``."""
    exporter: CaseExporter = _module(fmt).export_case
    return exporter


def finalizer(fmt: ExportFormat) -> Finalizer | None:
    """What writes the dataset-level files of layout ``fmt`` (None: DICOM has none)."""
    return getattr(_module(fmt), "finalize", None)


def check_formats(plan: Plan, formats: list[ExportFormat]) -> None:
    """Layouts with one label table and one channel list need one family and one contrast set.

    Raises:
        InvalidInputError: naming the format and what differs between cases.
    """
    families = {c.resolved.family.value for c in plan.cases if c.resolved is not None and c.resolved.family}
    contrasts = {tuple(sorted(c.scan.paths)) for c in plan.cases if c.error is None}
    check_format_mix(formats, families, contrasts)


def check_format_mix(
    formats: list[ExportFormat], families: set[str], contrasts: set[tuple[str, ...]]
) -> None:
    """:func:`check_formats` on the lesion families and contrast sets of the cases to export."""
    shared = [f for f in formats if f in (ExportFormat.NNUNET, ExportFormat.MONAI, ExportFormat.BIDS)]
    if not shared:
        return
    names = ", ".join(f.value for f in shared)
    if len(families) > 1:
        raise InvalidInputError(
            f"{names} export needs one lesion family; the design mixes {sorted(families)}"
        )
    if len(contrasts) > 1 and ExportFormat.NNUNET in shared:
        raise InvalidInputError(
            f"nnU-Net export needs the same contrasts in every case; the inputs have {sorted(contrasts)}"
        )
