"""crm.services.forecasts.daily_matched_to_weekly: a series' days add up to its weekly forecast in
every complete week the weekly forecast covers (the demo's daily model forecast Christmas week at
full trading while the weekly one knew the shop closes), each day keeping its share of the week."""

from datetime import date, timedelta

import pytest

from crm.models import Forecast

MONDAY = date(2011, 12, 26)


def forecast(day: date, mean: float, **fields) -> Forecast:
    values = {"level": "total", "key": "", "measure": "revenue", **fields}
    return Forecast(
        period_start=day,
        mean=mean,
        lower=mean / 2,
        upper=mean * 2,
        reasons={"level": mean * 0.75, "seasonality": mean * 0.25},
        **values,
    )


def test_days_of_a_complete_week_add_up_to_the_weekly_forecast():
    from crm.services.forecasts import daily_matched_to_weekly

    shape = [10.0, 20.0, 30.0, 40.0, 50.0, 0.0, 50.0]  # 200 a week by the daily model
    days = [forecast(MONDAY + timedelta(days=i), m) for i, m in enumerate(shape)]
    # The next week's first three days only: a part week keeps the daily model's own figures.
    days += [forecast(MONDAY + timedelta(days=7 + i), 100.0) for i in range(3)]
    # A country the weekly forecast has no row for keeps its own figures too.
    days += [forecast(MONDAY + timedelta(days=i), 5.0, level="country", key="GB") for i in range(7)]
    weeks = [forecast(MONDAY, 20.0), forecast(MONDAY + timedelta(days=7), 900.0)]

    assert daily_matched_to_weekly(days, weeks) == 1
    christmas = days[:7]
    assert sum(d.mean for d in christmas) == pytest.approx(20.0)
    assert [d.mean for d in christmas] == pytest.approx([s / 10 for s in shape])
    for d in christmas:  # band ends and parts move with the mean: parts still add up to it
        assert (d.lower, d.upper) == pytest.approx((d.mean / 2, d.mean * 2))
        assert sum(d.reasons.values()) == pytest.approx(d.mean)
    assert [d.mean for d in days[7:10]] == [100.0] * 3
    assert {d.mean for d in days[10:]} == {5.0}
