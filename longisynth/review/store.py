"""Verdicts of the expert review: an append-only JSON-lines log in ``RUN_DIR/review/verdicts.jsonl``.

Each line is one verdict::

    {"case_id": "case00003", "verdict": "reject", "reason": "visible_seam", "note": "...",
     "reviewer": "dr_a", "time": "2025-01-31T10:22:05Z", "format": 1}

A case's *current* verdict is its last line (last one wins); earlier lines stay as the history.
Lines are appended and flushed to disk before the server answers, so a reload or a restart of
``longisynth review`` resumes where the reviewer stopped. A torn last line (a crash mid-write) is
ignored when reading. Reviewer ids are short names chosen by the reviewer (no patient data: the
cases are synthetic).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from longisynth.errors import InvalidInputError

REVIEW_DIR = "review"
VERDICTS_FILE = "verdicts.jsonl"
FORMAT = 1
# verdict -> the manifest's review_status
VERDICTS = {"accept": "accepted", "reject": "rejected", "edit_archetype": "edit_archetype"}
STATUSES = ("unreviewed", "accepted", "rejected", "edit_archetype")
# Fixed reasons of a rejection: code -> label shown to the reviewer.
REASONS = {
    "implausible_location": "Implausible location",
    "visible_seam": "Visible seam / boundary",
    "wrong_texture": "Wrong texture",
    "wrong_shape": "Wrong shape",
    "implausible_growth": "Implausible growth over time",
    "anatomy_distorted": "Surrounding anatomy distorted",
    "artefact_noise": "Artefact / noise",
    "mask_wrong": "Mask does not match the lesion",
    "other": "Other (say what in the note)",
}
REVIEWER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
NOTE_MAX = 2000


@dataclass(frozen=True)
class Verdict:
    """One reviewer's verdict on one case.

    Attributes:
        verdict: "accept", "reject" or "edit_archetype".
        reason: a :data:`REASONS` code for "reject", else "".
        note: free text (required for reason "other" and for "edit_archetype": what to change).
        reviewer: reviewer id ("" when none was given).
        time: UTC time of the verdict, ISO 8601.
    """

    case_id: str
    verdict: str
    reason: str = ""
    note: str = ""
    reviewer: str = ""
    time: str = ""

    @property
    def status(self) -> str:
        """The manifest's ``review_status`` for this verdict."""
        return VERDICTS[self.verdict]


def validate_reviewer(reviewer: str) -> str:
    """The reviewer id if empty or 1-64 characters of letters, digits and ``_.@-``."""
    if reviewer and not REVIEWER_ID.match(reviewer):
        raise InvalidInputError("reviewer id must be 1-64 characters: letters, digits, _ . @ -")
    return reviewer


def parse_verdict(case_id: str, body: dict[str, Any], default_reviewer: str = "") -> Verdict:
    """Validate a submitted verdict (JSON body ``{verdict, reason?, note?, reviewer?}``).

    Raises:
        InvalidInputError: unknown verdict, a rejection without a reason from :data:`REASONS`, a
            reason on a non-rejection, a missing note where one is required, a bad reviewer id.
    """
    verdict = body.get("verdict")
    if verdict not in VERDICTS:
        raise InvalidInputError(f"verdict must be one of {', '.join(VERDICTS)}")
    reason = body.get("reason") or ""
    note = body.get("note") or ""
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        raise InvalidInputError(f"note must be text of at most {NOTE_MAX} characters")
    note = note.strip()
    if verdict == "reject":
        if reason not in REASONS:
            raise InvalidInputError(f"a rejection needs a reason, one of {', '.join(REASONS)}")
        if reason == "other" and not note:
            raise InvalidInputError("reason 'other' needs a note saying what is wrong")
    elif reason:
        raise InvalidInputError("only a rejection takes a reason")
    if verdict == "edit_archetype" and not note:
        raise InvalidInputError("'edit the archetype' needs a note saying what to change")
    reviewer = body.get("reviewer")
    if reviewer is None:
        reviewer = default_reviewer
    if not isinstance(reviewer, str):
        raise InvalidInputError("reviewer must be text")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return Verdict(case_id, verdict, reason, note, validate_reviewer(reviewer.strip()), stamp)


class VerdictStore:
    """The verdict log of one run folder (safe across the server's threads)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / REVIEW_DIR / VERDICTS_FILE
        self._lock = threading.Lock()

    def append(self, v: Verdict) -> None:
        """Append one verdict and flush it to disk before returning."""
        line = json.dumps({**asdict(v), "format": FORMAT}, sort_keys=True) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def history(self) -> list[Verdict]:
        """Every verdict in the order given (unreadable lines skipped)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                d = json.loads(line)
                v = Verdict(
                    str(d["case_id"]),
                    str(d["verdict"]),
                    str(d.get("reason", "")),
                    str(d.get("note", "")),
                    str(d.get("reviewer", "")),
                    str(d.get("time", "")),
                )
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a crash
            if v.verdict in VERDICTS:
                out.append(v)
        return out

    def latest(self) -> dict[str, Verdict]:
        """Case id -> its current verdict (the last one given)."""
        return {v.case_id: v for v in self.history()}
