"""longisynth: synthetic longitudinal pathology (lung nodules in CT, gliomas in MRI)."""

__version__ = "0.1.0"
