"""From MEDS events and labels to model inputs: encoded samples (events at or before each
prediction time only), the plan, batches, and the baselines' aggregate features.

May import the engine, `medsight.errors`, `medsight.console` and `medsight.ehr.io`.
"""
