"""The results page's Qini chart, drawn server-side as campaigns.charts draws its bars (SVG, no
JavaScript): the observed curve, the model's predicted one, and random targeting's line."""

from django.utils.html import escape


def qini_chart(observed: list[float], predicted: list[float], *, title: str) -> str:
    """Curves sampled at every 1% of the ranking (x: share of the ranked audience, y: extra
    conversions among the treated, the control scaled to their size)."""
    if not observed:
        return ""
    width, height, left, right, top, bottom = 560, 300, 56, 16, 28, 40
    values = [*observed, *predicted, 0.0]
    low, high = min(values), max(values)
    if high - low < 1e-9:
        high = low + 1
    steps = len(observed) - 1

    def x(i: int) -> float:
        return left + (width - left - right) * i / steps

    def y(value: float) -> float:
        return top + (height - top - bottom) * (high - value) / (high - low)

    def line(points: list[float], colour: str, dash: str = "") -> str:
        path = " ".join(f"{'L' if i else 'M'}{x(i):.1f} {y(v):.1f}" for i, v in enumerate(points))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<path d="{path}" stroke="{colour}" stroke-width="2" fill="none"{extra}/>'

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
        f'<path d="M{left} {y(0):.1f}H{width - right}" stroke="#ccc"/>',
        f'<path d="M{left} {top}V{height - bottom}" stroke="#ccc"/>',
        f'<text x="{left - 6}" y="{y(high) + 4:.1f}" text-anchor="end">{high:.0f}</text>',
        f'<text x="{left - 6}" y="{y(low) + 4:.1f}" text-anchor="end">{low:.0f}</text>',
        f'<text x="{left}" y="{height - bottom + 16}">0%</text>',
        f'<text x="{width - right}" y="{height - bottom + 16}" text-anchor="end">100%</text>',
        f'<text x="{(left + width) / 2:.0f}" y="{height - 8}" text-anchor="middle">'
        "share of the audience, highest predicted uplift first</text>",
        line([observed[-1] * i / steps for i in range(steps + 1)], "#999", "4 4"),
        line(predicted, "#e07b00", "7 3"),
        line(observed, "#417690"),
    ]
    legend = [("observed", "#417690"), ("model's prediction", "#e07b00"), ("random", "#999")]
    for i, (label, colour) in enumerate(legend):
        lx = left + 10 + i * 150
        parts.append(f'<path d="M{lx} {top + 8}h18" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{lx + 24}" y="{top + 12}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
