"""Per-series statistical models through statsforecast, each series given the candidates that
suit it: smooth series get AutoETS, a Theta model and the seasonal naive; intermittent ones
(Syntetos-Boylan: average demand interval ADI >= 1.32) the Croston family, ADIDA and IMAPA.

Seasonal terms (ETS, Theta) are asked for only where two full seasons of history exist: with
less, statsforecast cannot fit them anyway and searching for them multiplies the fit time (a
52-week AutoETS over 500 series took 42 s here against 3 s without).
"""

import warnings

import numpy as np
import pandas as pd

ADI_CUT = 1.32
CV2_CUT = 0.49
SMOOTH = ("AutoETS", "Theta", "SeasonalNaive")
INTERMITTENT = ("CrostonClassic", "CrostonSBA", "CrostonOptimized", "ADIDA", "IMAPA")
FREQ = {"W": "W-MON", "D": "D"}


def classify(values: np.ndarray) -> str:
    """Syntetos-Boylan class of one series: smooth, erratic, intermittent, lumpy, or zero
    (no demand at all). ADI is periods per period with demand; CV² is of the non-zero sizes."""
    values = np.asarray(values, dtype=float)
    demand = values[values > 0]
    if len(demand) == 0:
        return "zero"
    adi = len(values) / len(demand)
    cv2 = (demand.std() / demand.mean()) ** 2 if len(demand) > 1 else 0.0
    if adi < ADI_CUT:
        return "smooth" if cv2 < CV2_CUT else "erratic"
    return "intermittent" if cv2 < CV2_CUT else "lumpy"


def is_intermittent(kind: str) -> bool:
    return kind in ("intermittent", "lumpy")


def _models(names, season_length: int, n: int):
    # statsforecast: only a forecast run pays for importing it
    from statsforecast.models import (
        ADIDA,
        IMAPA,
        AutoETS,
        AutoTheta,
        CrostonClassic,
        CrostonOptimized,
        CrostonSBA,
        Naive,
        SeasonalNaive,
        Theta,
    )

    seasonal = season_length if n >= 2 * season_length else 1
    make = {
        "AutoETS": lambda: AutoETS(season_length=seasonal),
        "AutoETS52": lambda: AutoETS(season_length=season_length, alias="AutoETS52"),
        "Theta": lambda: Theta(season_length=seasonal),
        "AutoTheta": lambda: AutoTheta(season_length=season_length),
        "SeasonalNaive": lambda: (
            SeasonalNaive(season_length=season_length, alias="SeasonalNaive")
            if n >= season_length
            else Naive(alias="SeasonalNaive")
        ),
        "CrostonClassic": CrostonClassic,
        "CrostonSBA": CrostonSBA,
        "CrostonOptimized": CrostonOptimized,
        "ADIDA": ADIDA,
        "IMAPA": IMAPA,
    }
    return [make[name]() for name in names]


def forecast(
    values: np.ndarray,
    ids: list[str],
    periods: pd.DatetimeIndex,
    h: int,
    freq: str,
    season_length: int,
    plan: list[tuple[tuple[str, ...], list[int]]],
    n_jobs: int = 1,
) -> dict[str, dict[str, np.ndarray]]:
    """values: ids x periods history (demand below zero, a week of net returns, counts as none).
    plan: [(model names, rows of `values` to fit them on)]. Returns {model: {unique_id: mean
    forecast, length h}}, non-negative."""
    # statsforecast: only a forecast run pays for importing it
    from statsforecast import StatsForecast

    out: dict[str, dict[str, np.ndarray]] = {}
    n = values.shape[1]
    for names, rows in plan:
        if not len(rows):
            continue
        labels = np.array([ids[r] for r in rows], dtype=object)
        frame = pd.DataFrame(
            {
                "unique_id": np.repeat(labels, n),
                "ds": np.tile(periods.to_numpy(), len(rows)),
                "y": np.clip(values[rows], 0, None).ravel(),
            }
        )
        sf = StatsForecast(models=_models(names, season_length, n), freq=FREQ[freq], n_jobs=n_jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sf.forecast(df=frame, h=h)
        result = result.sort_values(["unique_id", "ds"], kind="stable")
        order = result["unique_id"].to_numpy()[::h]
        for name in names:
            means = result[name].to_numpy(dtype=float).reshape(len(rows), h)
            means = np.clip(np.nan_to_num(means, nan=0.0), 0, None)
            out.setdefault(name, {}).update(zip(order, means, strict=True))
    return out
