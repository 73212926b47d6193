"""Shared fixtures: the real volumes in ``../shared/data`` (skipped with a reason where absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(name: str) -> Path:
    """Path of a file in ``../shared/data``; skips the calling test when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real sample data {name} not found in {SHARED_DATA} (see shared/data/README.md)")
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _refiner_only_where_asked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The learned refiner costs seconds per study on CPU; tests of anything else switch it off.

    Tests (or modules) marked ``refiner`` run it with the configured model, else the shipped one
    (named in the environment: since issue 18 the refiner is off unless a model is named).
    """
    if request.node.get_closest_marker("refiner") is None:
        monkeypatch.setenv("LONGISYNTH_REFINER", "off")
    elif not os.environ.get("LONGISYNTH_REFINER", "").strip():
        from longisynth.refine.model import DEFAULT_MODEL

        monkeypatch.setenv("LONGISYNTH_REFINER", str(DEFAULT_MODEL))  # off by default: name it
