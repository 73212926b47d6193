"""Readers' answers in SQLite: one file per study, WAL mode, one committed row per (reader, item).

A repeated submission for the same reader and item replaces the earlier one (upsert), so a
double click or a resent request is harmless and a reader may revise an answer.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longisynth.errors import InvalidInputError

DB_NAME = "answers.sqlite"
CALLS = ("real", "synthetic")
CUES = ("boundary", "texture", "shape", "intensity", "other")
READER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
NOTE_MAX = 2000
SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    reader_id   TEXT NOT NULL,
    item_id     TEXT NOT NULL,
    call        TEXT NOT NULL CHECK (call IN ('real', 'synthetic')),
    confidence  INTEGER NOT NULL CHECK (confidence BETWEEN 1 AND 5),
    cues        TEXT NOT NULL,
    note        TEXT NOT NULL,
    elapsed_ms  INTEGER,
    answered_at REAL NOT NULL,
    PRIMARY KEY (reader_id, item_id)
)
"""


@dataclass(frozen=True)
class Answer:
    """One reader's answer to one item."""

    reader_id: str
    item_id: str
    call: str
    confidence: int
    cues: tuple[str, ...] = ()
    note: str = ""
    elapsed_ms: int | None = None


def validate_reader(reader_id: str) -> str:
    """The reader id if it is 1-64 characters of letters, digits and ``_.@-``."""
    if not READER_ID.match(reader_id):
        raise InvalidInputError("reader id must be 1-64 characters: letters, digits, _ . @ -")
    return reader_id


def parse_answer(reader_id: str, item_id: str, body: dict[str, Any]) -> Answer:
    """Validate a submitted answer (JSON body of ``PUT /api/answers/{reader}/{item}``)."""
    call = body.get("call")
    if call not in CALLS:
        raise InvalidInputError("call must be 'real' or 'synthetic'")
    confidence = body.get("confidence")
    if not isinstance(confidence, int) or isinstance(confidence, bool) or not 1 <= confidence <= 5:
        raise InvalidInputError("confidence must be an integer from 1 to 5")
    cues = body.get("cues", [])
    if not isinstance(cues, list) or any(c not in CUES for c in cues):
        raise InvalidInputError(f"cues must be a list drawn from {', '.join(CUES)}")
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        raise InvalidInputError(f"note must be text of at most {NOTE_MAX} characters")
    elapsed = body.get("elapsed_ms")
    if elapsed is not None and (not isinstance(elapsed, int) or elapsed < 0):
        raise InvalidInputError("elapsed_ms must be a non-negative integer")
    return Answer(
        validate_reader(reader_id), item_id, call, confidence, tuple(sorted(set(cues))), note, elapsed
    )


class AnswerStore:
    """The study's answer database; opens a short-lived connection per call (safe across threads)."""

    def __init__(self, study: Path) -> None:
        self.path = study / DB_NAME
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=10)
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def upsert(self, a: Answer) -> None:
        """Store (or replace) one answer and commit at once."""
        con = self._connect()
        try:
            with con:
                con.execute(
                    "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (reader_id, item_id) DO UPDATE SET call=excluded.call, "
                    "confidence=excluded.confidence, cues=excluded.cues, note=excluded.note, "
                    "elapsed_ms=excluded.elapsed_ms, answered_at=excluded.answered_at",
                    (
                        a.reader_id,
                        a.item_id,
                        a.call,
                        a.confidence,
                        json.dumps(list(a.cues)),
                        a.note,
                        a.elapsed_ms,
                        time.time(),
                    ),
                )
        finally:
            con.close()

    def answered(self, reader_id: str) -> set[str]:
        """Ids of the items this reader has answered."""
        con = self._connect()
        try:
            rows = con.execute("SELECT item_id FROM answers WHERE reader_id = ?", (reader_id,)).fetchall()
        finally:
            con.close()
        return {r[0] for r in rows}

    def all_answers(self) -> list[Answer]:
        """Every stored answer, ordered by reader then item."""
        con = self._connect()
        try:
            rows = con.execute(
                "SELECT reader_id, item_id, call, confidence, cues, note, elapsed_ms FROM answers "
                "ORDER BY reader_id, item_id"
            ).fetchall()
        finally:
            con.close()
        return [Answer(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5], r[6]) for r in rows]
