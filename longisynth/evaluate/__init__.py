"""Independent evaluation of bundles: re-measure lesions from the images and compare with the spec.

``longisynth evaluate BUNDLE...`` (see :mod:`longisynth.evaluate.cli`) reads each bundle zip,
recomputes volumes, diameters, growth-law fits, nesting, anatomy stability, Jacobians and lesion
intensities from the NIfTI images (metadata only supplies the scan days and the requested spec),
and writes an HTML report and a JSON file with the same numbers.
"""

from longisynth.evaluate.core import BundleReport, evaluate_bundle

__all__ = ["BundleReport", "evaluate_bundle"]
