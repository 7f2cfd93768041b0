"""Bar charts as inline SVG, drawn on the server from the data: no JavaScript, no CDN."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 36
COLOURS = ["#417690", "#79aec8", "#ba2121", "#e4a11b"]


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _axis_top(value: float) -> float:
    """The top of the y axis: four gridline steps of 1, 2 or 5 times 10^k (whole numbers)."""
    raw = value / 4
    if raw <= 1:
        return 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if raw <= m * magnitude)
    return 4 * step


def bar_chart(
    *, title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "", precision: int = 0
) -> SafeString:
    """Stacked bars, one per label; each bar has a tooltip with its numbers (`precision` decimals)."""
    count = max(len(labels), 1)
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _axis_top(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / count
    bar_w = max(slot * 0.75, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i in range(5):  # gridlines and axis labels
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        shown = f"{value:,.0f}"
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#666">{shown}</text>'
        )
    every = max(1, count // 10)
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar_w) / 2
        base = TOP + plot_h
        tip = ", ".join(f"{s.name} {s.values[i]:,.{precision}f}{unit}" for s in series)
        parts.append(f"<g><title>{escape(label)}: {escape(tip)}</title>")
        for n, s in enumerate(series):
            h = plot_h * s.values[i] / top
            if h > 0:
                base -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{COLOURS[n % 4]}"/>'
                )
        parts.append("</g>")
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" font-size="10" '
                f'fill="#666">{escape(label)}</text>'
            )
    for n, s in enumerate(series):  # legend
        x = LEFT + n * 140
        parts.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{COLOURS[n % 4]}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 5}" font-size="11">{escape(s.name)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text is escaped above
