"""The batch's account: done, skipped and failed inputs, printed and kept as JSON.

``OUT/batch_summary.json`` is replaced atomically at the end of every batch; it names inputs
by their position in the batch (the manifest's row order) and their output folder, never by
path, and failures by a reason without paths or file content, so it can be shared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from medsight.batch.series_prediction import SeriesOutcome
from medsight.runs.atomic import write_text_atomic

SUMMARY_FILE = "batch_summary.json"


@dataclass
class BatchSummary:
    """Counts and per-input outcomes of one batch."""

    engine: str
    jobs: int
    model_sha256: str
    inputs: int
    outcomes: list[SeriesOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        """How many inputs ended with ``status``."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[SeriesOutcome]:
        """The failed inputs, in batch order."""
        return sorted((o for o in self.outcomes if o.status == "failed"), key=lambda o: o.index)

    def to_json(self) -> dict:
        """The summary file's content."""
        done = self.count("done")
        return {
            "engine": self.engine,
            "jobs": self.jobs,
            "model_sha256": self.model_sha256,
            "inputs": self.inputs,
            "done": done,
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "seconds": round(self.seconds, 3),
            "predicted_per_second": round(done / self.seconds, 4) if self.seconds else None,
            "outcomes": [o.to_json() for o in sorted(self.outcomes, key=lambda o: o.index)],
        }

    def write(self, out: Path) -> Path:
        """Write ``OUT/batch_summary.json`` atomically; return its path."""
        return write_text_atomic(out / SUMMARY_FILE, json.dumps(self.to_json(), indent=2))

    def lines(self) -> list[str]:
        """What the CLI prints: one line of counts, then one line per failed input."""
        head = (
            f"{self.inputs} inputs: {self.count('done')} done, {self.count('skipped')} skipped "
            f"(already done), {self.count('failed')} failed in {self.seconds:.1f} s "
            f"({self.engine}, {self.jobs} job{'s' if self.jobs != 1 else ''})"
        )
        return [head, *(f"input {o.index + 1} failed: {o.reason}" for o in self.failed)]
