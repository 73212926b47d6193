"""Anatomy: where a lesion may live (lungs and lobes, brain tissues) and what the scan's modality is."""
