"""Appearance: intensities of lesions per family and modality, and the scan's own noise."""
