"""The Forecasts page's chart, drawn server-side as SVG (no JavaScript, no chart library): a
series' actuals, its forecast and the forecast's 80% band, with the forecast's origin marked."""

from datetime import date

from django.utils.html import escape

ACTUAL, FORECAST, BAND = "#417690", "#e07b00", "#f6d8b0"


def _short(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def forecast_chart(history: list[dict], forecast: list[dict], *, title: str) -> str:
    """history: [{"period_start", "actual"}]; forecast: [{"period_start", "mean", "lower",
    "upper"}]; dates on x (one step per period), the measure's units on y."""
    if not history and not forecast:
        return ""
    days = sorted({r["period_start"] for r in history} | {r["period_start"] for r in forecast})
    position = {day: i for i, day in enumerate(days)}
    width, height, left, right, top, bottom = 720, 320, 64, 16, 44, 44
    values = [r["actual"] for r in history] + [
        v for r in forecast for v in (r["lower"], r["upper"], r["mean"])
    ]
    low, high = min(0.0, *values), max(values)
    if high - low < 1e-9:
        high = low + 1
    steps = max(1, len(days) - 1)

    def x(day: date) -> float:
        return left + (width - left - right) * position[day] / steps

    def y(value: float) -> float:
        return top + (height - top - bottom) * (high - value) / (high - low)

    def path(points: list[tuple[date, float]]) -> str:
        return " ".join(
            f"{'L' if i else 'M'}{x(d):.1f} {y(v):.1f}" for i, (d, v) in enumerate(points)
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12" '
        'class="forecast-chart">',
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
        f'<path d="M{left} {y(low):.1f}H{width - right}" stroke="#ccc"/>',
        f'<path d="M{left} {top}V{height - bottom}" stroke="#ccc"/>',
    ]
    for value in sorted({low, (low + high) / 2, high}):
        parts.append(
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{_short(value)}</text>'
        )
        parts.append(f'<path d="M{left} {y(value):.1f}H{width - right}" stroke="#eee"/>')
    if forecast:
        band = [(r["period_start"], r["upper"]) for r in forecast]
        band += [(r["period_start"], r["lower"]) for r in reversed(forecast)]
        parts.append(f'<path d="{path(band)} Z" fill="{BAND}" stroke="none" class="band"/>')
        origin = forecast[0]["period_start"]
        before = [r for r in history if r["period_start"] < origin]
        mean = [(r["period_start"], r["mean"]) for r in forecast]
        if before:
            mean.insert(0, (before[-1]["period_start"], before[-1]["actual"]))
            cut = x(before[-1]["period_start"])
            parts.append(
                f'<path d="M{cut:.1f} {top}V{height - bottom}" stroke="#999" '
                'stroke-dasharray="3 3"/>'
            )
            parts.append(
                f'<text x="{cut - 4:.1f}" y="{top + 10}" fill="#666" text-anchor="end">'
                "forecast from here &#8594;</text>"
            )
        parts.append(
            f'<path d="{path(mean)}" stroke="{FORECAST}" stroke-width="2" fill="none" '
            'stroke-dasharray="6 3" class="mean"/>'
        )
    if history:
        parts.append(
            f'<path d="{path([(r["period_start"], r["actual"]) for r in history])}" '
            f'stroke="{ACTUAL}" stroke-width="2" fill="none" class="actual"/>'
        )
    labelled = [days[0], days[-1]]
    if forecast:
        start = forecast[0]["period_start"]
        # Labelled only where it does not run into the first or the last date's label.
        if min(x(start) - x(days[0]), x(days[-1]) - x(start)) > 150:
            labelled.insert(1, start)
    for day in dict.fromkeys(labelled):
        if day is not None:
            anchor = "start" if day == days[0] else "end" if day == days[-1] else "middle"
            parts.append(
                f'<text x="{x(day):.1f}" y="{height - bottom + 16}" text-anchor="{anchor}">'
                f"{day:%d %b %Y}</text>"
            )
    legend = [("actual", ACTUAL, ""), ("forecast", FORECAST, "6 3"), ("80% band", BAND, "")]
    for i, (label, colour, dash) in enumerate(legend):
        lx = left + 10 + i * 130
        style = f' stroke-dasharray="{dash}"' if dash else ""
        thick = 8 if label.endswith("band") else 2
        parts.append(
            f'<path d="M{lx} {top - 14}h18" stroke="{colour}" stroke-width="{thick}"{style}/>'
        )
        parts.append(f'<text x="{lx + 24}" y="{top - 10}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
