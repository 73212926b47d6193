"""Fixtures: two small synthetic bundles and the untouched thorax phantom as a "healthy" scan.

Built once per session (about 10 s on 2 cores) and shared read-only by the VTT tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

N_BUNDLES = 2


@dataclass(frozen=True)
class VttInputs:
    """Paths of the inputs a study is built from."""

    bundles: list[Path]
    healthy: Path
    real_image: Path
    real_mask: Path


@pytest.fixture(scope="session")
def vtt_inputs(tmp_path_factory: pytest.TempPathFactory) -> VttInputs:
    import longisynth
    from longisynth.bundle import read_bundle_image
    from longisynth.demo import demo_input

    root = tmp_path_factory.mktemp("vtt_inputs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LONGISYNTH_REFINER", "off")
        d = demo_input("lung")
        bundles = []
        for k in range(N_BUNDLES):
            study = longisynth.generate(d.scans, d.prompt, seed=k)
            bundles.append(
                longisynth.write_bundle(study, root / f"b{k}.zip", displacement=False, preview=False)
            )
    scan = d.scans["ct"]
    healthy = root / "phantom.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(scan.raw), scan.geometry.affine), healthy)
    # A stand-in "real lesion": image and mask of a bundle timepoint saved as plain NIfTI files.
    real_image, real_mask = root / "lesion_img.nii.gz", root / "lesion_mask.nii.gz"
    nib.save(read_bundle_image(bundles[0], "timepoint_03/ct.nii.gz"), real_image)
    nib.save(read_bundle_image(bundles[0], "timepoint_03/mask.nii.gz"), real_mask)
    return VttInputs(bundles, healthy, real_image, real_mask)


@pytest.fixture(scope="session")
def _vtt_study_template(vtt_inputs: VttInputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from longisynth.vtt.study import build_study

    out = tmp_path_factory.mktemp("vtt_template") / "study"
    build_study(out, vtt_inputs.bundles, healthy=[vtt_inputs.healthy], n_healthy=3, seed=7)
    return out


@pytest.fixture
def vtt_study(_vtt_study_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a 5-item study (2 synthetic, 3 healthy lung regions of the same phantom)."""
    import shutil

    return Path(shutil.copytree(_vtt_study_template, tmp_path / "study"))


@pytest.fixture
def vtt_server(vtt_study: Path) -> Iterator[str]:
    """The real reading server (uvicorn) on a free 127.0.0.1 port in a thread; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    from longisynth.vtt.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(vtt_study), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the VTT server did not start within 10 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
