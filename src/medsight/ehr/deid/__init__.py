"""De-identification of one patient's record (a FHIR R4 Bundle or MEDS rows) before it is stored.

May import `medsight.errors` and `medsight.ehr.io`; never `imaging`, `serve` or `cli`.

What is removed and what is kept:

* removed: names, identifiers, telecom, addresses, photos, contacts, free text (narratives,
  notes, comments, ``CodeableConcept.text``, string and attachment values, MEDS
  ``text_value``), every extension, resources that describe other people or places
  (Practitioner, Organization, Location, RelatedPerson, ...), notes and documents
  (DocumentReference, Communication, Binary, ...) and contained resources;
* replaced: resource ids and references by keyed pseudonyms (links inside the bundle kept),
  the MEDS ``subject_id`` by a keyed pseudonymous number;
* shifted: every date, dateTime, instant and period (birth date included) by one keyed
  per-patient offset of whole days, so intervals and ages are kept exactly;
* kept: codes with their coding displays (vocabulary text), numeric values and units, sex.

The key is the service's de-identification secret (the imaging side's key): the same
patient under the same key always gets the same pseudonym and the same shift; without the
key neither can be tied back to the patient.
"""

from medsight.ehr.deid.deidentified_record import DeidentifiedRecord
from medsight.ehr.deid.fhir_bundle import deidentify_bundle
from medsight.ehr.deid.meds_rows import deidentify_meds_rows
from medsight.ehr.deid.patient_keys import PatientKeys, patient_keys

__all__ = [
    "DeidentifiedRecord",
    "PatientKeys",
    "deidentify_bundle",
    "deidentify_meds_rows",
    "patient_keys",
]
