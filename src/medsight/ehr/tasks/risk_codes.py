"""``RUN/codes.json``: description and unit of every vocabulary code, kept with the run.

A run is predicted and explained without its training data (the service has only the run
folder), so the words for the codes the model knows travel with it.
"""

from __future__ import annotations

import json
from pathlib import Path

from medsight.ehr.io.meds_dataset import MedsDataset
from medsight.runs.atomic import write_text_atomic

CODES_FILE = "codes.json"


def write_code_descriptions(run_dir: Path, dataset: MedsDataset, vocabulary: list[str]) -> Path:
    """Write ``{code: {"description", "unit"}}`` for the vocabulary codes the data describes."""
    table = dataset.codes()
    kept = set(vocabulary)
    columns = set(table.column_names)
    codes = table.column("code").to_pylist() if "code" in columns else []
    descriptions = table.column("description").to_pylist() if "description" in columns else []
    units = table.column("unit").to_pylist() if "unit" in columns else []
    out = {}
    for i, code in enumerate(codes):
        if code not in kept:
            continue
        description = descriptions[i] if i < len(descriptions) else None
        unit = units[i] if i < len(units) else None
        if description or unit:
            out[code] = {"description": description, "unit": unit}
    return write_text_atomic(run_dir / CODES_FILE, json.dumps(out, indent=1, sort_keys=True))


def read_code_descriptions(run_dir: Path) -> dict[str, str]:
    """code -> description from ``RUN/codes.json`` (empty when absent or unreadable)."""
    path = Path(run_dir) / CODES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {
        c: v["description"] for c, v in data.items() if isinstance(v, dict) and v.get("description")
    }
