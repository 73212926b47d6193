"""The design of a synthetic dataset: one YAML/JSON file, validated here.

A design names the input scans, how many cases to make per scan, fixed :class:`LesionSpec`
fields (``spec``), distributions over other spec fields (``sample``) and optional balancing
targets (``stratify``). Every case's concrete spec and seed follow from the design and the case's
row index, so the file alone reproduces the dataset (see README.md, "Make a training set").
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from longisynth.dataset import fields
from longisynth.dataset.distributions import Choice, Conditional, Distribution
from longisynth.errors import InvalidInputError
from longisynth.io.contrasts import contrast_key
from longisynth.spec import Contrast, Family, LesionSource, LesionSpec, Modality


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExportFormat(StrEnum):
    NNUNET = "nnunet"  # nnU-Net v2 raw dataset, timepoints as separate cases
    MONAI = "monai"  # MONAI / Auto3DSeg datalist JSON with folds grouped by source scan
    BIDS = "bids"  # BIDS-like longitudinal tree sub-XXX/ses-tNN/anat
    DICOM = "dicom"  # CT/MR series per timepoint + DICOM-SEG of the mask


class InputsConfig(_Model):
    """Where the healthy scans are. Paths are relative to the design file's folder.

    ``manifest`` is a CSV with a ``scan`` column (a NIfTI file or DICOM folder) — or, for MRI
    with several contrasts, one column per contrast (``t1``, ``t1c``, ``t2``, ``flair``) — and
    optional columns ``scan_id``, ``labels`` (region label map on the scan's grid), ``modality``
    (ct/mr), ``cases`` (cases for this scan, overriding ``cases_per_scan``); every other column
    (sex, age_band, scanner...) is an attribute copied to the manifest and the exports.
    """

    glob: str | None = Field(None, description="Glob of NIfTI files / DICOM folders, e.g. scans/*.nii.gz.")
    manifest: str | None = Field(None, description="CSV listing the scans (see class docstring).")
    labels: str | None = Field(
        None,
        description="Label map per globbed scan: a pattern with {stem} or {name}, e.g. seg/{stem}.nii.gz.",
    )
    modality: Modality | None = Field(None, description="ct or mr (default: from spec.family, else ct).")
    contrast: Contrast | None = Field(None, description="MRI contrast of single-file inputs (default t1).")
    demo: Literal["lung", "glioma"] | None = Field(
        None,
        description=(
            "The embedded default scans instead of files: lung (the thorax phantom, CT) or glioma "
            "(the MNI152 brain phantom, four MRI contrasts); nothing to download."
        ),
    )
    demo_scans: int = Field(1, ge=1, le=16, description="How many demo scans (phantom seeds 0, 1, ...).")
    demo_size: Literal["full", "small"] = Field(
        "full",
        description=(
            "full: the demo's grid (thorax 256x256x180 at 1.4x1.4x2 mm, brain 1 mm); small: a quick "
            "grid for tests and trials (thorax 128x128x90 at 2.8x2.8x4 mm, brain 3 mm)."
        ),
    )

    @field_validator("contrast", mode="before")
    @classmethod
    def _contrast_alias(cls, v: Any) -> Any:
        return contrast_key(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_source(self) -> InputsConfig:
        if sum(x is not None for x in (self.glob, self.manifest, self.demo)) != 1:
            raise ValueError("give exactly one of inputs.glob, inputs.manifest or inputs.demo")
        if self.demo is not None and (self.modality is not None or self.contrast is not None):
            raise ValueError("inputs.demo brings its own modality and contrasts; remove modality/contrast")
        if self.labels is not None and self.glob is None:
            raise ValueError("inputs.labels is a pattern for globbed scans; a manifest has a labels column")
        if self.labels is not None and "{stem}" not in self.labels and "{name}" not in self.labels:
            raise ValueError("inputs.labels must contain {stem} or {name}")
        return self


class StratumConfig(_Model):
    """A balancing target: equal counts per level of ``field`` (categorical) or per band (numeric)."""

    field: str
    bands: list[tuple[float, float]] | None = Field(
        None, description="Half-open [low, high) intervals of a numeric field, e.g. size bands in mm."
    )
    levels: list[Any] | None = Field(None, description="Subset of a categorical field's values.")

    @field_validator("bands")
    @classmethod
    def _bands(cls, v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if v is not None:
            if not v:
                raise ValueError("bands needs at least one [low, high) interval")
            for lo, hi in v:
                if not lo < hi:
                    raise ValueError(f"band [{lo:g}, {hi:g}) is empty")
        return v

    def label(self, index: int) -> str:
        if self.bands is not None:
            lo, hi = self.bands[index]
            return f"[{lo:g}, {hi:g})"
        assert self.levels is not None
        return str(self.levels[index])


class OutputConfig(_Model):
    """What each case writes besides its bundle (``cases/<case_id>.zip``)."""

    formats: list[ExportFormat] = Field(default_factory=list)
    authors: list[str] = Field(
        default_factory=list, description="People who made the dataset (BIDS dataset_description Authors)."
    )
    license: str = Field(
        "", description="The dataset's license, e.g. CC-BY-4.0 (BIDS License); '' = unstated."
    )
    displacement: bool = Field(False, description="Keep displacement fields (mm) in the bundles.")
    compact: bool = Field(False, description="Displacement fields as int16 in 1 µm steps (smaller bundles).")
    preview: bool = Field(False, description="Keep preview.png in the bundles.")


class ResourcesConfig(_Model):
    """Scheduling hints (they do not change any output)."""

    memory_mb: int | None = Field(
        None, ge=64, description="Memory one case needs, MiB (Ray hint; default: estimated from the scan)."
    )
    cpus_per_case: float = Field(1.0, gt=0, le=64)
    max_in_flight: int | None = Field(
        None, ge=1, description="Cases submitted at once (default 2 x workers)."
    )


class DatasetDesign(_Model):
    """A synthetic dataset, reproducible from this object alone (plus the input files)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="Dataset name.")
    dataset_id: int = Field(500, ge=1, le=999, description="nnU-Net dataset number (Dataset500_Name).")
    description: str = ""
    seed: int = Field(0, ge=0, lt=2**63, description="Root of every case's sampling and simulation seed.")
    inputs: InputsConfig
    cases_per_scan: int = Field(1, ge=1, le=100000)
    prompt: str = Field("", description="Free text applied to every case (spec and sampled fields win).")
    lenient: bool = False
    spec: LesionSpec = Field(default_factory=LesionSpec, description="Fixed spec fields for every case.")
    sample: dict[str, Distribution] = Field(
        default_factory=dict, description="Spec field (dotted) -> distribution, sampled in this order."
    )
    stratify: list[StratumConfig] = Field(default_factory=list)
    refine: bool | None = Field(None, description="Learned refiner on/off (None: engine default).")
    library: str | None = Field(
        None,
        description=(
            "Lesion library folder (longisynth library build; relative to the design file): cases "
            "copy real lesions from it unless spec.source is rules."
        ),
    )
    allow_library: bool = Field(
        True, description="false: no case may copy a real lesion (library and source library refused)."
    )
    archetypes: str | None = Field(
        None,
        description=(
            "Folder of your own archetype YAML files (relative to the design file), added to the "
            "shipped ones; spec.archetype and sample.archetype may name them."
        ),
    )
    max_lesion_reuse: int | None = Field(
        None, ge=1, description="At most this many cases copy the same library lesion."
    )
    output: OutputConfig = Field(default_factory=OutputConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    @field_validator("spec")
    @classmethod
    def _no_fixed_seed(cls, v: LesionSpec) -> LesionSpec:
        if v.seed is not None:
            raise ValueError("spec.seed is derived per case from the design seed; set the design's seed")
        return v

    @model_validator(mode="after")
    def _check_sampling(self) -> DatasetDesign:
        fixed = self.spec.model_dump(mode="json", exclude_none=True)
        seen: list[str] = []
        for path, dist in self.sample.items():
            check_distribution(path, dist, seen)
            if fields.get(fixed, path) is not None:
                raise ValueError(f"sample.{path}: the field is also fixed in spec; keep one")
            seen.append(path)
        strat_fields = [s.field for s in self.stratify]
        if len(set(strat_fields)) != len(strat_fields):
            raise ValueError("stratify lists a field twice")
        resolved = [_resolve_stratum(s, self.sample) for s in self.stratify]
        object.__setattr__(self, "stratify", resolved)
        if not self.allow_library:
            asks = self.spec.source == LesionSource.LIBRARY or self.spec.library_lesion_id is not None
            if self.library is not None or asks or "source" in self.sample:
                raise ValueError(
                    "allow_library is false: remove library, spec.source library and sample.source"
                )
        modality = self.modality()
        if self.spec.family == Family.LUNG_NODULE and modality == Modality.MR:
            raise ValueError("lung nodules are simulated in CT; inputs.modality says mr")
        if self.spec.family == Family.GLIOMA and modality == Modality.CT:
            raise ValueError("gliomas are simulated in MRI; inputs.modality says ct")
        return self

    def modality(self) -> Modality:
        """Declared modality of the inputs (a manifest row may override it)."""
        if self.inputs.modality is not None:
            return self.inputs.modality
        if self.inputs.demo is not None:
            return Modality.CT if self.inputs.demo == "lung" else Modality.MR
        return Modality.MR if self.spec.family == Family.GLIOMA else Modality.CT

    def n_strata(self) -> int:
        n = 1
        for s in self.stratify:
            n *= len(s.bands or s.levels or [])
        return n

    def fingerprint(self) -> str:
        """sha256 of everything that decides the cases' content (not formats, export labels such
        as authors and license, nor resources)."""
        data = self.model_dump(
            mode="json", exclude={"resources": True, "output": {"formats", "authors", "license"}}
        )
        if list(self.sample) != sorted(self.sample):
            # the order of `sample` decides the draws (conditionals, one stream per field), and
            # sort_keys hides it; recorded only when it is not sorted, so the fingerprints of
            # earlier runs of sorted designs stay valid
            data["sample_order"] = list(self.sample)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def check_distribution(path: str, dist: Any, earlier: list[str], nested: bool = False) -> None:
    """Raise ValueError unless ``dist`` can be sampled for spec field ``path`` (a conditional's
    ``by`` must be one of the ``earlier`` fields)."""
    where = f"sample.{path}"
    try:
        fields.check_path(path)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    levels = fields.enum_levels(path)
    if dist == "any":
        if levels is None:
            raise ValueError(f"{where}: 'any' needs a categorical field; give a numeric distribution")
        return
    if isinstance(dist, Conditional):
        if nested:
            raise ValueError(f"{where}: a conditional cannot contain another conditional")
        if dist.by not in earlier:
            raise ValueError(f"{where}: 'by: {dist.by}' must name a field sampled earlier in the list")
        by_levels = {str(v) for v in (fields.enum_levels(dist.by) or [])}
        for key, sub in dist.cases.items():
            if by_levels and str(key) not in by_levels:
                raise ValueError(
                    f"{where}: {key!r} is not a value of {dist.by} ({', '.join(sorted(by_levels))})"
                )
            check_distribution(path, sub, earlier, nested=True)
        return
    if isinstance(dist, Choice):
        for value, _ in dist.options():
            try:
                fields.canonical(path, value)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        return
    if levels is not None:
        raise ValueError(f"{where}: the field is categorical; use 'any' or a choice")
    for value in dist.endpoints():
        try:
            fields.canonical(path, value)
        except ValueError as exc:
            raise ValueError(f"{where}: range end {exc} (use clip or narrower bounds)") from None


def _resolve_stratum(s: StratumConfig, sample: dict[str, Any]) -> StratumConfig:
    """Fill a categorical stratum's levels from its distribution (canonical values)."""
    where = f"stratify {s.field!r}"
    if s.field not in sample:
        raise ValueError(f"{where}: the field must also be in sample")
    dist = sample[s.field]
    if isinstance(dist, Conditional):
        raise ValueError(f"{where}: a conditional field cannot be stratified")
    numeric = dist != "any" and dist.is_numeric()
    if numeric:
        if s.bands is None or s.levels is not None:
            raise ValueError(f"{where}: a numeric field is stratified by bands, e.g. [[5, 10], [10, 20]]")
        return s
    if s.bands is not None:
        raise ValueError(f"{where}: a categorical field is stratified by levels, not bands")
    if dist == "any":
        possible = fields.enum_levels(s.field) or []
    else:
        possible = [fields.canonical(s.field, v) for v, _ in dist.options()]
    if s.levels is None:
        return s.model_copy(update={"levels": possible})
    chosen = []
    for v in s.levels:
        try:
            c = fields.canonical(s.field, v)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if c not in possible:
            raise ValueError(f"{where}: level {v!r} has zero probability in sample.{s.field}")
        chosen.append(c)
    return s.model_copy(update={"levels": chosen})


def design_error_message(exc: ValidationError, source: str) -> str:
    """One line naming the first problem (and how many more there are)."""
    errs = exc.errors()
    err = errs[0]
    parts: list[str] = []
    for p in err["loc"]:  # the distribution's tag repeats its key: sample.d.uniform.uniform
        if not str(p).startswith(("function-", "tagged-union")) and (not parts or parts[-1] != str(p)):
            parts.append(str(p))
    loc = ".".join(parts)
    msg = str(err["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errs) - 1} more problem{'s' * (len(errs) > 2)})" if len(errs) > 1 else ""
    return f"{source}: {loc + ': ' if loc else ''}{msg}{more}"


def parse_design(data: Any, source: str = "design") -> DatasetDesign:
    """Validate a design given as a mapping (parsed YAML/JSON)."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"{source}: a design is a mapping of keys (name, inputs, sample, ...)")
    try:
        return DatasetDesign.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(design_error_message(exc, source)) from None


def load_design(path: Path | str) -> DatasetDesign:
    """Read and validate a design file (``.yaml``/``.yml`` or ``.json``).

    Raises:
        InvalidInputError: unreadable file, syntax error or invalid content (one line).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInputError(f"cannot read design {path.name!r}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path.name}: not valid JSON: {exc.msg} (line {exc.lineno})") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" (line {mark.line + 1})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise InvalidInputError(f"{path.name}: not valid YAML: {problem}{line}") from None
    return parse_design(data, path.name)
