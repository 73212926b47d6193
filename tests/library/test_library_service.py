"""The service copies library lesions when the server has a library (LONGISYNTH_LIBRARY), refuses
to start with a broken one, and answers a library request without one as bad input."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from longisynth.errors import InvalidInputError
from longisynth.library import build_library
from service.config import Settings
from service.runner import Request, run
from tests.library.test_library import PROMPT, _write_pair


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("svc_src")
    _write_pair(src, "a", 4.0, 3)
    out = tmp_path_factory.mktemp("svc_lib") / "library"
    build_library(src, out, licence="CC0 (test fixture)")
    return out


def test_server_library_from_env_and_its_lesions(library: Path, tmp_path: Path) -> None:
    settings = Settings.from_env({"LONGISYNTH_LIBRARY": str(library), "LONGISYNTH_WORK_DIR": str(tmp_path)})
    assert settings.library == library
    req = Request(demo_kind="lung", prompt=PROMPT, spec={"source": "library"}, seed=1)
    result = run(req, tmp_path, settings, lambda stage, f: None)
    with zipfile.ZipFile(result.path) as z:
        meta = json.loads(z.read("metadata.json"))
    assert (
        meta["contains_real_lesion"] is True
        and meta["simulation"]["source_lesion"]["licence"] == "CC0 (test fixture)"
    )


def test_broken_library_refuses_to_start_and_missing_one_is_bad_input(library: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LONGISYNTH_LIBRARY: 'nowhere' is not a lesion library"):
        Settings.from_env({"LONGISYNTH_LIBRARY": str(tmp_path / "nowhere")})
    req = Request(demo_kind="lung", prompt=PROMPT, spec={"source": "library"}, seed=1)
    with pytest.raises(InvalidInputError, match="LONGISYNTH_LIBRARY"):
        run(req, tmp_path, Settings(work_dir=tmp_path), lambda stage, f: None)
