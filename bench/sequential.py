"""MovieLens-1M, protocol (b): leave-one-out by time (last item test, the one before validation),
full ranking. SASRec (ours, in torch) against EASE and most-popular in the same run, and against
RecBole's published SASRec (Recall@10 0.2468, NDCG@10 0.1286).

    .venv/bin/python bench/sequential.py     # CUDA in bf16 when present, else CPU

SASRec keeps the epoch with the best validation NDCG@10 and stops after `patience` epochs without
improvement (BENCH_SASREC_EPOCHS caps the epochs, BENCH_SASREC_SECONDS the training time,
BENCH_SASREC_MAXLEN the history length; BENCH_SASREC_LR, BENCH_SASREC_BATCH). Scores
mask the user's earlier items (a film is rated once); the figures without that mask are written
too, since RecBole does not mask for sequential models.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from scipy import sparse  # noqa: E402

from bench import services  # noqa: E402
from marketing_ai.ml import datasets, evaluate  # noqa: E402
from marketing_ai.ml.recommend import create  # noqa: E402

DATA = services.ROOT.parent / "shared" / "data" / "movielens" / "ml-1m.inter.xz"
EPOCHS = int(os.environ.get("BENCH_SASREC_EPOCHS", 200))
MAX_LEN = int(os.environ.get("BENCH_SASREC_MAXLEN", 200))
LR = float(os.environ.get("BENCH_SASREC_LR", 2e-3))
BATCH = int(os.environ.get("BENCH_SASREC_BATCH", 64))
SECONDS = float(os.environ.get("BENCH_SASREC_SECONDS", 0)) or None
PUBLISHED = {"recall": 0.2468, "ndcg": 0.1286}


def main() -> None:
    data = datasets.load_recbole_inter(DATA)
    split = evaluate.split_leave_one_out(data)
    train, valid = split.train, split.valid
    seen_train = train.matrix()
    seen_test = (seen_train + valid.matrix()).tocsr()
    seen_test.data[:] = 1.0
    nothing = sparse.csr_matrix(seen_test.shape)
    figures, rows = {}, []

    def validation_ndcg(model) -> float:
        model.history(train)
        return evaluate.evaluate(model, seen_train, valid, k=10).ndcg

    started = time.perf_counter()
    model = create(
        "sasrec",
        max_len=MAX_LEN,
        epochs=EPOCHS,
        hidden=64,
        layers=2,
        heads=2,
        dropout=0.2,
        lr=LR,
        batch_size=BATCH,
        patience=10,
        max_seconds=SECONDS,
    )
    model.fit(train, valid=validation_ndcg, progress=lambda e, entry: print(entry, flush=True))
    fit_seconds = time.perf_counter() - started
    # The test item continues train + validation.
    train_and_valid = _union(data, train, valid)
    model.history(train_and_valid)
    masked = evaluate.evaluate(model, seen_test, split.test, k=10)
    unmasked = evaluate.evaluate(model, nothing, split.test, k=10)
    figures.update(
        {
            "sasrec_recall@10": masked.recall,
            "sasrec_ndcg@10": masked.ndcg,
            "sasrec_unmasked_recall@10": unmasked.recall,
            "sasrec_unmasked_ndcg@10": unmasked.ndcg,
            "sasrec_epochs": len(model.log),
            "sasrec_fit_seconds": round(fit_seconds, 1),
            "sasrec_device": model.device.name,
        }
    )
    rows.append(
        (
            "SASRec (ours)",
            f"{masked.recall:.4f} / {masked.ndcg:.4f}",
            f"RecBole SASRec {PUBLISHED['recall']} / {PUBLISHED['ndcg']}",
            "beaten"
            if masked.recall > PUBLISHED["recall"] and masked.ndcg > PUBLISHED["ndcg"]
            else "not beaten",
        )
    )
    run = f"{len(model.log)} epochs, {fit_seconds:.0f} s on {model.device.name}"
    rows.append(
        ("SASRec, history not masked", f"{unmasked.recall:.4f} / {unmasked.ndcg:.4f}", "", run)
    )
    for name, params in (("ease", {"l2": 500.0}), ("popular", {})):
        anchor = create(name, **params).fit(seen_test)
        metrics = evaluate.evaluate(anchor, seen_test, split.test, k=10)
        figures[f"{name}_recall@10"], figures[f"{name}_ndcg@10"] = metrics.recall, metrics.ndcg
        rows.append((name, f"{metrics.recall:.4f} / {metrics.ndcg:.4f}", "same split", ""))
    services.print_table("MovieLens-1M, leave-one-out by time, Recall@10 / NDCG@10", rows)
    print(services.write_results("sequential", figures))


def _union(data, *parts):
    return datasets.Interactions(
        users=np.concatenate([p.users for p in parts]),
        items=np.concatenate([p.items for p in parts]),
        times=np.concatenate([p.times for p in parts]),
        n_users=data.n_users,
        n_items=data.n_items,
        user_labels=data.user_labels,
        item_labels=data.item_labels,
    )


if __name__ == "__main__":
    main()
