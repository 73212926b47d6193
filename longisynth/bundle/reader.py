"""The one bundle reader: member by member, so that only one timepoint's images are in memory at a time."""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any

import nibabel as nib
import numpy as np
from isal import igzip, igzip_lib
from numpy.typing import NDArray

from longisynth.bundle.format import DISPLACEMENT, MASK, MEMBER, METADATA, NON_IMAGE
from longisynth.errors import InvalidInputError
from longisynth.geometry import Geometry


class BundleReader:
    """Open bundle zip. Raises :class:`InvalidInputError` (one readable line) for anything unreadable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._zf = zipfile.ZipFile(path)
            self.metadata: dict[str, Any] = json.loads(self._zf.read(METADATA))
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise InvalidInputError(f"{path}: not a longisynth bundle: not a readable zip ({err})") from None
        except KeyError:
            self._zf.close()
            raise InvalidInputError(f"{path}: no metadata.json (not a longisynth bundle)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            self._zf.close()
            raise InvalidInputError(f"{path}: metadata.json is not valid JSON ({err})") from None
        self.members: dict[int, dict[str, str]] = {}
        for name in self._zf.namelist():
            m = MEMBER.match(name)
            if m:
                self.members.setdefault(int(m.group(1)), {})[m.group(2)] = name
        if not self.members:
            raise InvalidInputError(f"{path}: no timepoint_NN/*.nii.gz images")
        for index, files in self.members.items():
            if MASK not in files:
                raise InvalidInputError(f"{path}: timepoint_{index:02d} has no mask.nii.gz")
            if not self.contrasts_of(index):
                raise InvalidInputError(f"{path}: timepoint_{index:02d} has no image")
        self.indices = sorted(self.members)

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._zf.close()

    def contrasts_of(self, index: int) -> list[str]:
        return sorted(k for k in self.members[index] if k not in NON_IMAGE)

    def has(self, index: int, name: str) -> bool:
        return name in self.members[index]

    def member_bytes(self, index: int, name: str) -> bytes:
        """The stored bytes of ``timepoint_NN/<name>.nii.gz`` (gzip as written: exports copy them)."""
        member = self.members[index][name]
        try:
            return self._zf.read(member)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
            raise InvalidInputError(f"{self.path}: cannot read {member} ({err})") from None

    def image(self, index: int, name: str) -> nib.Nifti1Image:
        """NIfTI image ``timepoint_NN/<name>.nii.gz`` (decompressed into memory)."""
        member = self.members[index][name]
        try:
            data = self.member_bytes(index, name)
            if member.endswith(".gz"):
                data = igzip.decompress(data)  # ISA-L: several times faster than zlib on whole scans
            img = nib.Nifti1Image.from_bytes(data)
            img.dataobj.get_unscaled()  # type: ignore[attr-defined]  # force a full read now, so errors surface here
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, igzip_lib.IsalError, ValueError) as err:  # type: ignore[misc]
            raise InvalidInputError(f"{self.path}: cannot read {member} ({err})") from None
        except Exception as err:  # nibabel raises a zoo of types (HeaderDataError, ImageFileError...)
            raise InvalidInputError(
                f"{self.path}: cannot read {member} ({type(err).__name__}: {err})"
            ) from None
        return img

    def raw(self, index: int, name: str) -> tuple[NDArray[Any], Geometry, float, float]:
        """Stored array (3D), its geometry and the (slope, intercept) that maps it to physical units."""
        img = self.image(index, name)
        arr = np.asarray(img.dataobj.get_unscaled())  # type: ignore[attr-defined]
        if arr.ndim == 4 and arr.shape[3] == 1:
            arr = arr[..., 0]
        if arr.ndim != 3:
            raise InvalidInputError(f"{self.path}: {self.members[index][name]} is not a 3D image")
        slope, inter = img.dataobj.slope, img.dataobj.inter  # type: ignore[attr-defined]
        slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
        inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
        return arr, Geometry(img.affine, arr.shape[:3]), slope, inter

    def mask(self, index: int) -> tuple[NDArray[np.uint8], Geometry]:
        arr, geometry, slope, inter = self.raw(index, MASK)
        labels = np.rint(arr * slope + inter) if (slope, inter) != (1.0, 0.0) else arr
        return np.asarray(labels, dtype=np.uint8), geometry

    def displacement(self, index: int) -> tuple[NDArray[np.float32], Geometry] | None:
        """Displacement field (world RAS+ mm), shape (X, Y, Z, 3), or None when absent."""
        if not self.has(index, DISPLACEMENT):
            return None
        img = self.image(index, DISPLACEMENT)
        arr = np.asarray(img.dataobj, dtype=np.float32)
        if arr.ndim == 5 and arr.shape[3] == 1:
            arr = arr[:, :, :, 0, :]
        if arr.ndim != 4 or arr.shape[3] != 3:
            raise InvalidInputError(f"{self.path}: displacement of timepoint {index} is not (X, Y, Z, 1, 3)")
        return arr, Geometry(img.affine, arr.shape[:3])


def read_metadata(path: Path | str) -> dict[str, Any]:
    """``metadata.json`` of a bundle (a plain dict; :class:`BundleMetadata` validates it).

    Raises:
        InvalidInputError: not a readable zip, or no valid ``metadata.json`` in it.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            data: dict[str, Any] = json.loads(zf.read(METADATA))
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InvalidInputError(f"{path}: not a longisynth bundle: not a readable zip ({err})") from None
    except KeyError:
        raise InvalidInputError(f"{path}: no metadata.json (not a longisynth bundle)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path}: metadata.json is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: metadata.json is not a JSON object")
    return data


def read_bundle_image(path: Path | str, member: str) -> nib.Nifti1Image:
    """One image of a bundle as a nibabel image (fully loaded into memory)."""
    with zipfile.ZipFile(path) as zf:
        data = zf.read(member)
    return nib.Nifti1Image.from_bytes(igzip.decompress(data))
