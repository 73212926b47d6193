"""The bundle format's tables the SDK needs, copied from ``longisynth.bundle.format`` (the one
owner; a test in the longisynth repository keeps the copy equal). The SDK does not import the engine.
"""

from __future__ import annotations

# Channel order of every multi-channel export and the channel names exports show.
CONTRASTS = ("ct", "t1", "t1c", "t2", "flair")
CHANNEL_NAMES = {"ct": "CT", "t1": "T1", "t1c": "T1c", "t2": "T2", "flair": "FLAIR"}
# Mask labels per lesion family: export key -> value (nnU-Net dataset.json, MONAI, BIDS dseg).
LABEL_KEYS = {
    "lung_nodule": {"background": 0, "solid": 1, "ground_glass": 2},
    "glioma": {"background": 0, "necrotic_core": 1, "edema": 2, "enhancing_tumor": 3},
}
