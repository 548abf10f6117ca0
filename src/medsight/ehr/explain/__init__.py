"""Why a risk model scored a patient: integrated gradients over event embeddings, the codes
that matter most over held-out patients, and the clinician-readable timeline figure.

May import the engine, `medsight.errors`, `medsight.console` and the rest of `medsight.ehr`.
"""
