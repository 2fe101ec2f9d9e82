"""Forecasting benchmark on Online Retail II, the protocol of issue #18.

    flock /work/briefs/bench-lock .venv/bin/python bench/forecast.py

Series: weekly units of the 500 best-selling products, weekly revenue in total and for the five
largest countries (lines cleaned as the importer cleans them: duplicates dropped, stock
adjustments skipped, returns as negative lines; postage, fees and manual lines left out). Rolling
origin: 4 origins four weeks apart in the last 16 complete weeks, horizon 4 weeks (8 for the total,
whose last origin has only 4 weeks left to score). Each origin's fits see only the weeks up to it.

Ours (fit_forecast, which chooses its model per series on its own backtest of the training part)
against statsforecast's AutoETS, AutoTheta and seasonal naive (season 52), the Croston family,
ADIDA and IMAPA, each on every series, and the best of those per series chosen on the training
part (statsforecast's cross-validation over its last 4 x 4 weeks), all in the same run.
MASE is scaled by the in-sample 52-week seasonal naive from each series' first sale (lag-one naive
where that history is under a season: see marketing_ai/ml/forecast/metrics.py); pinball at 10 / 50
/ 90% uses the 80% band's ends and the mean, scaled the same way; coverage is of the 80% band.
"""

import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")
# Django only for the importer's cleaning rules: no database is touched.
os.environ.setdefault("MARKETING_AI_ENV", "development")

import django  # noqa: E402

django.setup()

from crm.importers import online_retail  # noqa: E402
from marketing_ai.ml.forecast import build_panel, fit_forecast  # noqa: E402
from marketing_ai.ml.forecast import metrics as scoring  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail.csv.xz"
RESULTS = ROOT / "bench" / "results" / "forecast.json"
ORIGINS, STEP, SEASON = 4, 4, 52
BASELINES = (
    "AutoETS", "AutoTheta", "SeasonalNaive",
    "CrostonClassic", "CrostonSBA", "CrostonOptimized", "ADIDA", "IMAPA",
)  # fmt: skip
WITH_BANDS = ("AutoETS", "AutoTheta", "SeasonalNaive")
N_JOBS = int(os.environ.get("BENCH_FORECAST_JOBS", 2))
# A quick check of the script itself on fewer products (the figures are the full run's).
PRODUCTS = int(os.environ.get("BENCH_FORECAST_PRODUCTS", 500))


def load_lines(path: Path) -> pd.DataFrame:
    frame = online_retail.read(path, online_retail.Summary())
    frame = frame[~frame["StockCode"].isin(online_retail.SERVICE_CODES)]
    return pd.DataFrame(
        {
            # weeks as the shop's own calendar has them
            "date": frame["placed_at"].dt.tz_convert("Europe/London").dt.tz_localize(None),
            "product": frame["StockCode"],
            "country": frame["Country"],
            "units": frame["Quantity"].astype(float),
            "revenue": frame["Quantity"] * frame["Price"],
        }
    )


def baseline_models():
    from statsforecast.models import (
        ADIDA,
        IMAPA,
        AutoETS,
        AutoTheta,
        CrostonClassic,
        CrostonOptimized,
        CrostonSBA,
        SeasonalNaive,
    )

    return [
        AutoETS(season_length=SEASON),
        AutoTheta(season_length=SEASON),
        SeasonalNaive(season_length=SEASON),
        CrostonClassic(),
        CrostonSBA(),
        CrostonOptimized(),
        ADIDA(),
        IMAPA(),
    ]


def baselines(train: pd.DataFrame, h: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every baseline's forecast with its 80% band where it has one, and each baseline's mean
    absolute error per series over a 4 x 4-week cross-validation on `train` only."""
    from statsforecast import StatsForecast

    models = baseline_models()
    banded = StatsForecast(models=models[:3], freq="W-MON", n_jobs=N_JOBS)
    plain = StatsForecast(models=models[3:], freq="W-MON", n_jobs=N_JOBS)  # no bands of their own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecast = banded.forecast(df=train, h=h, level=[80]).merge(
            plain.forecast(df=train, h=h), on=["unique_id", "ds"]
        )
        # ETS and Theta: fitted once on the first window and carried forward (refitting each
        # window would double the bench); the Croston family is refitted (it has no forward)
        validation = banded.cross_validation(
            df=train, h=STEP, n_windows=ORIGINS, step_size=STEP, refit=False
        ).merge(
            plain.cross_validation(df=train, h=STEP, n_windows=ORIGINS, step_size=STEP),
            on=["unique_id", "ds", "cutoff", "y"],
        )
    errors = {
        name: (validation[name] - validation["y"]).abs().groupby(validation["unique_id"]).mean()
        for name in BASELINES
    }
    return forecast, pd.DataFrame(errors)


def main() -> None:
    started = time.perf_counter()
    lines = load_lines(DATA)
    panel = build_panel(lines, freq="W", top_products=PRODUCTS, top_countries=5)
    products = [i for i in panel.ids if i.startswith("units|product|")]
    countries = [i for i in panel.ids if i.startswith("revenue|country|")]
    fitted = products + countries + ["units|total|", "revenue|total|"]
    scored = [i for i in products + countries if not i.endswith("(other)")] + ["revenue|total|"]
    panel = panel.subset(fitted)
    periods = panel.periods
    ids, _, values = panel.matrix()
    row = {uid: i for i, uid in enumerate(ids)}
    last = len(periods) - 1
    cuts = [last - 16 + j * STEP for j in range(ORIGINS)]
    horizon = {uid: 8 if uid == "revenue|total|" else 4 for uid in scored}

    names = ["ours", *BASELINES, "best-of"]
    shape = (len(scored), ORIGINS, 8)
    actual = np.full(shape, np.nan)
    means = {n: np.full(shape, np.nan) for n in names}
    lowers = {n: np.full(shape, np.nan) for n in names}
    uppers = {n: np.full(shape, np.nan) for n in names}
    scales = np.full((len(scored), ORIGINS), np.nan)
    seconds, baseline_seconds, choices = [], [], {}
    for j, cut in enumerate(cuts):
        origin = periods[cut]
        train_panel = panel.until(origin)
        tick = time.perf_counter()
        result = fit_forecast(train_panel, horizon=8, origins=ORIGINS, step=STEP, n_jobs=N_JOBS)
        seconds.append(time.perf_counter() - tick)
        for name, count in result.params["chosen"].items():
            choices[name] = choices.get(name, 0) + count
        ours = result.frame.set_index("unique_id")

        train = train_panel.y[train_panel.y["unique_id"].isin(scored)]
        train = train.assign(y=train["y"].clip(lower=0))
        tick = time.perf_counter()
        cache = os.environ.get("BENCH_FORECAST_BASELINE_CACHE")  # development only: not one run
        cached = Path(cache) / f"{origin.date()}.pkl" if cache else None
        if cached and cached.exists():
            forecast, errors = pd.read_pickle(cached)  # noqa: S301 (our own file from a run before)
        else:
            forecast, errors = baselines(train, 8)
            if cached:
                pd.to_pickle((forecast, errors), cached)
        baseline_seconds.append(time.perf_counter() - tick)
        forecast = forecast.set_index("unique_id")
        best = errors.idxmin(axis=1)

        scales[:, j] = scoring.scale(values[[row[u] for u in scored], : cut + 1], SEASON)
        for i, uid in enumerate(scored):
            h = horizon[uid]
            seen = min(h, last - cut)
            actual[i, j, :seen] = values[row[uid], cut + 1 : cut + 1 + seen]
            mine = ours.loc[uid]
            means["ours"][i, j, :h] = mine["mean"].to_numpy()[:h]
            lowers["ours"][i, j, :h] = mine["lower"].to_numpy()[:h]
            uppers["ours"][i, j, :h] = mine["upper"].to_numpy()[:h]
            theirs = forecast.loc[uid]
            for name in BASELINES:
                means[name][i, j, :h] = np.clip(theirs[name].to_numpy()[:h], 0, None)
                if name in WITH_BANDS:
                    lowers[name][i, j, :h] = theirs[f"{name}-lo-80"].to_numpy()[:h]
                    uppers[name][i, j, :h] = theirs[f"{name}-hi-80"].to_numpy()[:h]
            pick = best[uid]
            means["best-of"][i, j] = means[pick][i, j]
            lowers["best-of"][i, j] = lowers[pick][i, j]
            uppers["best-of"][i, j] = uppers[pick][i, j]
        took = f"ours {seconds[-1]:.1f} s, baselines {baseline_seconds[-1]:.1f} s"
        print(f"origin {origin.date()}: {took}", flush=True)

    parts = {
        "all": np.arange(len(scored)),
        "products": np.array([i for i, u in enumerate(scored) if "|product|" in u]),
        "revenue": np.array([i for i, u in enumerate(scored) if u.startswith("revenue|")]),
    }
    figures: dict[str, float] = {}
    table = []
    for name in names:
        line = [name]
        for part, members in parts.items():
            has_band = not np.isnan(lowers[name]).all()
            got = scoring.score(
                actual[members],
                means[name][members],
                scales[members],
                lowers[name][members] if has_band else None,
                uppers[name][members] if has_band else None,
            )
            key = name.lower().replace("-", "_")
            if name == "best-of" and has_band:
                banded = np.isfinite(lowers[name][members]).any(axis=(1, 2))
                got["banded_share"] = float(banded.mean())
            for metric in ("mase", "pinball10", "pinball50", "pinball90", "coverage80"):
                if np.isfinite(got.get(metric, np.nan)):  # none: the model gives no band
                    figures[f"{part}_{metric}_{key}"] = round(float(got[metric]), 4)
            line.append(got)
        table.append(line)
    singles = {n: figures[f"all_mase_{n.lower()}"] for n in BASELINES}
    best_single = min(singles, key=singles.get)
    figures.update(
        {
            "series_scored": float(len(scored)),
            "series_fitted": float(len(fitted)),
            "origins": float(ORIGINS),
            "ours_seconds_mean": round(float(np.mean(seconds)), 1),
            "ours_seconds_max": round(float(np.max(seconds)), 1),
            "baselines_seconds_mean": round(float(np.mean(baseline_seconds)), 1),
            "best_single_mase": singles[best_single],
            "ours_vs_best_single": round(figures["all_mase_ours"] / singles[best_single] - 1, 4),
            "bench_seconds": round(time.perf_counter() - started, 1),
            "n_jobs": float(N_JOBS),
        }
    )
    figures.update({f"chosen_{k}": float(v) for k, v in sorted(choices.items())})

    print()
    dates = ", ".join(str(periods[c].date()) for c in cuts)
    print(f"{len(scored)} series scored ({len(fitted)} fitted), origins {dates}")
    print(
        "| model | MASE all | MASE products | MASE revenue | pinball 10/50/90 (all) "
        "| coverage 80% (all) |"
    )
    print("|---|---|---|---|---|---|")
    for name, everything, prods, revenue in table:
        pin = "/".join(
            f"{everything[k]:.3f}" if k in everything else "–"
            for k in ("pinball10", "pinball50", "pinball90")
        )
        cover = f"{everything['coverage80']:.1%}" if "coverage80" in everything else "–"
        print(
            f"| {name} | {everything['mase']:.3f} | {prods['mase']:.3f} | {revenue['mase']:.3f} "
            f"| {pin} | {cover} |"
        )
    print(
        f"\nbest single statsforecast model: {best_single} {singles[best_single]:.3f}; ours "
        f"{figures['all_mase_ours']:.3f} ({figures['ours_vs_best_single']:+.1%}); "
        f"ours {figures['ours_seconds_mean']:.1f} s per fit (max {figures['ours_seconds_max']:.1f})"
    )
    print("chosen per series (over the 4 origins):", dict(sorted(choices.items())))
    figures["baselines_cached"] = float(bool(os.environ.get("BENCH_FORECAST_BASELINE_CACHE")))
    figures["machine"] = platform.node()
    figures["products"] = float(PRODUCTS)
    results = RESULTS if PRODUCTS == 500 else RESULTS.with_name(f"forecast-{PRODUCTS}.check.json")
    results.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
