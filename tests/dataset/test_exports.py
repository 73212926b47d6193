"""Export layouts read back with nibabel / pydicom / highdicom: nnU-Net v2, MONAI, BIDS-like, DICOM.

The CT input is given as a DICOM series carrying fake patient identifiers, so the DICOM export
can be checked for not copying any of them.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import re
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from longisynth.dataset.design import ExportFormat, load_design
from longisynth.dataset.runner import run_dataset
from longisynth.io import read_dicom_series, write_nifti
from longisynth.phantoms.thorax import make_thorax_phantom, thorax_phantom_labels
from tests.dataset.conftest import SHAPE, SPACING_MM, glioma_mri_dataset, write_design

pytestmark = pytest.mark.xdist_group("dataset_exports")  # one worker builds the module fixture

SOURCE_IDENTIFIERS = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN-0042",
    "PatientBirthDate": "19610203",
    "InstitutionName": "St Example Hospital",
    "StudyDate": "20190517",
    "AccessionNumber": "ACC778899",
    "ReferringPhysicianName": "House^Greg",
}


def _write_source_series(folder: Path, hu: np.ndarray, affine: np.ndarray) -> set[str]:
    """A CT series of ``hu`` (i = column, j = row, k = slice) with identifying attributes;
    returns its UIDs."""
    folder.mkdir(parents=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    sp = np.linalg.norm(affine[:3, :3], axis=0)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    uids = {study, series, frame}
    for k in range(hu.shape[2]):
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        uids.add(ds.SOPInstanceUID)
        for key, value in SOURCE_IDENTIFIERS.items():
            setattr(ds, key, value)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality = "CT"
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [*(lps[:3, 0] / sp[0]), *(lps[:3, 1] / sp[1])]
        ds.ImagePositionPatient = list((lps @ [0.0, 0.0, k, 1.0])[:3])
        ds.PixelSpacing = [float(sp[1]), float(sp[0])]
        ds.SliceThickness = float(sp[2])
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = np.ascontiguousarray(hu[:, :, k].T.astype(np.int16)).tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"IM{k:04d}", enforce_file_format=True)
    return uids


@pytest.fixture(scope="module")
def ct_export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two DICOM scans (with fake identifiers) x 1 case, 2-3 timepoints, every format."""
    root = tmp_path_factory.mktemp("ct_export")
    labels = thorax_phantom_labels(SHAPE, SPACING_MM)
    source_uids: set[str] = set()
    lines = ["scan_id,scan,labels,sex"]
    for k in range(2):
        hu, affine = make_thorax_phantom(shape=SHAPE, spacing_mm=SPACING_MM, seed=k)
        source_uids |= _write_source_series(root / "in" / f"dicom{k}", hu, affine)
        write_nifti(root / "in" / f"seg{k}.nii.gz", labels, affine)
        lines.append(f"s{k},dicom{k},seg{k}.nii.gz,{'FM'[k]}")
    (root / "in" / "scans.csv").write_text("\n".join(lines) + "\n")
    design_path = write_design(
        root / "d",
        root / "in" / "scans.csv",
        cases_per_scan=1,
        sample={
            "nodule_type": {"choice": ["part_solid", "solid"]},
            "diameter_mm": {"uniform": [11, 14]},
            "location.lung_lobe": {"choice": ["right_upper", "left_lower"]},
            "n_timepoints": {"integers": [2, 3]},
        },
        stratify=[{"field": "nodule_type"}],
        output={"formats": ["nnunet", "monai", "bids", "dicom"]},
    )
    design = load_design(design_path)
    report = run_dataset(design, design_path.parent, root / "out")
    assert report.n_ok == 2, report.summary
    return {"out": root / "out", "report": report, "source_uids": source_uids, "design": design}


def _bundle_arrays(out: Path, case_id: str, tp: int, contrast: str = "ct") -> tuple[Any, Any]:
    with zipfile.ZipFile(out / "cases" / f"{case_id}.zip") as zf:
        img = nib.Nifti1Image.from_bytes(gzip.decompress(zf.read(f"timepoint_{tp:02d}/{contrast}.nii.gz")))
        mask = nib.Nifti1Image.from_bytes(gzip.decompress(zf.read(f"timepoint_{tp:02d}/mask.nii.gz")))
    return img, mask


def test_nnunet_v2_layout(ct_export: dict[str, Any]) -> None:
    out, rows = ct_export["out"], ct_export["report"].rows
    base = out / "nnunet" / "Dataset501_TinyNodules"
    meta = json.loads((base / "dataset.json").read_text())
    n_tp = sum(len(r["timepoints_days"]) for r in rows)
    assert meta["channel_names"] == {"0": "CT"}
    assert meta["labels"] == {"background": 0, "solid": 1, "ground_glass": 2}
    assert meta["file_ending"] == ".nii.gz" and meta["numTraining"] == n_tp
    labels = sorted((base / "labelsTr").iterdir())
    images = sorted((base / "imagesTr").iterdir())
    assert len(labels) == len(images) == n_tp
    assert all(re.fullmatch(r"case\d{5}_tp\d{2}_0000\.nii\.gz", p.name) for p in images)
    for lab in labels:
        ident = lab.name.removesuffix(".nii.gz")
        case_id, tp = ident.split("_tp")
        label_img = nib.load(lab)
        image = nib.load(base / "imagesTr" / f"{ident}_0000.nii.gz")
        assert label_img.shape == image.shape == SHAPE
        np.testing.assert_allclose(label_img.affine, image.affine)
        values = set(np.unique(np.asarray(label_img.dataobj)))
        assert values <= {0, 1, 2} and 1 in values  # solid core present in both types
        b_img, b_mask = _bundle_arrays(out, case_id, int(tp))
        np.testing.assert_array_equal(np.asarray(image.dataobj), np.asarray(b_img.dataobj))
        np.testing.assert_array_equal(np.asarray(label_img.dataobj), np.asarray(b_mask.dataobj))
    part_solid = next(r for r in rows if r["nodule_type"] == "part_solid")
    last = len(part_solid["timepoints_days"]) - 1
    mask = np.asarray(nib.load(base / "labelsTr" / f"{part_solid['case_id']}_tp{last:02d}.nii.gz").dataobj)
    assert (mask == 2).any()  # ground-glass rim of the part-solid nodule
    splits = json.loads((base / "splits_final.json").read_text())
    assert len(splits) == 5  # two scans: folds 0/2/4 and 1/3 repeat (tests/dataset/test_folds.py)
    for fold in splits:  # one source scan never on both sides
        scans = [{i.split("_tp")[0] for i in fold[side]} for side in ("train", "val")]
        assert scans[0] and scans[1] and not scans[0] & scans[1]


def test_monai_datalist(ct_export: dict[str, Any]) -> None:
    out = ct_export["out"]
    datalist = json.loads((out / "monai" / "datalist.json").read_text())
    entries = datalist["training"]
    assert (
        datalist["numTraining"]
        == len(entries)
        == sum(len(r["timepoints_days"]) for r in ct_export["report"].rows)
    )
    assert datalist["modality"] == {"0": "CT"} and datalist["labels"]["2"] == "ground_glass"
    for e in entries:
        img, lab = nib.load(out / "monai" / e["image"]), nib.load(out / "monai" / e["label"])
        assert img.shape == lab.shape == SHAPE
        assert (
            e["fold"] in (0, 1) and e["days"] >= 0 and e["label"].endswith(f"_tp{e['timepoint']:02d}.nii.gz")
        )
    folds = {e["scan_id"]: e["fold"] for e in entries}
    assert sorted(folds.values()) == [0, 1]


def test_bids_like_tree(ct_export: dict[str, Any]) -> None:
    out = ct_export["out"] / "bids"
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["BIDSVersion"] and desc["DatasetType"] == "raw"
    with (out / "participants.tsv").open() as fh:
        participants = list(csv.DictReader(fh, delimiter="\t"))
    assert [p["participant_id"] for p in participants] == ["sub-case00000", "sub-case00001"]
    assert [p["sex"] for p in participants] == ["F", "M"]
    for row in ct_export["report"].rows:
        sub = f"sub-{row['case_id']}"
        with (out / sub / f"{sub}_sessions.tsv").open() as fh:
            sessions = list(csv.DictReader(fh, delimiter="\t"))
        assert [float(s["days_since_baseline"]) for s in sessions] == row["timepoints_days"]
        for s in sessions:
            ses = s["session_id"]
            img = nib.load(out / sub / ses / "anat" / f"{sub}_{ses}_ct.nii.gz")
            seg = nib.load(
                out / "derivatives" / "longisynth" / sub / ses / "anat" / f"{sub}_{ses}_dseg.nii.gz"
            )
            assert img.shape == seg.shape == SHAPE and np.asarray(seg.dataobj).max() >= 1
    assert "1\tsolid" in (out / "derivatives" / "longisynth" / "dseg.tsv").read_text()


def _series(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]


def test_dicom_series_and_seg_frames_map_to_the_right_slices(ct_export: dict[str, Any]) -> None:
    import highdicom as hd

    out = ct_export["out"]
    row = next(r for r in ct_export["report"].rows if r["nodule_type"] == "part_solid")
    case_dir = out / "dicom" / row["case_id"]
    tps = sorted(case_dir.iterdir())
    assert [p.name for p in tps] == [f"tp{i:02d}" for i in range(len(row["timepoints_days"]))]
    frames_of_reference, studies, segments_seen = set(), set(), set()
    for i, tp_dir in enumerate(tps):
        series = _series(tp_dir / "ct")
        assert len(series) == SHAPE[2]
        # geometry and HU survive: read back with the engine's own DICOM reader
        scan = read_dicom_series(tp_dir / "ct")
        b_img, b_mask = _bundle_arrays(out, row["case_id"], i)
        np.testing.assert_array_equal(scan.values(), np.asarray(b_img.dataobj))
        np.testing.assert_allclose(scan.geometry.affine, b_img.affine, atol=1e-4)
        frames_of_reference |= {ds.FrameOfReferenceUID for ds in series}
        studies |= {ds.StudyInstanceUID for ds in series}
        synthetic_date = dt.date(2000, 1, 1) + dt.timedelta(days=round(row["timepoints_days"][i]))
        assert series[0].StudyDate == synthetic_date.strftime("%Y%m%d")  # intervals kept, no real date
        # the segmentation: every frame is the right segment of the right slice
        seg = hd.seg.segread(tp_dir / "seg.dcm")
        mask = np.asarray(b_mask.dataobj)
        slice_of = {ds.SOPInstanceUID: k for k, ds in enumerate(series)}
        assert seg.FrameOfReferenceUID == series[0].FrameOfReferenceUID
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series[0].SeriesInstanceUID
        pixels = seg.pixel_array.reshape(-1, SHAPE[1], SHAPE[0])
        expected = {(k, s) for s in (1, 2) for k in range(SHAPE[2]) if (mask[:, :, k] == s).any()}
        seen = set()
        for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
            src = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            k = slice_of[src]
            number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
            slice_labels = np.transpose(mask[:, :, k])  # (rows, columns)
            np.testing.assert_array_equal(pixels[f], (slice_labels == number).astype(pixels.dtype))
            ipp = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
            np.testing.assert_allclose(ipp, [float(v) for v in series[k].ImagePositionPatient], atol=1e-3)
            seen.add((k, number))
        assert seen == expected
        segments_seen |= {s for _, s in seen}
        labels = seg.get_pixels_by_source_instance(
            [ds.SOPInstanceUID for ds in series],
            segment_numbers=[1, 2],
            combine_segments=True,
            assert_missing_frames_are_empty=True,
        )
        np.testing.assert_array_equal(labels, np.transpose(mask, (2, 1, 0)))
    assert segments_seen == {1, 2}  # solid core and ground-glass rim
    assert len(frames_of_reference) == 1  # one frame of reference across timepoints
    assert len(studies) == len(tps)  # one study per timepoint


def test_dicom_copies_no_identifier_from_the_source(ct_export: dict[str, Any]) -> None:
    out = ct_export["out"]
    files = list((out / "dicom").rglob("*.dcm"))
    assert len(files) > 100
    forbidden = [v.encode() for v in SOURCE_IDENTIFIERS.values()]
    forbidden += [uid.encode() for uid in ct_export["source_uids"]]
    for path in files:
        data = path.read_bytes()
        assert not [f for f in forbidden if f in data], path
    ds = pydicom.dcmread(files[0])
    assert ds.PatientIdentityRemoved == "YES" and str(ds.PatientName).startswith("SYNTHETIC^case")
    assert ds.PatientID.startswith("case") and ds.StudyDate.startswith("2000")


def test_adding_a_format_later_exports_from_the_bundles(tmp_path: Path, ct_export: dict[str, Any]) -> None:
    design = ct_export["design"]
    out = tmp_path / "out"
    first = run_dataset(design, tmp_path, out, formats=[ExportFormat.NNUNET])
    assert first.n_ok == 2 and not (out / "bids").exists()
    bundles = {p: p.stat().st_mtime_ns for p in (out / "cases").glob("*.zip")}
    second = run_dataset(design, tmp_path, out, formats=[ExportFormat.NNUNET, ExportFormat.BIDS])
    assert (second.ran, second.n_ok) == (2, 2)
    assert {p: p.stat().st_mtime_ns for p in bundles} == bundles  # nothing simulated again
    assert len(list((out / "bids").glob("sub-*/ses-*/anat/*_ct.nii.gz"))) == sum(
        len(r["timepoints_days"]) for r in second.rows
    )
    assert json.loads((out / "cases" / "case00000.done.json").read_text())["formats"] == ["bids", "nnunet"]
    third = run_dataset(design, tmp_path, out, formats=[ExportFormat.BIDS])
    assert (third.ran, third.skipped) == (0, 2)


def test_glioma_mri_two_contrasts(tmp_path: Path) -> None:
    """MRI: two contrasts become two nnU-Net channels, BIDS suffixes and two MR series."""
    out = glioma_mri_dataset(tmp_path, ("t1", "flair"), ["nnunet", "bids", "dicom"])
    meta = json.loads((out / "nnunet" / "Dataset501_TinyNodules" / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "FLAIR"} and meta["labels"]["enhancing_tumor"] == 3
    assert len(list((out / "nnunet" / "Dataset501_TinyNodules" / "imagesTr").iterdir())) == 4
    anat = out / "bids" / "sub-case00000" / "ses-t01" / "anat"
    assert {p.name for p in anat.glob("*.nii.gz")} == {
        "sub-case00000_ses-t01_T1w.nii.gz",
        "sub-case00000_ses-t01_FLAIR.nii.gz",
    }
    tp = out / "dicom" / "case00000" / "tp01"
    t1, flair = _series(tp / "t1"), _series(tp / "flair")
    assert t1[0].Modality == "MR" and t1[0].SeriesInstanceUID != flair[0].SeriesInstanceUID
    assert t1[0].FrameOfReferenceUID == flair[0].FrameOfReferenceUID
    scan = read_dicom_series(tp / "flair")
    b_img, b_mask = _bundle_arrays(out, "case00000", 1, "flair")
    np.testing.assert_array_equal(scan.values(), np.asarray(b_img.dataobj))
    import highdicom as hd

    seg = hd.seg.segread(tp / "seg.dcm")
    labels = seg.get_pixels_by_source_instance(
        [ds.SOPInstanceUID for ds in t1],
        segment_numbers=[1, 2, 3],
        combine_segments=True,
        assert_missing_frames_are_empty=True,
    )
    np.testing.assert_array_equal(labels, np.transpose(np.asarray(b_mask.dataobj), (2, 1, 0)))
    assert set(np.unique(labels)) >= {2, 3}  # oedema and enhancing rim


def test_float_images_are_quantised_to_16_bits_with_one_rescale_per_contrast() -> None:
    from longisynth.dataset.exports import dicom
    from longisynth.io.scan import Scan

    rng = np.random.default_rng(0)
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    scans = [Scan.from_array(rng.normal(300, 50 * (1 + t), (8, 9, 4)), affine) for t in range(2)]

    class Source:
        timepoints: ClassVar[list[dict[str, int]]] = [{"index": 0}, {"index": 1}]

        def image(self, tp: int, contrast: str) -> Scan:
            return scans[tp]

    enc = dicom._encoding(Source(), "t1")  # type: ignore[arg-type]
    assert enc.requantise and enc.dtype == np.int16
    for scan in scans:  # both timepoints share the rescale and lose at most half a step
        stored = dicom._stored(scan, enc)
        assert stored.dtype == np.int16
        assert np.abs(stored * enc.slope + enc.inter - scan.values()).max() <= enc.slope / 2 + 1e-9
