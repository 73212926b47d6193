"""The output bundle: its format (:mod:`.format`), the one writer and the one reader."""

from longisynth.bundle.format import BundleMetadata
from longisynth.bundle.reader import BundleReader, read_bundle_image, read_metadata
from longisynth.bundle.writer import build_metadata, software_versions, write_bundle

__all__ = [
    "BundleMetadata",
    "BundleReader",
    "build_metadata",
    "read_bundle_image",
    "read_metadata",
    "software_versions",
    "write_bundle",
]
