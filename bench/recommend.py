"""Recommenders on MovieLens-1M, protocol (a): per-user random 80/10/10 split, full ranking.

As RecBole's published benchmark: ratings of 3 and above only (836,478 interactions, 6,039
users, 3,628 items). `--all-ratings` keeps every rating instead.

    .venv/bin/python bench/recommend.py [--data ../shared/data/movielens/ml-1m.inter.xz]

Every model gets the same tuning effort: a small grid on the validation part, NDCG@10 decides;
the chosen setting is fit on the training part and scored on the test part, ranking every item
the user has not had in training or validation. Anchors: RecBole's published tuned figures on
the same file and protocol (printed beside ours), and our own most-popular baseline.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402
from marketing_ai.ml import datasets, evaluate, recommend  # noqa: E402

DATA = services.ROOT.parent / "shared" / "data" / "movielens" / "ml-1m.inter.xz"
PUBLISHED = {  # RecBole, tuned, on the same protocol: its model, Recall@10, NDCG@10
    "popular": ("MostPop", 0.0699, 0.1006),
    "itemknn": ("ItemKNN", 0.1723, 0.2389),
    "ease": ("EASE", 0.2139, 0.2865),
    "dlae": ("SLIM", 0.2134, 0.2904),  # RecBole has no DLAE; SLIM is its best published here
    "als": ("BPR", 0.1725, 0.2407),  # RecBole has no ALS; BPR is the closest factor model
}
GRIDS = {
    "popular": [{}],
    "itemknn": [{"k": k, "shrink": s} for k in (50, 100, 200, 400) for s in (0, 10, 50)],
    "ease": [{"l2": l2} for l2 in (100, 250, 500, 1000, 2000, 4000)],
    "dlae": [
        {"l2": l2, "dropout": 0.5, "zero_diagonal": z} for l2 in (300, 600, 1200) for z in (0, 1)
    ],
    "als": [
        {"factors": f, "regularization": r, "alpha": a}
        for f in (64, 128)
        for r in (0.05, 1.0)
        for a in (2.0, 10.0)
    ],
}


RETAIL = services.ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail.csv.xz"
RETAIL_GRIDS = {
    "popular": [{}],
    "itemknn": [{"k": k, "shrink": 10} for k in (50, 200)],
    "ease": [{"l2": l2} for l2 in (100, 500, 2000)],
    # Bought items are left out of the ranking here, so the diagonal plays no part.
    "dlae": [{"l2": l2, "dropout": 0.5} for l2 in (200, 800, 3200)],
    "als": [{"factors": 64, "regularization": r, "alpha": 10.0} for r in (0.05, 1.0)],
}


def online_retail(path: Path, rows: list, figures: dict) -> None:
    """Online Retail II: customers' purchases (no returns, no guests); the last 30 days held out,
    the 30 days before them tune each model; full ranking over products not bought before."""
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(path, dtype={"Invoice": str, "StockCode": str, "Customer ID": str})
    frame = frame[~frame["Invoice"].str.startswith("C") & (frame["Quantity"] > 0)]
    frame = frame[frame["Customer ID"].notna()]
    stamps = pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%Y %H:%M")
    when = (stamps - pd.Timestamp(0)).dt.total_seconds()
    data = datasets.from_arrays(
        frame["Customer ID"].to_numpy(), frame["StockCode"].to_numpy(), when.to_numpy()
    )
    end = data.times.max()
    test_cut, valid_cut = end - 30 * 86400, end - 60 * 86400

    def held_out(part, before):
        known = np.isin(part.users, np.unique(before.users))
        return part.subset(known)

    tune_train = data.subset(data.times < valid_cut)
    tune_valid = held_out(
        data.subset((data.times >= valid_cut) & (data.times < test_cut)), tune_train
    )
    train = data.subset(data.times < test_cut)
    test = held_out(data.subset(data.times >= test_cut), train)
    for name, grid in RETAIL_GRIDS.items():
        best = max(
            grid,
            key=lambda p: (
                evaluate.evaluate(
                    recommend.create(name, **p).fit(tune_train.matrix()),
                    tune_train.matrix(),
                    tune_valid,
                    k=20,
                ).ndcg
            ),
        )
        started = time.perf_counter()
        model = recommend.create(name, **best).fit(train.matrix())
        fit_seconds = time.perf_counter() - started
        result = evaluate.evaluate(model, train.matrix(), test, k=20)
        figures.update(
            {
                f"retail_{name}_recall@20": round(result.recall, 4),
                f"retail_{name}_ndcg@20": round(result.ndcg, 4),
                f"retail_{name}_fit_seconds": round(fit_seconds, 2),
            }
        )
        rows.append(
            (
                f"{name} {best or ''} Recall@20 / NDCG@20",
                f"{result.recall:.4f} / {result.ndcg:.4f}",
                "most popular, same run",
                f"fit {fit_seconds:.1f} s",
            )
        )
    figures["retail_test_customers"] = result.users


def movielens(path: str, rows: list, figures: dict, min_rating: float | None) -> None:
    data = datasets.load_recbole_inter(path, min_rating=min_rating)
    split = evaluate.split_random(data, seed=2020)
    train = split.train.matrix()
    seen_test = (train + split.valid.matrix()).tocsr()
    figures.update(
        {
            "users": data.n_users,
            "items": data.n_items,
            "interactions": len(data),
        }
    )
    for name, grid in GRIDS.items():
        best = None
        for params in grid:
            model = recommend.create(name, **params).fit(train)
            score = evaluate.evaluate(model, train, split.valid, k=10).ndcg
            if best is None or score > best[0]:
                best = (score, params)
        started = time.perf_counter()
        model = recommend.create(name, **best[1]).fit(train)
        fit_seconds = time.perf_counter() - started
        test = evaluate.evaluate(model, seen_test, split.test, k=10)
        pub_name, pub_recall, pub_ndcg = PUBLISHED[name]
        figures.update(
            {
                f"{name}_recall@10": round(test.recall, 4),
                f"{name}_ndcg@10": round(test.ndcg, 4),
                f"{name}_fit_seconds": round(fit_seconds, 2),
                f"{name}_published_recall@10": pub_recall,
                f"{name}_published_ndcg@10": pub_ndcg,
            }
        )
        rows.append(
            (
                f"{name} {best[1] or ''} Recall@10 / NDCG@10",
                f"{test.recall:.4f} / {test.ndcg:.4f}",
                f"RecBole {pub_name} {pub_recall:.4f} / {pub_ndcg:.4f}",
                f"{test.ndcg / pub_ndcg:.2f}x NDCG, fit {fit_seconds:.1f} s",
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--retail", default=str(RETAIL))
    parser.add_argument("--only-retail", action="store_true")
    parser.add_argument("--all-ratings", action="store_true", help="keep ratings below 3 too")
    args = parser.parse_args()

    figures: dict[str, float] = {}
    if not args.only_retail:
        rows: list = []
        movielens(args.data, rows, figures, min_rating=None if args.all_ratings else 3)
        kept = "every rating" if args.all_ratings else "ratings >= 3, as RecBole"
        services.print_table(
            f"MovieLens-1M ({kept}), protocol (a): random 80/10/10 per user, full ranking", rows
        )
    retail_rows: list = []
    online_retail(Path(args.retail), retail_rows, figures)
    services.print_table("Online Retail II: last 30 days held out, full ranking", retail_rows)
    previous = services.ROOT / "bench" / "results" / "recommend.json"
    if args.only_retail and previous.exists():  # keep the MovieLens figures of the last run
        import json

        kept = json.loads(previous.read_text())
        kept.pop("machine", None)
        figures = {**kept, **figures}
    print(f"\nwrote {services.write_results('recommend', figures)}")


if __name__ == "__main__":
    main()
