"""Which series are rising or slowing: the forecast's mean per period over the horizon against
the actual mean over the last `recent` periods."""

import numpy as np
import pandas as pd


def trends(panel, result, recent: int = 4) -> pd.DataFrame:
    """[unique_id, recent, forecast, change, change_lower, change_upper, direction]. change is
    forecast / recent - 1; its band takes the mean of the forecast band's ends over the horizon
    (as if the periods' errors moved together, which widens it: a series is called rising or
    slowing only when even that band lies wholly above or below zero). A series with no recent
    sales has change 0 when nothing is forecast and is otherwise measured against one unit."""
    history = panel.y.sort_values("ds")
    last = history["ds"].drop_duplicates().nlargest(recent)
    recent_mean = history[history["ds"].isin(last)].groupby("unique_id")["y"].mean()
    ahead = result.frame.groupby("unique_id")[["mean", "lower", "upper"]].mean()
    table = ahead.join(recent_mean.rename("recent"), how="left").fillna({"recent": 0.0})
    base = table["recent"].where(table["recent"] > 0, 1.0)
    nothing = (table["recent"] <= 0) & (table["mean"] <= 0)
    change = np.where(nothing, 0.0, table["mean"] / base - 1)
    if (table["recent"] <= 0).any():
        # without recent sales the ratio has no meaning: the change in units, against one unit
        change = np.where(table["recent"] > 0, change, table["mean"] - table["recent"])
    lower = np.where(table["recent"] > 0, table["lower"] / base - 1, table["lower"])
    upper = np.where(table["recent"] > 0, table["upper"] / base - 1, table["upper"])
    upper = np.where(nothing, np.maximum(upper, 0.0), upper)
    direction = np.where(lower > 0, "rising", np.where(upper < 0, "slowing", "steady"))
    return pd.DataFrame(
        {
            "unique_id": table.index,
            "recent": table["recent"].to_numpy(),
            "forecast": table["mean"].to_numpy(),
            "change": change,
            "change_lower": lower,
            "change_upper": upper,
            "direction": direction,
        }
    ).reset_index(drop=True)
