"""Documented defaults for every spec field a request leaves unset, with their clinical sources."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from longisynth.spec.schema import Attachment, BrainLobe, Family, GliomaGrade, NoduleType

# Mean volume-doubling times of malignant nodules (PMC5945695): solid 267 d, part-solid 598 d,
# pure ground-glass 848 d.
DEFAULT_VDT_DAYS: dict[NoduleType, float] = {
    NoduleType.SOLID: 267.0,
    NoduleType.PART_SOLID: 598.0,
    NoduleType.GROUND_GLASS: 848.0,
}
DEFAULT_NODULE_DIAMETER_MM = 12.0


@dataclass(frozen=True)
class DiameterDistribution:
    """A normal distribution of a longest diameter (mm), truncated to ``[min_mm, max_mm]``."""

    median_mm: float
    sd_mm: float
    min_mm: float
    max_mm: float

    def sample(self, rng: np.random.Generator, max_mm: float | None = None) -> float:
        """One draw, mm, rounded to 0.1 mm; ``max_mm`` lowers the upper bound (never below
        ``min_mm + 5``). Exactly one uniform number is taken from ``rng`` (inverse CDF), so the
        draws after it do not depend on the value."""
        hi = self.max_mm if max_mm is None else max(min(self.max_mm, max_mm), self.min_mm + 5.0)
        dist = NormalDist(self.median_mm, self.sd_mm)
        lo_p, hi_p = dist.cdf(self.min_mm), dist.cdf(hi)
        value = dist.inv_cdf(lo_p + float(rng.uniform()) * (hi_p - lo_p))
        return round(min(max(value, self.min_mm), hi), 1)


# Final whole-tumour (FLAIR-bright, label > 0) longest diameter of a glioma when the request gives
# no size (mm), by grade: a normal law truncated to [min, max]; "typically 30–70 mm" (high grade)
# and "20–60 mm" (low grade) are read as its 5th–95th percentiles (sd = 20 mm / 1.645 ≈ 12 mm).
# Sources: glioblastoma at diagnosis has a median enhancing volume of 18.2 mL (IQR 8.2–41.7 mL;
# World Neurosurg 2018;115:e448, PMID 29678715), a sphere of 33 mm (25–43 mm) before the
# FLAIR-bright oedema around it is counted; in diffuse low-grade gliomas the prognostic size
# splits of the largest diameter sit at 4 cm (Chang et al., J Neurosurg 2008;109:817), 5 cm
# (Schomas et al., Neuro-Oncol 2009;11:437) and 6 cm (Pignatti et al., J Clin Oncol
# 2002;20:2076), i.e. near the middle of those cohorts. The upper bound is what the
# reaction–diffusion model fits in one hemisphere within minutes; the lower stays far above its
# 5 mm floor. BraTS whole tumours are larger than these laws: the 3D longest diameters of the 7
# BraTS 2018 training cases in shared/data are 72–117 mm (median 84 mm; Menze et al., IEEE TMI
# 2015), their oedema reaching along white-matter tracts much farther than a reaction–diffusion
# front of the same volume.
GLIOMA_DIAMETER_MM: dict[GliomaGrade, DiameterDistribution] = {
    GliomaGrade.HIGH: DiameterDistribution(median_mm=50.0, sd_mm=12.0, min_mm=20.0, max_mm=75.0),
    GliomaGrade.LOW: DiameterDistribution(median_mm=40.0, sd_mm=12.0, min_mm=15.0, max_mm=65.0),
}
# Below the tentorium a glioma grows only in the posterior fossa (≈ 50 mm high and deep): the drawn
# diameter is capped there (a diffuse pontine glioma at diagnosis expands the pons to ≈ 3–4 cm).
GLIOMA_MAX_DIAMETER_MM: dict[BrainLobe, float] = {BrainLobe.BRAINSTEM: 40.0, BrainLobe.CEREBELLUM: 45.0}


def sample_glioma_diameter_mm(
    grade: GliomaGrade, rng: np.random.Generator, region: BrainLobe | None = None
) -> float:
    """Final whole-tumour longest diameter (mm) of a glioma of ``grade`` starting in ``region``,
    drawn from :data:`GLIOMA_DIAMETER_MM` (capped by :data:`GLIOMA_MAX_DIAMETER_MM`)."""
    cap = GLIOMA_MAX_DIAMETER_MM.get(region) if region is not None else None
    return GLIOMA_DIAMETER_MM[grade].sample(rng, cap)


# Reaction–diffusion parameters (docs/design.md §3.2): rho 0.0012/day (low) to 0.012/day (high grade).
# D_white for low grade chosen so the front speed 2*sqrt(D*rho) gives ~4.1 mm/year diameter growth
# (Mandonnet et al., Ann Neurol 2003): 2*2*sqrt(0.0065*0.0012)*365 = 4.1 mm/year.
# High grade: D_white is drawn per tumour, log-uniform in HIGH_GRADE_D_WHITE_RANGE (inside the range
# 2.7e-3…2.7e-1 of docs/design.md §3.2). The front width sqrt(D/rho) sets how much of the whole tumour
# is FLAIR-only oedema: on the BraTS 2018 cases of ../shared/data oedema is 33–76 % of the whole
# tumour (median 54 %); on 75 mm tumours in two of those brains (4 studies each) D = 0.015 gave 43 %
# and 0.025 gave 49 %, 0.05 gave 55–64 %. Larger D is not drawn: the model's oedema is infiltrating
# tumour cells only, and with a wide front a 45 mm tumour reaches its size before any of it is
# dense enough to enhance (the demo brain at D = 0.038: 608 enhancing voxels, no necrosis).
DEFAULT_RHO_PER_DAY: dict[GliomaGrade, float] = {GliomaGrade.LOW: 0.0012, GliomaGrade.HIGH: 0.012}
DEFAULT_D_WHITE_MM2_PER_DAY: dict[GliomaGrade, float] = {GliomaGrade.LOW: 0.0065, GliomaGrade.HIGH: 0.05}
HIGH_GRADE_D_WHITE_RANGE = (0.01, 0.025)  # mm²/day, log-uniform


def sample_d_white_mm2_per_day(grade: GliomaGrade, rng: np.random.Generator) -> float:
    """D_white of a glioma whose request gives none, mm²/day: drawn for high grade (log-uniform in
    :data:`HIGH_GRADE_D_WHITE_RANGE`), the Mandonnet-calibrated default for low grade."""
    if grade != GliomaGrade.HIGH:
        return DEFAULT_D_WHITE_MM2_PER_DAY[grade]
    lo, hi = HIGH_GRADE_D_WHITE_RANGE
    return round(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), 5)


DEFAULT_N_TIMEPOINTS = 4
DEFAULT_DURATION_DAYS: dict[Family, float] = {Family.LUNG_NODULE: 365.0, Family.GLIOMA: 180.0}
DEFAULT_SOLID_FRACTION = 0.5
# What a nodule touches, when the request does not say (docs/design.md §3.1). Rounded from screening
# series: about a quarter of nodules abut the pleura and a fifth a vessel in LIDC-IDRI-based CAD
# studies, and perifissural nodules are ≈ 20 % of non-calcified solid nodules in NELSON (de Hoop et
# al., Radiology 2012), ≈ 10 % of all types. Perifissural needs a lobe label map (fissures); without
# one, or where no vessel / fissure fits, the draw is renormalised over what the scan offers.
ATTACHMENT_FREQUENCIES: dict[Attachment, float] = {
    Attachment.ISOLATED: 0.45,
    Attachment.JUXTAPLEURAL: 0.25,
    Attachment.JUXTAVASCULAR: 0.20,
    Attachment.PERIFISSURAL: 0.10,
}


def fleischner_schedule_days(nodule_type: NoduleType, diameter_mm: float) -> list[float]:
    """Follow-up scan times (days) from the Fleischner 2017 guideline (MacMahon, Radiology 2017).

    Solid > 8 mm: CT at 3 months (then we continue at 6, 12 months); solid 6–8 mm: 6–12 months
    (we use 6, 18 months); ground-glass >= 6 mm: 6–12 months then every 2 years to 5 years;
    part-solid >= 6 mm: 3–6 months then yearly to 5 years. Nodules < 6 mm need no routine
    follow-up; we still give a 12-month control so the study is longitudinal.
    """
    if diameter_mm < 6:
        return [0.0, 365.0]
    if nodule_type == NoduleType.SOLID:
        return [0.0, 91.0, 182.0, 365.0] if diameter_mm > 8 else [0.0, 182.0, 548.0]
    if nodule_type == NoduleType.PART_SOLID:
        return [0.0, 137.0, 502.0, 867.0, 1232.0, 1597.0, 1962.0]
    return [0.0, 274.0, 1004.0, 1735.0]
