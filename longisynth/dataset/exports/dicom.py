"""DICOM: every timepoint as a CT/MR series (one file per slice) plus a DICOM-SEG of its mask.

```
dicom/<case_id>/tpNN/<contrast>/0000.dcm ...   # CT Image / MR Image storage, slice k = file k
dicom/<case_id>/tpNN/seg.dcm                   # Segmentation (highdicom), references the first
                                               # contrast's series of the same timepoint
```

Identity and UIDs: every UID is new, derived from the design fingerprint, the case id and the
object's role (``pydicom.uid.generate_uid(entropy_srcs=...)``), so a rerun writes the same bytes.
Each timepoint is its own study (StudyInstanceUID); all timepoints of a case share one
FrameOfReferenceUID (they are on the same grid, so they are registered). Patient name and ID are
the case id; dates are synthetic (:data:`BASE_DATE` + the timepoint's days), so intervals are
right and no real date appears.

What is kept from the source: only the geometry and the pixel values — pixel spacing,
orientation and slice positions (from the NIfTI affine, converted RAS → LPS), slice thickness
(set to the slice spacing; the source's nominal thickness is not known from NIfTI), the modality
(CT/MR), the stored values with their rescale slope/intercept (CT in HU). No source identifier,
date, UID, institution, device or free text is copied; PatientSex is filled only from a ``sex``
attribute (M/F/O) of the design's input manifest. Float images (some MRI) are quantised to
16-bit integers with a rescale slope/intercept shared by all timepoints of the contrast.

Conformance (dicom3tools ``dciodvfy``, tests/dataset/test_validators.py): every slice and SEG has
0 errors and 0 warnings, except that a quantised float MR image carries RescaleSlope/Intercept,
which the MR Image IOD lacks (a warning; readers apply it). Body Part Examined is set (CHEST,
BRAIN; unpaired, so no Laterality); Patient Position is empty (Type 2: unknown from NIfTI); MR
Image Type value 3 is ``OTHER`` (CT: ``AXIAL``); the T1c series has the Contrast/Bolus module
(a gadolinium-based agent, IV).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom import Dataset, FileMetaDataset, dcmwrite
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from longisynth import __version__
from longisynth.bundle.format import LABELS
from longisynth.dataset.exports.common import CaseSource
from longisynth.io.scan import Scan

BASE_DATE = dt.date(2000, 1, 1)  # synthetic date of every case's first timepoint
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
SERIES_DESCRIPTION = {"ct": "CT", "t1": "T1w", "t1c": "T1w post-contrast", "t2": "T2w", "flair": "FLAIR"}
MANUFACTURER = "longisynth"
MODEL = "longisynth synthetic lesion simulator"
# Body Part Examined (PS3.16 Annex L): an unpaired part, so Laterality is not required
BODY_PART = {"lung_nodule": "CHEST", "glioma": "BRAIN"}
CONTRAST_AGENT = {"t1c": "gadolinium-based contrast agent"}  # contrasts acquired after a bolus


@dataclass(frozen=True)
class Uids:
    """Deterministic UIDs for one case."""

    fingerprint: str
    case_id: str

    def __call__(self, *role: object) -> str:
        return str(generate_uid(entropy_srcs=[self.fingerprint, self.case_id, *map(str, role)]))


@dataclass(frozen=True)
class _Encoding:
    dtype: np.dtype
    slope: float
    inter: float
    requantise: bool  # False: stored values are the bundle's raw values


def _encoding(src: CaseSource, contrast: str) -> _Encoding:
    """How one contrast's timepoints are stored: as is when the raw values fit 16 bits, else
    quantised to int16 with one slope/intercept for all timepoints (float MRI). Timepoints are
    decoded one at a time (bounded memory)."""
    lo, hi, vlo, vhi = np.inf, -np.inf, np.inf, -np.inf
    first: Scan | None = None
    for tp in src.timepoints:
        scan = src.image(tp["index"], contrast)
        first = first or scan
        lo, hi = min(lo, float(scan.raw.min())), max(hi, float(scan.raw.max()))
        if scan.raw.dtype.kind == "f":
            values = scan.values()
            vlo, vhi = min(vlo, float(values.min())), max(vhi, float(values.max()))
    assert first is not None
    if first.raw.dtype.kind in "iu":
        if lo >= -32768 and hi <= 32767:
            return _Encoding(np.dtype(np.int16), first.slope, first.inter, False)
        if lo >= 0 and hi <= 65535:
            return _Encoding(np.dtype(np.uint16), first.slope, first.inter, False)
        vlo, vhi = lo * first.slope + first.inter, hi * first.slope + first.inter
        vlo, vhi = min(vlo, vhi), max(vlo, vhi)
    slope = max((vhi - vlo) / 65534.0, 1e-6)
    return _Encoding(np.dtype(np.int16), slope, (vhi + vlo) / 2.0, True)


def _stored(scan: Scan, enc: _Encoding) -> NDArray[Any]:
    if not enc.requantise:
        return scan.raw.astype(enc.dtype)
    q = np.rint((scan.values().astype(np.float64) - enc.inter) / enc.slope)
    return np.clip(q, -32767, 32767).astype(np.int16)


def _ds_number(x: float) -> str:
    """A DS value (at most 16 characters) that parses back to ``x`` as closely as fits."""
    for digits in range(10, 3, -1):
        text = f"{x:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{x:.3g}"


def _common(ds: Dataset, src: CaseSource, tp: dict[str, Any], uids: Uids) -> None:
    """Patient, study, frame of reference and equipment attributes shared by a timepoint's objects."""
    case_id = src.case.case_id
    date = _date(tp)
    ds.PatientName = f"SYNTHETIC^{case_id}"
    ds.PatientID = case_id
    ds.PatientBirthDate = ""
    sex = str(src.case.scan.attributes.get("sex", "")).strip().upper()[:1]
    ds.PatientSex = sex if sex in ("M", "F", "O") else ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "synthetic; from source only geometry and pixels"
    ds.StudyInstanceUID = uids("study", tp["index"])
    ds.StudyDate = date
    ds.StudyTime = "000000"
    ds.StudyID = f"tp{tp['index']:02d}"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = f"longisynth synthetic timepoint {tp['index']} ({float(tp['days']):g} days)"
    ds.FrameOfReferenceUID = uids("frame_of_reference")
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL
    ds.SoftwareVersions = __version__
    ds.SeriesDate = date
    ds.SeriesTime = "000000"
    ds.ContentDate = date
    ds.ContentTime = "000000"


def _slice_datasets(
    src: CaseSource, tp: dict[str, Any], contrast: str, scan: Scan, enc: _Encoding, uids: Uids, number: int
) -> list[Dataset]:
    lps = _LPS @ scan.geometry.affine
    sp = scan.geometry.spacing_mm
    row_dir = lps[:3, 0] / sp[0]  # along a row: array axis i (columns)
    col_dir = lps[:3, 1] / sp[1]  # down a column: array axis j (rows)
    normal = np.cross(row_dir, col_dir)
    stored = _stored(scan, enc)
    is_ct = contrast == "ct"
    series_uid = uids("series", tp["index"], contrast)
    out = []
    for k in range(stored.shape[2]):
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage if is_ct else MRImageStorage
        ds.SOPInstanceUID = uids("image", tp["index"], contrast, k)
        _common(ds, src, tp, uids)
        ds.Modality = "CT" if is_ct else "MR"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = number
        ds.SeriesDescription = SERIES_DESCRIPTION[contrast]
        ds.BodyPartExamined = BODY_PART[src.family]
        ds.PatientPosition = ""  # Type 2: not known from the NIfTI source; the geometry is in LPS
        ds.InstanceNumber = k + 1
        # value 3: CT "AXIAL"; MR has no defined term for an edited image but "OTHER"
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL" if is_ct else "OTHER"]
        ds.AcquisitionNumber = 1
        ds.BurnedInAnnotation = "NO"
        ds.PixelSpacing = [_ds_number(sp[1]), _ds_number(sp[0])]  # row spacing, column spacing
        ds.ImageOrientationPatient = [_ds_number(v) for v in (*row_dir, *col_dir)]
        position = lps @ np.array([0.0, 0.0, float(k), 1.0])
        ds.ImagePositionPatient = [_ds_number(v) for v in position[:3]]
        ds.SliceThickness = _ds_number(sp[2])
        ds.SliceLocation = _ds_number(float(position[:3] @ normal))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = int(stored.shape[1]), int(stored.shape[0])
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if enc.dtype == np.int16 else 0
        if is_ct or (enc.slope, enc.inter) != (1.0, 0.0):
            # CT: Modality LUT (HU). MR Image has no rescale; written only for quantised float
            # images (dciodvfy warns "not present in standard IOD", most readers apply it)
            ds.RescaleSlope = _ds_number(enc.slope)
            ds.RescaleIntercept = _ds_number(enc.inter)
        if contrast in CONTRAST_AGENT:  # Contrast/Bolus module
            ds.ContrastBolusAgent = CONTRAST_AGENT[contrast]
            ds.ContrastBolusRoute = "IV"
        if is_ct:
            ds.RescaleType = "HU"
            ds.KVP = ""
            ds.WindowCenter, ds.WindowWidth = "-600", "1500"  # lung window
        else:
            ds.ScanningSequence = "RM"  # research mode: not an acquired sequence
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "3D"
            ds.EchoTime = ""
            ds.RepetitionTime = ""
            ds.EchoTrainLength = ""
            ds.SpacingBetweenSlices = _ds_number(sp[2])
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        _file_meta(ds)
        out.append(ds)
    return out


def _file_meta(ds: Dataset) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta


def _to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _segment_descriptions(family: str) -> list[Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    category = codes.SCT.MorphologicallyAbnormalStructure
    algorithm = hd.AlgorithmIdentificationSequence(
        name="longisynth", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    kinds = {
        "solid": codes.SCT.Nodule,
        "ground_glass": codes.SCT.Nodule,
        "necrotic_core": codes.SCT.Necrosis,
        "edema": codes.SCT.Edema,
        "enhancing_tumor": codes.SCT.Neoplasm,
    }
    items = [(label.value, label.description, kinds[label.key]) for label in LABELS[family] if label.value]
    region = codes.SCT.Lung if family == "lung_nodule" else codes.SCT.Brain
    return [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=label,
            segmented_property_category=category,
            segmented_property_type=kind,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            anatomic_regions=[region],
        )
        for n, label, kind in items
    ]


def _segmentation(
    src: CaseSource, tp: dict[str, Any], sources: list[Dataset], mask: NDArray[np.uint8], uids: Uids
) -> Dataset:
    import highdicom as hd

    frames = np.ascontiguousarray(np.transpose(mask, (2, 1, 0)))  # (slices, rows, columns)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_segment_descriptions(src.family),
        series_instance_uid=uids("seg_series", tp["index"]),
        series_number=100,
        sop_instance_uid=uids("seg", tp["index"]),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MODEL,
        software_versions=__version__,
        device_serial_number="0",
        content_label="LESION",
        content_description=f"synthetic lesion mask, timepoint {tp['index']}",
        omit_empty_frames=bool(mask.any()),
    )
    _make_deterministic(seg, tp, uids)
    return seg


def _make_deterministic(seg: Dataset, tp: dict[str, Any], uids: Uids) -> None:
    """highdicom stamps the current date and time (content, instance creation, contributing
    equipment) and a random dimension-organisation UID; replace every non-empty date/time with
    the timepoint's synthetic date at 00:00 and the UID with a derived one, so reruns give the
    same bytes."""
    date = _date(tp)

    def fix(ds: Dataset) -> None:
        for elem in ds:
            if elem.VR == "SQ":
                for item in elem.value:
                    fix(item)
            elif elem.VR in ("DA", "TM", "DT") and elem.value:
                elem.value = {"DA": date, "TM": "000000", "DT": f"{date}000000"}[elem.VR]

    fix(seg)
    new_uid = uids("dimension_organization", tp["index"])
    for item in seg.get("DimensionOrganizationSequence", []):
        item.DimensionOrganizationUID = new_uid
    for item in seg.get("DimensionIndexSequence", []):
        if "DimensionOrganizationUID" in item:
            item.DimensionOrganizationUID = new_uid


def _date(tp: dict[str, Any]) -> str:
    """Synthetic acquisition date of a timepoint (DICOM DA): :data:`BASE_DATE` + its days."""
    return (BASE_DATE + dt.timedelta(days=round(float(tp["days"])))).strftime("%Y%m%d")


def export_case(src: CaseSource) -> list[str]:
    uids = Uids(src.design.fingerprint(), src.case.case_id)
    case_dir = f"dicom/{src.case.case_id}"
    out: list[str] = []
    tps = src.timepoints
    encodings = {c: _encoding(src, c) for c in src.contrasts}
    for tp in tps:
        i = tp["index"]
        tp_dir = f"{case_dir}/tp{i:02d}"
        first_series: list[Dataset] = []
        for number, contrast in enumerate(src.contrasts, start=1):
            scan = src.image(i, contrast)
            slices = _slice_datasets(src, tp, contrast, scan, encodings[contrast], uids, number)
            for k, ds in enumerate(slices):
                out.append(src.write(f"{tp_dir}/{contrast}/{k:04d}.dcm", _to_bytes(ds)))
            if not first_series:
                first_series = slices
        seg = _segmentation(src, tp, first_series, src.mask(i), uids)
        out.append(src.write(f"{tp_dir}/seg.dcm", _to_bytes(seg)))
    return out
