"""Bar charts as server-side SVG: no script, no front-end build."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart"]


def bar_chart(values: Sequence[int], *, label: str, unit: str, width: int = 600, height: int = 120) -> str:
    """An SVG of one bar per value, scaled to the largest; each bar titled `<n> calls, <unit> -k`."""
    top = max(values, default=0) or 1
    step = width / max(len(values), 1)
    bars = []
    for i, value in enumerate(values):
        h = round(value / top * (height - 20), 1)
        ago = len(values) - 1 - i
        title = f"{value} calls, {unit} -{ago}" if ago else f"{value} calls, this {unit}"
        bars.append(
            f'<rect x="{i * step + 1:.1f}" y="{height - h:.1f}" width="{max(step - 2, 1):.1f}" height="{h}" '
            f'data-value="{value}"><title>{escape(title)}</title></rect>'
        )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}" data-total="{sum(values)}" data-max="{max(values, default=0)}">'
        f'<text x="2" y="12">{escape(label)}: {sum(values)} calls, max {max(values, default=0)} a {escape(unit)}</text>'
        + "".join(bars)
        + "</svg>"
    )
