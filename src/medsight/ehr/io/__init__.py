"""Reading and writing MEDS datasets, and the importers that convert hospital exports to MEDS.

May import `medsight.runs`, `medsight.errors`, `medsight.console` and `medsight.ehr.io`.
"""
