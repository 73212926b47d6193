"""Names of MRI contrasts as users and datasets spell them, mapped to ours (t1, t1c, t2, flair).

BraTS 2018–2021 call the post-gadolinium T1 ``t1ce``; BraTS 2023 uses ``t1n`` (native T1),
``t1c``, ``t2w`` and ``t2f`` (FLAIR); BIDS-like exports say ``T1w``/``T2w``.
"""

from __future__ import annotations

CONTRAST_ALIASES: dict[str, str] = {
    "t1ce": "t1c",
    "t1gd": "t1c",
    "t1-ce": "t1c",
    "t1_ce": "t1c",
    "t1+c": "t1c",
    "t1post": "t1c",
    "t1n": "t1",
    "t1w": "t1",
    "t2w": "t2",
    "t2f": "flair",
    "t2flair": "flair",
    "t2-flair": "flair",
    "t2_flair": "flair",
}


def contrast_key(name: str) -> str:
    """Our name of a contrast name or alias (lower-cased, surrounding spaces stripped); names we do
    not know are returned lower-cased, for the caller's own error message."""
    key = str(getattr(name, "value", name)).strip().lower()
    return CONTRAST_ALIASES.get(key, key)
