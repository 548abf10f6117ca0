"""De-identification of free text: rule detectors for every PHI type, span merging, keyed
surrogates (names, shifted dates, same-shape identifiers) or tags, and `deidentify_text`.
May import `medsight.errors`, `medsight.keyed_digest`, `medsight.patient_date_offset` and
`medsight.text.*`; never another modality, `serve` or `cli`."""
