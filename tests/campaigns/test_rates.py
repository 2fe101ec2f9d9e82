"""campaigns.templatetags.rates: the one way the admin writes a rate."""

import pytest
from django.template import Context, Template

from campaigns.templatetags.rates import percent, points


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.0123, "1.23%"), (0, "0.00%"), (1, "100.00%"), ("0.5", "50.00%"), (None, "–"),
     ("", "–"), ("n/a", "–"), (float("nan"), "–"), (float("inf"), "–")],
)  # fmt: skip
def test_percent(value, shown):
    assert percent(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.0052, "+0.52 points"), (-0.1, "-10.00 points"), (0, "+0.00 points"),
     (-0.00001, "+0.00 points"), (None, "–")],
)  # fmt: skip
def test_points(value, shown):
    assert points(value) == shown


def test_templates_load_them():
    rendered = Template("{% load rates %}{{ r|percent }} / {{ d|points }}").render(
        Context({"r": 0.25, "d": -0.02})
    )
    assert rendered == "25.00% / -2.00 points"
