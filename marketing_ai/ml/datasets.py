"""Interaction data as the engine sees it: integer-coded users and items, plain arrays."""

import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Interactions:
    """One row per (user, item) event; `users` and `items` are codes 0..n-1."""

    users: np.ndarray  # int32
    items: np.ndarray  # int32
    times: np.ndarray  # float64, seconds (order within a user's history)
    n_users: int
    n_items: int
    user_labels: np.ndarray  # original ids, by code
    item_labels: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, mask: np.ndarray) -> "Interactions":
        return Interactions(
            self.users[mask],
            self.items[mask],
            self.times[mask],
            self.n_users,
            self.n_items,
            self.user_labels,
            self.item_labels,
        )

    def matrix(self):
        """users × items binary CSR matrix (repeats count once)."""
        # scipy: only a caller that asks for the sparse matrix pays for it
        from scipy import sparse

        data = np.ones(len(self.users), dtype=np.float32)
        m = sparse.csr_matrix((data, (self.users, self.items)), shape=(self.n_users, self.n_items))
        m.data[:] = 1.0  # duplicates summed by the constructor: back to 0/1
        return m


def from_arrays(users, items, times=None) -> Interactions:
    """Codes arbitrary user and item ids (strings or numbers) in order of first appearance."""
    user_labels, user_codes = np.unique(np.asarray(users), return_inverse=True)
    item_labels, item_codes = np.unique(np.asarray(items), return_inverse=True)
    times = np.zeros(len(user_codes)) if times is None else np.asarray(times, dtype=np.float64)
    return Interactions(
        user_codes.astype(np.int32),
        item_codes.astype(np.int32),
        times,
        len(user_labels),
        len(item_labels),
        user_labels,
        item_labels,
    )


def load_recbole_inter(path: str | Path, min_rating: float | None = None) -> Interactions:
    """A RecBole atomic `.inter` file (tab separated, typed header), plain or .xz, as implicit
    feedback. RecBole's published MovieLens-1M benchmarks keep ratings of 3 and above
    (`val_interval: rating: "[3,inf)"`: 836,478 of 1,000,209); pass min_rating=3 to match."""
    # pandas: only the benchmarks' data loaders need it
    import pandas as pd

    path = Path(path)
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        frame = pd.read_csv(f, sep="\t", dtype=str, quoting=3)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    if min_rating is not None:
        frame = frame[frame["rating"].astype(float) >= min_rating]
    times = frame["timestamp"].astype(float) if "timestamp" in frame else None
    return from_arrays(frame["user_id"].to_numpy(), frame["item_id"].to_numpy(), times)
