"""The reading server's HTTP API against the real uvicorn server: blinding, validation, upsert, resume."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from longisynth.vtt.store import DB_NAME


def _call(url: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "PUT")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _json(url: str, body: dict[str, Any] | None = None) -> Any:
    return json.loads(_call(url, body)[1])


def test_no_endpoint_leaks_the_key(vtt_server: str, vtt_study: Path) -> None:
    key = json.loads((vtt_study / "key.json").read_text())
    study = _json(f"{vtt_server}/api/study")
    assert study["n_items"] == 5 and {it["id"] for it in study["items"]} == set(key["items"])
    api_text = json.dumps(study) + _call(f"{vtt_server}/api/readers/r1/progress")[1].decode()
    pages = "".join(_call(f"{vtt_server}{p}")[1].decode() for p in ("/", "/static/app.js", "/static/app.css"))
    for word in ("truth", "healthy", "kind", "source", "synthetic", "real", "b0.zip", "phantom"):
        assert word not in api_text
    for word in ("truth", "healthy", "key.json", "b0.zip", "phantom"):
        assert word not in pages
    for path in (
        "/key.json",
        "/static/key.json",
        "/static/..%2Fkey.json",
        "/api/items/key/volume",
        "/api/items/..%2F..%2Fkey.json/volume",
        "/study.json",
        "/answers.sqlite",
        "/items",
    ):
        assert _call(f"{vtt_server}{path}")[0] == 404, path


def test_volume_bytes_match_the_crop(vtt_server: str, vtt_study: Path) -> None:
    item = _json(f"{vtt_server}/api/study")["items"][0]
    status, data = _call(f"{vtt_server}/api/items/{item['id']}/volume")
    assert status == 200
    vol = np.frombuffer(data, dtype="<i2").reshape(item["shape"])
    np.testing.assert_array_equal(vol, np.load(vtt_study / "items" / f"{item['id']}.npy"))


def test_answers_upsert_and_resume(vtt_server: str, vtt_study: Path) -> None:
    ids = [it["id"] for it in _json(f"{vtt_server}/api/study")["items"]]
    url = f"{vtt_server}/api/answers/r1"
    body = {"call": "synthetic", "confidence": 4, "cues": ["texture", "boundary"], "note": "too smooth"}
    assert _json(f"{url}/{ids[0]}", body) == {"stored": True, "next_index": 1}
    # The same answer again (double click), then a revision: still one row, the latest values.
    _json(f"{url}/{ids[0]}", body)
    assert _json(f"{url}/{ids[0]}", {**body, "call": "real", "confidence": 2})["next_index"] == 1
    _json(f"{url}/{ids[2]}", {"call": "real", "confidence": 1})
    assert _json(f"{vtt_server}/api/readers/r1/progress")["next_index"] == 1  # first unanswered
    assert _json(f"{vtt_server}/api/readers/r2/progress")["next_index"] == 0
    con = sqlite3.connect(vtt_study / DB_NAME)
    rows = con.execute("SELECT reader_id, item_id, call, confidence, cues, note FROM answers").fetchall()
    got = {r[1]: r for r in rows}
    assert got[ids[0]] == ("r1", ids[0], "real", 2, '["boundary", "texture"]', "too smooth")
    assert got[ids[2]][2:4] == ("real", 1) and len(got) == 2
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


@pytest.mark.parametrize(
    ("reader", "body", "message"),
    [
        ("r1", {"call": "maybe", "confidence": 3}, "call must be"),
        ("r1", {"call": "real", "confidence": 6}, "confidence"),
        ("r1", {"call": "real", "confidence": True}, "confidence"),
        ("r1", {"call": "real", "confidence": 3, "cues": ["colour"]}, "cues"),
        ("bad~reader", {"call": "real", "confidence": 3}, "reader id"),
    ],
)
def test_bad_answers_are_rejected(vtt_server: str, reader: str, body: dict[str, Any], message: str) -> None:
    item = _json(f"{vtt_server}/api/study")["items"][0]["id"]
    status, data = _call(f"{vtt_server}/api/answers/{reader}/{item}", body)
    assert status == 400 and message in json.loads(data)["error"]
    assert _call(f"{vtt_server}/api/answers/r1/nope", {"call": "real", "confidence": 3})[0] == 404
