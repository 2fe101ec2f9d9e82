import numpy as np
import pandas as pd
import pytest

from marketing_ai.ml.forecast import build_panel, parse


def _lines(seed=0, days=120, products=12):
    rng = np.random.default_rng(seed)
    n = 4000
    dates = pd.Timestamp("2021-01-05") + pd.to_timedelta(rng.integers(0, days, n), "D")
    dates = dates + pd.to_timedelta(rng.integers(0, 24 * 60, n), "min")
    units = rng.integers(1, 20, n).astype(float)
    units[rng.random(n) < 0.05] *= -1  # returns
    return pd.DataFrame(
        {
            "date": dates,
            "product": rng.choice([f"P{i}" for i in range(products)], n),
            "country": rng.choice(["UK", "France", "Germany", "EIRE", "Spain", "Malta", "RSA"], n),
            "units": units,
            "revenue": units * rng.uniform(0.5, 5, n),
        }
    )


def test_weeks_start_on_monday_and_only_complete_weeks_are_kept():
    lines = _lines()
    panel = build_panel(lines, freq="W", top_products=5, top_countries=3)
    periods = panel.periods
    assert (periods.dayofweek == 0).all()
    first_day, last_day = lines["date"].min().normalize(), lines["date"].max().normalize()
    assert periods[0] >= first_day
    assert periods[-1] + pd.Timedelta(days=6) <= last_day
    assert (np.diff(periods.values) == np.timedelta64(7, "D")).all()
    # every series on the whole calendar
    assert panel.y.groupby("unique_id").size().eq(len(periods)).all()


@pytest.mark.parametrize("freq", ["W", "D"])
def test_every_split_adds_up_to_the_total_and_the_total_to_the_input(freq):
    lines = _lines(seed=1)
    groups = {f"P{i}": i % 3 for i in range(8)}  # P8.. have no group
    panel = build_panel(lines, freq=freq, top_products=5, top_countries=3, groups=groups)
    start, end = panel.periods[0], panel.periods[-1] + pd.Timedelta(days=7 if freq == "W" else 1)
    inside = lines[(lines["date"] >= start) & (lines["date"] < end)]
    wide = panel.y.pivot(index="unique_id", columns="ds", values="y")
    for measure in ("units", "revenue"):
        total = wide.loc[f"{measure}|total|"]
        assert total.sum() == pytest.approx(inside[measure].sum())
        splits = [s for s in panel.hierarchy if s.total == f"{measure}|total|"]
        assert {s.level for s in splits} == {"product", "country", "group"}
        for split in splits:  # the groups too: the unlabelled products form "(other)"
            summed = wide.loc[list(split.children)].sum()
            np.testing.assert_allclose(summed.to_numpy(), total.to_numpy(), rtol=1e-9)
        other = wide.loc[f"{measure}|group|(other)"]
        unlabelled = inside[~inside["product"].isin(groups)]
        assert other.sum() == pytest.approx(unlabelled[measure].sum()) and other.sum() > 0
    products = [s for s in panel.hierarchy if s.level == "product"][0].children
    assert len(products) == 6 and "units|product|(other)" in products
    top = inside.groupby("product")["units"].sum().nlargest(5).index
    assert {parse(p)[2] for p in products} == set(top) | {"(other)"}


def test_parse_keeps_a_separator_inside_the_key():
    assert parse("revenue|country|A|B") == ("revenue", "country", "A|B")
    assert parse("units|total|") == ("units", "total", "")


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="freq"):
        build_panel(_lines(), freq="M")
    with pytest.raises(ValueError, match="columns"):
        build_panel(_lines().drop(columns=["country"]))
