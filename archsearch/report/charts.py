"""Inline SVG charts (no JavaScript library, no CDN: the report opens offline)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# One colour per family (sorted): matplotlib's tab10, then tab20b's dark shades, so the 15
# families of the model zoo each get their own.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#3182bd"]
WIDTH, HEIGHT, PAD = 560, 320, 52


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    line: bool = False
    tooltips: Sequence[str] = ()


def family_colors(families: Sequence[str]) -> dict[str, str]:
    return {family: PALETTE[i % len(PALETTE)] for i, family in enumerate(sorted(families))}


def _scale(values: list[float], log: bool, lo_px: float, hi_px: float):  # noqa: ANN202
    vals = [math.log10(v) if log else v for v in values]
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5

    def to_px(value: float) -> float:
        v = math.log10(value) if log else value
        return lo_px + (v - lo) / (hi - lo) * (hi_px - lo_px)

    ticks = [lo + (hi - lo) * i / 4 for i in range(5)]
    return to_px, [(10 ** t if log else t) for t in ticks]


def scatter_chart(series: Sequence[Series], colors: dict[str, str], x_label: str, y_label: str,
                  log_x: bool = False, front: Sequence[tuple[float, float]] = ()) -> str:
    """A scatter/line chart as an SVG string; ``front`` is drawn as a dashed step line."""
    xs = [x for s in series for x, _ in s.points] + [x for x, _ in front]
    ys = [y for s in series for _, y in s.points] + [y for _, y in front]
    if log_x:
        xs = [x for x in xs if x > 0]
    if not xs or not ys:
        return '<p class="empty">No measured points yet.</p>'
    x_px, x_ticks = _scale(xs, log_x, PAD, WIDTH - 16)
    y_px, y_ticks = _scale(ys, False, HEIGHT - PAD, 16)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(y_label)} vs '
             f'{escape(x_label)}">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>']
    for tick in x_ticks:
        px = x_px(tick)
        parts.append(f'<line x1="{px:.1f}" y1="16" x2="{px:.1f}" y2="{HEIGHT - PAD}" '
                     'stroke="#eee"/>')
        parts.append(f'<text x="{px:.1f}" y="{HEIGHT - PAD + 16}" font-size="10" '
                     f'text-anchor="middle">{tick:.3g}</text>')
    for tick in y_ticks:
        py = y_px(tick)
        parts.append(f'<line x1="{PAD}" y1="{py:.1f}" x2="{WIDTH - 16}" y2="{py:.1f}" '
                     'stroke="#eee"/>')
        parts.append(f'<text x="{PAD - 4}" y="{py + 3:.1f}" font-size="10" '
                     f'text-anchor="end">{tick:.3g}</text>')
    parts.append(f'<text x="{(WIDTH + PAD) / 2:.0f}" y="{HEIGHT - 12}" font-size="12" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{HEIGHT / 2:.0f}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {HEIGHT / 2:.0f})">{escape(y_label)}</text>')
    if front:
        path = " ".join(f"{x_px(x):.1f},{y_px(y):.1f}" for x, y in front)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#333" '
                     'stroke-dasharray="4 3"/>')
    for s in series:
        color = colors.get(s.label, "#555")
        points = [(x, y) for x, y in s.points if not log_x or x > 0]
        if s.line and len(points) > 1:
            path = " ".join(f"{x_px(x):.1f},{y_px(y):.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                         'stroke-width="1.5" opacity="0.8"/>')
        for i, (x, y) in enumerate(points):
            tip = s.tooltips[i] if i < len(s.tooltips) else f"{s.label}: ({x:.3g}, {y:.3g})"
            parts.append(f'<circle cx="{x_px(x):.1f}" cy="{y_px(y):.1f}" r="4" fill="{color}" '
                         f'opacity="0.85"><title>{escape(tip)}</title></circle>')
    legend_y = 20
    for label in sorted({s.label for s in series}):
        parts.append(f'<rect x="{WIDTH - 150}" y="{legend_y - 9}" width="10" height="10" '
                     f'fill="{colors.get(label, "#555")}"/>')
        parts.append(f'<text x="{WIDTH - 135}" y="{legend_y}" font-size="11">'
                     f'{escape(label)}</text>')
        legend_y += 15
    parts.append("</svg>")
    return "".join(parts)


