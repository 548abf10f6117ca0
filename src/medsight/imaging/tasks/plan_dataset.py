"""`medsight plan DATA`: fingerprint a sample of a dataset's series and derive its plan."""

from __future__ import annotations

from pathlib import Path

from medsight.console import progress_bar
from medsight.imaging.data.dataset_fingerprint import fingerprint_cases
from medsight.imaging.data.manifest import Case
from medsight.imaging.preprocess.plan import Plan, make_plan, write_plan


def plan_cases(cases: list[Case], purpose: str, out: Path, sample: int, seed: int) -> Plan:
    """Fingerprint up to ``sample`` of ``cases`` and write the plan for ``purpose`` to ``out``.

    ``purpose`` is the run contract's task name the plan is for (``classify``/``segment``).
    """
    with progress_bar() as progress:
        bar = progress.add_task("fingerprinting", total=min(sample, len(cases)))
        fingerprint = fingerprint_cases(cases, sample, seed, on_case=lambda: progress.advance(bar))
    plan = make_plan(fingerprint, purpose)  # type: ignore[arg-type]
    write_plan(out, plan)
    return plan
