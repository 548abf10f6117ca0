"""The embedded synthetic EHR data: a seeded type 2 diabetes cohort written as MEDS, FHIR R4
Bulk NDJSON (with PHI) or a long events CSV, and the default risk task it is built for.

May import `medsight.runs`, `medsight.errors`, `medsight.console` and `medsight.ehr.io`.
"""

from medsight.ehr.synth.diabetes_cohort import (
    OUTCOME_PREFIXES,
    OUTCOME_WINDOW_DAYS,
    PREDICTION_DATE,
)

__all__ = ["OUTCOME_PREFIXES", "OUTCOME_WINDOW_DAYS", "PREDICTION_DATE"]
