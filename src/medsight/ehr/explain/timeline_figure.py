"""The clinician's timeline: a patient's past events and how much each moved the risk, as PNG.

x is days before the prediction time (the past on the left, the prediction time at 0 on the
right); one row per code group (`code_groups.GROUPS`: diagnoses, labs, vitals, medications,
procedures, encounters). Each event is a marker whose area grows with the size of its
contribution and whose colour says its direction: red raised the risk, blue lowered it,
grey barely mattered. The events that mattered most are labelled with their description and
value; the title gives the model's risk and the calibrated probability.

Built with ``matplotlib.figure.Figure`` directly (never ``pyplot``), so no global backend is
switched and the figure can be drawn from any thread.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from medsight.ehr.explain.code_groups import GROUPS, code_group

DPI = 110
MAX_LABEL_CHARS = 44


@dataclass(frozen=True)
class TimelineEvent:
    """One past event with its contribution to the risk logit.

    Attributes:
        code: the MEDS code (``LOINC//4548-4``).
        description: its display text (the code itself when the dataset has none).
        days_before: prediction time minus event time, in days (>= 0).
        value: the numeric value in the code's unit, or None.
        unit: the code's unit, or None.
        contribution: attribution to the risk logit (positive raised the risk).
    """

    code: str
    description: str
    days_before: float
    value: float | None
    unit: str | None
    contribution: float

    def label(self) -> str:
        """``"HbA1c: 9.1 %"``: the description, shortened, with its value."""
        text = self.description or self.code
        if len(text) > MAX_LABEL_CHARS:
            text = text[: MAX_LABEL_CHARS - 1] + "\u2026"
        if self.value is not None and math.isfinite(self.value):
            text += f": {self.value:.4g}" + (f" {self.unit}" if self.unit else "")
        return text


def top_events(events: Sequence[TimelineEvent], k: int) -> list[TimelineEvent]:
    """The ``k`` events with the largest absolute contribution, largest first."""
    return sorted(events, key=lambda e: -abs(e.contribution))[:k]


def timeline_figure(
    events: Sequence[TimelineEvent],
    risk: float,
    probability: float | None = None,
    title: str = "Events behind the risk",
    n_labels: int = 8,
) -> bytes:
    """Draw the timeline (see the module docstring).

    Args:
        events: the patient's events with their contributions (any order).
        risk: the model's uncalibrated risk score in [0, 1].
        probability: the calibrated probability of the event, or None.
        title: first part of the title.
        n_labels: how many of the largest contributions are labelled.

    Returns:
        The figure as PNG bytes.
    """
    rows = [g for g in GROUPS if any(code_group(e.code) == g for e in events)] or ["other"]
    # GROUPS run top to bottom; matplotlib's y grows upwards
    row_of = {g: len(rows) - 1 - i for i, g in enumerate(rows)}
    list_rows = min(n_labels, len(events))
    fig = Figure(figsize=(11.0, 1.6 + 0.7 * len(rows) + 0.17 * list_rows))
    ax, list_ax = fig.subplots(
        2, 1, gridspec_kw={"height_ratios": [1.0 + 0.7 * len(rows), 0.3 + 0.17 * list_rows]}
    )
    list_ax.set_axis_off()
    headline = f"{title}: risk {risk:.3f}"
    if probability is not None:
        headline += f", calibrated probability {probability:.1%}"
    ax.set_title(headline, fontsize=11)
    if not events:
        ax.text(0.5, 0.5, "no events before the prediction time", ha="center", va="center")
        ax.set_axis_off()
        fig.tight_layout()
        return _png(fig)
    days = np.array([e.days_before for e in events], dtype=np.float64)
    contribution = np.array([e.contribution for e in events], dtype=np.float64)
    y = np.array([row_of[code_group(e.code)] for e in events], dtype=np.float64)
    largest = float(np.abs(contribution).max()) or 1.0
    # jitter inside a row keeps same-day events of one group apart
    rng = np.random.default_rng(0)
    y_jittered = y + rng.uniform(-0.18, 0.18, size=y.size)
    sizes = 12 + 260 * np.abs(contribution) / largest
    order = np.argsort(np.abs(contribution))  # the largest drawn on top
    norm = TwoSlopeNorm(vmin=-largest, vcenter=0.0, vmax=largest)
    points = ax.scatter(
        -days[order],
        y_jittered[order],
        s=sizes[order],
        c=contribution[order],
        cmap="coolwarm",
        norm=norm,
        edgecolors="black",
        linewidths=0.4,
        alpha=0.85,
    )
    colorbar = fig.colorbar(points, ax=ax, fraction=0.03, pad=0.01)
    colorbar.set_label("contribution to risk (logit)\nred raises, blue lowers", fontsize=8)
    labelled = top_events(events, n_labels)
    index_of = {id(e): i for i, e in enumerate(events)}
    for rank, event in enumerate(labelled):
        i = index_of[id(event)]
        # same-day events share an x: alternate the numbers left and right of their markers
        ax.annotate(
            str(rank + 1),
            xy=(-days[i], y_jittered[i]),
            xytext=((-1) ** rank * (4 + math.sqrt(sizes[i]) / 2), 4 + math.sqrt(sizes[i]) / 2),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            fontweight="bold",
        )
    _event_list(list_ax, labelled)
    span = max(float(days.max()), 1.0)
    ax.set_xlim(-span * 1.05, span * 0.12)
    ax.axvline(0, color="black", linewidth=1)
    ax.text(0, len(rows) - 0.45, "prediction time ", fontsize=8, va="bottom", ha="right")
    ax.set_yticks(range(len(rows)), rows[::-1])
    ax.set_ylim(-0.6, len(rows) - 0.2)
    ax.set_xlabel("days before the prediction time")
    # magnitudes only (the past is drawn left of 0); decimals when the history is short
    digits = 0 if span >= 10 else 1
    ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{abs(t):.{digits}f}"))
    ax.set_xlim(-span * 1.05, span * 0.12)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _event_list(ax: Axes, events: Sequence[TimelineEvent]) -> None:
    """The numbered events as lines of text under the timeline."""
    for rank, event in enumerate(events):
        direction = "raised" if event.contribution >= 0 else "lowered"
        ax.text(
            0.0,
            1.0 - (rank + 0.5) / max(len(events), 1),
            f"{rank + 1}. {event.label()}, {event.days_before:.0f} d before "
            f"({direction} risk, {event.contribution:+.3g})",
            transform=ax.transAxes,
            fontsize=8,
            va="center",
            color="#b91c1c" if event.contribution >= 0 else "#1d4ed8",
        )


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
