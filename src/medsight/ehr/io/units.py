"""Unit normalisation: one unit per code, converting the rows whose unit differs.

A code's numeric values must share a unit for a model to compare them, but exports mix them
(a glucose in mg/dL at one site and mmol/L at another, weights in lb and kg). The writer
counts each code's units while it streams, then picks the code's unit: the one most of its
valued rows carry (ties: alphabetical). Rows in another unit are converted where the
conversion is known and dropped where it is not (counted, and reported once).

Known conversions:
- any code: mass (kg, g, lb, oz) and temperature (Cel, degF, K), whatever the analyte;
- analytes recognised by LOINC code or by name in the code: glucose (mg/dL <-> mmol/L),
  creatinine (mg/dL <-> umol/L), HbA1c (% NGSP <-> mmol/mol IFCC, the master equation),
  cholesterol / LDL / HDL (mg/dL <-> mmol/L), triglycerides (mg/dL <-> mmol/L).

Unit spellings are unified first (``mg/dl`` = ``mg/dL``, ``µmol/L`` = ``umol/L``, ``[lb_av]``
= ``lb``, ``°F`` = ``degF``), so spelling alone never counts as a mismatch.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

#: lower-cased spellings -> the unit's canonical spelling (UCUM-like)
UNIT_ALIASES: dict[str, str] = {
    "mg/dl": "mg/dL",
    "mg/100ml": "mg/dL",
    "mmol/l": "mmol/L",
    "umol/l": "umol/L",
    "µmol/l": "umol/L",
    "μmol/l": "umol/L",
    "micromol/l": "umol/L",
    "mmol/mol": "mmol/mol",
    "mmol/mol hb": "mmol/mol",
    "%": "%",
    "percent": "%",
    "% of total hgb": "%",
    "kg": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "g": "g",
    "gram": "g",
    "lb": "lb",
    "lbs": "lb",
    "[lb_av]": "lb",
    "pound": "lb",
    "pounds": "lb",
    "oz": "oz",
    "[oz_av]": "oz",
    "cel": "Cel",
    "c": "Cel",
    "°c": "Cel",
    "degc": "Cel",
    "deg c": "Cel",
    "celsius": "Cel",
    "f": "degF",
    "°f": "degF",
    "degf": "degF",
    "deg f": "degF",
    "[degf]": "degF",
    "fahrenheit": "degF",
    "k": "K",
    "kelvin": "K",
}


@dataclass(frozen=True)
class Scale:
    """``value_in_base = value * factor + offset`` for one unit of a quantity."""

    factor: float
    offset: float = 0.0


#: quantities any code may carry: unit -> how to reach the base unit
DIMENSIONS: dict[str, dict[str, Scale]] = {
    "mass": {
        "kg": Scale(1.0),
        "g": Scale(1e-3),
        "lb": Scale(0.45359237),
        "oz": Scale(0.028349523125),
    },
    "temperature": {
        "Cel": Scale(1.0),
        "degF": Scale(5 / 9, -32 * 5 / 9),
        "K": Scale(1.0, -273.15),
    },
}

#: analytes whose mass and molar concentrations convert (base unit first)
ANALYTES: dict[str, dict[str, Scale]] = {
    "glucose": {"mg/dL": Scale(1.0), "mmol/L": Scale(18.016)},
    "creatinine": {"mg/dL": Scale(1.0), "umol/L": Scale(1 / 88.42)},
    # NGSP % = 0.09148 * IFCC mmol/mol + 2.152 (the IFCC-NGSP master equation)
    "hba1c": {"%": Scale(1.0), "mmol/mol": Scale(0.09148, 2.152)},
    "cholesterol": {"mg/dL": Scale(1.0), "mmol/L": Scale(38.67)},
    "triglycerides": {"mg/dL": Scale(1.0), "mmol/L": Scale(88.57)},
}

#: LOINC codes of those analytes
ANALYTE_LOINC: dict[str, str] = {
    **dict.fromkeys(["2345-7", "2339-0", "14749-6", "15074-8", "41653-7", "2341-6"], "glucose"),
    **dict.fromkeys(["2160-0", "14682-9", "38483-4", "59826-8"], "creatinine"),
    **dict.fromkeys(["4548-4", "17856-6", "59261-8", "41995-2", "4549-2"], "hba1c"),
    **dict.fromkeys(
        ["2093-3", "14647-2", "2089-1", "13457-7", "18262-6", "22748-8", "2085-9", "14646-4"],
        "cholesterol",
    ),
    **dict.fromkeys(["2571-8", "14927-8"], "triglycerides"),
}

#: name fragments (in the code's value, lower-cased) -> analyte; first match wins
ANALYTE_NAMES: tuple[tuple[str, str], ...] = (
    ("a1c", "hba1c"),
    ("glycated", "hba1c"),
    ("glycosylated", "hba1c"),
    ("glucose", "glucose"),
    ("creatinine", "creatinine"),
    ("cholesterol", "cholesterol"),
    ("ldl", "cholesterol"),
    ("hdl", "cholesterol"),
    ("triglyceride", "triglycerides"),
)
#: names with an analyte's word that are not its concentration
NOT_CONCENTRATION = ("ratio", "clearance", "/creat", "index")


def canonical_unit(unit: str | None) -> str | None:
    """A unit's canonical spelling (unknown units trimmed; blank -> None)."""
    if unit is None:
        return None
    text = unit.strip()
    if not text:
        return None
    return UNIT_ALIASES.get(text.lower(), text)


def canonical_units(units: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`canonical_unit` over a string column (computed once per distinct spelling)."""
    if isinstance(units, pa.ChunkedArray):
        units = units.combine_chunks()
    encoded = units.cast(pa.string()).dictionary_encode()
    mapped = pa.array([canonical_unit(u) for u in encoded.dictionary.to_pylist()], pa.string())
    return mapped.take(encoded.indices)


def analyte_of(code: str, description: str | None = None) -> str | None:
    """The analyte of a code: by LOINC code, else by name in the code or its description."""
    vocabulary, _, value = code.partition("//")
    if vocabulary == "LOINC":
        return ANALYTE_LOINC.get(value)
    for name in (value.lower(), (description or "").lower()):
        if any(word in name for word in NOT_CONCENTRATION):
            continue
        for fragment, analyte in ANALYTE_NAMES:
            if fragment in name:
                return analyte
    return None


def conversion(code: str, source: str, target: str, description: str | None = None) -> Scale | None:
    """``value_in_target = value * factor + offset`` from ``source`` to ``target`` units.

    None when the two units are not known to convert for this code (``description``, e.g.
    a source item's label, helps recognise the analyte of codes such as ``MIMIC4_ITEM//50931``).
    """
    if source == target:
        return Scale(1.0)
    tables = list(DIMENSIONS.values())
    analyte = analyte_of(code, description)
    if analyte is not None:
        tables.insert(0, ANALYTES[analyte])
    for table in tables:
        if source in table and target in table:
            a, b = table[source], table[target]
            # to base: v*a.f + a.o ; from base: (x - b.o) / b.f
            return Scale(a.factor / b.factor, (a.offset - b.offset) / b.factor)
    return None


class UnitCounter:
    """Counts each code's units over valued rows, then chooses each code's unit."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {}

    def add(self, codes: pa.Array, units: pa.Array, values: pa.Array) -> None:
        """Count the (code, unit) pairs of rows that have a value and a unit."""
        keep = pc.and_(pc.is_valid(units), pc.is_valid(values))
        if not pc.any(keep).as_py():
            return
        pairs = pa.table({"code": pc.filter(codes, keep), "unit": pc.filter(units, keep)})
        grouped = pairs.group_by(["code", "unit"]).aggregate([("code", "count")])
        for code, unit, n in zip(
            grouped.column("code").to_pylist(),
            grouped.column("unit").to_pylist(),
            grouped.column("code_count").to_pylist(),
            strict=True,
        ):
            self.counts.setdefault(code, Counter())[unit] += n

    def targets(self) -> dict[str, str]:
        """Each code's unit: the most frequent (ties: alphabetical)."""
        return {
            code: min(counter.items(), key=lambda item: (-item[1], item[0]))[0]
            for code, counter in self.counts.items()
        }

    def mixed(self) -> dict[str, str]:
        """Targets of the codes whose rows carry more than one unit."""
        targets = self.targets()
        return {code: targets[code] for code, c in self.counts.items() if len(c) > 1}


def normalise_units(
    table: pa.Table,
    targets: Mapping[str, str],
    unit_column: str = "unit",
    descriptions: Mapping[str, str | None] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Convert rows of mixed-unit codes to their code's unit.

    Args:
        table: MEDS rows plus a canonical unit column.
        targets: code -> unit for the codes whose units differ between rows (`UnitCounter.mixed`).
        unit_column: the unit column's name.
        descriptions: code -> description (to recognise analytes by name).

    Returns:
        The kept rows (converted values, unit = the target) and the dropped rows (a unit that
        does not convert to the code's unit).
    """
    if not targets or table.num_rows == 0:
        return table, table.slice(0, 0)
    codes = table.column("code").combine_chunks()
    units = table.column(unit_column).combine_chunks()
    values = table.column("numeric_value").combine_chunks()
    encoded = codes.dictionary_encode()
    per_code = pa.array([targets.get(c) for c in encoded.dictionary.to_pylist()], pa.string())
    target = pc.fill_null(per_code.take(encoded.indices), "")
    candidates = pc.and_(
        pc.and_(pc.is_valid(values), pc.is_valid(units)),
        pc.and_(pc.not_equal(target, ""), pc.not_equal(units, target)),
    )
    candidates = pc.fill_null(candidates, False)
    if not pc.any(candidates).as_py():
        return table, table.slice(0, 0)
    factor = np.ones(len(table), dtype=np.float64)
    offset = np.zeros(len(table), dtype=np.float64)
    drop = np.zeros(len(table), dtype=bool)
    subset = pa.table({"code": pc.filter(codes, candidates), "unit": pc.filter(units, candidates)})
    index = np.flatnonzero(candidates.to_numpy(zero_copy_only=False))
    pairs: dict[tuple[str, str], Scale | None] = {}
    for i, code, unit in zip(
        index, subset.column("code").to_pylist(), subset.column("unit").to_pylist(), strict=True
    ):
        key = (code, unit)
        if key not in pairs:
            pairs[key] = conversion(code, unit, targets[code], (descriptions or {}).get(code))
        scale = pairs[key]
        if scale is None:
            drop[i] = True
        else:
            factor[i], offset[i] = scale.factor, scale.offset
    converted = values.to_numpy(zero_copy_only=False).astype(np.float64) * factor + offset
    value_type = table.schema.field("numeric_value").type
    new_values = pa.array(
        converted, pa.float64(), mask=values.is_null().to_numpy(zero_copy_only=False)
    ).cast(value_type)
    new_units = pc.if_else(candidates, target, units)
    table = table.set_column(
        table.schema.get_field_index("numeric_value"), "numeric_value", new_values
    )
    table = table.set_column(table.schema.get_field_index(unit_column), unit_column, new_units)
    dropped = table.filter(pa.array(drop))
    return table.filter(pa.array(~drop)), dropped


def warn_dropped(source: str, dropped: Counter[str]) -> None:
    """Report, once, rows dropped for a unit that does not convert (codes, not values)."""
    total = sum(dropped.values())
    if not total:
        return
    worst = ", ".join(f"{code} ({n})" for code, n in dropped.most_common(3))
    log.warning(
        "%s: dropped %d rows whose unit does not convert to their code's unit: %s",
        source,
        total,
        worst,
    )
