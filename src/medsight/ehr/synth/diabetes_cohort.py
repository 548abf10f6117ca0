"""The patient simulation behind `medsight synth ehr`: adults with type 2 diabetes followed
2018-01-01 .. 2025-12-31, as event rows.

Each patient enters at a random month (staggered entry: most in 2018-2021, a few in
2022-2024) and is followed until the end of 2025, death or loss to follow-up. A hidden monthly
state drives what is recorded:

* HbA1c drifts with a slowly changing trend (an Ornstein-Uhlenbeck drift around the patient's
  own), rises during medication gaps and falls when insulin or an SGLT2 inhibitor is started;
  worsening episodes (HbA1c rising ~0.7 %/year) start more often as the years go by;
* eGFR declines with a slowly changing slope (fast-declining episodes are likewise commoner
  later); creatinine is derived from it (CKD-EPI 2021) and the reported eGFR from the
  measured creatinine;
* systolic pressure has a patient mean and a hidden visit-to-visit variability;
* adherence is a two-state Markov chain: during a gap no refill is collected (refills are
  90-day supplies, so gaps show as late refills), HbA1c rises and admissions are likelier.

Outpatient visits come every few months, more often for sicker patients and during worsening
episodes (informative missingness); each records vitals, some labs and the ICD-10-CM problem
list. ED visits and admissions (``ENCOUNTER//inpatient`` ... ``DISCHARGE//home``) follow the
same state. About one patient in eight uses home devices for 2-12 months (glucose meter, BP
cuff, step counter), with readings at irregular times on most days. Site B (45% of patients)
reports glucose in mmol/L (``LOINC//14749-6``) and creatinine in umol/L (``LOINC//14682-9``) and
codes poorly controlled diabetes as ``ICD10CM//E11.65`` where site A writes ``ICD10CM//E11.9``.

The outcome is the first major complication (nephropathy ``E11.21``, retinopathy ``E11.3x``,
myocardial infarction ``I21.x``, stroke ``I63.x``, amputation ``Z89.4x``). Its monthly hazard
depends on trajectories of the one to three years before, not on last values: the HbA1c change
and the eGFR fall over the two years that ended a year ago (damage shows a year later), the
blood-pressure variability, the share of the last 24 months in a medication gap and admissions
in the last 12 months, with small level effects (HbA1c, eGFR, age) and a little unmeasured
risk. The hazard grows with follow-up (~3x per year: complications are a late process) and
saturates at `_MAX_HAZARD`, so most patients reach 2024 without one. Complications from half a
year before a patient's entry are recorded at the first visit; later ones at a visit
(nephropathy, retinopathy) or an admission (MI, stroke, amputation). `CohortChunk` carries the
hazard (``monthly_hazard``) for tests.

The default task (`PREDICTION_DATE`, `OUTCOME_PREFIXES`, `OUTCOME_WINDOW_DAYS`): a first
complication within 365 days after 2024-01-01, among patients with data before that date and
no complication before it. Measured on 5,000 patients (seeds 0, 1, 2): 18-20% have a
complication before 2024, 68-70% get a label from `medsight ehr label` (the rest entered after
2024, were lost or died before it, or were lost during the window) and 22-23% of those are
positive; a 5-fold cross-validated logistic regression on last values (HbA1c, eGFR, blood
pressure, LDL, BMI, ACR, age, sex) reaches an AUROC of 0.64 (0.635, 0.644, 0.651), one that
also sees trajectories (HbA1c and eGFR slopes, systolic variability, refill delays, recent
admissions and visits) 0.81 (0.820, 0.793, 0.809); the hidden hazard over the window ranks the
outcomes at 0.89 (0.902, 0.882, 0.895; ``tests/ehr/synth/test_learnability.py`` prints the
numbers). `medsight train --model gru --epochs 15` (seed 0; held-out AUROCs, ~10% of the
labels held out): on 3,000 patients (1,991 labelled, 20% positive) the GRU reached 0.48-0.59
over two runs (tuning 0.61; it overfits from epoch 3), the transformer 0.65, the logistic
baseline 0.63 and LightGBM 0.69 (CIs +-0.1 on ~190 samples); on 6,000 patients (4,062 labelled)
the GRU 0.66 (0.60-0.72), logistic 0.62, LightGBM 0.77 (0.71-0.82).

Patients are simulated in chunks of `CHUNK_PATIENTS`, each from its own seed
(``SeedSequence(seed, spawn_key=(chunk,))``), so memory stays bounded whatever the cohort size
and every chunk's patients are the same whatever else is generated.
Times are naive UTC microseconds since 1970 (`NO_TIME` marks static rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from medsight.ehr.synth.codes import CODES, code_index

#: the default task's prediction time, outcome codes and window (the demo labels with these)
PREDICTION_DATE = "2024-01-01"
OUTCOME_PREFIXES = (
    "ICD10CM//E11.2",
    "ICD10CM//E11.3",
    "ICD10CM//I21",
    "ICD10CM//I63",
    "ICD10CM//Z89.4",
)
OUTCOME_WINDOW_DAYS = 365

#: patients simulated together (and seeded together)
CHUNK_PATIENTS = 2000
#: the time of static rows (sex): MEDS writes these with a null time
NO_TIME = np.iinfo(np.int64).min
MONTHS = 96  # 2018-01 .. 2025-12
_FIRST_MONTH = np.datetime64("2018-01", "M")
MONTH_START_DAY = (
    np.arange(_FIRST_MONTH, _FIRST_MONTH + MONTHS + 1).astype("datetime64[D]").astype(np.int64)
)
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
MINUTE_US = 60_000_000
#: the latest month a patient may enter (so some enter after the prediction date)
_LAST_ENTRY_MONTH = 84
#: recorded days of a month are 0..26; deaths fall on days 27..29, after everything else
_EVENT_DAYS = 27

# the drugs, in the order of the simulation's drug axis
_DRUGS = ("ATC//A10BA02", "ATC//A10AE04", "ATC//A10BK01", "ATC//C09AA05", "ATC//C10AA05")
_METFORMIN, _INSULIN, _SGLT2, _ACE, _STATIN = range(5)
# complication types: the codes each is recorded with (one drawn per patient)
_COMPLICATIONS = (
    ("ICD10CM//E11.21",),
    ("ICD10CM//E11.319", "ICD10CM//E11.3293"),
    ("ICD10CM//I21.4", "ICD10CM//I21.19"),
    ("ICD10CM//I63.9", "ICD10CM//I63.50"),
    ("ICD10CM//Z89.411", "ICD10CM//Z89.421"),
)
_NEPHROPATHY, _RETINOPATHY, _MI, _STROKE, _AMPUTATION = range(5)
#: the month (0 = 2018-01) of the prediction date
_PREDICTION_MONTH = int((np.datetime64(PREDICTION_DATE, "M") - _FIRST_MONTH).astype(np.int64))
#: the monthly complication hazard at a linear predictor of 0, at the prediction date
_BASE_HAZARD = 0.0006
#: how fast that hazard grows per year of follow-up (complications are a late process: the
#: cohort was diagnosed around 2017, so in 2024 the hazard is ~3x that of 2023)
_HAZARD_GROWTH = 1.1
#: months from a trajectory to the hazard it raises (damage shows a year later)
_LAG = 12
#: the monthly hazard saturates at this (so the riskiest are not all gone before 2024)
_MAX_HAZARD = 0.15
# weights of the hazard's linear predictor (each term is scaled to about unit spread)
_W_KIDNEY, _W_GLYCAEMIA, _W_PRESSURE, _W_GAPS, _W_ADMISSIONS = 1.8, 2.2, 1.5, 8.0, 0.7
_W_A1C_LEVEL, _W_EGFR_LEVEL, _W_HIDDEN = 0.25, 0.015, 0.15
# worsening episodes (HbA1c rising, eGFR falling): share at 2018, monthly onset (at 2018,
# added per year since: the disease progresses), HbA1c drift while worsening, monthly end
_WORSENING_AT_START, _DECLINING_AT_START = 0.1, 0.08
_WORSENING_ONSET = (0.002, 0.004)
_DECLINING_ONSET = (0.0015, 0.003)
_WORSENING_DRIFT = 0.06
_EPISODE_END = 0.03
#: how much more care (visits, ED visits, admissions) a worsening episode brings (log scale)
_W_EPISODE_CARE = 0.8
#: the monthly chance of loss to follow-up
_LOSS_RATE = 0.001


def _lagged(grid: np.ndarray, month: int, per_month: np.ndarray) -> np.ndarray:
    """``grid[:, month]``, extrapolated back before 2018 at ``per_month``."""
    if month >= 0:
        return grid[:, month]
    return grid[:, 0] + month * per_month


def _entry_months(rng: np.random.Generator, n: int) -> np.ndarray:
    """Entry months: a fifth in 2018, 65% in 2019-2021, 11% in 2022-2023 and 4% in 2024
    (after the prediction date)."""
    u = rng.random(n)
    low = np.select([u < 0.2, u < 0.85, u < 0.96], [0, 12, 48], 72)
    high = np.select([u < 0.2, u < 0.85, u < 0.96], [12, 48, 72], _LAST_ENTRY_MONTH)
    return low + np.floor(rng.random(n) * (high - low)).astype(np.int64)


@dataclass(frozen=True)
class CohortChunk:
    """Patients of one chunk and their event rows, sorted by (subject, time, code).

    Patient arrays have one entry per patient; row arrays one per event. ``row_visit`` ties a
    row to its encounter (the same id for the ``ENCOUNTER//...`` row, the rows recorded during
    it and its ``DISCHARGE//home`` row; -1 for static rows, refills and home readings).
    """

    subject_id: np.ndarray  # (P,) int64
    female: np.ndarray  # (P,) bool
    site_b: np.ndarray  # (P,) bool
    birth_us: np.ndarray  # (P,) int64
    death_us: np.ndarray  # (P,) int64, -1 when alive at the end of follow-up
    row_patient: np.ndarray  # (R,) int64 index into the patient arrays
    row_time_us: np.ndarray  # (R,) int64, NO_TIME for static rows
    row_code: np.ndarray  # (R,) int64 index into codes.CODES
    row_value: np.ndarray  # (R,) float64, NaN when the row has no value
    row_visit: np.ndarray  # (R,) int64
    monthly_hazard: np.ndarray  # (P, MONTHS) float64, the hidden hazard of a first complication

    @property
    def row_subject(self) -> np.ndarray:
        """The subject_id of every row."""
        return self.subject_id[self.row_patient]


def prediction_time_us() -> int:
    """`PREDICTION_DATE` as microseconds since 1970."""
    return int(np.datetime64(PREDICTION_DATE, "us").astype(np.int64))


def iter_cohort(patients: int, seed: int) -> Iterator[CohortChunk]:
    """The cohort's chunks in order; subject ids run 1..patients."""
    for chunk, first in enumerate(range(0, patients, CHUNK_PATIENTS)):
        yield simulate_chunk(seed, chunk, first, min(CHUNK_PATIENTS, patients - first))


class _Rows:
    """Collects event rows as arrays (scalars broadcast)."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(
        self,
        patient: np.ndarray,
        time_us: np.ndarray | int,
        code: np.ndarray | int,
        value: np.ndarray | float = np.nan,
        visit: np.ndarray | int = -1,
    ) -> None:
        n = len(patient)
        if n == 0:
            return
        self.parts.append(
            (
                np.asarray(patient, np.int64),
                np.broadcast_to(np.asarray(time_us, np.int64), (n,)),
                np.broadcast_to(np.asarray(code, np.int64), (n,)),
                np.broadcast_to(np.asarray(value, np.float64), (n,)),
                np.broadcast_to(np.asarray(visit, np.int64), (n,)),
            )
        )

    def arrays(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate([part[i] for part in self.parts]) for i in range(5))


class _Ids:
    """Consecutive encounter ids within a chunk."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, k: int) -> np.ndarray:
        ids = np.arange(self.next, self.next + k, dtype=np.int64)
        self.next += k
        return ids


def _ckd_epi_factor(age: np.ndarray, female: np.ndarray) -> tuple[np.ndarray, ...]:
    kappa = np.where(female, 0.7, 0.9)
    alpha = np.where(female, -0.241, -0.302)
    scale = 142.0 * 0.9938**age * np.where(female, 1.012, 1.0)
    return kappa, alpha, scale


def creatinine_from_egfr(egfr: np.ndarray, age: np.ndarray, female: np.ndarray) -> np.ndarray:
    """Serum creatinine (mg/dL) that gives ``egfr`` under CKD-EPI 2021 (the inverse formula)."""
    kappa, alpha, scale = _ckd_epi_factor(age, female)
    ratio = egfr / scale
    return kappa * np.where(ratio <= 1, ratio ** (-1 / 1.2), ratio ** (1 / alpha))


def egfr_from_creatinine(creatinine: np.ndarray, age: np.ndarray, female: np.ndarray) -> np.ndarray:
    """CKD-EPI 2021 eGFR (mL/min/1.73m2) from serum creatinine (mg/dL)."""
    kappa, alpha, scale = _ckd_epi_factor(age, female)
    s = creatinine / kappa
    return scale * np.minimum(s, 1) ** alpha * np.maximum(s, 1) ** -1.2


def simulate_chunk(seed: int, chunk: int, first: int, n: int) -> CohortChunk:
    """Simulate ``n`` patients (subject ids ``first+1 .. first+n``) from ``(seed, chunk)``."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk,)))
    P, M = n, MONTHS
    # -- who they are --------------------------------------------------------------------
    age0 = np.clip(rng.normal(62, 11, P), 30, 88)  # age on 2018-01-01
    female = rng.random(P) < 0.48
    site_b = rng.random(P) < 0.45
    entry = _entry_months(rng, P)
    frail = rng.normal(0, 1, P)  # sickness that shows (admissions, visits)
    hidden = rng.normal(0, 1, P)  # risk no record shows
    neuropathy = rng.random(P) < 0.15
    a1c = np.clip(rng.normal(7.4, 0.9, P), 5.8, 11.5)
    a1c0 = a1c.copy()
    # HbA1c and eGFR move in episodes: a worsening (rising HbA1c, falling eGFR) starts and
    # ends at random, so risk comes and goes instead of being fixed at entry
    mean_drift = rng.normal(0.0, 0.006, P)  # % per month while stable
    worsening = rng.random(P) < _WORSENING_AT_START
    drift = mean_drift + rng.normal(0, 0.01, P)
    egfr = np.clip(rng.normal(90 - 0.7 * (age0 - 62), 14, P), 30, 125)
    declining = rng.random(P) < _DECLINING_AT_START
    mean_slope = rng.normal(-0.08, 0.05, P)  # mL/min/1.73m2 per month while stable
    decline_rate = rng.uniform(-0.7, -0.3, P)  # ... and while declining
    slope = mean_slope + rng.normal(0, 0.03, P)
    drift0, slope0 = drift.copy(), slope.copy()
    sbp_mean = rng.normal(134, 10, P)
    sbp_sd = np.exp(rng.normal(np.log(9.0), 0.4, P))  # visit-to-visit variability
    ldl0 = np.clip(rng.normal(115, 28, P), 40, 240)
    bmi0 = np.clip(rng.normal(32, 5, P), 19, 55)
    bmi_drift = rng.normal(0, 0.02, P)
    log_acr0 = rng.normal(np.log(20), 0.9, P)
    gap_start = rng.beta(1.3, 14, P)
    gap_end = rng.uniform(0.25, 0.5, P)
    planned = np.stack(
        [
            rng.random(P) < 0.9,
            np.zeros(P, bool),
            np.zeros(P, bool),
            rng.random(P) < np.where(sbp_mean > 135, 0.75, 0.3),
            rng.random(P) < 0.75,
        ],
        axis=1,
    )
    # -- the monthly state ---------------------------------------------------------------
    a1c_grid = np.zeros((P, M))
    a1c_base_grid = np.zeros((P, M))  # HbA1c without the bump of a medication gap
    hazard_grid = np.zeros((P, M))
    egfr_grid = np.zeros((P, M))
    gap_grid = np.zeros((P, M), bool)
    adm_grid = np.zeros((P, M), bool)
    ed_grid = np.zeros((P, M), bool)
    visit_grid = np.zeros((P, M), bool)
    followed_grid = np.zeros((P, M), bool)
    active_grid = np.zeros((P, M, 5), bool)
    refill_grid = np.zeros((P, M, 5), bool)
    active = np.zeros((P, 5), bool)
    since_refill = np.full((P, 5), 99)
    in_gap = np.zeros(P, bool)
    bump = np.zeros(P)
    comp_month = np.full(P, -1)
    comp_type = np.full(P, -1)
    dead_month = np.full(P, -1)
    lost_month = np.full(P, -1)
    gumbel = rng.gumbel(size=(P, 5))
    for m in range(M):
        followed = (m >= entry) & (dead_month < 0) & (lost_month < 0)
        starting = m == entry
        active[starting] |= planned[starting]
        prev_a1c = a1c_grid[:, m - 1] if m else a1c
        new_insulin = followed & ~active[:, _INSULIN] & (prev_a1c > 9) & (rng.random(P) < 0.08)
        new_sglt2 = (
            followed
            & ~active[:, _SGLT2]
            & (((prev_a1c > 8) & (rng.random(P) < 0.04)) | ((egfr < 60) & (rng.random(P) < 0.02)))
        )
        active[:, _INSULIN] |= new_insulin
        active[:, _SGLT2] |= new_sglt2
        u = rng.random(P)
        in_gap = np.where(in_gap, u > gap_end, u < gap_start) & followed & ~starting
        years = m / 12
        u = rng.random(P)
        worsening = np.where(
            worsening, u > _EPISODE_END, u < _WORSENING_ONSET[0] + _WORSENING_ONSET[1] * years
        )
        target_drift = mean_drift + _WORSENING_DRIFT * worsening
        drift += 0.15 * (target_drift - drift) + rng.normal(0, 0.004, P)
        a1c += (
            drift
            + rng.normal(0, 0.04, P)
            - 0.03 * np.maximum(a1c - 9.5, 0)
            + 0.03 * np.maximum(6.0 - a1c, 0)
            - 0.7 * new_insulin
            - 0.5 * new_sglt2
        )
        bump = 0.85 * bump + 0.12 * in_gap
        a1c_eff = a1c + bump
        u = rng.random(P)
        declining = np.where(
            declining, u > _EPISODE_END, u < _DECLINING_ONSET[0] + _DECLINING_ONSET[1] * years
        )
        target_slope = np.where(declining, decline_rate, mean_slope)
        slope += 0.15 * (target_slope - slope) + rng.normal(0, 0.01, P)
        egfr = np.clip(
            egfr + slope - 0.02 * np.maximum(a1c_eff - 8, 0) + rng.normal(0, 0.2, P), 5, 130
        )
        a1c_grid[:, m] = a1c_eff
        a1c_base_grid[:, m] = a1c
        egfr_grid[:, m] = egfr
        gap_grid[:, m] = in_gap
        sick = np.maximum(a1c_eff - 8, 0)
        low_egfr = np.maximum(60 - egfr, 0)
        p_adm = 0.003 * np.exp(
            0.5 * frail
            + 0.35 * sick
            + 0.025 * low_egfr
            + 0.8 * in_gap
            + _W_EPISODE_CARE * declining
        )
        adm = followed & (rng.random(P) < p_adm)
        p_ed = 0.008 * np.exp(0.4 * frail + 0.3 * sick + 0.6 * in_gap + _W_EPISODE_CARE * worsening)
        ed_grid[:, m] = followed & (rng.random(P) < p_ed)
        # the hidden hazard: trajectories of the 1-3 years before (complications follow
        # the damage by about a year), levels a little, a little unmeasured risk
        trend = _lagged(a1c_base_grid, m - _LAG, drift0) - _lagged(
            a1c_base_grid, m - _LAG - 24, drift0
        )
        fall = _lagged(egfr_grid, m - _LAG - 24, slope0) - _lagged(egfr_grid, m - _LAG, slope0)
        gaps24 = gap_grid[:, max(0, m - 24) : m].sum(axis=1) / 24
        adm12 = adm_grid[:, max(0, m - 12) : m].sum(axis=1)
        kidney = _W_KIDNEY * (fall - 3.0) / 5.0  # eGFR falling faster than usual
        glycaemia = _W_GLYCAEMIA * trend / 0.7  # HbA1c rising
        pressure = _W_PRESSURE * (np.log(sbp_sd) - np.log(9.0)) / 0.4  # blood pressure variability
        gaps = _W_GAPS * gaps24  # medication gaps
        lin = (
            kidney
            + glycaemia
            + pressure
            + gaps
            + _W_ADMISSIONS * np.minimum(adm12, 2)
            + _W_A1C_LEVEL * (a1c_eff - 7.5)
            + _W_EGFR_LEVEL * low_egfr
            + 0.15 * (age0 + m / 12 - 62) / 10
            + _W_HIDDEN * hidden
        )
        rate = _BASE_HAZARD * np.exp(_HAZARD_GROWTH * (m - _PREDICTION_MONTH) / 12 + lin)
        hazard = _MAX_HAZARD * rate / (_MAX_HAZARD + rate)
        hazard_grid[:, m] = hazard
        # complications count from half a year before entry (earlier ones would keep them out)
        new = (comp_month < 0) & (dead_month < 0) & (lost_month < 0) & (m >= entry - 6)
        new &= rng.random(P) < hazard
        # which complication: the one whose drivers dominate, with noise
        scores = np.stack([kidney, glycaemia, pressure, pressure, gaps], axis=1)
        kind = np.argmax(scores + np.array([0.3, 0.3, 0.2, -0.2, -0.8]) + gumbel, axis=1)
        comp_month[new] = m
        comp_type[new] = kind[new]
        major_vascular = new & followed & ((kind == _MI) | (kind == _STROKE))
        adm |= new & followed & ((kind == _MI) | (kind == _STROKE) | (kind == _AMPUTATION))
        adm_grid[:, m] = adm
        p_visit = 0.33 * np.exp(
            0.3 * np.maximum(a1c_eff - 7.5, 0)
            + 0.02 * low_egfr
            + 0.2 * frail
            + 0.5 * _W_EPISODE_CARE * (worsening | declining)
        )
        visit = followed & ((rng.random(P) < np.minimum(p_visit, 0.9)) | starting)
        visit |= new & followed & ((kind == _NEPHROPATHY) | (kind == _RETINOPATHY))
        visit_grid[:, m] = visit
        since_refill += 1
        refill = active & ~in_gap[:, None] & (since_refill >= 2) & followed[:, None]
        since_refill[refill] = 0
        refill_grid[:, m] = refill
        active_grid[:, m] = active & followed[:, None]
        followed_grid[:, m] = followed
        age = age0 + m / 12
        p_death = 0.0006 * np.exp(
            0.07 * (age - 62) + 0.35 * frail + 0.8 * (comp_month >= 0) + 0.03 * low_egfr
        )
        dies = followed & ((rng.random(P) < p_death) | (major_vascular & (rng.random(P) < 0.08)))
        lost = followed & ~dies & (rng.random(P) < _LOSS_RATE)
        dead_month[dies] = m
        lost_month[lost] = m

    # -- what the record shows -----------------------------------------------------------
    rows = _Rows()
    subject_id = np.arange(first + 1, first + n + 1, dtype=np.int64)
    birth_day = MONTH_START_DAY[0] - np.round(age0 * 365.25).astype(np.int64)
    birth_us = birth_day * DAY_US
    death_us = np.full(P, -1, np.int64)
    died = dead_month >= 0
    death_us[died] = (
        MONTH_START_DAY[dead_month[died]] + rng.integers(_EVENT_DAYS, 30, died.sum())
    ) * DAY_US + rng.integers(0, 24 * 60, died.sum()) * MINUTE_US
    everyone = np.arange(P)
    rows.add(everyone, birth_us, code_index("MEDS_BIRTH"))
    rows.add(everyone, NO_TIME, np.where(female, code_index("SEX//F"), code_index("SEX//M")))
    rows.add(everyone[died], death_us[died], code_index("MEDS_DEATH"))
    ctx = _Context(
        rng=rng,
        rows=rows,
        female=female,
        site_b=site_b,
        age0=age0,
        a1c=a1c_grid,
        egfr=egfr_grid,
        gap=gap_grid,
        active=active_grid,
        sbp_mean=sbp_mean,
        sbp_sd=sbp_sd,
        ldl0=ldl0,
        bmi0=bmi0,
        bmi_drift=bmi_drift,
        log_acr0=log_acr0,
        egfr0=egfr_grid[:, 0],
    )
    visit_ids = _Ids()
    _visits(ctx, visit_grid, comp_month, comp_type, entry, neuropathy, visit_ids)
    _emergencies(ctx, ed_grid, visit_ids)
    _admissions(ctx, adm_grid, comp_month, comp_type, visit_ids)
    _refills(ctx, refill_grid)
    last_month = np.where(
        followed_grid.any(axis=1), M - 1 - np.argmax(followed_grid[:, ::-1], 1), -1
    )
    _home_monitoring(ctx, a1c0, frail, entry, last_month)

    patient, time_us, code, value, visit = rows.arrays()
    keep = (time_us == NO_TIME) | (death_us[patient] < 0) | (time_us <= death_us[patient])
    patient, time_us, code, value, visit = (a[keep] for a in (patient, time_us, code, value, visit))
    value = _rounded(value, code)
    order = np.lexsort((value, code, time_us, patient))
    return CohortChunk(
        subject_id=subject_id,
        female=female,
        site_b=site_b,
        birth_us=birth_us,
        death_us=death_us,
        row_patient=patient[order],
        row_time_us=time_us[order],
        row_code=code[order],
        row_value=value[order],
        row_visit=visit[order],
        monthly_hazard=hazard_grid,
    )


_DECIMALS = np.array([info.decimals for info in CODES])


def _rounded(value: np.ndarray, code: np.ndarray) -> np.ndarray:
    scale = 10.0 ** _DECIMALS[code]
    return np.round(value * scale) / scale


@dataclass
class _Context:
    """The hidden state the recording functions read."""

    rng: np.random.Generator
    rows: _Rows
    female: np.ndarray
    site_b: np.ndarray
    age0: np.ndarray
    a1c: np.ndarray
    egfr: np.ndarray
    gap: np.ndarray
    active: np.ndarray
    sbp_mean: np.ndarray
    sbp_sd: np.ndarray
    ldl0: np.ndarray
    bmi0: np.ndarray
    bmi_drift: np.ndarray
    log_acr0: np.ndarray
    egfr0: np.ndarray

    def times(self, months: np.ndarray, first_day: int, last_day: int, hours: tuple[int, int]):
        """Random times within the given months (days and hours drawn uniformly)."""
        k = len(months)
        day = MONTH_START_DAY[months] + self.rng.integers(first_day, last_day, k)
        minute = self.rng.integers(hours[0] * 60, hours[1] * 60, k)
        return day * DAY_US + minute * MINUTE_US

    def draw(self, p: np.ndarray | float, k: int) -> np.ndarray:
        return self.rng.random(k) < p

    def blood_pressure(self, p: np.ndarray, m: np.ndarray, time_us: np.ndarray, visit, noise):
        k = len(p)
        ace = self.active[p, m, _ACE] & ~self.gap[p, m]
        sbp = self.sbp_mean[p] - 6 * ace + self.sbp_sd[p] * self.rng.normal(0, 1, k)
        sbp = np.clip(sbp + self.rng.normal(0, noise, k), 85, 230)
        dbp = np.clip(78 + 0.4 * (sbp - 134) + self.rng.normal(0, 5, k), 45, 130)
        self.rows.add(p, time_us, code_index("LOINC//8480-6"), sbp, visit)
        self.rows.add(p, time_us, code_index("LOINC//8462-4"), dbp, visit)

    def glucose(self, p: np.ndarray, m: np.ndarray, time_us: np.ndarray, visit) -> None:
        mg = 28.7 * self.a1c[p, m] - 46.7 + self.rng.normal(0, 30, len(p))
        mg = np.clip(mg, 45, 600)
        b = self.site_b[p]
        code = np.where(b, code_index("LOINC//14749-6"), code_index("LOINC//2345-7"))
        self.rows.add(p, time_us, code, np.where(b, mg / 18.016, mg), visit)

    def renal(self, p: np.ndarray, m: np.ndarray, time_us: np.ndarray, visit) -> None:
        age = self.age0[p] + m / 12
        female = self.female[p]
        creat = creatinine_from_egfr(self.egfr[p, m], age, female)
        creat = np.round(creat * np.exp(self.rng.normal(0, 0.02, len(p))), 2)
        b = self.site_b[p]
        code = np.where(b, code_index("LOINC//14682-9"), code_index("LOINC//2160-0"))
        self.rows.add(p, time_us, code, np.where(b, creat * 88.42, creat), visit)
        egfr = egfr_from_creatinine(creat, age, female)
        self.rows.add(p, time_us, code_index("LOINC//33914-3"), np.clip(egfr, 3, 150), visit)


def _visits(
    ctx: _Context,
    grid: np.ndarray,
    comp_month: np.ndarray,
    comp_type: np.ndarray,
    entry: np.ndarray,
    neuropathy: np.ndarray,
    visit_ids: _Ids,
) -> None:
    rng, rows = ctx.rng, ctx.rows
    p, m = np.nonzero(grid)
    k = len(p)
    t0 = ctx.times(m, 0, _EVENT_DAYS, (8, 17))
    visit = visit_ids.take(k)
    rows.add(p, t0, code_index("ENCOUNTER//ambulatory"), visit=visit)
    a1c = ctx.a1c[p, m]
    egfr = ctx.egfr[p, m]
    # vitals
    vit = ctx.draw(0.95, k)
    ctx.blood_pressure(p[vit], m[vit], t0[vit] + 10 * MINUTE_US, visit[vit], 3.0)
    s = ctx.draw(0.6, k)
    bmi = ctx.bmi0[p[s]] + ctx.bmi_drift[p[s]] * m[s] + rng.normal(0, 0.3, s.sum())
    rows.add(p[s], t0[s] + 10 * MINUTE_US, code_index("LOINC//39156-5"), bmi, visit[s])
    # labs: sicker patients are tested more
    lab_t = t0 + 40 * MINUTE_US
    s = ctx.draw(0.7 + 0.2 * (a1c > 8), k)
    value = np.clip(a1c[s] + rng.normal(0, 0.1, s.sum()), 4.5, 15)
    rows.add(p[s], lab_t[s], code_index("LOINC//4548-4"), value, visit[s])
    s = ctx.draw(0.6, k)
    ctx.glucose(p[s], m[s], lab_t[s], visit[s])
    s = ctx.draw(0.6 + 0.3 * (egfr < 60), k)
    ctx.renal(p[s], m[s], lab_t[s], visit[s])
    statin = ctx.active[p, m, _STATIN] & ~ctx.gap[p, m]
    s = ctx.draw(0.25, k)
    ldl = ctx.ldl0[p[s]] * np.where(statin[s], 0.65, 1.0) + rng.normal(0, 12, s.sum())
    rows.add(p[s], lab_t[s], code_index("LOINC//13457-7"), np.clip(ldl, 20, 300), visit[s])
    s = ctx.draw(0.2 + 0.25 * (egfr < 60), k)
    log_acr = (
        ctx.log_acr0[p[s]]
        + 0.04 * (ctx.egfr0[p[s]] - egfr[s])
        + 0.2 * (a1c[s] - 7.5)
        + rng.normal(0, 0.35, s.sum())
    )
    rows.add(
        p[s], lab_t[s], code_index("LOINC//9318-7"), np.clip(np.exp(log_acr), 1, 5000), visit[s]
    )
    # the problem list
    dx_t = t0 + 50 * MINUTE_US
    s = ctx.draw(0.95, k)
    diabetes = np.where(
        ctx.site_b[p] & (a1c > 7.5), code_index("ICD10CM//E11.65"), code_index("ICD10CM//E11.9")
    )
    rows.add(p[s], dx_t[s], diabetes[s], visit=visit[s])
    on = ctx.active[p, m]
    conditions = (
        ("ICD10CM//I10", (ctx.sbp_mean[p] >= 132) | on[:, _ACE], 0.8),
        ("ICD10CM//E78.5", (ctx.ldl0[p] > 100) | on[:, _STATIN], 0.7),
        ("ICD10CM//E66.9", ctx.bmi0[p] + ctx.bmi_drift[p] * m >= 30, 0.6),
        ("ICD10CM//N18.30", (egfr >= 30) & (egfr < 60), 0.7),
        ("ICD10CM//N18.4", egfr < 30, 0.75),
        ("ICD10CM//Z79.4", on[:, _INSULIN], 0.5),
        ("ICD10CM//Z79.84", on[:, _METFORMIN] | on[:, _SGLT2], 0.3),
        ("ICD10CM//E11.40", neuropathy[p], 0.5),
    )
    for code, has, prob in conditions:
        s = has & ctx.draw(prob, k)
        rows.add(p[s], dx_t[s], code_index(code), visit=visit[s])
    # complications: at diagnosis (and prevalent ones at the first visit), then on the list
    kind = comp_type[p]
    when = comp_month[p]
    chronic = (kind == _NEPHROPATHY) | (kind == _RETINOPATHY) | (kind == _AMPUTATION)
    diagnosed = (when >= 0) & (
        ((when == m) & ((kind == _NEPHROPATHY) | (kind == _RETINOPATHY)))
        | ((when < entry[p]) & (m == entry[p]))
    )
    listed = (when >= 0) & (when < m) & chronic & ctx.draw(0.6, k)
    s = diagnosed | listed
    rows.add(p[s], dx_t[s], _complication_codes(rng, kind[s]), visit=visit[s])


def _complication_codes(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    first = np.array([code_index(codes[0]) for codes in _COMPLICATIONS])
    last = np.array([code_index(codes[-1]) for codes in _COMPLICATIONS])
    return np.where(rng.random(len(kind)) < 0.7, first[kind], last[kind])


def _emergencies(ctx: _Context, grid: np.ndarray, visit_ids: _Ids) -> None:
    rng, rows = ctx.rng, ctx.rows
    p, m = np.nonzero(grid)
    k = len(p)
    t0 = ctx.times(m, 0, _EVENT_DAYS - 1, (0, 24))
    visit = visit_ids.take(k)
    rows.add(p, t0, code_index("ENCOUNTER//emergency"), visit=visit)
    reasons = np.array(
        [code_index(c) for c in ("ICD10CM//R07.9", "ICD10CM//J06.9", "ICD10CM//E11.649")]
    )
    reason = reasons[rng.integers(0, len(reasons), k)]
    hyper = ctx.a1c[p, m] > 9.5
    reason = np.where(hyper & ctx.draw(0.5, k), code_index("ICD10CM//E11.65"), reason)
    rows.add(p, t0 + HOUR_US, reason, visit=visit)
    s = ctx.draw(0.9, k)
    ctx.blood_pressure(p[s], m[s], t0[s] + 10 * MINUTE_US, visit[s], 5.0)
    s = ctx.draw(0.8, k)
    ctx.glucose(p[s], m[s], t0[s] + 30 * MINUTE_US, visit[s])


def _admissions(
    ctx: _Context,
    grid: np.ndarray,
    comp_month: np.ndarray,
    comp_type: np.ndarray,
    visit_ids: _Ids,
) -> None:
    rng, rows = ctx.rng, ctx.rows
    p, m = np.nonzero(grid)
    k = len(p)
    t0 = ctx.times(m, 0, _EVENT_DAYS - 7, (0, 24))
    stay_days = 1 + np.minimum(rng.poisson(2.5, k), 5)
    discharge = t0 + stay_days * DAY_US + rng.integers(-6 * 60, 6 * 60, k) * MINUTE_US
    visit = visit_ids.take(k)
    rows.add(p, t0, code_index("ENCOUNTER//inpatient"), visit=visit)
    rows.add(p, discharge, code_index("DISCHARGE//home"), visit=visit)
    reasons = np.array(
        [
            code_index(c)
            for c in (
                "ICD10CM//I50.9",
                "ICD10CM//J18.9",
                "ICD10CM//N17.9",
                "ICD10CM//L03.115",
                "ICD10CM//E11.649",
            )
        ]
    )
    reason = reasons[rng.integers(0, len(reasons), k)]
    kind = comp_type[p]
    complication = (comp_month[p] == m) & (
        (kind == _MI) | (kind == _STROKE) | (kind == _AMPUTATION)
    )
    reason[complication] = _complication_codes(rng, kind[complication])
    dx_t = t0 + 2 * HOUR_US
    rows.add(p, dx_t, reason, visit=visit)
    diabetes = np.where(
        ctx.site_b[p] & (ctx.a1c[p, m] > 7.5),
        code_index("ICD10CM//E11.65"),
        code_index("ICD10CM//E11.9"),
    )
    s = ctx.draw(0.9, k)
    rows.add(p[s], dx_t[s], diabetes[s], visit=visit[s])
    ctx.blood_pressure(p, m, t0 + 20 * MINUTE_US, visit, 6.0)
    lab_t = t0 + HOUR_US
    s = ctx.draw(0.95, k)
    ctx.glucose(p[s], m[s], lab_t[s], visit[s])
    s = ctx.draw(0.9, k)
    ctx.renal(p[s], m[s], lab_t[s], visit[s])
    s = ctx.draw(0.4, k)
    value = np.clip(ctx.a1c[p[s], m[s]] + rng.normal(0, 0.15, s.sum()), 4.5, 15)
    rows.add(p[s], lab_t[s], code_index("LOINC//4548-4"), value, visit[s])


def _refills(ctx: _Context, grid: np.ndarray) -> None:
    p, m, drug = np.nonzero(grid)
    t = ctx.times(m, 0, _EVENT_DAYS, (9, 19))
    codes = np.array([code_index(c) for c in _DRUGS])
    ctx.rows.add(p, t, codes[drug])


def _home_monitoring(
    ctx: _Context, a1c0: np.ndarray, frail: np.ndarray, entry: np.ndarray, last_month: np.ndarray
) -> None:
    rng, rows = ctx.rng, ctx.rows
    P = len(entry)
    monitored = (rng.random(P) < 0.08 + 0.08 * (a1c0 > 8)) & (last_month >= entry)
    first = entry + np.floor(rng.random(P) * (last_month - entry + 1)).astype(np.int64)
    last = np.minimum(first + rng.integers(1, 12, P), last_month)
    devices = rng.random((P, 3)) < np.array([0.75, 0.45, 0.4])
    devices[:, 0] |= ~devices.any(axis=1)
    who = np.nonzero(monitored)[0]
    start_day = MONTH_START_DAY[first[who]]
    days = MONTH_START_DAY[np.maximum(last[who], 0) + 1] - start_day
    p = np.repeat(who, days)
    day = (
        np.repeat(start_day, days) + np.arange(days.sum()) - np.repeat(np.cumsum(days) - days, days)
    )
    m = np.searchsorted(MONTH_START_DAY, day, side="right") - 1
    k = len(p)

    def reading_times(s: np.ndarray) -> np.ndarray:
        return day[s] * DAY_US + rng.integers(6 * 60, 23 * 60, s.sum()) * MINUTE_US

    gap = ctx.gap[p, m]
    s = devices[p, 0] & ctx.draw(np.where(gap, 0.3, 0.75), k)
    mg = 28.7 * ctx.a1c[p[s], m[s]] - 46.7 + rng.normal(0, 25, s.sum())
    rows.add(p[s], reading_times(s), code_index("LOINC//2339-0"), np.clip(mg, 40, 450))
    s = devices[p, 1] & ctx.draw(np.where(gap, 0.25, 0.5), k)
    ctx.blood_pressure(p[s], m[s], reading_times(s), -1, 4.0)
    s = devices[p, 2] & ctx.draw(0.85, k)
    age = ctx.age0[p[s]] + m[s] / 12
    log_steps = (
        np.log(6500) - 0.25 * frail[p[s]] - 0.015 * (age - 62) - 0.2 * (ctx.bmi0[p[s]] - 32) / 5
    )
    steps = np.exp(log_steps + rng.normal(0, 0.35, s.sum()))
    rows.add(p[s], reading_times(s), code_index("LOINC//55423-8"), np.clip(steps, 50, 40000))
