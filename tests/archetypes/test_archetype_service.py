"""The service reads the site's archetypes (LONGISYNTH_ARCHETYPES) once, refuses to start with a
broken folder, and answers an unknown archetype as bad input (422)."""

from __future__ import annotations

from pathlib import Path

import pytest

from longisynth.errors import InvalidInputError
from service.config import Settings
from service.runner import Request, _archetypes, _check_timepoints
from tests.archetypes.test_archetypes import _user_archetype


def test_server_archetypes_from_env(tmp_path: Path) -> None:
    folder = _user_archetype(tmp_path / "arch")
    settings = Settings.from_env({"LONGISYNTH_ARCHETYPES": str(folder), "LONGISYNTH_WORK_DIR": str(tmp_path)})
    assert settings.archetypes == folder
    assert "slow_solid" in _archetypes(settings.archetypes).names()
    # resolves through the server's registry: a user archetype by prompt words, a shipped one by name
    _check_timepoints("ct", "sluggish solid nodule", Request(demo_kind="lung", seed=1), settings)
    _check_timepoints("mr", "", Request(demo_kind="glioma", spec={"archetype": "gbm"}, seed=1), settings)


def test_a_broken_folder_refuses_to_start_and_an_unknown_name_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.yaml").write_text("name: [")
    with pytest.raises(ValueError, match=r"LONGISYNTH_ARCHETYPES: x\.yaml: not valid YAML"):
        Settings.from_env({"LONGISYNTH_ARCHETYPES": str(tmp_path / "bad")})
    req = Request(demo_kind="lung", spec={"archetype": "banana"}, seed=1)
    with pytest.raises(InvalidInputError, match="unknown archetype 'banana'"):
        _check_timepoints("ct", "", req, Settings(work_dir=tmp_path))
