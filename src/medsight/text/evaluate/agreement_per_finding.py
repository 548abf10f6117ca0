"""Agreement between two sets of report labels, per finding, with report-bootstrap CIs.

Each report gets one of four labels per finding (`REPORT_LABELS`): present, absent,
uncertain, not mentioned. Per finding, over all reports: accuracy on the four labels (high
whenever a finding is rarely mentioned, since "not mentioned" agrees with itself), Cohen's
kappa (chance-corrected), accuracy where the reference labels the finding (``present``,
``absent`` or ``uncertain``: the number to read for rare findings) and F1 of present, absent
and uncertain with the reference as truth, and F1 of "present or uncertain" against the rest
(how far the two agree once hedged mentions count as positive: labellers differ most in
where they put "may represent atelectasis"). ``overall`` pools every (report, finding) pair.

Intervals come from `medsight.evaluate.bootstrap`: reports (or the patients given in
``groups``) are resampled with replacement; every metric of every finding is computed from
the resample's weighted confusion matrix, so 1,000 resamples of 1,000 reports x 48 findings
take a second or two. A resample where a metric is undefined is skipped for it
(``n_boot_valid``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medsight.evaluate.bootstrap import CI_METHOD, patient_resample_weights, percentile_interval

REPORT_LABELS = ("present", "absent", "uncertain", "not mentioned")

#: radlabels' spellings (and our own) -> a `REPORT_LABELS` value
LABEL_SPELLINGS = {
    "definitely present": "present",
    "definitely absent": "absent",
    "present": "present",
    "absent": "absent",
    "uncertain": "uncertain",
    "not mentioned": "not mentioned",
}

_MENTIONED = [0, 1, 2]


def report_label(value: str, where: str) -> str:
    """A `REPORT_LABELS` value from a label as a labeller spells it.

    Raises:
        ValueError: If the spelling is unknown (``where`` names the report and finding).
    """
    label = LABEL_SPELLINGS.get(value.strip().lower()) if isinstance(value, str) else None
    if label is None:
        raise ValueError(
            f"{where}: unknown report label {value!r}; expected one of {REPORT_LABELS}"
        )
    return label


def _metrics(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every agreement metric from confusion matrices of shape ``(..., 4, 4)``, NaN if undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = counts.sum(axis=(-2, -1))
        diag = np.diagonal(counts, axis1=-2, axis2=-1)
        rows = counts.sum(axis=-1)
        cols = counts.sum(axis=-2)
        observed = diag.sum(axis=-1) / n
        expected = (rows * cols).sum(axis=-1) / n**2
        kappa = np.where(expected < 1 - 1e-12, (observed - expected) / (1 - expected), np.nan)
        mentioned = diag[..., _MENTIONED].sum(axis=-1) / rows[..., _MENTIONED].sum(axis=-1)
        out = {"accuracy": observed, "kappa": kappa, "accuracy_mentioned": mentioned}
        for k in _MENTIONED:
            out[f"f1_{REPORT_LABELS[k].replace(' ', '_')}"] = (
                2 * diag[..., k] / (rows[..., k] + cols[..., k])
            )
        both = counts[..., 0, 0] + counts[..., 0, 2] + counts[..., 2, 0] + counts[..., 2, 2]
        positive = rows[..., 0] + rows[..., 2] + cols[..., 0] + cols[..., 2]
        out["f1_present_or_uncertain"] = 2 * both / positive
    return out


def agreement_per_finding(
    ours: Mapping[str, Mapping[str, str]],
    reference: Mapping[str, Mapping[str, str]],
    findings: Sequence[str] | None = None,
    groups: Mapping[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Per-finding agreement of ``ours`` with ``reference`` on the reference's reports.

    Args:
        ours: report id -> {finding: label}; a finding missing from a report is "not
            mentioned". Must cover every report of ``reference``.
        reference: The same for the reference labels (radlabels' "definitely present" /
            "definitely absent" / "uncertain" spellings are accepted).
        findings: Findings to score (default every finding either side names).
        groups: report id -> patient id, when one patient has several reports (default:
            each report is its own patient).
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling.
        alpha: One minus the intervals' coverage.

    Returns:
        ``{"n_reports", "labels", "n_boot", "alpha", "seed", "ci_method", "findings":
        {finding: {"confusion": [[int]] (rows reference, columns ours, `REPORT_LABELS`
        order), "reference_counts", "our_counts", "accuracy", "kappa",
        "accuracy_mentioned", "f1_present", "f1_absent", "f1_uncertain",
        "f1_present_or_uncertain"}}, "overall": {...
        the same over all pairs}}``; each metric is ``{"point", "low", "high",
        "n_boot_valid"}`` (``None`` where undefined).

    Raises:
        ValueError: If ``ours`` lacks a report of the reference or a label is unknown.
    """
    report_ids = sorted(reference)
    missing = [r for r in report_ids if r not in ours]
    if missing:
        raise ValueError(
            f"{len(missing)} reference reports have no labels of ours, e.g. {missing[0]}"
        )
    if findings is None:
        names = {f for r in report_ids for f in reference[r]} | {
            f for r in report_ids for f in ours[r]
        }
        findings = sorted(names)
    index = {label: i for i, label in enumerate(REPORT_LABELS)}
    codes = np.empty((len(report_ids), len(findings)), dtype=np.int64)
    for i, rid in enumerate(report_ids):
        for j, finding in enumerate(findings):
            ref = report_label(reference[rid].get(finding, "not mentioned"), f"{rid} {finding}")
            our = report_label(ours[rid].get(finding, "not mentioned"), f"{rid} {finding}")
            codes[i, j] = index[ref] * 4 + index[our]
    patients = [groups.get(r, r) if groups else r for r in report_ids]
    point_counts = np.stack([np.bincount(codes[:, j], minlength=16) for j in range(len(findings))])
    point_counts = point_counts.reshape(len(findings), 4, 4).astype(np.float64)
    samples: list[np.ndarray] = []
    if report_ids:
        for weights in patient_resample_weights(patients, n_boot, seed):
            block = np.zeros((weights.shape[0], len(findings), 16))
            for j in range(len(findings)):
                onehot = np.zeros((len(report_ids), 16))
                onehot[np.arange(len(report_ids)), codes[:, j]] = 1.0
                block[:, j] = weights @ onehot
            samples.append(block.reshape(weights.shape[0], len(findings), 4, 4))
    boot = np.concatenate(samples) if samples else np.zeros((0, len(findings), 4, 4))

    def summarise(point: np.ndarray, resampled: np.ndarray) -> dict[str, Any]:
        point_metrics = _metrics(point)
        boot_metrics = _metrics(resampled)
        out: dict[str, Any] = {
            "confusion": point.astype(int).tolist(),
            "reference_counts": dict(
                zip(REPORT_LABELS, point.sum(axis=1).astype(int).tolist(), strict=True)
            ),
            "our_counts": dict(
                zip(REPORT_LABELS, point.sum(axis=0).astype(int).tolist(), strict=True)
            ),
        }
        for name, value in point_metrics.items():
            out[name] = percentile_interval(float(value), boot_metrics[name], alpha)
        return out

    per_finding = {
        finding: summarise(point_counts[j], boot[:, j]) for j, finding in enumerate(findings)
    }
    return {
        "n_reports": len(report_ids),
        "labels": list(REPORT_LABELS),
        "n_boot": int(n_boot),
        "alpha": float(alpha),
        "seed": int(seed),
        "ci_method": CI_METHOD.replace("patients", "reports" if groups is None else "patients"),
        "findings": per_finding,
        "overall": summarise(point_counts.sum(axis=0), boot.sum(axis=1)),
    }
