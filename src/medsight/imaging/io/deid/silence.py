"""Keep pydicom quiet while it handles identifiable data.

pydicom's warnings and log messages about invalid values quote the value, which may be a
patient's name or ID; nothing of that kind may reach a terminal or a log file.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def pydicom_silenced() -> Iterator[None]:
    """Suppress warnings and pydicom's loggers for the duration of the block (re-entrant)."""
    names = ["pydicom"] + [n for n in logging.root.manager.loggerDict if n.startswith("pydicom.")]
    loggers = [logging.getLogger(name) for name in names]
    was_disabled = [logger.disabled for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.disabled = True
        try:
            yield
        finally:
            for logger, disabled in zip(loggers, was_disabled, strict=True):
                logger.disabled = disabled
