"""The home page's charts, drawn server-side as SVG like the forecast chart (no JavaScript, no
chart library): bars by week (revenue, orders) and horizontal bars (a campaign's funnel, an
audience's parts). Labels are escaped; numbers are drawn, never read from the page."""

from datetime import date

from django.utils.html import escape

from crm.admin.forecast_chart import ACTUAL, _short

BAR, MUTED = ACTUAL, "#e07b00"


def week_bars(
    weeks: list[date], values: list[float], *, title: str, colour: str = BAR, css: str = ""
) -> str:
    """One bar per week (weeks in order), the week's value on y; "" with nothing to draw."""
    if not weeks:
        return ""
    width, height, left, right, top, bottom = 480, 200, 52, 8, 28, 28
    high = max(max(values), 0.0) or 1.0
    step = (width - left - right) / len(weeks)
    bar = max(step * 0.8, 1.0)

    def y(value: float) -> float:
        return top + (height - top - bottom) * (1 - max(value, 0.0) / high)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11" '
        f'class="home-chart {escape(css)}">',
        f'<text x="0" y="14" font-weight="bold" font-size="12">{escape(title)}</text>',
    ]
    for value in (0.0, high / 2, high):
        parts.append(f'<path d="M{left} {y(value):.1f}H{width - right}" stroke="#eee"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end">{_short(value)}</text>'
        )
    for i, (week, value) in enumerate(zip(weeks, values, strict=True)):
        x = left + i * step + (step - bar) / 2
        top_y = y(value)
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{top_y:.1f}" width="{bar:.1f}" '
            f'height="{y(0.0) - top_y:.1f}" fill="{colour}">'
            f"<title>week of {week:%d %b %Y}: {_short(value)}</title></rect>"
        )
    for week, anchor, x in ((weeks[0], "start", left), (weeks[-1], "end", width - right)):
        parts.append(
            f'<text x="{x}" y="{height - bottom + 14}" text-anchor="{anchor}">'
            f"{week:%d %b %Y}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def hbars(rows: list[tuple[str, float, str]], *, title: str, css: str = "") -> str:
    """Horizontal bars, one per (label, share 0..1, text shown beside it); "" for no rows."""
    if not rows:
        return ""
    width, left, row_height, top = 480, 150, 22, 24
    height = top + row_height * len(rows) + 6
    span = width - left - 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11" '
        f'class="home-chart {escape(css)}">',
        f'<text x="0" y="14" font-weight="bold" font-size="12">{escape(title)}</text>',
    ]
    for i, (label, share, text) in enumerate(rows):
        y = top + i * row_height
        share = min(max(share, 0.0), 1.0)
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(label[:28])}</text>'
        )
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{span}" height="14" fill="#f0f0f0"/>')
        parts.append(
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{span * share:.1f}" height="14" '
            f'fill="{BAR}"/>'
        )
        parts.append(f'<text x="{left + span + 6}" y="{y + 14}">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)
