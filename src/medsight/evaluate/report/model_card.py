"""The model card: one structure rendered as ``model_card.md`` and as the report's last section.

Sections follow Mitchell et al. (2019), "Model Cards for Model Reporting": intended use,
training data, evaluation (metrics with CIs), subgroups, limitations, and the facts needed to
reproduce the model (versions, seed, preprocessing).
"""

from __future__ import annotations

from typing import Any

from medsight.runs.atomic import write_text_atomic


def _ci(value: dict[str, Any] | None) -> str:
    if not value or value.get("point") is None:
        return "n/a"
    low, high = value.get("low"), value.get("high")
    if low is None or high is None:
        return f"{value['point']:.3f}"
    return f"{value['point']:.3f} ({low:.3f}-{high:.3f})"


def build_model_card(
    *,
    model_name: str,
    class_names: list[str],
    intended_use: str,
    training_data: dict[str, Any],
    evaluation: dict[str, Any],
    limitations: list[str],
    facts: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the card from the run's facts and `evaluate_classifier`'s output.

    Returns:
        ``{"title": str, "sections": [{"title", "paragraphs": [str], "table": [[str]]}]}``;
        the first table row is the header.
    """
    ci = evaluation["with_ci"]
    metric_rows = [["metric", "test value (95% CI, patient bootstrap)"]]
    metric_rows += [[name.replace("_", " "), _ci(ci["overall"][name])] for name in ci["overall"]]
    metric_rows += [[f"macro {name.replace('_', ' ')}", _ci(v)] for name, v in ci["macro"].items()]
    for cls in class_names:
        row = ci["per_class"][cls]
        metric_rows.append(
            [
                f"{cls}: ROC-AUC / sensitivity / specificity",
                f"{_ci(row['roc_auc'])} / {_ci(row['sensitivity'])} / {_ci(row['specificity'])}",
            ]
        )
    subgroup_rows = [["subgroup", "cases", "accuracy (95% CI)", "macro ROC-AUC (95% CI)", "note"]]
    for attribute in ("by_sex", "by_age"):
        for group, entry in (evaluation["subgroups"].get(attribute) or {}).items():
            metrics = entry.get("metrics")
            subgroup_rows.append(
                [
                    f"{attribute[3:]} {group}",
                    str(entry["n_cases"]),
                    _ci(metrics["overall"]["accuracy"]) if metrics else "n/a",
                    _ci(metrics["macro"]["roc_auc"]) if metrics else "n/a",
                    entry.get("reason") or "",
                ]
            )
    conformal = evaluation["conformal"]
    calibration = evaluation["calibration"]
    return {
        "title": f"Model card: {model_name}",
        "sections": [
            {"title": "Intended use", "paragraphs": [intended_use], "table": []},
            {
                "title": "Training data",
                "paragraphs": [],
                "table": [["item", "value"]] + [[k, str(v)] for k, v in training_data.items()],
            },
            {
                "title": "Evaluation on the held-out test split",
                "paragraphs": [
                    f"Classes: {', '.join(class_names)}. Calibration: ECE "
                    f"{calibration['before']['ece']:.3f} before and "
                    f"{calibration['after_temperature_scaling']['ece']:.3f} after temperature "
                    f"scaling (T = {calibration['temperature']:.2f}, fitted on validation)"
                    f"{_bias_corrected(calibration)}. "
                    f"Conformal sets at {conformal['target_coverage']:.0%} target coverage covered "
                    f"{conformal['coverage']:.1%} of test cases; {conformal['referred_share']:.1%} "
                    "would be referred to a human (set not a single class).",
                ],
                "table": metric_rows,
            },
            {"title": "Subgroups", "paragraphs": [], "table": subgroup_rows},
            {"title": "Limitations", "paragraphs": limitations, "table": []},
            {
                "title": "Reproducibility",
                "paragraphs": [],
                "table": [["item", "value"]] + [[k, str(v)] for k, v in facts.items()],
            },
        ],
    }


def model_card_markdown(card: dict[str, Any]) -> str:
    """Render the card as Markdown."""
    lines = [f"# {card['title']}", ""]
    for section in card["sections"]:
        lines += [f"## {section['title']}", ""]
        for paragraph in section["paragraphs"]:
            lines += [paragraph, ""]
        table = section["table"]
        if table:
            lines.append("| " + " | ".join(table[0]) + " |")
            lines.append("|" + "---|" * len(table[0]))
            lines += [
                "| " + " | ".join(cell.replace("|", "/") for cell in row) + " |"
                for row in table[1:]
            ]
            lines.append("")
    return "\n".join(lines)


def write_model_card(path: Any, card: dict[str, Any]) -> Any:
    """Write ``model_card.md`` atomically."""
    return write_text_atomic(path, model_card_markdown(card))


def _noise_floor(report: dict[str, Any]) -> str:
    """The ECE sampling floor of the test cases (`ece_sampling_noise`), when recorded."""
    floor = report.get("ece_sampling_noise")
    if not floor:
        return ""
    return (
        f"; a perfectly calibrated model would show {floor['mean']:.3f} on these "
        f"{report['n_cases']} cases from sampling alone (95th percentile {floor['p95']:.3f})"
    )


def _bias_corrected(calibration: dict[str, Any]) -> str:
    """Bias-corrected temperature scaling's ECE and the sampling floor, when recorded."""
    after = calibration.get("after_bias_corrected_scaling")
    if not after:
        return _noise_floor(calibration["after_temperature_scaling"])
    return (
        f", {after['ece']:.3f} after bias-corrected temperature scaling (a temperature and a "
        f"bias per class, fitted on validation){_noise_floor(after)}"
    )
