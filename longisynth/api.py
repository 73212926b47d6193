"""Public entry points (re-exported by :mod:`longisynth`)."""

from longisynth.bundle import write_bundle
from longisynth.pipeline import generate

__all__ = ["generate", "write_bundle"]
