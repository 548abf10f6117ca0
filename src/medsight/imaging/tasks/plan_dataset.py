"""`medsight plan DATA`: fingerprint a sample of a dataset's series and derive its plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medsight.console import progress_bar
from medsight.imaging.data.dataset_fingerprint import fingerprint_cases
from medsight.imaging.data.manifest import Case
from medsight.imaging.preprocess.fingerprint import DatasetFingerprint
from medsight.imaging.preprocess.plan import Plan, write_plan


def plan_cases(
    cases: list[Case],
    make: Callable[[DatasetFingerprint], Plan],
    out: Path,
    sample: int,
    seed: int,
    orientation: str | None = None,
) -> Plan:
    """Fingerprint up to ``sample`` of ``cases``, derive the plan with ``make``, write it.

    ``orientation``: the orientation the task reads images in (classification reorients
    to one canonical orientation), so the fingerprint describes what training will see.
    """
    with progress_bar() as progress:
        bar = progress.add_task("fingerprinting", total=min(sample, len(cases)))
        fingerprint = fingerprint_cases(
            cases, sample, seed, on_case=lambda: progress.advance(bar), orientation=orientation
        )
    plan = make(fingerprint)
    write_plan(out, plan)
    return plan
