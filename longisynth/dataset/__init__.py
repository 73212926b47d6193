"""Synthetic datasets at scale: a design file → thousands of reproducible longitudinal cases.

Typical use::

    from longisynth.dataset import ExportFormat, load_design, run_dataset
    design = load_design("design.yaml")
    report = run_dataset(design, "design_folder", "out", workers=4, formats=[ExportFormat.NNUNET])
    print(report.summary)

or ``longisynth dataset run design.yaml -o out --workers 4 --format nnunet``. See
README.md ("Make a training set") for the design file. Names are imported lazily, so the CLI stays quick.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "DatasetDesign": "longisynth.dataset.design",
    "ExportFormat": "longisynth.dataset.design",
    "load_design": "longisynth.dataset.design",
    "parse_design": "longisynth.dataset.design",
    "CasePlan": "longisynth.dataset.plan",
    "Plan": "longisynth.dataset.plan",
    "plan_dataset": "longisynth.dataset.plan",
    "Progress": "longisynth.dataset.runner",
    "RunReport": "longisynth.dataset.runner",
    "plan_only": "longisynth.dataset.runner",
    "run_dataset": "longisynth.dataset.runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
