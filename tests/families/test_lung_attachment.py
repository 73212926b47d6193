"""What a nodule touches: the attachment asked for touches its structure (pleura, vessel, fissure)
and nothing else, on the real chest CT crop (TotalSegmentator, LPS, 1.5 mm) and on the thorax
phantom with its lobe labels (fissures)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import longisynth
from longisynth.anatomy.attachment import DENSE_HU, STRUCTURES, classify, contacts_mm2
from longisynth.anatomy.lung import segment_lungs
from longisynth.demo import demo_input
from longisynth.errors import LesionDoesNotFitError
from longisynth.families.base import Inputs
from longisynth.families.lung_placement import crop_structures
from longisynth.io import read_scan
from longisynth.io.scan import Scan
from longisynth.phantoms.thorax import thorax_phantom_labels
from longisynth.result import Study
from tests.conftest import shared_file

PROMPT = "solid nodule 9 mm, scans at 0 and 6 months"
REQUIRED = {"isolated": None, "juxtapleural": "pleura", "juxtavascular": "vessel", "perifissural": "fissure"}


@pytest.fixture(scope="module")
def chest() -> Scan:
    return read_scan(shared_file("totalseg_chest_ct_crop.nii.gz"))


@pytest.fixture(scope="module")
def phantom() -> tuple[Scan, np.ndarray]:
    scan = demo_input("lung").scans["ct"]
    return scan, thorax_phantom_labels(scan.geometry.shape, scan.geometry.spacing_mm)


def _contacts(study: Study, scan: Scan, labels: np.ndarray | None) -> dict[str, float]:
    """Contacts of the last mask with the host's structures, measured again on the input scan."""
    anatomy = segment_lungs(scan.values(), scan.geometry, labels)
    inputs = Inputs({"ct": scan}, study.spec, {}, labels)
    structures = crop_structures(inputs, anatomy, study.box)
    mask = study.timepoints[-1].mask > 0
    lobe = 0
    if labels is not None:  # the lobe the nodule lies in
        values, counts = np.unique(np.asarray(labels[study.box.slices])[mask], return_counts=True)
        lobe = int(values[np.argmax(counts)])
    return contacts_mm2(mask, structures, lobe, scan.geometry.spacing_mm)


def _check_touches_only(contacts: dict[str, float], attachment: str) -> None:
    need = REQUIRED[attachment]
    for name in STRUCTURES:
        if name == need:
            assert contacts[name] >= 1.0, (attachment, contacts)
        else:
            assert contacts[name] == 0.0, (attachment, contacts)


@pytest.mark.parametrize("attachment", ["isolated", "juxtapleural", "juxtavascular"])
@pytest.mark.parametrize("seed", [1, 2])
def test_attachment_touches_its_structure_and_nothing_else_real_ct(
    chest: Scan, attachment: str, seed: int
) -> None:
    study = longisynth.generate(
        chest, PROMPT, spec={"location": {"attachment": attachment}}, seed=seed, refine=False
    )
    reported = study.extra["attachment"]
    assert reported["type"] == attachment and reported["drawn"] is False
    contacts = _contacts(study, chest, None)
    assert contacts == reported["contact_mm2_last_timepoint"]
    _check_touches_only(contacts, attachment)
    hu = chest.values()[study.box.slices]
    mask = study.timepoints[-1].mask > 0
    dense = ndimage.gaussian_filter(hu, 0.4) > DENSE_HU
    if attachment == "juxtavascular":  # a vessel of the host runs inside the nodule and out of it
        shell = ndimage.binary_dilation(mask, iterations=2) & ~mask
        assert (dense & mask).any() and (dense & shell).any()
    if attachment == "isolated":  # nothing dense of the host within a voxel of the nodule
        assert not (dense & ndimage.binary_dilation(mask) & ~mask).any()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_perifissural_lies_against_a_fissure_within_one_lobe(
    phantom: tuple[Scan, np.ndarray], seed: int
) -> None:
    scan, labels = phantom
    study = longisynth.generate(
        scan,
        "perifissural solid nodule 8 mm, scans at 0 and 6 months",
        seed=seed,
        labels=labels,
        refine=False,
    )
    assert study.extra["attachment"]["type"] == "perifissural"
    contacts = _contacts(study, scan, labels)
    _check_touches_only(contacts, "perifissural")
    lobes_under = np.unique(np.asarray(labels[study.box.slices])[study.timepoints[-1].mask > 0])
    assert lobes_under.size == 1 and 10 <= lobes_under[0] <= 14  # the fissure bounds it
    # lentiform: the drawn body is flattened (shortest semi-axis ≤ 0.55 of the longest)
    ellipsoid = np.asarray(study.extra["nodule_shape"]["ellipsoid"]).reshape(3, 3)
    axes = np.sort(np.linalg.eigvalsh(ellipsoid) ** -0.5)
    assert axes[0] / axes[-1] <= 0.551


def test_perifissural_needs_a_lobe_label_map(chest: Scan) -> None:
    with pytest.raises(LesionDoesNotFitError, match="label map"):
        longisynth.generate(chest, "perifissural nodule 8 mm", seed=1, refine=False)


def test_drawn_attachment_is_reported_measured_and_deterministic(phantom: tuple[Scan, np.ndarray]) -> None:
    """Unset, the attachment is drawn (perifissural only with lobes); what the metadata says is
    what the mask touches; the same seed gives the same nodule."""
    scan, labels = phantom
    seen = set()
    for seed in range(1, 9):
        study = longisynth.generate(scan, PROMPT, seed=seed, labels=labels, refine=False)
        reported = study.extra["attachment"]
        assert reported["drawn"] is True
        seen.add(reported["type"])
        assert classify(_contacts(study, scan, labels), 1.0).value == reported["type"]
    assert len(seen) >= 2
    a = longisynth.generate(scan, PROMPT, seed=4, labels=labels, refine=False)
    b = longisynth.generate(scan, PROMPT, seed=4, labels=labels, refine=False)
    assert a.extra["attachment"] == b.extra["attachment"]
    assert np.array_equal(a.timepoints[-1].mask, b.timepoints[-1].mask)
    assert np.array_equal(a.timepoints[-1].crops["ct"], b.timepoints[-1].crops["ct"])


def test_juxtapleural_false_is_never_drawn_juxtapleural(chest: Scan) -> None:
    for seed in range(1, 6):
        study = longisynth.generate(
            chest, PROMPT, spec={"location": {"juxtapleural": False}}, seed=seed, refine=False
        )
        assert study.extra["attachment"]["type"] != "juxtapleural"
        assert study.extra["attachment"]["contact_mm2_last_timepoint"]["pleura"] == 0.0


def test_an_explicit_point_is_kept_whatever_it_touches(chest: Scan) -> None:
    """A point and no attachment: the nodule goes there (the attachment is drawn among those the
    point allows, or left unclassified); a point with an attachment it cannot have is refused."""
    first = longisynth.generate(chest, PROMPT, seed=3, refine=False)
    point = first.extra["lesion_center_mm"]
    for seed in (4, 5):
        again = longisynth.generate(
            chest, PROMPT, spec={"location": {"point_mm": point}}, seed=seed, refine=False
        )
        assert again.extra["lesion_center_mm"] == pytest.approx(point, abs=1e-6)
        kind = again.extra["attachment"]["type"]
        if kind is not None:
            _check_touches_only(_contacts(again, chest, None), kind)
    wrong = "juxtapleural" if first.extra["attachment"]["type"] != "juxtapleural" else "isolated"
    with pytest.raises(LesionDoesNotFitError, match="requested point"):
        longisynth.generate(
            chest, PROMPT, spec={"location": {"point_mm": point, "attachment": wrong}}, seed=3, refine=False
        )
