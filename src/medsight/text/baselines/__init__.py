"""Baselines every text-classify run reports beside its deep models (TF-IDF + logistic
regression), serialised as JSON.

May import scikit-learn, numpy, `medsight.errors` and `medsight.runs`.
"""
