"""Tiny notes with planted PHI at known spans (NAME, ID, DATE, PHONE), written as text-ner JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FIRST = ["Anna", "Boris", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas"]
LAST = ["Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka", "Ulrich", "Varga"]
FILLER = [
    "The chest is clear.",
    "No acute distress was noted.",
    "Follow up in clinic as planned.",
    "Medications were reviewed and continued.",
    "Breathing is comfortable on room air.",
]


def planted_note(rng: np.random.Generator) -> tuple[str, list[dict[str, object]]]:
    """One note and its PHI spans."""
    parts: list[tuple[str, str | None]] = []
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    date = f"{rng.integers(1, 13):02d}/{rng.integers(1, 29):02d}/{rng.integers(2090, 2110)}"
    mrn = str(rng.integers(1_000_000, 9_999_999))
    phone = f"{rng.integers(200, 999)}-{rng.integers(200, 999)}-{rng.integers(1000, 9999)}"
    pieces = [
        [("Patient ", None), (name, "NAME"), (" was seen on ", None), (date, "DATE"), (".", None)],
        [("MRN ", None), (mrn, "ID"), (".", None)],
        [("Call ", None), (phone, "PHONE"), (" with questions.", None)],
        [("Dr. ", None), (str(rng.choice(LAST)), "NAME"), (" reviewed the case.", None)],
    ]
    order = rng.permutation(len(pieces))
    for k in order:
        parts += pieces[k] + [(" " + str(rng.choice(FILLER)) + " ", None)]
    text, spans = "", []
    for piece, kind in parts:
        if kind is not None:
            spans.append({"start": len(text), "end": len(text) + len(piece), "type": kind})
        text += piece
    return text, spans


def write_planted_phi(path: Path, n: int = 60, seed: int = 0) -> Path:
    """``n`` notes (two per patient) as JSONL with ``text``, ``subject_id`` and ``phi``."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text, spans = planted_note(rng)
            record = {"note_id": f"n{i}", "subject_id": f"p{i // 2}", "text": text, "phi": spans}
            f.write(json.dumps(record) + "\n")
    return path
