"""The ``text-ner`` task: a trainable entity / PHI tagger (BiLSTM-CRF or Transformer-CRF).

Registers itself with the task registry; every method delegates to the module that does the
work (``ner_train``, ``ner_evaluate``, ``ner_predict``, ``ner_explain``, ``ner_export``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from medsight.tasks import register_task
from medsight.tasks.options import EvaluateOptions, ExplainOptions, PredictOptions, TrainOptions
from medsight.text.tasks.ner_config import make_plan, write_plan
from medsight.text.tasks.ner_data import read_ner_jsonl

if TYPE_CHECKING:
    from medsight.text.tasks.ner_predict import LoadedTagger


@register_task
class NerTask:
    """Entities (or PHI) in notes: JSONL with spans -> tagger + rules -> spans with context."""

    name = "text-ner"
    run_name = "text-ner"
    aliases: tuple[str, ...] = ("ner",)
    #: `medsight predict` inputs are .txt notes, never manifest CSVs
    input_manifests = False

    def plan(self, data: Path, out: Path, sample: int, seed: int) -> list[str]:
        notes = read_ner_jsonl(Path(data), None)
        plan = make_plan(notes)
        write_plan(Path(out), plan)
        return [*plan.notes, "Sizes only: the tag set comes from --labels at training time."]

    def train(self, data: Path, run_dir: Path, options: TrainOptions) -> None:
        from medsight.text.tasks.ner_train import train_ner

        train_ner(data, run_dir, options)

    def evaluate(self, run_dir: Path, options: EvaluateOptions) -> None:
        from medsight.text.tasks.ner_evaluate import evaluate_ner_run

        evaluate_ner_run(run_dir, options)

    def predict(self, run_dir: Path, inputs: list[Path], options: PredictOptions) -> None:
        from medsight.text.tasks.ner_predict import predict_ner

        predict_ner(run_dir, inputs, options)

    def explain(self, run_dir: Path, source: Path, options: ExplainOptions) -> None:
        from medsight.text.tasks.ner_explain import explain_ner

        explain_ner(run_dir, source, options)

    def export(self, run_dir: Path) -> Path:
        from medsight.text.tasks.ner_export import export_ner_run

        return export_ner_run(run_dir)

    def load(self, folder: Path) -> LoadedTagger:
        from medsight.text.tasks.ner_predict import LoadedTagger

        return LoadedTagger(folder)
