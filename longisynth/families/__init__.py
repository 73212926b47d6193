"""Lesion families behind one protocol (:class:`~longisynth.families.base.LesionFamily`).

Adding a family (e.g. liver lesions) is one module here implementing the protocol, one entry in
:data:`FAMILIES`, its value in :class:`longisynth.spec.Family` and its labels in
:data:`longisynth.bundle.format.LABELS`; the driver (:mod:`longisynth.pipeline`) does the rest.
"""

from __future__ import annotations

from longisynth.errors import InvalidInputError
from longisynth.families.base import LesionFamily
from longisynth.families.glioma import Glioma
from longisynth.families.lung import LungNodule
from longisynth.spec import Family

FAMILIES: dict[Family, LesionFamily] = {Family.LUNG_NODULE: LungNodule(), Family.GLIOMA: Glioma()}


def family_for(family: Family) -> LesionFamily:
    """The implementation of ``family``."""
    if family not in FAMILIES:
        raise InvalidInputError(f"no lesion family {family!r} (have {', '.join(f.value for f in FAMILIES)})")
    return FAMILIES[family]


__all__ = ["FAMILIES", "LesionFamily", "family_for"]
