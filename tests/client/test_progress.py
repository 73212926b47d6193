"""The dependency-free progress display and the missing-extra message."""

from __future__ import annotations

import io
import sys

import pytest
from longisynth_client import Bundle
from longisynth_client._progress import ProgressBar

from tests.client.conftest import build_bundle


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tty_bar_redraws_one_line() -> None:
    stream = FakeTTY()
    bar = ProgressBar(stream)
    bar.stage("growth", 0.5)
    bar.upload(2_000_000, 4_000_000)
    bar.close()
    out = stream.getvalue()
    assert "\r\x1b[2Klongisynth [" + "#" * 12 + "-" * 12 + "]  50% growth" in out
    assert "uploading 2.0 MB / 4.0 MB ( 50%)" in out
    assert out.endswith("\n") and out.count("\n") == 1


def test_non_tty_writes_one_line_per_stage() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)
    for stage, frac in [("anatomy", 0.1), ("anatomy", 0.2), ("growth", 0.7), ("growth", 2.0)]:
        bar.stage(stage, frac)
    bar.close()
    assert stream.getvalue().splitlines() == ["longisynth: anatomy (10%)", "longisynth: growth (70%)"]


def test_missing_numpy_extra_message(monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = Bundle(build_bundle())
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(ImportError, match=r"longisynth-client\[numpy\]"):
        bundle.image(0)
    assert bundle.timepoints[0].index == 0  # metadata needs no extra
