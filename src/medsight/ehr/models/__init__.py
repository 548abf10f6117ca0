"""Sequence models of a patient's events (GRU, LSTM, Transformer, RETAIN), their registry
and the event embedding they share.

May import torch, pydantic and `medsight.errors`; nothing else of medsight.
"""
