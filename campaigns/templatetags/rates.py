"""How the admin shows a rate: `{% load rates %}`, then `{{ rate|percent }}` for a rate or a
share (0.0123 -> "1.23%", as the sender-health figures read) and `{{ difference|points }}` for
the difference of two rates ("+0.52 points", percentage points, so never read as a relative
change). One format on every page instead of 0.0123 beside 1.23%."""

import math

from django import template

register = template.Library()

NONE = "–"


def _number(value) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@register.filter
def percent(value) -> str:
    """A rate or share as a fraction (0.0123) -> "1.23%"; nothing or not a number -> "–"."""
    number = _number(value)
    return NONE if number is None else f"{number * 100:.2f}%"


@register.filter
def points(value) -> str:
    """The difference of two rates as fractions (0.0052) -> "+0.52 points"."""
    number = _number(value)
    if number is None:
        return NONE
    shown = f"{number * 100:+.2f}"
    return f"{'+0.00' if shown == '-0.00' else shown} points"
