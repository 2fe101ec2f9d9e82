"""Offline evaluation of recommenders: splits and full-ranking metrics (no sampled negatives).

Protocol (a), `split_random`: each user's interactions shuffled and cut 80/10/10 (RecBole's "RS"
with random order, grouped by user). Protocol (b), `split_leave_one_out`: each user's last item
by time is the test item, the one before it validation. Metrics rank every item the user has not
interacted with in the training (and, at test time, validation) part.
"""

from dataclasses import dataclass

import numpy as np

from marketing_ai.ml.datasets import Interactions


@dataclass(frozen=True)
class Split:
    train: Interactions
    valid: Interactions
    test: Interactions


def _cut_sizes(total: int, ratios: tuple[float, ...]) -> list[int]:
    """How many of a user's `total` rows go to each part: the later parts get their share
    rounded down but at least one row when their share is under one, while the first part
    keeps at least one row (RecBole's rule for small groups)."""
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def split_random(
    data: Interactions, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 2020
) -> Split:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    order = order[np.argsort(data.users[order], kind="stable")]  # grouped by user, shuffled within
    part = np.empty(len(data), dtype=np.int8)
    starts = np.flatnonzero(np.r_[True, np.diff(data.users[order]) != 0])
    ends = np.r_[starts[1:], len(order)]
    for start, end in zip(starts, ends, strict=True):
        counts = _cut_sizes(end - start, ratios)
        bounds = np.cumsum([start, *counts])
        for p in range(3):
            part[order[bounds[p] : bounds[p + 1]]] = p
    return Split(*(data.subset(part == p) for p in range(3)))


def split_leave_one_out(data: Interactions) -> Split:
    """Last interaction by time → test, second to last → validation, the rest → train.
    Users with fewer than 3 interactions stay in training only."""
    order = np.lexsort((np.arange(len(data)), data.times, data.users))
    users = data.users[order]
    last = np.r_[users[1:] != users[:-1], True]
    second = np.r_[last[1:], False] & ~last
    sizes = np.bincount(users, minlength=data.n_users)
    enough = sizes[users] >= 3
    part = np.zeros(len(data), dtype=np.int8)
    part[order[last & enough]] = 2
    part[order[second & enough]] = 1
    return Split(*(data.subset(part == p) for p in range(3)))


@dataclass(frozen=True)
class Metrics:
    recall: float
    ndcg: float
    users: int

    def as_dict(self, k: int) -> dict[str, float]:
        return {f"recall@{k}": self.recall, f"ndcg@{k}": self.ndcg, "users": self.users}


def evaluate(model, seen, target: Interactions, k: int = 10, batch: int = 1024) -> Metrics:
    """Recall@k and NDCG@k of `model` (fit on some part) against `target`, ranking all items
    except those in `seen` (a users × items CSR matrix of what each user already had)."""
    truth = target.matrix()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    if not len(users):
        return Metrics(0.0, 0.0, 0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)
    recall_sum = ndcg_sum = 0.0
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        scores = np.asarray(model.score(chunk), dtype=np.float64)
        rows = seen[chunk]
        scores[np.repeat(np.arange(len(chunk)), np.diff(rows.indptr)), rows.indices] = -np.inf
        width = min(k, scores.shape[1])  # catalogues smaller than k rank everything
        top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1), 1)
        relevant = truth[chunk]
        hits = np.asarray(
            [
                np.isin(top[i], relevant.indices[relevant.indptr[i] : relevant.indptr[i + 1]])
                for i in range(len(chunk))
            ]
        )
        n_true = np.diff(relevant.indptr)
        recall_sum += float((hits.sum(1) / n_true).sum())
        dcg = (hits * discounts[:width]).sum(1)
        ndcg_sum += float((dcg / ideal[np.minimum(n_true, k) - 1]).sum())
    return Metrics(recall_sum / len(users), ndcg_sum / len(users), len(users))
