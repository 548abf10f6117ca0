"""The ``ehr-risk`` task: the risk of a disease event from a patient's record (MEDS events).

Registers itself with the task registry; every method delegates to the module that does the
work (``risk_train``, ``risk_predict``, ``risk_export``, and ``risk_evaluate`` /
``risk_explain`` for the report and the per-patient timeline).
"""

from __future__ import annotations

from pathlib import Path

from medsight.ehr.data.plan import make_ehr_plan, write_ehr_plan
from medsight.ehr.io.meds_dataset import open_meds
from medsight.ehr.tasks.risk_contract import contract_of_run
from medsight.ehr.tasks.risk_export import export_risk_run
from medsight.ehr.tasks.risk_predict import LoadedRisk, predict_risk
from medsight.ehr.tasks.risk_train import train_risk
from medsight.tasks import register_task
from medsight.tasks.options import EvaluateOptions, ExplainOptions, PredictOptions, TrainOptions


@register_task
class RiskTask:
    """EHR risk: MEDS events + labels -> sequence models and baselines -> calibrated risk."""

    name = "ehr-risk"
    run_name = "ehr-risk"
    aliases: tuple[str, ...] = ("risk",)
    #: `medsight predict` inputs are records (JSON, parquet), never manifest CSVs
    input_manifests = False

    def plan(self, data: Path, out: Path, sample: int, seed: int) -> list[str]:
        # `medsight plan` has no --labels: the plan comes from the data alone (history
        # lengths are events per subject); training with labels reuses it as written
        plan = make_ehr_plan(open_meds(data), None, seed=seed)
        write_ehr_plan(out, plan)
        return [*plan.notes, "Planned from the data alone (no labels): train reuses this plan."]

    def train(self, data: Path, run_dir: Path, options: TrainOptions) -> None:
        train_risk(data, run_dir, options)

    def evaluate(self, run_dir: Path, options: EvaluateOptions) -> None:
        from medsight.ehr.tasks.risk_evaluate import evaluate_risk_run

        contract_of_run(run_dir)  # a missing run names the command that makes it
        evaluate_risk_run(run_dir, options)

    def predict(self, run_dir: Path, inputs: list[Path], options: PredictOptions) -> None:
        predict_risk(run_dir, inputs, options)

    def explain(self, run_dir: Path, source: Path, options: ExplainOptions) -> None:
        from medsight.ehr.tasks.risk_explain import explain_risk

        contract_of_run(run_dir)
        explain_risk(run_dir, source, options)

    def export(self, run_dir: Path) -> Path:
        return export_risk_run(run_dir)

    def load(self, folder: Path) -> LoadedRisk:
        return LoadedRisk(folder)
