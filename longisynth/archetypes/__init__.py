"""Expert-defined progression archetypes (:mod:`.model`) and the shipped set (``data/*.yaml``)."""

from longisynth.archetypes.model import (
    Archetype,
    ArchetypeRegistry,
    ArchetypeUse,
    apply_archetype,
    builtin_registry,
    load_registry,
)

__all__ = [
    "Archetype",
    "ArchetypeRegistry",
    "ArchetypeUse",
    "apply_archetype",
    "builtin_registry",
    "load_registry",
]
