"""Trainable text networks: the subword tokenizer, document encoders with per-output heads
(`text-classify`) and token taggers (`text-ner`).

May import torch, tokenizers, `medsight.errors`, `medsight.runs` and `medsight.text`.
"""
