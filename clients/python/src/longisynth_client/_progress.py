"""A tiny dependency-free progress display on stderr.

On a terminal: one line redrawn in place (``\\r``). Elsewhere (logs, CI): one line per stage, so
logs stay readable.
"""

from __future__ import annotations

import sys
from typing import TextIO

BAR_WIDTH = 24


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class ProgressBar:
    """``[#########---------]  45% stage`` for job stages, and a byte counter for uploads."""

    def __init__(self, stream: TextIO | None = None, *, label: str = "longisynth") -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_stage: str | None = None
        self._open_line = False

    def _draw(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self._open_line = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def stage(self, stage: str | None, fraction: float | None) -> None:
        """Show a job's stage and overall fraction (0–1)."""
        name = stage or "waiting"
        frac = min(max(fraction or 0.0, 0.0), 1.0)
        if self.tty:
            filled = round(frac * BAR_WIDTH)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self._draw(f"{self.label} [{bar}] {frac * 100:3.0f}% {name}")
        elif name != self._last_stage:
            self._draw(f"{self.label}: {name} ({frac * 100:.0f}%)")
        self._last_stage = name

    def upload(self, sent: int, total: int) -> None:
        """Show upload progress in bytes (terminal: every call; otherwise start and end only)."""
        if self.tty:
            pct = 100.0 * sent / total if total else 100.0
            self._draw(f"{self.label}: uploading {_mb(sent)} / {_mb(total)} ({pct:3.0f}%)")
        elif sent == 0:
            self._draw(f"{self.label}: uploading {_mb(total)}")
        elif sent >= total:
            self._draw(f"{self.label}: uploaded {_mb(total)}, waiting for the server")

    def message(self, text: str) -> None:
        """One free-form status line."""
        self._draw(f"{self.label}: {text}")

    def close(self) -> None:
        """End the redrawn line (terminal only)."""
        if self.tty and self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False
