"""The ``text-classify`` task: notes -> one or several categorical outputs per document.

Registers itself with the task registry; every method delegates to the module that does
the work (``classify_run`` trains, ``classify_evaluate`` reports, ``classify_predict``
predicts and serves, ``classify_explain`` attributes, ``classify_export`` writes ONNX).
"""

from __future__ import annotations

from pathlib import Path

from medsight.tasks import register_task
from medsight.tasks.options import EvaluateOptions, ExplainOptions, PredictOptions, TrainOptions
from medsight.text.tasks.classify_contract import read_contract
from medsight.text.tasks.classify_predict import LoadedTextClassifier, predict_notes


@register_task
class TextClassifyTask:
    """Documents -> labels per output (CNN / BiLSTM / Transformer encoders + TF-IDF baseline)."""

    name = "text-classify"
    run_name = "text-classify"
    aliases: tuple[str, ...] = ("classify-text",)
    #: `medsight predict` inputs are notes (.txt), never manifest CSVs
    input_manifests = False

    def plan(self, data: Path, out: Path, sample: int, seed: int) -> list[str]:
        from medsight.text.tasks.classify_data import load_classify_data
        from medsight.text.tasks.classify_plan import make_plan, write_plan

        plan = make_plan(load_classify_data(data, "", seed))
        write_plan(out, plan)
        return [*plan.notes, "Planned for the default outputs: train reuses this plan."]

    def train(self, data: Path, run_dir: Path, options: TrainOptions) -> None:
        from medsight.text.tasks.classify_run import train_text_classify

        train_text_classify(data, run_dir, options)

    def evaluate(self, run_dir: Path, options: EvaluateOptions) -> None:
        from medsight.text.tasks.classify_evaluate import evaluate_text_classify

        read_contract(run_dir)  # a missing run names the command that makes it
        evaluate_text_classify(run_dir, options)

    def predict(self, run_dir: Path, inputs: list[Path], options: PredictOptions) -> None:
        predict_notes(run_dir, inputs, options)

    def explain(self, run_dir: Path, source: Path, options: ExplainOptions) -> None:
        from medsight.text.tasks.classify_explain import explain_note

        explain_note(run_dir, source, options)

    def export(self, run_dir: Path) -> Path:
        from medsight.text.tasks.classify_export import export_text_classify

        return export_text_classify(run_dir)

    def load(self, folder: Path) -> LoadedTextClassifier:
        return LoadedTextClassifier(folder)
