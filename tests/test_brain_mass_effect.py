"""The brain's mass effect: a potential flow from the tumour into the CSF (deformation.BrainFlow)."""

from __future__ import annotations

import gzip
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from numpy.typing import NDArray

from longisynth.deformation import BrainFlow, Warper, jacobian_determinant

N = 96  # a 96 mm cube at 1 mm: a spherical "brain" with two ventricles and a CSF rim
SPACING = (1.0, 1.0, 1.0)
CENTRE = 48
TUMOUR_X = 26.0  # tumour centre, mm right of the midline (array axis 0)


def _head() -> tuple[NDArray[np.bool_], NDArray[np.float32], NDArray[np.float32]]:
    g = np.indices((N, N, N)).astype(np.float32) - CENTRE
    r = np.sqrt((g**2).sum(axis=0))
    brain = r < 44
    csf = np.zeros(brain.shape, dtype=np.float32)
    for side in (-1, 1):  # lateral ventricles 8 mm either side of the midline
        csf[(np.abs(g[0] - side * 8) < 3) & (np.abs(g[1]) < 18) & (np.abs(g[2]) < 6)] = 1.0
    csf[(r > 40) & brain] = 1.0  # subarachnoid CSF under the skull
    return brain, csf, g


def _tumour(g: NDArray[np.float32], radius: float) -> NDArray[np.bool_]:
    return np.asarray(np.sqrt((g[0] - TUMOUR_X) ** 2 + g[1] ** 2 + g[2] ** 2) < radius)


@pytest.fixture(scope="module")
def head() -> tuple[BrainFlow, NDArray[np.bool_], NDArray[np.float32], NDArray[np.float32]]:
    brain, csf, g = _head()
    flow = BrainFlow.of(brain, csf, np.array([CENTRE + TUMOUR_X, CENTRE, CENTRE]), SPACING)
    return flow, brain, csf, g


@pytest.mark.parametrize("radius", [6.0, 10.0, 14.0])
def test_invertible_and_nothing_outside_the_brain_moves(head, radius: float) -> None:  # type: ignore[no-untyped-def]
    flow, brain, _, g = head
    tumour = _tumour(g, radius)
    field = flow.field(tumour, float(tumour.sum()))
    assert np.any(field != 0)
    assert jacobian_determinant(field, SPACING).min() > 0.1
    assert np.all(field[:, ~brain] == 0)  # the skull and whatever lies outside stay put
    for ax in range(3):  # the crop's faces too (the scan outside the crop is untouched)
        assert np.all(np.take(field, [0, N - 1], axis=ax + 1) == 0)
    size = np.sqrt((field**2).sum(axis=0))
    if radius == 6.0:  # a small tumour leaves the far side of the brain exactly in place (copied)
        assert np.any(brain & (g[0] < -20) & (size == 0))
    assert np.all(size[size > 0] < 40.0)


def test_midline_shifts_away_and_the_near_ventricle_is_compressed_more(head) -> None:  # type: ignore[no-untyped-def]
    flow, _, csf, g = head
    small, large = _tumour(g, 8.0), _tumour(g, 14.0)
    shifts = []
    for tumour in (small, large):
        field = flow.field(tumour, float(tumour.sum()))
        # pull-back along x at the midline: > 0 means the tissue now there came from the tumour's side
        shifts.append(float(field[0, CENTRE, CENTRE, CENTRE]))
        # the ventricles as the output shows them: the CSF map pulled back through the field
        shown = Warper(csf)(field, SPACING)
        ventricles = (np.abs(g[0]) < 16) & (np.abs(g[1]) < 22) & (np.abs(g[2]) < 10)
        before = [float(csf[ventricles & (g[0] * side > 0)].sum()) for side in (1, -1)]
        after = [float(shown[ventricles & (g[0] * side > 0)].sum()) for side in (1, -1)]
        near, far = after[0] / before[0], after[1] / before[1]
        assert near < far <= 1.0  # both give up CSF, the tumour's side more
        jac = jacobian_determinant(field, SPACING)
        assert jac[tumour].mean() < 1.0  # the tumour region expands
    assert 0 < shifts[0] < shifts[1]  # a larger tumour pushes the midline further
    assert shifts[1] > 1.0


def test_csf_is_spent_nearest_first_and_the_volume_balances(head) -> None:  # type: ignore[no-untyped-def]
    flow, _, _, _ = head
    room = float(flow.capacity.sum())
    for added in (0.02 * room, 0.5 * room, 1.5 * room):
        taken = flow.absorbed(added)
        assert taken.sum() == pytest.approx(added, rel=1e-4)
        if added < room:
            assert np.all(taken <= flow.capacity + 1e-6)
    # a small tumour takes its volume from the CSF near it; a large one reaches further
    near = flow.weight / max(float(flow.weight.max()), 1e-12) > 0.5
    share_small = flow.absorbed(0.02 * room)[near].sum() / (0.02 * room)
    share_large = flow.absorbed(0.5 * room)[near].sum() / (0.5 * room)
    assert share_small > share_large


def test_no_volume_no_motion(head) -> None:  # type: ignore[no-untyped-def]
    flow, _, _, g = head
    assert not np.any(flow.field(_tumour(g, 10.0), 0.0))
    assert not np.any(flow.field(np.zeros((N, N, N), dtype=bool), 1000.0))


_GENERATE = """
import sys
import longisynth
from longisynth.io.scan import Scan
from longisynth.phantoms.brain import make_brain_phantom

images, affine = make_brain_phantom(("t1",), seed=0, spacing_mm=2.0)
scan = Scan.from_array(images["t1"], affine)
prompt = "high-grade glioma 50 mm in the right frontal lobe, scans at 0 and 2 months"
study = longisynth.generate(scan, prompt, seed=5, contrast="t1", refine=False)
longisynth.write_bundle(study, sys.argv[1], preview=False)
"""


def test_a_pushed_brain_is_byte_identical_across_processes(tmp_path: Path) -> None:
    paths = [tmp_path / "a.zip", tmp_path / "b.zip"]
    for path in paths:
        subprocess.run([sys.executable, "-c", _GENERATE, str(path)], check=True, timeout=600)
    members = []
    for path in paths:
        with zipfile.ZipFile(path) as zf:
            members.append({n: zf.read(n) for n in zf.namelist() if n != "metadata.json"})  # wall times
    assert members[0] == members[1]
    field = nib.Nifti1Image.from_bytes(gzip.decompress(members[0]["timepoint_01/displacement.nii.gz"]))
    assert np.abs(np.asarray(field.dataobj)).max() > 0.5  # the brain was pushed (mm)
