import numpy as np
import pandas as pd

from marketing_ai.ml.forecast import Panel, Split, fit_forecast, intervals, series_id

WEEKS = pd.date_range("2020-01-06", periods=70, freq="7D")


def test_one_wild_step_does_not_make_a_comb_and_widths_never_shrink():
    # 80 series x 4 origins x 8 steps of N(0, 0.1) errors, steps 5-8 seen by 3 origins only,
    # and step 6 of every series hit by one bad calendar week
    rng = np.random.default_rng(0)
    errors = rng.normal(0, 0.1, (80, 4, 8)) * np.sqrt(np.arange(1, 9))
    errors[:, 3, 4:] = np.nan
    errors[:, 0, 5] += 1.5
    lower, upper = intervals.calibrate(errors, np.array(["product"] * 80))["product"]
    width = upper - lower
    assert (np.diff(width) >= -1e-12).all()
    assert width[5] < 1.5 * width[4]  # the old per-step quantiles: about 2.5 x
    assert (lower < 0).all() and (upper > 0).all()


def test_bands_widen_with_the_horizon_and_a_large_smooth_total_excludes_zero():
    rng = np.random.default_rng(3)
    products = {f"S{i}": 100 + rng.normal(0, 10, len(WEEKS)) for i in range(30)}
    # a few noisy small products that, pooled with the total, used to drag its band to 0
    products |= {f"N{i}": rng.poisson(0.4, len(WEEKS)) * rng.integers(1, 40, len(WEEKS)) * 1.0
                 for i in range(10)}  # fmt: skip
    rows = [pd.DataFrame({"unique_id": series_id("units", "product", k), "ds": WEEKS, "y": v})
            for k, v in products.items()]  # fmt: skip
    total = series_id("units", "total")
    rows.append(
        pd.DataFrame(
            {"unique_id": total, "ds": WEEKS, "y": np.sum(list(products.values()), axis=0)}
        )
    )
    children = tuple(sorted(series_id("units", "product", k) for k in products))
    y = pd.concat(rows, ignore_index=True).sort_values(["unique_id", "ds"], ignore_index=True)
    panel = Panel(y=y, freq="W", hierarchy=[Split(total, "product", children)])

    result = fit_forecast(panel, horizon=8, origins=4, step=4)
    frame = result.frame.sort_values(["unique_id", "ds"])
    width = (frame["upper"] - frame["lower"]).to_numpy().reshape(-1, 8)
    assert (np.diff(width, axis=1) >= -1e-6 * np.maximum(width[:, 1:], 1)).all()
    mine = frame[frame["unique_id"] == total]
    assert (mine["lower"] > 0.8 * mine["mean"]).all()  # level ~3,000, noise sd ~60 + the noisy ones
    assert (mine["upper"] > mine["mean"]).all()
    assert 0.75 <= result.metrics["coverage80"] <= 0.9
