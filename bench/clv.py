"""Lifetime value on CDNOW (the 1/10 sample, 2,357 customers): BG/NBD and Gamma-Gamma by maximum
likelihood on the 39-week calibration summary, checked against Fader, Hardie & Lee's published
parameters, then predicting repeat purchases in weeks 40-78 against what the customers did.
Ours: Pareto/NBD with the first order's value and number of CDs as covariates of both rates.
The `lifetimes` library fits the same three models in the same run as a cross-check.

    .venv/bin/python bench/clv.py
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench import services  # noqa: E402
from marketing_ai.ml.predict.clv import (  # noqa: E402
    BetaGeoNBD,
    GammaGamma,
    ParetoNBD,
    ParetoNBDCovariates,
)

DATA = services.ROOT.parent / "shared" / "data" / "cdnow"
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.45}
PUBLISHED_PNBD = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}


def _sample() -> pd.DataFrame:
    return pd.read_csv(
        DATA / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master", "id", "date", "cds", "amount"],
    )


def holdout_purchases(ids: pd.Series) -> np.ndarray:
    """Each customer's purchase days in weeks 40-78 (1997-10-01 .. 1998-06-30)."""
    sample = _sample()
    days = pd.to_datetime(sample["date"].astype(str), format="%Y%m%d")
    late = sample[(days >= "1997-10-01") & (days <= "1998-06-30")]
    counts = late.groupby("id")["date"].nunique()
    return counts.reindex(ids).fillna(0).to_numpy()


def first_orders(ids: pd.Series) -> np.ndarray:
    """What is known when a customer arrives: log(1 + value) and log(CDs) of the first day's
    purchases."""
    sample = _sample()
    first = sample[sample["date"] == sample.groupby("id")["date"].transform("min")]
    day = first.groupby("id")[["amount", "cds"]].sum().reindex(ids)
    return np.column_stack([np.log1p(day["amount"]), np.log(day["cds"])])


def lifetimes_check(summary: pd.DataFrame, actual: np.ndarray) -> dict[str, float]:
    """The same fits by the `lifetimes` library (requirements-dev.txt), as a same-run cross-check;
    empty where it is not installed."""
    try:
        import lifetimes
    except ImportError:
        return {}
    x, t_x, T = summary["x"], summary["t_x"], summary["T"]
    figures = {}
    for name, fitter in (
        ("bgnbd", lifetimes.BetaGeoFitter()),
        ("pnbd", lifetimes.ParetoNBDFitter()),
    ):
        started = time.perf_counter()
        fitter.fit(x, t_x, T)
        figures[f"lifetimes_{name}_fit_seconds"] = round(time.perf_counter() - started, 3)
        figures.update(
            {f"lifetimes_{name}_{k}": round(float(v), 4) for k, v in fitter.params_.items()}
        )
        predicted = fitter.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, T)
        errors = np.asarray(predicted) - actual
        figures[f"lifetimes_{name}_holdout"] = round(float(errors.sum() + actual.sum()), 1)
        figures[f"lifetimes_{name}_mae"] = round(float(np.abs(errors).mean()), 4)
        figures[f"lifetimes_{name}_rmse"] = round(float(np.sqrt((errors**2).mean())), 4)
    repeat = summary[summary["x"] > 0]
    spend = lifetimes.GammaGammaFitter().fit(repeat["x"], repeat["zbar"])
    figures.update({f"lifetimes_gg_{k}": round(float(v), 3) for k, v in spend.params_.items()})
    return figures


def main() -> None:
    summary = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")
    x, t_x, T = summary["x"], summary["t_x"], summary["T"]
    started = time.perf_counter()
    model = BetaGeoNBD().fit(x, t_x, T)
    fit_seconds = time.perf_counter() - started
    spend = GammaGamma().fit(x, summary["zbar"])
    pareto = ParetoNBD().fit(x, t_x, T)
    pareto_predicted = pareto.expected_purchases(39.0, x, t_x, T)
    predicted = model.expected_purchases(39.0, x, t_x, T)
    actual = holdout_purchases(summary["ID"])
    errors = predicted - actual
    pareto_errors = pareto_predicted - actual
    started = time.perf_counter()
    covariates = first_orders(summary["ID"])
    ours = ParetoNBDCovariates().fit(x, t_x, T, covariates)
    ours_seconds = time.perf_counter() - started
    ours_predicted = ours.expected_purchases(39.0, x, t_x, T, covariates)
    ours_errors = ours_predicted - actual
    gained = -ParetoNBD.log_likelihood(
        (pareto.r, pareto.alpha, pareto.s, pareto.beta), x, t_x, T
    ).sum() + ours.log_likelihood(x, t_x, T, covariates)
    figures = {f"bgnbd_{k}": round(getattr(model, k), 4) for k in PUBLISHED_BGNBD}
    figures.update({f"gg_{k}": round(getattr(spend, k), 3) for k in PUBLISHED_GG})
    figures.update({f"pnbd_{k}": round(getattr(pareto, k), 4) for k in PUBLISHED_PNBD})
    figures.update(
        {
            "holdout_pnbd": round(float(pareto_predicted.sum()), 1),
            "pnbd_mae": round(float(np.abs(pareto_errors).mean()), 4),
            "pnbd_rmse": round(float(np.sqrt((pareto_errors**2).mean())), 4),
        }
    )
    figures.update(
        {
            "holdout_ours": round(float(ours_predicted.sum()), 1),
            "ours_mae": round(float(np.abs(ours_errors).mean()), 4),
            "ours_rmse": round(float(np.sqrt((ours_errors**2).mean())), 4),
            "ours_log_likelihood_gain": round(float(gained), 2),
            "ours_fit_seconds": round(ours_seconds, 2),
        }
    )
    figures.update(
        {
            "holdout_actual": float(actual.sum()),
            "holdout_bgnbd": round(float(predicted.sum()), 1),
            "bgnbd_mae": round(float(np.abs(errors).mean()), 4),
            "bgnbd_rmse": round(float(np.sqrt((errors**2).mean())), 4),
            "bgnbd_fit_seconds": round(fit_seconds, 3),
        }
    )
    rows = [
        (
            "BG/NBD r, α, a, b",
            ", ".join(f"{getattr(model, k):.3f}" for k in PUBLISHED_BGNBD),
            ", ".join(f"{v:.3f}" for v in PUBLISHED_BGNBD.values()),
            f"fit {fit_seconds:.2f} s",
        ),
        (
            "Gamma-Gamma p, q, v",
            ", ".join(f"{getattr(spend, k):.2f}" for k in PUBLISHED_GG),
            ", ".join(f"{v:.2f}" for v in PUBLISHED_GG.values()),
            "published",
        ),
        (
            "holdout repeat purchases, weeks 40-78",
            f"{predicted.sum():,.0f}",
            f"actual {actual.sum():,.0f}; published BG/NBD 1,653",
            f"{100 * (predicted.sum() / actual.sum() - 1):+.1f}%",
        ),
        (
            "Pareto/NBD r, α, s, β",
            ", ".join(f"{getattr(pareto, k):.3f}" for k in PUBLISHED_PNBD),
            ", ".join(f"{v}" for v in PUBLISHED_PNBD.values()),
            "published",
        ),
        (
            "Pareto/NBD holdout; MAE / RMSE",
            f"{pareto_predicted.sum():,.0f}; "
            f"{figures['pnbd_mae']:.3f} / {figures['pnbd_rmse']:.3f}",
            "published 1,666; 0.755 / 1.603",
            "-",
        ),
        (
            "BG/NBD per-customer MAE / RMSE",
            f"{figures['bgnbd_mae']:.3f} / {figures['bgnbd_rmse']:.3f}",
            "published BG/NBD 0.785 / 1.608; Pareto/NBD 0.755 / 1.603",
            "-",
        ),
        (
            "ours: Pareto/NBD + first-order covariates; holdout; MAE / RMSE",
            f"{ours_predicted.sum():,.0f}; {figures['ours_mae']:.4f} / {figures['ours_rmse']:.4f}",
            f"Pareto/NBD same run {pareto_predicted.sum():,.0f}; "
            f"{figures['pnbd_mae']:.4f} / {figures['pnbd_rmse']:.4f}",
            f"target MAE < 0.755, RMSE < 1.60, total ±5%; log-lik +{gained:.1f}, "
            f"fit {ours_seconds:.1f} s",
        ),
    ]
    checked = lifetimes_check(summary, actual)
    figures.update(checked)
    if checked:
        for name, keys, ours_model in (
            ("BG/NBD", PUBLISHED_BGNBD, model),
            ("Pareto/NBD", PUBLISHED_PNBD, pareto),
        ):
            tag = "bgnbd" if name == "BG/NBD" else "pnbd"
            theirs = [checked[f"lifetimes_{tag}_{k}"] for k in keys]
            gap = max(abs(t - getattr(ours_model, k)) for t, k in zip(theirs, keys, strict=True))
            figures[f"lifetimes_{tag}_max_parameter_gap"] = round(float(gap), 4)
            holdout = checked[f"lifetimes_{tag}_holdout"]
            errors_text = (
                f"{checked[f'lifetimes_{tag}_mae']:.4f} / {checked[f'lifetimes_{tag}_rmse']:.4f}"
            )
            rows.append(
                (
                    f"lifetimes {name}: parameters; holdout; MAE / RMSE",
                    ", ".join(f"{v:.3f}" for v in theirs) + f"; {holdout:,.0f}; {errors_text}",
                    f"ours: largest parameter gap {gap:.4f}",
                    f"fit {checked[f'lifetimes_{tag}_fit_seconds']:.2f} s",
                )
            )
        theirs_gg = ", ".join(f"{checked[f'lifetimes_gg_{k}']:.2f}" for k in PUBLISHED_GG)
        ours_gg = ", ".join(f"{getattr(spend, k):.2f}" for k in PUBLISHED_GG)
        rows.append(("lifetimes Gamma-Gamma p, q, v", theirs_gg, f"ours {ours_gg}", "-"))
    else:
        rows.append(("lifetimes cross-check", "not installed", "pip install lifetimes", "-"))
    services.print_table("CDNOW 1/10 sample, 39-week calibration", rows)
    print(f"\nwrote {services.write_results('clv', figures)}")


if __name__ == "__main__":
    main()
