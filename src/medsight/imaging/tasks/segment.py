"""The ``image-segment`` task: a label map per image (lungs, nodules; nnU-Net's recipe).

Registers itself with the task registry; every method delegates to the module that does the
work (``segment_train``, ``segment_evaluate``, ``segment_predict``, inference/).
"""

from __future__ import annotations

from pathlib import Path

from medsight.console import say
from medsight.errors import InputError
from medsight.imaging.data.segmentation_manifest import read_segmentation_source
from medsight.imaging.inference.onnx_run import export_run
from medsight.imaging.preprocess.plan import make_segment_plan
from medsight.imaging.tasks.plan_dataset import plan_cases
from medsight.imaging.tasks.segment_data import as_cases
from medsight.imaging.tasks.segment_evaluate import evaluate_segment_run, print_segment_headline
from medsight.imaging.tasks.segment_predict import LoadedSegmenter, predict_segment
from medsight.imaging.tasks.segment_train import train_segment
from medsight.tasks import register_task
from medsight.tasks.options import EvaluateOptions, ExplainOptions, PredictOptions, TrainOptions


@register_task
class SegmentTask:
    """Image segmentation: images with label maps (NIfTI, DICOM SEG, Decathlon) -> masks."""

    name = "image-segment"
    run_name = "segment"
    aliases: tuple[str, ...] = ()
    #: `medsight predict` runs the exported ONNX copy when the run has one
    predicts_with_onnx = True

    def plan(self, data: Path, out: Path, sample: int, seed: int) -> list[str]:
        cases = as_cases(read_segmentation_source(data).cases)
        return plan_cases(cases, make_segment_plan, out, sample, seed).notes

    def train(self, data: Path, run_dir: Path, options: TrainOptions) -> None:
        if options.preset or options.init_weights:
            raise InputError("--preset and --init are for --task classify")
        train_segment(
            data,
            run_dir,
            labels=options.labels,
            seed=options.seed,
            resume=options.resume,
            replan=options.replan,
            memory_gb=options.memory_gb,
            folds=options.folds,
            model_name=options.model_name,
            max_epochs=options.max_epochs,
            batch_size=options.batch_size,
            learning_rate=options.learning_rate,
            max_minutes=options.max_minutes,
            bf16=options.bf16,
            iterations_per_epoch=options.iterations,
            deep_supervision=options.deep_supervision,
        )

    def evaluate(self, run_dir: Path, options: EvaluateOptions) -> None:
        result, _ = evaluate_segment_run(
            run_dir,
            options.out,
            options.data,
            options.n_boot,
            options.tolerance_mm,
            options.overlap,
            options.mirror,
        )
        print_segment_headline(result)
        say(f"report: {options.out / 'report.html'}")

    def predict(self, run_dir: Path, inputs: list[Path], options: PredictOptions) -> None:
        predict_segment(run_dir, inputs, options)

    def explain(self, run_dir: Path, source: Path, options: ExplainOptions) -> None:
        raise InputError(
            f"{run_dir}: explain works on classifiers; a segmentation run's predictions "
            "come with overlays (`medsight predict RUN INPUT -o OUT`)"
        )

    def export(self, run_dir: Path) -> Path:
        return export_run(run_dir)

    def load(self, folder: Path) -> LoadedSegmenter:
        return LoadedSegmenter(folder)
