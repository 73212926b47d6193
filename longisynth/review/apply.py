"""Verdicts into the dataset: the manifest's review columns and the review section of ``summary.md``.

Columns (last verdict of each case; see :mod:`.store`):

- ``review_status``: unreviewed | accepted | rejected | edit_archetype
- ``review_reason``: the rejection reason code (e.g. ``visible_seam``), else empty
- ``review_note``: the reviewer's free text, else empty

They are written (1) by ``longisynth review`` after every verdict, (2) by ``longisynth review
RUN_DIR --apply``, and (3) by every ``longisynth dataset run`` over the folder, which reads the
verdict log, so a resumed or extended run keeps them. Updating rewrites only these columns of
``manifest.csv`` / ``manifest.parquet`` (other columns, including ones this version does not know,
are kept as they are) and only the review section of ``summary.md`` (between ``<!-- review -->``
and ``<!-- /review -->``; absent while no case has a verdict).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

from longisynth.dataset.store import atomic_write
from longisynth.review.store import REASONS, Verdict, VerdictStore

REVIEW_COLUMNS = ("review_status", "review_reason", "review_note")
SECTION_START, SECTION_END = "<!-- review -->", "<!-- /review -->"


def review_values(case_id: str, latest: dict[str, Verdict]) -> dict[str, str]:
    """The review columns of one case from the current verdicts."""
    v = latest.get(case_id)
    if v is None:
        return {"review_status": "unreviewed", "review_reason": "", "review_note": ""}
    return {"review_status": v.status, "review_reason": v.reason, "review_note": v.note}


def merge_review(rows: list[dict[str, Any]], run_dir: Path) -> None:
    """Set the review columns of manifest ``rows`` (in place) from the run's verdict log."""
    latest = VerdictStore(run_dir).latest()
    for r in rows:
        r.update(review_values(str(r.get("case_id")), latest))


def archetype_of(row: dict[str, Any]) -> str:
    """The row's archetype name; "none" when the column is missing or empty."""
    value = row.get("archetype")
    return str(value) if value not in (None, "") else "none"


def _pct(num: int, den: int) -> str:
    return f"{100 * num / den:.1f} %" if den else "—"


def review_section(rows: list[dict[str, Any]]) -> str:
    """Markdown of the review (counts, rejection rate per archetype and per reason) between the
    section markers, or "" while no finished case has a verdict. A function of the rows only."""
    ok = [r for r in rows if r.get("status") == "ok"]
    status = Counter(str(r.get("review_status") or "unreviewed") for r in ok)
    reviewed = [r for r in ok if (r.get("review_status") or "unreviewed") != "unreviewed"]
    if not reviewed:
        return ""
    n_rej = status["rejected"]
    lines = [
        SECTION_START,
        "## Expert review",
        "",
        f"{len(reviewed)} of {len(ok)} finished cases reviewed: {status['accepted']} accepted, "
        f"{n_rej} rejected, {status['edit_archetype']} edit the archetype; "
        f"{status['unreviewed']} not reviewed yet. Rejection rate {_pct(n_rej, len(reviewed))} "
        "of reviewed cases.",
        "",
        "| archetype | reviewed | accepted | rejected | edit archetype | rejection rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by_arch: dict[str, Counter[str]] = {}
    for r in reviewed:
        by_arch.setdefault(archetype_of(r), Counter())[str(r["review_status"])] += 1
    for name, c in sorted(by_arch.items()):
        n = sum(c.values())
        lines.append(
            f"| {name} | {n} | {c['accepted']} | {c['rejected']} | {c['edit_archetype']} | "
            f"{_pct(c['rejected'], n)} |"
        )
    reasons = Counter(str(r.get("review_reason") or "") for r in reviewed if r["review_status"] == "rejected")
    if reasons:
        lines += ["", "| rejection reason | rejected | share of reviewed cases |", "|---|---:|---:|"]
        for code, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            label = REASONS.get(code, "unknown reason")
            lines.append(f"| {code} ({label}) | {n} | {_pct(n, len(reviewed))} |")
    lines.append(SECTION_END)
    return "\n" + "\n".join(lines) + "\n"


def replace_section(summary: str, section: str) -> str:
    """``summary`` with its review section (if any) replaced by ``section``."""
    start = summary.find("\n" + SECTION_START)
    if start >= 0:
        end = summary.find(SECTION_END, start)
        tail = summary[end + len(SECTION_END) :] if end >= 0 else ""
        summary = summary[:start] + tail.removeprefix("\n")
    return summary + section


def _update_csv(path: Path, latest: dict[str, Verdict]) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        table = list(csv.reader(fh))
    if not table:
        return []
    header = table[0]
    for col in REVIEW_COLUMNS:
        if col not in header:
            header.append(col)
    pos = {c: i for i, c in enumerate(header)}
    rows = []
    for line in table[1:]:
        line += [""] * (len(header) - len(line))
        for col, value in review_values(line[pos["case_id"]], latest).items():
            line[pos[col]] = value
        rows.append(dict(zip(header, line, strict=True)))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(table)
    atomic_write(path, buf.getvalue().encode())
    return rows


def _update_parquet(path: Path, latest: dict[str, Verdict]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return
    table = pq.read_table(path)
    values = [review_values(str(c), latest) for c in table.column("case_id").to_pylist()]
    for col in REVIEW_COLUMNS:
        arr = pa.array([v[col] for v in values], type=pa.string())
        if col in table.column_names:
            table = table.set_column(table.column_names.index(col), col, arr)
        else:
            table = table.append_column(col, arr)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    atomic_write(path, buf.getvalue())


def apply_review(run_dir: Path) -> list[dict[str, str]]:
    """Bring ``manifest.csv`` (+ ``.parquet``) and ``summary.md`` of ``run_dir`` up to date with
    the verdict log; returns the manifest rows (CSV text values). Missing files are skipped."""
    latest = VerdictStore(run_dir).latest()
    rows: list[dict[str, str]] = []
    csv_path = run_dir / "manifest.csv"
    if csv_path.is_file():
        rows = _update_csv(csv_path, latest)
    if (run_dir / "manifest.parquet").is_file():
        _update_parquet(run_dir / "manifest.parquet", latest)
    summary = run_dir / "summary.md"
    if summary.is_file() and rows:
        text = summary.read_text(encoding="utf-8")
        new = replace_section(text, review_section(list(rows)))
        if new != text:
            atomic_write(summary, new.encode())
    return rows
