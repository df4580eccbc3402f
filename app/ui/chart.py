"""A bar chart as SVG geometry, drawn by the server (no script, no inline style: the policy
forbids both), for the overview's deliveries per minute."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH, HEIGHT = 600, 120  # the viewBox; the SVG scales to its box


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the bar's tooltip: "09:31 UTC: 12"


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    peak: int
    total: int
    width: int = WIDTH
    height: int = HEIGHT


def minute_bars(counts: list[int], end: datetime) -> Chart:
    """One bar per minute, oldest first, the last one the minute of `end`."""
    peak = max(counts, default=0)
    slot = WIDTH / max(len(counts), 1)
    bars = []
    for index, count in enumerate(counts):
        minute = end - timedelta(minutes=len(counts) - 1 - index)
        height = 0.0 if not peak else max(HEIGHT * count / peak, 1.5 if count else 0.0)
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.1, 2),
                y=round(HEIGHT - height, 2),
                width=round(slot * 0.8, 2),
                height=round(height, 2),
                label=f"{minute:%H:%M} UTC: {count}",
            )
        )
    return Chart(bars=bars, peak=peak, total=sum(counts))
