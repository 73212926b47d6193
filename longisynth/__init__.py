"""longisynth: synthetic longitudinal pathology (lung nodules in CT, gliomas in MRI).

Typical use::

    import longisynth
    scan = longisynth.read_scan("chest.nii.gz")
    study = longisynth.generate(scan, "2 cm solid nodule in the right upper lobe over 6 months", seed=1)
    longisynth.write_bundle(study, "study.zip")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["LesionSpec", "generate", "read_scan", "write_bundle"]


def __getattr__(name: str) -> Any:  # lazy: `import longisynth` stays light
    if name in ("generate", "write_bundle"):
        from longisynth import api

        return getattr(api, name)
    if name == "read_scan":
        from longisynth.io import read_scan

        return read_scan
    if name == "LesionSpec":
        from longisynth.spec import LesionSpec

        return LesionSpec
    raise AttributeError(name)
