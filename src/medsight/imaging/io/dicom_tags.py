"""Validated values of DICOM header elements, or an `InputError` naming the keyword.

pydicom converts element values lazily, on first access, so a wrong VR or a garbled value
surfaces as whatever exception the converter raises (``ValueError``, ``TypeError``,
``struct.error``, ``UnicodeDecodeError``, ...) at the moment a reader touches the element.
Every header value medsight uses goes through one of these functions, so that any such
failure, and any value that is present but unusable (non-numeric, non-finite, wrong number
of values), becomes one `InputError` sentence naming the file and the keyword.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from medsight.errors import InputError


def tag_value(ds: Dataset, keyword: str, where: str) -> Any:
    """The converted value of ``keyword`` in ``ds``, or None when absent or empty.

    Raises:
        InputError: pydicom cannot convert the stored bytes (wrong VR, garbled value).
    """
    try:
        value = ds.get(keyword)
    except Exception as exc:  # pydicom's converters raise many types for bad bytes
        raise InputError(f"{where}: {keyword} cannot be parsed ({type(exc).__name__})") from None
    if value is None or (isinstance(value, str | bytes) and not value.strip()):
        return None
    return value


def tag_str(ds: Dataset, keyword: str, where: str, default: str = "") -> str:
    """``keyword`` as a stripped string (the first value of a multi-valued element)."""
    value = tag_value(ds, keyword, where)
    if value is None:
        return default
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise InputError(f"{where}: {keyword} is not text") from None
    if _is_sequence(value):
        value = value[0] if len(value) else default
    return str(value).strip()


def tag_int(ds: Dataset, keyword: str, where: str, default: int | None = None) -> int:
    """``keyword`` as one integer.

    Raises:
        InputError: the element is missing (and no ``default``), multi-valued, or not an
            integer.
    """
    value = tag_value(ds, keyword, where)
    if value is None:
        if default is None:
            raise InputError(f"{where}: missing {keyword}")
        return default
    try:
        if isinstance(value, bytes | bytearray) or _is_sequence(value):
            raise TypeError
        number = float(value)
        if not math.isfinite(number) or number != int(number):
            raise ValueError
        return int(number)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where}: {keyword} is not an integer") from None


def tag_floats(ds: Dataset, keyword: str, count: int, where: str) -> np.ndarray:
    """``keyword`` as exactly ``count`` finite floats.

    Raises:
        InputError: the element is missing, has another number of values, or holds a
            non-numeric or non-finite (NaN, Inf) value.
    """
    value = tag_value(ds, keyword, where)
    if value is None:
        raise InputError(f"{where}: missing {keyword}")
    items = list(value) if _is_sequence(value) else [value]
    try:
        if any(isinstance(v, bytes | bytearray | Dataset) for v in items):
            raise TypeError
        numbers = np.array([float(v) for v in items], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where}: {keyword} is not numeric") from None
    if numbers.size != count:
        raise InputError(f"{where}: {keyword} has {numbers.size} values, expected {count}")
    if not np.all(np.isfinite(numbers)):
        raise InputError(f"{where}: {keyword} holds a non-finite value")
    return numbers


def tag_float(ds: Dataset, keyword: str, where: str, default: float | None = None) -> float:
    """``keyword`` as one finite float.

    Raises:
        InputError: missing (and no ``default``), non-numeric or non-finite.
    """
    if tag_value(ds, keyword, where) is None:
        if default is None:
            raise InputError(f"{where}: missing {keyword}")
        return default
    return float(tag_floats(ds, keyword, 1, where)[0])


def positive_spacing(values: np.ndarray, keyword: str, where: str) -> np.ndarray:
    """``values`` unchanged if every spacing is strictly positive.

    Raises:
        InputError: a spacing is zero or negative (a degenerate or mirrored grid).
    """
    if np.any(values <= 0):
        raise InputError(f"{where}: {keyword} must be positive, got {values.tolist()}")
    return values


def first_item(ds: Dataset, keyword: str, where: str) -> Dataset | None:
    """The first item of sequence ``keyword``, or None when absent or empty.

    Raises:
        InputError: the element is not a sequence of datasets.
    """
    value = tag_value(ds, keyword, where)
    if value is None:
        return None
    if not _is_sequence(value):
        raise InputError(f"{where}: {keyword} is not a sequence")
    if len(value) == 0:
        return None
    item = value[0]
    if not isinstance(item, Dataset):
        raise InputError(f"{where}: {keyword} is not a sequence")
    return item


def _is_sequence(value: Any) -> bool:
    """True for pydicom's MultiValue and Sequence (and lists), false for str and bytes."""
    if isinstance(value, str | bytes | bytearray):
        return False
    return hasattr(value, "__len__") and hasattr(value, "__getitem__")
