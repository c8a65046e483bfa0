"""Small bar charts as inline SVG, generated on the server (no script, no style attribute)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

#: DSFR palette: blue France (15.9:1 on white), error red (5.5:1), title grey (17.7:1).
BAR = "#000091"
EMPTY = "#ce0500"
TEXT = "#161616"


def bar_chart(
    data: Sequence[tuple[str, int]],
    *,
    title: str,
    width: int = 720,
    bar_height: int = 22,
    label_width: int = 300,
    highlight_zero: bool = True,
) -> Markup:
    """Horizontal bars, one per (label, value); zero values are marked in red when asked."""
    if not data:
        return Markup(f'<p class="muted">{escape(title)} : aucune donnée.</p>')  # noqa: S704 (escaped)
    top = max(v for _, v in data) or 1
    plot = width - label_width - 50
    height = bar_height * len(data) + 10
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(data):
        y = 5 + i * bar_height
        short = label if len(label) <= 38 else label[:37] + "…"
        w = round(plot * value / top)
        zero = highlight_zero and value == 0
        parts.append(
            f'<text x="{label_width - 6}" y="{y + bar_height * 0.7:.0f}" text-anchor="end" '
            f'font-size="12" fill="{EMPTY if zero else TEXT}">{escape(short)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{max(w, 1)}" '
            f'height="{bar_height - 6}" fill="{EMPTY if zero else BAR}"/>'
            f'<text x="{label_width + max(w, 1) + 4}" y="{y + bar_height * 0.7:.0f}" '
            f'font-size="12" fill="{TEXT}">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every piece escaped)


def column_chart(
    data: Sequence[tuple[str, int]], *, title: str, width: int = 640, height: int = 180
) -> Markup:
    """Vertical columns over time (e.g. contributions per day), first and last date labelled."""
    if not data:
        return Markup(f'<p class="muted">{escape(title)} : aucune donnée.</p>')  # noqa: S704 (escaped)
    top = max(v for _, v in data) or 1
    plot_h = height - 40
    step = min((width - 40) / len(data), 24.0)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<text x="0" y="12" font-size="12" fill="{TEXT}">max {top}</text>'
    ]
    for i, (label, value) in enumerate(data):
        h = plot_h * value / top
        x = 30 + i * step
        parts.append(
            f'<rect x="{x:.1f}" y="{20 + plot_h - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{BAR}"><title>{escape(label)} : {value}</title></rect>'
        )
    parts.append(
        f'<text x="30" y="{height - 4}" font-size="12" fill="{TEXT}">{escape(data[0][0])}</text>'
    )
    if len(data) > 1:
        end = max(30 + len(data) * step, 200)
        parts.append(
            f'<text x="{end:.0f}" y="{height - 4}" font-size="12" text-anchor="end" '
            f'fill="{TEXT}">{escape(data[-1][0])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every piece escaped)
