"""Requests as API.md specifies them: paths, auth, multipart fields, JSON bodies, DICOM zipping."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import longisynth_client as lc
import pytest
from longisynth_client._upload import zip_folder
from pydantic import BaseModel

from tests.client.conftest import mask_data, mock, nifti_gz, parse_multipart, recorder, zip_response


def test_auth_header_and_user_agent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok"})

    with lc.Client("http://x", api_key="sekret", transport=mock(handler)) as client:
        assert client.health() == {"status": "ok"}
    assert seen[0].headers["Authorization"] == "Bearer sekret"
    assert seen[0].headers["User-Agent"].startswith("longisynth-client/")
    assert seen[0].url == "http://x/healthz"


def test_no_auth_header_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LONGISYNTH_API_KEY", raising=False)
    seen: list[httpx.Request] = []
    with lc.Client("http://x", transport=recorder(seen, lambda: httpx.Response(200, json={}))) as c:
        c.health()
    assert "Authorization" not in seen[0].headers


def test_env_defaults_and_path_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGISYNTH_BASE_URL", "http://gpu-box:8080/api")
    monkeypatch.setenv("LONGISYNTH_API_KEY", "from-env")
    seen: list[httpx.Request] = []
    with lc.Client(transport=recorder(seen, lambda: httpx.Response(200, json={}))) as client:
        client.ready()
    assert str(seen[0].url) == "http://gpu-box:8080/api/readyz"
    assert seen[0].headers["Authorization"] == "Bearer from-env"


def test_generate_multipart_fields(nifti_scan: Path, tmp_path: Path) -> None:
    labels = tmp_path / "lobes.nii.gz"
    labels.write_bytes(nifti_gz(mask_data(0)))
    seen: dict[str, tuple[str | None, bytes]] = {}
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(f"{request.method} {request.url.path}")
        assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
        seen.update(parse_multipart(request))
        return zip_response()

    with lc.Client("http://x", transport=mock(handler)) as client:
        bundle = client.generate(
            nifti_scan,
            prompt="8 mm solid nodule",
            spec={"diameter_mm": 8.0, "growth": {"law": "exponential"}},
            labels=labels,
            seed=42,
            contrast="t1",
            lenient=True,
        )
    assert paths == ["POST /generate"]
    assert set(seen) == {"scan", "prompt", "spec", "labels", "seed", "contrast", "lenient"}
    assert seen["scan"] == ("scan.nii.gz", nifti_scan.read_bytes())
    assert seen["labels"] == ("lobes.nii.gz", labels.read_bytes())
    assert seen["prompt"] == (None, b"8 mm solid nodule")
    assert json.loads(seen["spec"][1]) == {"diameter_mm": 8.0, "growth": {"law": "exponential"}}
    assert seen["seed"] == (None, b"42")
    assert seen["contrast"] == (None, b"t1")
    assert seen["lenient"] == (None, b"true")
    assert bundle.filename == "longisynth-0123456789ab-seed7.zip"
    assert len(bundle.timepoints) == 2


def test_generate_minimal_fields_and_pydantic_spec(nifti_scan: Path) -> None:
    class Growth(BaseModel):
        law: str | None = None
        doubling_time_days: float | None = None

    class Spec(BaseModel):
        diameter_mm: float | None = None
        shape: str | None = None
        growth: Growth = Growth()

    seen: dict[str, tuple[str | None, bytes]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(parse_multipart(request))
        return zip_response()

    with lc.Client("http://x", transport=mock(handler)) as client:
        client.generate(nifti_scan, spec=Spec(diameter_mm=5.0, growth=Growth(doubling_time_days=300)))
    assert set(seen) == {"scan", "spec", "lenient"}
    assert seen["lenient"] == (None, b"false")
    assert json.loads(seen["spec"][1]) == {"diameter_mm": 5.0, "growth": {"doubling_time_days": 300.0}}


def test_generate_demo_json_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return zip_response(filename="demo.zip")

    with lc.Client("http://x", transport=mock(handler)) as client:
        bundle = client.generate_demo("glioma", prompt="high grade", seed=3)
    assert seen[0].url.path == "/generate/demo"
    assert seen[0].headers["content-type"] == "application/json"
    assert json.loads(seen[0].content) == {"kind": "glioma", "prompt": "high grade", "spec": None, "seed": 3}
    assert bundle.filename == "demo.zip"


def test_content_disposition_is_reduced_to_a_base_name() -> None:
    handler = lambda r: zip_response(filename="../../etc/evil.zip")  # noqa: E731
    with lc.Client("http://x", transport=mock(handler)) as client:
        assert client.generate_demo().filename == "evil.zip"
    with lc.Client(
        "http://x", transport=mock(lambda r: httpx.Response(200, content=zip_response().content))
    ) as c:
        assert c.generate_demo("lung").filename == "longisynth-demo-lung.zip"


def test_bad_scan_arguments_fail_before_any_request(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []
    other = tmp_path / "scan.mha"
    other.write_bytes(b"x")
    with lc.Client("http://x", transport=recorder(calls, lambda: zip_response())) as client:
        with pytest.raises(FileNotFoundError):
            client.generate(tmp_path / "missing.nii.gz")
        with pytest.raises(ValueError, match=r"\.nii"):
            client.generate(other)
        with pytest.raises(TypeError):
            client.generate_demo(spec=[1, 2])  # type: ignore[arg-type]
    assert calls == []


def make_dicom_folder(root: Path) -> Path:
    folder = root / "series"
    (folder / "sub").mkdir(parents=True)
    # written in an order that differs from the sorted one
    (folder / "sub" / "IM2.dcm").write_bytes(b"slice two")
    (folder / "IM10.dcm").write_bytes(b"slice ten")
    (folder / "IM1.dcm").write_bytes(b"slice one")
    (folder / ".DS_Store").write_bytes(b"junk")
    return folder


def test_dicom_folder_zipped_with_stable_order(tmp_path: Path) -> None:
    folder = make_dicom_folder(tmp_path)
    data = zip_folder(folder)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["IM1.dcm", "IM10.dcm", "sub/IM2.dcm"]
        assert zf.read("sub/IM2.dcm") == b"slice two"
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
    assert zip_folder(folder) == data  # byte-for-byte reproducible
    with pytest.raises(ValueError, match="no files"):
        (tmp_path / "empty").mkdir()
        zip_folder(tmp_path / "empty")


def test_generate_uploads_dicom_folder_as_zip(tmp_path: Path) -> None:
    folder = make_dicom_folder(tmp_path)
    seen: dict[str, tuple[str | None, bytes]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(parse_multipart(request))
        assert b"Content-Type: application/zip" in request.content
        return zip_response()

    with lc.Client("http://x", transport=mock(handler)) as client:
        client.generate(folder)
    name, data = seen["scan"]
    assert name == "series.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["IM1.dcm", "IM10.dcm", "sub/IM2.dcm"]


def test_zip_scan_is_sent_as_is(tmp_path: Path) -> None:
    scan = tmp_path / "study.zip"
    scan.write_bytes(zip_folder(make_dicom_folder(tmp_path)))
    seen: dict[str, tuple[str | None, bytes]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(parse_multipart(request))
        return zip_response()

    with lc.Client("http://x", transport=mock(handler)) as client:
        client.generate(scan)
    assert seen["scan"] == ("study.zip", scan.read_bytes())


def test_upload_progress_reports_bytes(nifti_scan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lengths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        lengths.append(request.headers.get("Content-Length", ""))
        assert "Transfer-Encoding" not in request.headers  # streamed, yet with a length
        request.read()
        return zip_response()

    with lc.Client("http://x", transport=mock(handler)) as client:
        client.generate(nifti_scan, progress=True)
    err = capsys.readouterr().err
    assert "uploading" in err and "uploaded" in err
    assert lengths[0].isdigit() and int(lengths[0]) > nifti_scan.stat().st_size


def test_not_a_zip_response_is_reported() -> None:
    client = lc.Client("http://x", transport=mock(lambda r: httpx.Response(200, content=b"<html>")))
    with client, pytest.raises(ValueError, match="not a zip"):
        client.generate_demo()
