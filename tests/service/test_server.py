"""The real BentoML server on 127.0.0.1, driven through the real SDK (and raw httpx for limits)."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import longisynth_client as lc
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

import longisynth
from longisynth.io import read_dicom_series
from longisynth.refine.model import DEFAULT_MODEL
from tests.conftest import shared_file
from tests.service._server import Server, start, stop

# The server runs the shipped refiner, so the engine side of every comparison does too.
pytestmark = [pytest.mark.xdist_group("server"), pytest.mark.refiner]
KEY = "test-key-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "LONGISYNTH_API_KEYS": KEY,
        "LONGISYNTH_MAX_UPLOAD_BYTES": str(50 << 20),
        "LONGISYNTH_MAX_TIMEPOINTS": "6",
        "LONGISYNTH_MAX_CONCURRENCY": "2",
        "LONGISYNTH_MAX_QUEUE": "1",
        "LONGISYNTH_REFINER": str(DEFAULT_MODEL),
    }
    srv = start(tmp_path_factory.mktemp("server_tmp"), env)
    yield srv
    stop(srv)


@pytest.fixture
def client(server: Server) -> Iterator[lc.Client]:
    # generous timeouts: on a loaded 2-core CI machine a refined study can take a minute
    with lc.Client(server.url, api_key=KEY, max_retries=0, timeout=600) as c:
        yield c


def _images(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n.endswith(".nii.gz")}


def _differences(ours: dict[str, bytes], engine: dict[str, bytes]) -> list[str]:
    """Members whose NIfTI content differs (header and voxels, after gunzip), each with how much.

    The served study must be the engine's study. The comparison is on the decoded NIfTI bytes:
    the gzip stream is an encoding detail, and its byte-reproducibility is checked in-process by
    the engine's determinism tests. A voxel difference is reported with its size, so that a
    failure says whether the study or only its encoding changed.
    """
    out = []
    for name in sorted(ours):
        a, b = gzip.decompress(ours[name]), gzip.decompress(engine[name])
        if a == b:
            continue
        ia, ib = nib.Nifti1Image.from_bytes(a), nib.Nifti1Image.from_bytes(b)
        va, vb = np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj)
        if va.shape != vb.shape or not np.array_equal(ia.affine, ib.affine):
            out.append(f"{name}: grid differs (shape {va.shape} vs {vb.shape}, or the affine)")
            continue
        diff = np.abs(va.astype(np.float64) - vb.astype(np.float64))
        if diff.max() == 0:
            out.append(f"{name}: header fields differ, voxels equal")
        else:
            out.append(f"{name}: {int((diff > 0).sum())} voxels differ, max |diff| {diff.max():.3g}")
    return out


def _engine_bundle(scan: longisynth.io.Scan, prompt: str, seed: int, tmp: Path) -> bytes:  # type: ignore[name-defined]
    study = longisynth.generate(scan, prompt, seed=seed)
    return longisynth.write_bundle(study, tmp / "engine.zip").read_bytes()


def test_upload_real_ct_is_byte_identical_to_the_cli(client: lc.Client, tmp_path: Path) -> None:
    """Determinism across processes: the served bundle's images are the CLI's, byte for byte."""
    path = shared_file("totalseg_chest_ct_crop.nii.gz")
    prompt = "solid nodule 10 mm in the left lung, 3 timepoints over 6 months"
    bundle = client.generate(path, prompt=prompt, seed=4)
    assert bundle.filename.startswith("longisynth-") and bundle.filename.endswith("-seed4.zip")
    ours = _images(bundle.bytes)
    out = tmp_path / "cli.zip"
    cli = [sys.executable, "-m", "longisynth.cli", "generate", str(path), "--prompt", prompt]
    res = subprocess.run([*cli, "--seed", "4", "-o", str(out), "-q"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    engine = _images(out.read_bytes())
    assert ours.keys() == engine.keys() and len(ours) == 9
    assert _differences(ours, engine) == []
    assert ours == engine  # the gzip streams too: same bytes from any process
    assert bundle.metadata["prompt"] == prompt
    # the client's file name is not kept (it can be a patient's name): a neutral name and the sha256
    assert bundle.metadata["input"]["files"][0]["name"] == "scan.nii.gz"
    assert "totalseg" not in json.dumps(bundle.metadata)


def _write_dicom_series(folder: Path) -> None:
    from longisynth.phantoms.thorax import make_thorax_phantom

    hu, affine = make_thorax_phantom(shape=(160, 160, 100), spacing_mm=(2.2, 2.2, 3.0), seed=1)
    folder.mkdir()
    series, frame = generate_uid(), generate_uid()
    for k in range(hu.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "CT", series, frame
        ras = affine @ np.array([0, 0, k, 1.0])
        ds.ImagePositionPatient = [float(-ras[0]), float(-ras[1]), float(ras[2])]  # RAS -> LPS
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]  # phantom axes are L and P
        ds.PixelSpacing = [2.2, 2.2]
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (hu[:, :, k].T.astype(np.int32) + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / f"slice_{hu.shape[2] - k:03d}.dcm", enforce_file_format=True)


def test_dicom_series_zip_matches_engine(client: lc.Client, tmp_path: Path) -> None:
    folder = tmp_path / "series"
    _write_dicom_series(folder)
    prompt = "solid nodule 12 mm in the right lung, 3 timepoints over 6 months"
    bundle = client.generate(folder, prompt=prompt, seed=2)  # the SDK zips the folder
    engine = _images(_engine_bundle(read_dicom_series(folder), prompt, 2, tmp_path))
    ours = _images(bundle.bytes)
    assert ours.keys() == engine.keys() and len(ours) == 9
    assert _differences(ours, engine) == []
    assert bundle.metadata["input"]["files"][0]["shape"] == [160, 160, 100]


def test_demo_and_readiness(client: lc.Client, server: Server) -> None:
    bundle = client.generate_demo("lung", prompt="solid nodule 11 mm", seed=5)
    assert bundle.metadata["spec"]["diameter_mm"] == 11.0 and len(bundle.timepoints) == 4
    assert bundle.metadata["simulation"]["refiner"]["status"] == "applied"
    ready = client.ready()
    assert ready["execution_provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert ready["model"]["loaded"] is True and len(ready["model"]["sha256"]) == 64
    assert ready["limits"]["max_timepoints"] == 6 and ready["limits"]["auth"] is True


def test_job_progress_and_cancel(client: lc.Client) -> None:
    job = client.submit_demo_job("lung", prompt="solid nodule 12 mm", seed=1)
    stages = set()
    for _ in range(600):
        status = client.get_job(job.id)
        stages.add(status.stage)
        if status.done:
            break
        time.sleep(0.1)
    assert status.status == "succeeded" and status.progress == 1.0
    assert {"anatomy", "appearance"} & stages
    assert len(client.job_result(job.id).timepoints) == 4
    second = client.submit_demo_job("lung", prompt="solid nodule 12 mm", seed=2)
    assert client.cancel_job(second.id).status == "cancelled"
    with pytest.raises(lc.ConflictError):
        client.job_result(second.id)
    with pytest.raises(lc.NotFoundError):
        client.get_job("does-not-exist")


def test_limits_and_errors_are_json(server: Server, tmp_path: Path) -> None:
    before = server.leftovers()
    auth = {"Authorization": f"Bearer {KEY}"}
    ct = shared_file("totalseg_chest_ct_crop.nii.gz").read_bytes()
    cases = [
        ({}, {"scan": ("ct.nii.gz", ct)}, {"prompt": "solid nodule"}, 401, "unauthorized"),
        (auth, {"scan": ("big.nii.gz", b"\0" * (51 << 20))}, {}, 413, "payload_too_large"),
        (auth, {"scan": ("notes.txt", b"hello")}, {}, 415, "unsupported_media_type"),
        (auth, {"scan": ("ct.nii.gz", ct)}, {"prompt": "purple nodule"}, 422, "prompt_not_understood"),
        (auth, {"scan": ("ct.nii.gz", ct)}, {"spec": "{not json"}, 422, "invalid_input"),
        (auth, {"scan": ("ct.nii.gz", ct)}, {"prompt": "solid nodule, 8 timepoints"}, 422, "invalid_input"),
        (
            auth,
            {"scan": ("ct.nii.gz", ct)},
            {"prompt": "60 mm nodule in the right middle lobe"},
            422,
            "lesion_does_not_fit",
        ),
        (auth, {"scan": ("bad.nii.gz", b"\x1f\x8bjunk")}, {}, 422, "invalid_input"),
    ]
    for headers, files, data, status, kind in cases:
        r = httpx.post(f"{server.url}/generate", headers=headers, files=files, data=data, timeout=120)
        assert r.status_code == status, (kind, r.text)
        err = r.json()["error"]
        assert err["type"] == kind and err["message"]
    assert r.json()["error"]["message"].startswith("could not read")
    r = httpx.post(
        f"{server.url}/generate",
        headers=auth,
        files={"scan": ("ct.nii.gz", ct)},
        data={"prompt": "purple nodule"},
        timeout=60,
    )
    assert r.json()["error"]["unknown_words"] == ["purple"]
    r = httpx.post(
        f"{server.url}/generate",
        headers=auth,
        files={"scan": ("ct.nii.gz", ct)},
        data={"spec": '{"diameter_mm": -1}'},
        timeout=60,
    )
    assert r.status_code == 422 and "diameter_mm" in r.json()["error"]["message"]
    assert server.leftovers() <= before  # every failed request removed its folder


def _wait_idle(server: Server) -> None:
    """Wait until no study runs or waits (a cancelled job finishes its current stage first)."""
    for _ in range(300):
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        if "longisynth_queue_depth 0.0" in text or "longisynth_queue_depth" not in text:
            return
        time.sleep(0.2)
    raise AssertionError("server did not become idle")


def test_full_queue_answers_429_with_retry_after(server: Server) -> None:
    _wait_idle(server)
    results: list[httpx.Response] = []

    def call() -> None:
        results.append(
            httpx.post(
                f"{server.url}/generate/demo",
                headers={"X-API-Key": KEY},
                json={"kind": "lung", "prompt": "solid nodule 10 mm", "seed": 1},
                timeout=300,
            )
        )

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    # capacity = 2 running + 1 queued: 6 simultaneous requests cannot all be admitted
    assert codes.count(200) >= 1 and codes.count(429) >= 1 and set(codes) <= {200, 429}
    busy = next(r for r in results if r.status_code == 429)
    assert int(busy.headers["Retry-After"]) > 0 and busy.json()["error"]["type"] == "too_many_requests"


def test_metrics_report_requests_and_lesions(server: Server, client: lc.Client) -> None:
    _wait_idle(server)
    client.generate_demo("lung", prompt="solid nodule 10 mm", seed=9)
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    requests = [line for line in text.splitlines() if line.startswith("longisynth_requests")]
    assert 'longisynth_requests_total{endpoint="generate_demo",status="200"}' in text, requests
    assert 'longisynth_lesions_generated_total{family="lung_nodule"}' in text
    assert "longisynth_bytes_out_total" in text and "longisynth_request_duration_seconds_bucket" in text


def test_health_is_json(server: Server) -> None:
    r = httpx.get(f"{server.url}/healthz", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def _histogram(text: str, name: str) -> dict[str, float]:
    """``le`` bucket → cumulative count of a Prometheus histogram (summed over label sets)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="')[1].split('"')[0]
            out[le] = out.get(le, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def test_concurrent_studies_share_refiner_batches(server: Server, client: lc.Client) -> None:
    """Two studies refining at the same time go through the model in merged inference calls."""
    _wait_idle(server)
    merged = 0.0
    for attempt in range(3):
        before = _histogram(
            httpx.get(f"{server.url}/metrics", timeout=10).text, "longisynth_model_batch_requests"
        )
        bundles: list[lc.Bundle] = []

        def call(seed: int, bundles: list[lc.Bundle] = bundles) -> None:
            bundles.append(client.generate_demo("lung", prompt="solid nodule 14 mm", seed=seed))

        threads = [threading.Thread(target=call, args=(20 + attempt,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(bundles) == 2 and _images(bundles[0].bytes) == _images(bundles[1].bytes)
        after = _histogram(
            httpx.get(f"{server.url}/metrics", timeout=10).text, "longisynth_model_batch_requests"
        )
        # inference calls that merged more than one study's call: all calls minus those with 1
        total = after["+Inf"] - before.get("+Inf", 0.0)
        single = after["1.0"] - before.get("1.0", 0.0)
        merged = total - single
        if merged > 0:
            break
    assert merged > 0, "no refiner batch merged calls of the two concurrent studies"
    tiles = _histogram(httpx.get(f"{server.url}/metrics", timeout=10).text, "longisynth_model_batch_tiles")
    assert tiles["+Inf"] > 0


def test_openapi_schema_is_the_engine_spec(server: Server) -> None:
    from longisynth.spec import LesionSpec

    doc = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    schemas = doc["components"]["schemas"]
    engine = LesionSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["LesionSpec"]["properties"] == engine["properties"]
    assert set(engine["$defs"]) <= set(schemas)
    form = schemas["GenerateForm"]["properties"]
    assert form["spec"]["contentSchema"] == {"$ref": "#/components/schemas/LesionSpec"}
    assert {"/generate", "/generate/demo", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/result"} <= set(
        doc["paths"]
    )
