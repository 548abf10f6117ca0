"""De-identification of DICOM: the PS3.15 Basic Application Level Confidentiality Profile.

Imaging layer: may import `runs`, `errors`, `console` and the rest of `imaging`; never
`serve`, `cli` or another modality.

Implemented on pydicom, with Table E.1-1 kept as data (``basic_profile.csv``, 2026c edition),
because none of the maintained libraries evaluated meets the bar set for medsight:

* idiscore 1.1.0 follows the table (2020-era edition), but replaces UIDs with an unkeyed
  hash (anyone holding an original UID can confirm the link), is GPLv3 (medsight is
  Apache-2.0) and declares support only up to Python 3.10;
* dicognito 0.19 works from its own list of elements rather than the table, keeps private
  attributes, and shifts dates by one offset per run rather than per patient;
* deid 0.4.13 is recipe-driven, keeps private attributes by default and removes UIDs
  instead of replacing them, which breaks references between instances;
* dicom-anonymizer 2.1.0 (source of our table transcription) replaces UIDs with random ones,
  so the same study gets different UIDs in different runs.

None of them quarantines instances with burned-in text. What medsight adds: keyed
(HMAC-SHA256) UIDs and pseudonyms that link across runs only under the user's key, per-patient
date shifting, fail-closed quarantine, and a summary with no patient data.

Public API: `DeidPolicy`, `deidentify_dataset` (pure, one dataset), `deidentify_tree`
(folders), `quarantine_reason`, `DeidSummary`.
"""

from medsight.imaging.io.deid.dataset import deidentify_dataset
from medsight.imaging.io.deid.keyed_hash import hashed_uid
from medsight.imaging.io.deid.policy import DATES_MODES, DatesMode, DeidPolicy
from medsight.imaging.io.deid.quarantine_rules import quarantine_reason
from medsight.imaging.io.deid.summary import DeidSummary, FileIssue
from medsight.imaging.io.deid.tree import default_quarantine_dir, deidentify_tree

__all__ = [
    "DATES_MODES",
    "DatesMode",
    "DeidPolicy",
    "DeidSummary",
    "FileIssue",
    "default_quarantine_dir",
    "deidentify_dataset",
    "deidentify_tree",
    "hashed_uid",
    "quarantine_reason",
]
