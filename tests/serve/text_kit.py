"""Building blocks for the service's text tests: a note full of PHI canaries in each format
the text route takes, and stand-in text models (fixed rules, not trained).

The stand-ins answer as a trained ``text-ner`` / ``text-classify`` run does (`LoadedRun`:
``predict(note.txt, out, heatmap) -> TextResult``, a copy of the scored note in ``out``), so
the service is tested for what it does with a text model (verify, load, de-identify, store,
run, audit, show) without the minutes a training takes.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from medsight.releases.model_registry import ModelRegistry
from medsight.serve.jobs import model_cache
from medsight.tasks import get_task
from medsight.tasks.options import TrainOptions
from medsight.tasks.results import TextEntity, TextLabel, TextResult

CANARY_GIVEN = "Zebediah"
CANARY_FAMILY = "Canarywing"
CANARY_MRN = "MRN 55512377"
CANARY_PHONE = "(617) 555-0199"
CANARY_EMAIL = "zeb.canarywing@example.org"
CANARY_DATE = "March 14, 2024"
CANARY_BIRTH = "03/14/1951"
#: identifiers that only the message structure holds (FHIR ids, HL7 PID/OBR fields)
CANARY_DOC_ID = "doc-canary-4411"
CANARY_PATIENT_REF = "pat-canary-4412"
CANARY_ACCESSION = "ACC-CANARY-4413"
CANARY_HL7_MRN = "55512377"

TEXT_CANARIES = (
    CANARY_GIVEN,
    CANARY_FAMILY,
    "55512377",
    "555-0199",
    CANARY_EMAIL,
    CANARY_DATE,
    CANARY_BIRTH,
    CANARY_DOC_ID,
    CANARY_PATIENT_REF,
    CANARY_ACCESSION,
)

CANARY_NOTE = (
    f"Patient: {CANARY_GIVEN} {CANARY_FAMILY}, {CANARY_MRN}, DOB {CANARY_BIRTH}.\n"
    f"CT chest performed on {CANARY_DATE}. Contact {CANARY_PHONE}, {CANARY_EMAIL}.\n"
    "FINDINGS: No pleural effusion. Possible small pneumothorax at the apex.\n"
    "A 6 mm nodule in the right upper lobe.\n"
    "IMPRESSION: Right upper lobe nodule, follow-up CT in 12 months.\n"
)


def fhir_document(text: str = CANARY_NOTE) -> dict[str, Any]:
    """The note as a FHIR R4 DocumentReference (base64 text/plain attachment)."""
    return {
        "resourceType": "DocumentReference",
        "id": CANARY_DOC_ID,
        "status": "current",
        "subject": {"reference": f"Patient/{CANARY_PATIENT_REF}"},
        "date": "2024-03-14T09:30:00Z",
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(text.encode()).decode(),
                }
            }
        ],
    }


def fhir_report(text: str = CANARY_NOTE) -> dict[str, Any]:
    """The note as a FHIR R4 DiagnosticReport (its conclusion)."""
    return {
        "resourceType": "DiagnosticReport",
        "id": CANARY_DOC_ID,
        "status": "final",
        "code": {"text": "CT chest"},
        "subject": {"reference": f"Patient/{CANARY_PATIENT_REF}"},
        "conclusion": text,
    }


def hl7_message(text: str = CANARY_NOTE) -> bytes:
    """The note as an HL7 v2 ORU^R01 message: one OBX TX line per note line."""
    lines = [
        "MSH|^~\\&|RIS|HOSP|EHR|HOSP|20240314093000||ORU^R01|MSG-1|P|2.5",
        f"PID|1||{CANARY_HL7_MRN}^^^HOSP^MR||{CANARY_FAMILY}^{CANARY_GIVEN}||19510314|M",
        f"OBR|1|PL-1|{CANARY_ACCESSION}|71250^CT CHEST|||20240314090000",
    ]
    escaped_bar = "\\F\\"
    for i, line in enumerate(text.strip("\n").split("\n"), start=1):
        lines.append(f"OBX|{i}|TX|||{line.replace('|', escaped_bar)}")
    return "\r".join(lines).encode()


def leaks(data: bytes | str) -> list[str]:
    """The canaries found in ``data`` (case-insensitive)."""
    raw = (data.encode("utf-8", "replace") if isinstance(data, str) else data).lower()
    return [c for c in TEXT_CANARIES if c.lower().encode() in raw]


# ---------------------------------------------------------------- stand-in models

_FINDINGS = {
    "effusion": "pleural_effusion",
    "pneumothorax": "pneumothorax",
    "nodule": "lung_nodule_or_mass",
}


class _FakeTextRun:
    """Finds three findings by keyword; "no" before one negates it, "possible" makes it
    uncertain; a classifier's label is whether a nodule is mentioned."""

    def __init__(self, task: str) -> None:
        self.task = task

    def is_2d(self) -> bool:
        return True

    def predict(self, source: Path, out: Path, heatmap: bool) -> TextResult:
        text = Path(source).read_text(encoding="utf-8")
        (out / "note.txt").write_text(text, encoding="utf-8")
        if self.task == "text-classify":
            nodule = "nodule" in text.lower()
            p = 0.9 if nodule else 0.2
            return TextResult(
                task="text-classify",
                files=["note.txt"],
                labels={
                    "finding:lung_nodule_or_mass": TextLabel(
                        label="present" if nodule else "absent",
                        probability=p,
                        probabilities={"present": p, "absent": round(1 - p, 4)},
                    )
                },
                network="cnn",
            )
        entities = []
        for match in re.finditer("|".join(_FINDINGS), text, flags=re.IGNORECASE):
            sentence_start = max(
                text.rfind(".", 0, match.start()), text.rfind(":", 0, match.start())
            )
            before = text[sentence_start + 1 : match.start()].lower()
            entities.append(
                TextEntity(
                    start=match.start(),
                    end=match.end(),
                    type="finding",
                    concept=_FINDINGS[match.group().lower()],
                    text=match.group(),
                    negation="negated" if re.search(r"\bno\b", before) else "affirmed",
                    certainty="uncertain" if "possible" in before else "certain",
                    temporality="recent",
                    experiencer="patient",
                )
            )
        size = re.search(r"(\d+) mm", text)
        if size:
            entities.append(
                TextEntity(
                    start=size.start(),
                    end=size.end(),
                    type="measurement",
                    text=size.group(),
                    value_mm=float(size.group(1)),
                )
            )
        entities.sort(key=lambda e: e.start)
        return TextResult(
            task="text-ner", files=["note.txt"], entities=entities, network="bilstm-crf"
        )


class FakeTextTask:
    aliases: tuple[str, ...] = ()

    def __init__(self, run_name: str) -> None:
        self.name = f"fake-{run_name}"
        self.run_name = run_name

    def load(self, folder: Path) -> _FakeTextRun:
        assert (folder / "model.json").is_file()
        return _FakeTextRun(self.run_name)


def write_fake_text_run(run_dir: Path, task: str) -> Path:
    """A run folder the registry accepts for a stand-in ``task`` model."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "model.json").write_text(
        json.dumps({"task": task, "model_name": "stand-in", "class_names": ["absent", "present"]})
    )
    save_file({"w": torch.zeros(2)}, str(run_dir / "model.safetensors"))
    (run_dir / "model_card.md").write_text(f"# {task} stand-in\n\nKeyword rules, for tests.\n")
    return run_dir


def add_fake_text_models(registry: ModelRegistry, work: Path) -> None:
    """``ner`` (a stand-in ``text-ner``) and ``textcls`` (a stand-in ``text-classify``)."""
    registry.add(write_fake_text_run(work / "ner", "text-ner"), "ner")
    registry.add(write_fake_text_run(work / "textcls", "text-classify"), "textcls")


def use_fake_text_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's model cache loads `FakeTextTask` for text runs."""
    original = model_cache.task_of_run
    fakes = {name: FakeTextTask(name) for name in ("text-ner", "text-classify")}

    def task_of_run(run_dir: Path) -> Any:
        contract = json.loads((Path(run_dir) / "model.json").read_text())
        return fakes.get(contract.get("task")) or original(run_dir)

    monkeypatch.setattr(model_cache, "task_of_run", task_of_run)


# ---------------------------------------------------------------- tiny trained models

_FINDING_PHRASES = {
    "pleural effusion": "pleural_effusion",
    "pneumothorax": "pneumothorax",
    "nodule": "lung_nodule_or_mass",
}


def _tiny_reports(path: Path, n: int = 40, seed: int = 0) -> Path:
    """``n`` one-line chest reports (JSONL, one per patient): a finding, present or absent,
    with its gold entity span and the report's ``finding:pleural_effusion`` label."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            phrase = str(rng.choice(list(_FINDING_PHRASES)))
            present = bool(i % 2)
            text = f"{'Small' if present else 'No'} {phrase} on the right. Heart size normal."
            start = text.index(phrase)
            effusion = "present" if present and phrase == "pleural effusion" else "absent"
            row = {
                "note_id": f"r{i}",
                "subject_id": f"p{i}",
                "time": "2100-01-01T00:00:00",
                "text": text,
                "finding:pleural_effusion": effusion,
                "entities": [{"start": start, "end": start + len(phrase), "type": "finding"}],
            }
            f.write(json.dumps(row) + "\n")
    return path


def train_tiny_text_runs(work: Path) -> dict[str, Path]:
    """A tiny trained ``text-classify`` (CNN) and ``text-ner`` (BiLSTM-CRF) run, one epoch
    each on 40 one-line reports (a few seconds): ``{"textcls": run, "ner": run}``."""
    work.mkdir(parents=True, exist_ok=True)
    data = _tiny_reports(work / "reports.jsonl")
    runs = {}
    for name, task_name, shrink, options in (
        (
            "textcls",
            "text-classify",
            lambda plan: plan.update({"models": ["cnn"], "embed_dim": 8, "hidden_dim": 8}),
            TrainOptions(max_epochs=1, seed=0, labels="finding:pleural_effusion"),
        ),
        (
            "ner",
            "text-ner",
            lambda plan: plan["sizes"].update(
                {"word_dim": 8, "shape_dim": 4, "char_filters": 8, "hidden_dim": 8}
            ),
            TrainOptions(max_epochs=1, seed=0, labels="entities"),
        ),
    ):
        task, run = get_task(task_name), work / name
        run.mkdir()
        task.plan(data, run / "plan.json", 40, 0)
        plan = json.loads((run / "plan.json").read_text())
        shrink(plan)
        (run / "plan.json").write_text(json.dumps(plan))
        task.train(data, run, options)
        runs[name] = run
    return runs
