"""Dates written the ways notes write them (``03/14/2021``, ``March 14, 2021``,
``2021-03-14``, ``14 Mar 2021``, ``3/14/21``, ``14.03.2021``): de-identification has to find
every one of them.
"""

from __future__ import annotations

import datetime as dt
import random

_FORMATS = ("%m/%d/%Y", "%B {day}, %Y", "%Y-%m-%d", "{day} %b %Y", "{month}/{day}/%y", "%d.%m.%Y")


def format_date(date: dt.date, rng: random.Random) -> str:
    """``date`` in one of six formats, chosen by ``rng``."""
    pattern = rng.choice(_FORMATS)
    return date.strftime(pattern.format(day=date.day, month=date.month))
