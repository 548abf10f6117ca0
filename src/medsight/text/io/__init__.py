"""Reading clinical text: plain files, notes tables, FHIR documents, HL7 v2 ORU messages and
DICOM SR text, each into `Note` records with clear errors for bad input.

May import `medsight.errors` and `medsight.text.io` only.
"""
