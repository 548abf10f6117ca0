"""What a code means to a reader: its description and unit from MEDS ``codes.parquet``.

An explanation names events as a clinician knows them ("Hemoglobin A1c ... 9.1 %"), not by
vocabulary index. The model sees codes as indices into the plan's vocabulary (0 padding,
1 an unknown or rare code, ``i + 2`` the plan's ``vocabulary[i]``); `codes_by_index` turns
them back into codes, and `CodeCatalogue` into words. A code the dataset does not describe
is shown as the code itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medsight.ehr.io.meds_dataset import open_meds
from medsight.errors import InputError

PADDING = "<padding>"
UNKNOWN = "<unknown or rare code>"


def codes_by_index(vocabulary: Sequence[str]) -> list[str]:
    """The code of every model vocabulary index: ``[PADDING, UNKNOWN, *vocabulary]``."""
    return [PADDING, UNKNOWN, *vocabulary]


@dataclass(frozen=True)
class CodeCatalogue:
    """Descriptions and units by code (empty: every code describes itself)."""

    descriptions: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def description(self, code: str) -> str:
        """The code's description, or the code itself."""
        if code == UNKNOWN:
            return "a code outside the model's vocabulary"
        return self.descriptions.get(code) or code

    def unit(self, code: str) -> str | None:
        """The unit of the code's numeric values, or None."""
        return self.units.get(code) or None

    def __bool__(self) -> bool:
        return bool(self.descriptions or self.units)

    @classmethod
    def from_json(cls, path: Path) -> CodeCatalogue:
        """Read ``{code: {"description", "unit"}}`` (a run's ``codes.json``); empty if absent."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        entries = {c: v for c, v in data.items() if isinstance(v, dict)}
        return cls(
            descriptions={
                c: str(v["description"]) for c, v in entries.items() if v.get("description")
            },
            units={c: str(v["unit"]) for c, v in entries.items() if v.get("unit")},
        )

    @classmethod
    def from_meds(cls, root: Path | str | None) -> CodeCatalogue:
        """Read ``metadata/codes.parquet`` of the MEDS folder at ``root``.

        A missing folder or table gives an empty catalogue (the explanation then shows
        codes, not descriptions), since a run can be explained without its training data.
        """
        if root is None:
            return cls()
        try:
            table = open_meds(Path(root)).codes()
        except InputError:
            return cls()
        columns = set(table.column_names)
        codes = table.column("code").to_pylist() if "code" in columns else []
        descriptions = table.column("description").to_pylist() if "description" in columns else []
        units = table.column("unit").to_pylist() if "unit" in columns else []
        return cls(
            descriptions={c: d for c, d in zip(codes, descriptions, strict=False) if c and d},
            units={c: u for c, u in zip(codes, units, strict=False) if c and u},
        )
