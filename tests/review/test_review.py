"""Expert review without a browser: verdict log (resume, last wins, fixed reasons), the HTTP API,
manifest/summary columns, the CLI's errors, and exports that leave rejected cases out."""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from longisynth.cli import main
from longisynth.dataset.design import ExportFormat
from longisynth.dataset.export import export_run
from longisynth.errors import InvalidInputError
from longisynth.review.apply import apply_review, replace_section, review_section
from longisynth.review.server import create_app
from longisynth.review.store import REASONS, VerdictStore, parse_verdict
from tests.review.conftest import N_CASES


def _manifest(run: Path) -> dict[str, dict[str, str]]:
    with (run / "manifest.csv").open() as fh:
        return {r["case_id"]: r for r in csv.DictReader(fh)}


def test_parse_verdict_refuses_what_is_not_in_the_fixed_lists() -> None:
    assert parse_verdict("c", {"verdict": "accept"}).status == "accepted"
    v = parse_verdict("c", {"verdict": "reject", "reason": "visible_seam", "note": " edge "}, "dr_a")
    assert (v.status, v.reason, v.note, v.reviewer) == ("rejected", "visible_seam", "edge", "dr_a")
    for body, words in [
        ({"verdict": "maybe"}, "verdict must be"),
        ({"verdict": "reject"}, "needs a reason"),
        ({"verdict": "reject", "reason": "ugly"}, "needs a reason"),
        ({"verdict": "reject", "reason": "other"}, "needs a note"),
        ({"verdict": "accept", "reason": "wrong_shape"}, "only a rejection"),
        ({"verdict": "edit_archetype"}, "needs a note"),
        ({"verdict": "accept", "reviewer": "Dr Smith; DROP"}, "reviewer id"),
        ({"verdict": "accept", "note": "x" * 2001}, "at most 2000"),
    ]:
        with pytest.raises(InvalidInputError, match=words):
            parse_verdict("c", body)


def test_store_last_wins_keeps_history_and_skips_a_torn_line(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path)
    assert store.latest() == {}
    store.append(parse_verdict("a", {"verdict": "reject", "reason": "wrong_texture"}))
    store.append(parse_verdict("b", {"verdict": "accept"}))
    store.append(parse_verdict("a", {"verdict": "accept"}))
    with store.path.open("a") as fh:
        fh.write('{"case_id": "b", "verdict": "rej')  # killed mid-write
    again = VerdictStore(tmp_path)  # a restarted server reads the same log
    assert [v.verdict for v in again.history()] == ["reject", "accept", "accept"]
    assert {k: v.status for k, v in again.latest().items()} == {"a": "accepted", "b": "accepted"}


def test_api_resume_last_wins_manifest_and_summary(review_run: Path) -> None:
    client = TestClient(create_app(review_run, "dr_a"))
    info = client.get("/api/run").json()
    ids = [c["id"] for c in info["cases"]]
    assert len(ids) == N_CASES and [r["code"] for r in info["reasons"]] == list(REASONS)
    assert {c["archetype"] for c in info["cases"]} == {"none"}  # no archetype column yet
    assert client.get("/api/progress").json()["next_index"] == 0

    case = client.get(f"/api/cases/{ids[0]}").json()
    n_tp, shape = len(case["timepoints"]), case["shape"]
    assert n_tp >= 2 and case["contrast"] == "ct" and {p["name"] for p in case["presets"]} >= {"Lung"}
    vol = client.get(f"/api/cases/{ids[0]}/timepoints/{n_tp - 1}/volume")
    mask = client.get(f"/api/cases/{ids[0]}/timepoints/{n_tp - 1}/mask")
    assert len(vol.content) == 2 * int(np.prod(shape)) and len(mask.content) == int(np.prod(shape))
    assert np.frombuffer(mask.content, np.uint8).sum() > 0  # the crop holds the lesion
    assert np.frombuffer(vol.content, "<i2").min() < -500  # lung air, in HU
    assert client.get(f"/api/cases/{ids[0]}/timepoints/99/volume").status_code == 404
    assert client.get("/api/cases/..%2Fdesign/timepoints/0/volume").status_code == 404
    assert client.get("/api/cases/nope").status_code == 404

    bad = client.put(f"/api/verdicts/{ids[0]}", json={"verdict": "reject", "reason": "looks odd"})
    assert bad.status_code == 400 and "needs a reason" in bad.json()["error"]
    assert client.put(f"/api/verdicts/{ids[0]}", content=b"{nope").status_code == 400
    assert client.put("/api/verdicts/case99999", json={"verdict": "accept"}).status_code == 404
    assert not (review_run / "review" / "verdicts.jsonl").exists()  # refused verdicts store nothing

    r = client.put(f"/api/verdicts/{ids[0]}", json={"verdict": "accept"}).json()
    assert r["stored"] and r["manifest_updated"] and r["next_index"] == 1
    r = client.put(
        f"/api/verdicts/{ids[1]}", json={"verdict": "reject", "reason": "visible_seam", "note": "rim"}
    ).json()
    assert r["next_index"] == 2
    # a restarted server (new app) resumes at the first unreviewed case with the earlier verdicts
    client = TestClient(create_app(review_run))
    p = client.get("/api/progress").json()
    assert p["next_index"] == 2 and p["verdicts"][ids[0]]["reviewer"] == "dr_a"
    assert p["verdicts"][ids[1]]["reason"] == "visible_seam"

    rows = _manifest(review_run)
    assert [rows[i]["review_status"] for i in ids] == ["accepted", "rejected", "unreviewed"]
    assert (rows[ids[1]]["review_reason"], rows[ids[1]]["review_note"]) == ("visible_seam", "rim")
    summary = (review_run / "summary.md").read_text()
    assert (
        "## Expert review" in summary and "2 of 3 finished cases reviewed: 1 accepted, 1 rejected" in summary
    )
    assert "| none | 2 | 1 | 1 | 0 | 50.0 % |" in summary
    assert "| visible_seam (Visible seam / boundary) | 1 | 50.0 % |" in summary

    # changing a verdict: last one wins, the history keeps both
    client.put(f"/api/verdicts/{ids[1]}", json={"verdict": "edit_archetype", "note": "slower growth"})
    hist = client.get(f"/api/cases/{ids[1]}/history").json()["history"]
    assert [h["verdict"] for h in hist] == ["reject", "edit_archetype"]
    rows = _manifest(review_run)
    assert (rows[ids[1]]["review_status"], rows[ids[1]]["review_reason"]) == ("edit_archetype", "")
    summary = (review_run / "summary.md").read_text()
    assert summary.count("## Expert review") == 1 and "0 rejected, 1 edit the archetype" in summary
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(review_run / "manifest.parquet")
    assert table.column("review_status").to_pylist() == ["accepted", "edit_archetype", "unreviewed"]


def test_rerun_of_the_dataset_keeps_the_verdicts(review_run: Path, _review_run_template: Path) -> None:
    from longisynth.dataset.design import load_design
    from longisynth.dataset.runner import run_dataset

    ids = list(_manifest(review_run))
    VerdictStore(review_run).append(parse_verdict(ids[2], {"verdict": "reject", "reason": "mask_wrong"}))
    before = (review_run / "summary.md").read_text()
    assert "Expert review" not in before  # nothing applied yet
    design_path = _review_run_template.parent / "d" / "design.yaml"
    report = run_dataset(load_design(design_path), design_path.parent, review_run)
    assert report.skipped == N_CASES and report.ran == 0
    assert _manifest(review_run)[ids[2]]["review_status"] == "rejected"
    summary = (review_run / "summary.md").read_text()
    assert summary.startswith(before.rstrip("\n")) and "| mask_wrong (" in summary
    # the runner's summary and the server's in-place update agree byte for byte
    apply_review(review_run)
    assert (review_run / "summary.md").read_text() == summary


def test_section_replacement_keeps_the_rest() -> None:
    rows = [
        {
            "status": "ok",
            "case_id": "a",
            "review_status": "rejected",
            "review_reason": "other",
            "archetype": "gbm",
        }
    ]
    text = "# run\n\nbody\n"
    once = replace_section(text, review_section(rows))
    assert once.startswith(text) and "| gbm | 1 | 0 | 1 | 0 | 100.0 % |" in once
    assert replace_section(once, review_section(rows)) == once
    assert replace_section(once, "") == text


def test_export_skips_rejected_cases(review_run: Path, tmp_path: Path) -> None:
    ids = list(_manifest(review_run))
    store = VerdictStore(review_run)
    store.append(parse_verdict(ids[0], {"verdict": "accept"}))
    store.append(parse_verdict(ids[1], {"verdict": "reject", "reason": "wrong_shape"}))
    dest = tmp_path / "export"
    code = main(
        ["dataset", "export", str(review_run), "-o", str(dest), "--format", "nnunet,monai", "--skip-rejected"]
    )
    assert code == 0
    nn = next((dest / "nnunet").glob("Dataset*"))
    for case_id, present in [(ids[0], True), (ids[1], False), (ids[2], True)]:
        assert bool(list((nn / "imagesTr").glob(f"{case_id}_*"))) is present
        assert bool(list((nn / "labelsTr").glob(f"{case_id}_*"))) is present
        assert bool(list((dest / "monai" / "images").glob(f"{case_id}_*"))) is present
    datalist = json.loads((dest / "monai" / "datalist.json").read_text())
    assert {e["case_id"] for e in datalist["training"]} == {ids[0], ids[2]}
    dataset = json.loads((nn / "dataset.json").read_text())
    assert dataset["numTraining"] == len(list((nn / "labelsTr").glob("*.nii.gz")))
    rows = _manifest(dest)
    assert list(rows) == [ids[0], ids[2]] and rows[ids[0]]["review_status"] == "accepted"
    record = json.loads((dest / "export.json").read_text())
    assert record["skipped"] == {ids[1]: "rejected in review (wrong_shape)"}
    assert (review_run / "cases" / f"{ids[1]}.zip").is_file()  # the run itself is untouched

    # a re-export without skipping replaces the folder and brings the case back
    report = export_run(review_run, dest, [ExportFormat.NNUNET])
    assert report.exported == ids and list((nn / "imagesTr").glob(f"{ids[1]}_*"))
    assert not (dest / "monai").exists()


def test_cli_errors_are_one_line(
    review_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def err(argv: list[str]) -> str:
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in lines[0]
        return lines[0]

    (tmp_path / "empty").mkdir()
    assert "not a dataset run folder" in err(["review", str(tmp_path / "empty")])
    assert "is not a folder" in err(["review", str(tmp_path / "missing")])
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "design.json").write_text((review_run / "design.json").read_text())
    assert "no finished cases" in err(["review", str(unfinished)])
    assert "reviewer id" in err(["review", str(review_run), "--reviewer", "Jane Doe"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert f"port {port} on 127.0.0.1 is in use" in err(["review", str(review_run), "--port", str(port)])
    (tmp_path / "empty" / "notes.txt").write_text("mine")
    assert "not empty and holds no export" in err(
        ["dataset", "export", str(review_run), "-o", str(tmp_path / "empty"), "--format", "nnunet"]
    )
    assert "must not be the run folder" in err(
        ["dataset", "export", str(review_run), "-o", str(tmp_path), "--format", "nnunet"]
    )
    assert "must not be the run folder" in err(
        ["dataset", "export", str(review_run), "-o", str(review_run), "--format", "nnunet"]
    )
    assert "unknown format" in err(
        ["dataset", "export", str(review_run), "-o", str(tmp_path / "x"), "--format", "png"]
    )

    VerdictStore(review_run).append(parse_verdict(next(iter(_manifest(review_run))), {"verdict": "accept"}))
    assert main(["review", str(review_run), "--apply"]) == 0
    assert "verdicts of 1 cases" in capsys.readouterr().err
    assert next(iter(_manifest(review_run).values()))["review_status"] == "accepted"
