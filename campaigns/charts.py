"""Server-rendered SVG charts for the results page (no JavaScript, no chart library)."""

from django.utils.html import escape


def rate_bars(rows: list[tuple[str, float | None, list | None]], *, title: str) -> str:
    """Horizontal bars with 95% interval whiskers; rows are (label, rate, [low, high])."""
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        return ""
    top = max(max((ci or [0, rate])[1], rate) for _, rate, ci in rows) or 1.0
    width, left, bar_h, gap = 520, 110, 18, 10
    height = 28 + len(rows) * (bar_h + gap)

    def x(value: float) -> float:
        return left + (width - left - 60) * value / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, rate, ci) in enumerate(rows):
        y = 24 + i * (bar_h + gap)
        colour = "#999" if label.lower().startswith("holdout") else "#417690"
        parts.append(f'<text x="0" y="{y + 13}">{escape(label)}</text>')
        parts.append(
            f'<rect x="{left}" y="{y}" width="{x(rate) - left:.1f}" height="{bar_h}" '
            f'fill="{colour}"/>'
        )
        if ci:
            lo, hi, mid = x(ci[0]), x(ci[1]), y + bar_h / 2
            top_y, bottom_y = y + 3, y + bar_h - 3
            parts.append(
                f'<path d="M{lo:.1f} {mid}H{hi:.1f}M{lo:.1f} {top_y}V{bottom_y}'
                f'M{hi:.1f} {top_y}V{bottom_y}" stroke="#222" fill="none"/>'
            )
        parts.append(
            f'<text x="{x(max(rate, (ci or [0, 0])[1])) + 6:.1f}" y="{y + 13}">'
            f"{rate * 100:.2f}%</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
