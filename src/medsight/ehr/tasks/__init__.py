"""The EHR tasks (``ehr-risk``): training, evaluation, prediction and explanation of
disease-risk models on MEDS data, registered with the task registry.

May import the engine, `medsight.errors`, `medsight.console` and the rest of `medsight.ehr`.
"""
