"""The ``image-classify`` task: one label per image or series (the founding lung-CT CNN).

Registers itself with the task registry; every method delegates to the module that does the
work (``classify_train``, ``classify_evaluate``, ``classify_predict``, explain/, inference/).
"""

from __future__ import annotations

from pathlib import Path

from medsight.console import say
from medsight.imaging.data.manifest import read_manifest
from medsight.imaging.explain.explain_run import explain_input
from medsight.imaging.inference.onnx_run import export_run
from medsight.imaging.preprocess.plan import CANONICAL_ORIENTATION, make_classify_plan
from medsight.imaging.tasks.classify_evaluate import evaluate_classify_run
from medsight.imaging.tasks.classify_predict import LoadedClassifier, predict_classify
from medsight.imaging.tasks.classify_train import train_classify
from medsight.imaging.tasks.plan_dataset import plan_cases
from medsight.tasks import register_task
from medsight.tasks.options import EvaluateOptions, ExplainOptions, PredictOptions, TrainOptions


@register_task
class ClassifyTask:
    """Image classification: DICOM/NIfTI/PNG with a label per case -> class probabilities."""

    name = "image-classify"
    run_name = "classify"
    aliases: tuple[str, ...] = ()
    #: `medsight predict` runs the exported ONNX copy when the run has one
    predicts_with_onnx = True

    def plan(self, data: Path, out: Path, sample: int, seed: int) -> list[str]:
        cases = read_manifest(data)
        plan = plan_cases(cases, make_classify_plan, out, sample, seed, CANONICAL_ORIENTATION)
        return plan.notes

    def train(self, data: Path, run_dir: Path, options: TrainOptions) -> None:
        train_classify(data, run_dir, options)

    def evaluate(self, run_dir: Path, options: EvaluateOptions) -> None:
        evaluate_classify_run(run_dir, options)

    def predict(self, run_dir: Path, inputs: list[Path], options: PredictOptions) -> None:
        predict_classify(run_dir, inputs, options)

    def explain(self, run_dir: Path, source: Path, options: ExplainOptions) -> None:
        out = options.out
        record = explain_input(
            run_dir, source, out, options.method, options.class_name, options.slices
        )
        probability = record["probabilities"][record["class_name"]]
        say(
            f"{record['method']} explanation of {record['class_name']} "
            f"(p={probability:.3f}, predicted {record['predicted']})"
        )
        for name in record["files"]:
            print(out / name)

    def export(self, run_dir: Path) -> Path:
        return export_run(run_dir)

    def load(self, folder: Path) -> LoadedClassifier:
        return LoadedClassifier(folder)
