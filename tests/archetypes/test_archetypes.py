"""Progression archetypes: the shipped set, a user folder, precedence, determinism, metadata, CLI."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from longisynth import api
from longisynth.archetypes import apply_archetype, builtin_registry, load_registry
from longisynth.cli import main
from longisynth.errors import InvalidInputError
from longisynth.io import write_nifti
from longisynth.phantoms.brain import make_brain_phantom
from longisynth.phantoms.thorax import make_thorax_phantom
from longisynth.spec import Family, LesionSpec, Modality

SHIPPED = builtin_registry().names()
NEEDED = {  # the starting set
    "indolent_ggn",
    "part_solid_adenocarcinoma",
    "aggressive_solid",
    "granuloma",
    "inflammatory_regressing",
    "low_grade_glioma",
    "glioblastoma",
    "oligodendroglioma",
}


def test_the_starting_set_is_shipped_with_references_and_further_glioma_locations() -> None:
    reg = builtin_registry()
    assert set(SHIPPED) >= NEEDED
    further = {reg.get(n).fixed_fields().get("location.brain_lobe") for n in SHIPPED}
    assert {"insula", "corpus_callosum"} <= further  # gliomas in further locations
    assert "diffuse_midline_glioma" in SHIPPED
    for name in SHIPPED:
        a = reg.get(name)
        assert a.references and len(a.description) > 100 and a.version >= 1


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_archetype_resolves_for_many_seeds(name: str) -> None:
    a = builtin_registry().get(name)
    modality = Modality.CT if a.family == Family.LUNG_NODULE else Modality.MR
    for seed in range(25):
        spec = api.resolve(modality, spec={"archetype": name}, seed=seed)
        assert spec.archetype == name and spec.family == a.family
        for path, value in a.fixed_fields().items():  # nothing the request gave: fixed fields hold
            node: object = spec.model_dump(mode="json")
            for part in path.split("."):
                node = node[part]  # type: ignore[index]
            assert node == value, (path, node, value)


def test_values_are_drawn_with_the_seed_and_are_reproducible() -> None:
    a = [api.resolve("ct", spec={"archetype": "aggressive_solid"}, seed=s) for s in (1, 1, 2)]
    assert a[0] == a[1]
    assert a[0].growth.doubling_time_days != a[2].growth.doubling_time_days
    vdt = [api.resolve("ct", "aggressive solid nodule", seed=s).growth.doubling_time_days for s in range(200)]
    assert min(vdt) >= 30 and max(vdt) <= 150  # the archetype's range (VDT 30-150 d)
    assert np.median(vdt) == pytest.approx(np.sqrt(30 * 150), rel=0.2)  # log-uniform median


def test_the_request_wins_and_tied_fields_yield_with_it() -> None:
    spec, use = apply_archetype(LesionSpec(archetype="aggressive_solid", diameter_mm=14.0, seed=3))
    assert use is not None and spec.diameter_mm == 14.0
    assert spec.baseline_diameter_mm is None  # the request's size drops the archetype's other size
    assert spec.growth.doubling_time_days is not None  # ... but keeps its rate
    assert "baseline_diameter_mm" in use.from_request
    spec, use = apply_archetype(LesionSpec(archetype="aggressive_solid", nodule_type="ground_glass", seed=3))
    assert spec.nodule_type.value == "ground_glass" and use is not None and "nodule_type" in use.from_request
    spec, _ = apply_archetype(
        LesionSpec.model_validate({"archetype": "glioblastoma", "location": {"side": "left"}})
    )
    assert spec.location.brain_lobe is None  # a place in the request drops the archetype's preference
    with pytest.raises(InvalidInputError, match="lung nodule"):
        apply_archetype(LesionSpec(archetype="aggressive_solid", family="glioma"))
    with pytest.raises(InvalidInputError, match="gliomas are simulated in brain MRI"):
        api.resolve("ct", spec={"archetype": "glioblastoma"})


def test_alias_names_resolve_to_the_archetype() -> None:
    assert api.resolve("mr", spec={"archetype": "gbm"}).archetype == "glioblastoma"
    with pytest.raises(InvalidInputError, match="did you mean glioblastoma"):
        api.resolve("mr", spec={"archetype": "glioblastom"})


def _user_archetype(folder: Path, **changes: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "name": "slow_solid",
        "version": 2,
        "family": "lung_nodule",
        "title": "A test archetype",
        "description": "A solid nodule that grows slowly, written by a test to check user folders.",
        "references": ["none: a test"],
        "aliases": ["sluggish solid nodule"],
        "spec": {"nodule_type": "solid", "growth": {"law": "exponential"}},
        "sample": {
            "growth.doubling_time_days": {"uniform": [400, 500]},
            "diameter_mm": {"uniform": [12, 14]},
        },
    }
    data.update(changes)
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return folder


def test_a_user_folder_adds_archetypes_the_prompt_can_name(tmp_path: Path) -> None:
    reg = load_registry(_user_archetype(tmp_path / "arch"))
    assert "slow_solid" in reg.names() and set(SHIPPED) <= set(reg.names())
    spec = api.resolve("ct", "sluggish solid nodule", archetypes=reg)
    assert spec.archetype == "slow_solid" and 400 <= spec.growth.doubling_time_days <= 500  # type: ignore[operator]
    # a user archetype with a shipped name replaces it
    reg = load_registry(
        _user_archetype(
            tmp_path / "over", name="glioblastoma", family="glioma", spec={"grade": "low"}, sample={}
        )
    )
    assert reg.get("glioblastoma").version == 2 and reg.origin("glioblastoma") == "user:glioblastoma.yaml"


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"references": []}, "references"),
        ({"sample": {"growth.doubling_time_days": {"uniform": [500, 400]}}}, "uniform low"),
        ({"sample": {"banana": {"uniform": [1, 2]}}}, "not a field"),
        ({"spec": {"family": "glioma"}}, "differs from family"),
    ],
)
def test_an_invalid_user_archetype_is_one_line_naming_the_file(
    tmp_path: Path, changes: dict, needle: str
) -> None:
    folder = tmp_path / "a"
    _user_archetype(folder, **changes)
    if changes.get("name") == "Bad Name":
        (folder / "Bad Name.yaml").rename(folder / "slow_solid.yaml")
    with pytest.raises(InvalidInputError) as info:
        load_registry(folder)
    assert "slow_solid.yaml" in str(info.value) and needle in str(info.value) and "\n" not in str(info.value)


def test_a_file_whose_name_differs_from_its_archetype_is_refused(tmp_path: Path) -> None:
    folder = _user_archetype(tmp_path / "a")
    (folder / "slow_solid.yaml").rename(folder / "other.yaml")
    with pytest.raises(InvalidInputError, match="must equal the file name"):
        load_registry(folder)
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_registry(tmp_path / "missing")


def test_cli_list_show_and_show_yaml_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["archetypes", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SHIPPED)
    assert main(["archetypes", "show", "gbm"]) == 0
    out = capsys.readouterr().out
    assert "Stensjoen" in out and "diameter_mm" in out and "grade = high" in out
    assert main(["archetypes", "show", "aggressive_solid", "--yaml"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "aggressive_solid.yaml").write_text(text)
    reg = load_registry(tmp_path / "mine")  # the printed YAML is a valid archetype, equal to the shipped one
    assert reg.get("aggressive_solid").sha256() == builtin_registry().get("aggressive_solid").sha256()
    assert main(["archetypes", "show", "banana"]) == 2
    assert "unknown archetype" in capsys.readouterr().err


def _metadata(bundle: Path) -> dict:
    with zipfile.ZipFile(bundle) as z:
        return json.loads(z.read("metadata.json"))


def test_generate_with_a_glioma_prompt_names_the_archetype_in_metadata(tmp_path: Path) -> None:
    images, affine = make_brain_phantom(("t1",), seed=2, spacing_mm=3.0)
    write_nifti(tmp_path / "t1.nii.gz", images["t1"], affine)
    out = tmp_path / "g.zip"
    code = main(
        [
            "generate",
            str(tmp_path / "t1.nii.gz"),
            "--prompt",
            "glioblastoma, 3 scans over 4 months",
            "-o",
            str(out),
            "-q",
            "--no-preview",
            "--no-displacement",
        ]
    )
    assert code == 0
    meta = _metadata(out)
    assert meta["spec"]["archetype"] == "glioblastoma" and meta["spec"]["grade"] == "high"
    assert meta["spec"]["n_timepoints"] == 3 and meta["spec"]["duration_days"] == pytest.approx(121.75)
    arch = meta["simulation"]["archetype"]
    assert arch["name"] == "glioblastoma" and arch["version"] == 1 and arch["origin"] == "builtin"
    assert "growth.diffusion_mm2_per_day" in arch["values"] and "n_timepoints" in arch["from_request"]


def test_generate_with_a_user_archetype_folder_records_its_origin(tmp_path: Path) -> None:
    hu, affine = make_thorax_phantom(shape=(96, 96, 64), spacing_mm=(3.5, 3.5, 5.0), seed=0)
    write_nifti(tmp_path / "ct.nii.gz", hu, affine)
    folder = _user_archetype(tmp_path / "arch")
    out = tmp_path / "n.zip"
    code = main(
        [
            "generate",
            str(tmp_path / "ct.nii.gz"),
            "--prompt",
            "sluggish solid nodule, 3 scans over a year",
            "--archetypes",
            str(folder),
            "-o",
            str(out),
            "-q",
            "--no-preview",
            "--no-displacement",
        ]
    )
    assert code == 0
    arch = _metadata(out)["simulation"]["archetype"]
    assert arch["name"] == "slow_solid" and arch["version"] == 2 and arch["origin"] == "user:slow_solid.yaml"
    assert (
        main(
            [
                "generate",
                str(tmp_path / "ct.nii.gz"),
                "--archetypes",
                str(tmp_path / "nope"),
                "-o",
                str(tmp_path / "x.zip"),
                "-q",
            ]
        )
        == 2
    )
    assert not (tmp_path / "x.zip").exists()
