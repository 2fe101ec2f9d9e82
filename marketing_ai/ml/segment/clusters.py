"""Behaviour + taste clustering of customers, each cluster described in plain words.

Features per customer: log spend, log order count, days since the last order, tenure, average
order value (standardised), plus the mean embedding of the products they bought, reduced by PCA
to a few components so that taste counts as much as behaviour, not 384 times more. k-means for
k in a small range, k chosen by silhouette on a sample. A cluster's description comes from its
members' median behaviour against the whole population ("high spend", "lapsing 90+ days") and
the words that are most over-represented in the names of the products they bought ("buys lantern,
candle").
"""

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

STOPWORDS = {
    "of", "set", "the", "and", "in", "with", "a", "design", "small", "large", "pack", "assorted",
    "colour", "colours", "box", "vintage", "mini", "jumbo", "red", "pink", "blue", "white", "green",
    "black", "ivory", "cream", "&", "for", "to", "n", "s",
}  # fmt: skip
WORD = re.compile(r"[a-z][a-z'-]{2,}")


@dataclass
class CustomerBehaviour:
    """One row per customer: spend, orders, days since last order, days since first order."""

    ids: np.ndarray
    spend: np.ndarray
    orders: np.ndarray
    recency_days: np.ndarray
    tenure_days: np.ndarray


@dataclass
class Clustering:
    labels: np.ndarray  # cluster per customer (same order as the input ids)
    descriptions: list[str]
    sizes: list[int]
    k: int
    silhouette: float
    profiles: list[dict] = field(default_factory=list)


def _behaviour_matrix(b: CustomerBehaviour) -> np.ndarray:
    aov = b.spend / np.maximum(b.orders, 1)
    columns = [
        np.log1p(np.maximum(b.spend, 0)),
        np.log1p(b.orders),
        np.log1p(b.recency_days),
        np.log1p(b.tenure_days),
        np.log1p(np.maximum(aov, 0)),
    ]
    matrix = np.column_stack(columns)
    std = matrix.std(axis=0)
    return (matrix - matrix.mean(axis=0)) / np.where(std > 0, std, 1)


def fit(
    behaviour: CustomerBehaviour,
    taste: np.ndarray | None,
    product_words: list[list[str]] | None = None,
    k_range: range = range(4, 9),
    taste_components: int = 5,
    seed: int = 0,
) -> Clustering:
    """`taste`: (customers, dims) mean product embeddings (rows of zeros for none);
    `product_words`: per customer, the names of the products they bought (for descriptions)."""
    # scikit-learn takes a second to import; only fitting needs it
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    features = _behaviour_matrix(behaviour)
    if taste is not None and len(taste) and taste.shape[1]:
        components = PCA(n_components=min(taste_components, taste.shape[1]), random_state=seed)
        reduced = components.fit_transform(taste)
        reduced /= reduced[:, :1].std() or 1.0  # the first component on the behaviour scale
        features = np.column_stack([features, reduced])
    n = len(features)
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, size=min(n, 4000), replace=False)
    best = None
    for k in k_range:
        if k >= n:
            break
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(features)
        score = float(silhouette_score(features[sample], model.labels_[sample]))
        if best is None or score > best[0]:
            best = (score, k, model.labels_)
    if best is None:
        raise ValueError("too few customers to cluster")
    score, k, labels = best
    profiles, descriptions = describe(behaviour, labels, product_words)
    sizes = [int((labels == c).sum()) for c in range(k)]
    return Clustering(
        labels=labels,
        descriptions=descriptions,
        sizes=sizes,
        k=k,
        silhouette=score,
        profiles=profiles,
    )


def _level(value: float, population: np.ndarray, low: str, high: str) -> str | None:
    if value >= np.quantile(population, 0.75):
        return high
    if value <= np.quantile(population, 0.25):
        return low
    return None


def describe(
    behaviour: CustomerBehaviour, labels: np.ndarray, product_words: list[list[str]] | None
) -> tuple[list[dict], list[str]]:
    overall = Counter()
    per_cluster: dict[int, Counter] = {}
    if product_words is not None:
        for label, names in zip(labels, product_words, strict=True):
            # A word counts once per distinct product name it is in: "candle" in three candle
            # products outranks "lavender" in one.
            words = Counter(
                w
                for name in set(names)
                for w in set(WORD.findall(name.lower()))
                if w not in STOPWORDS
            )
            overall.update(words)
            per_cluster.setdefault(int(label), Counter()).update(words)
    profiles, descriptions = [], []
    for c in range(int(labels.max()) + 1):
        members = labels == c
        spend = float(np.median(behaviour.spend[members]))
        orders = float(np.median(behaviour.orders[members]))
        recency = float(np.median(behaviour.recency_days[members]))
        parts = [
            p
            for p in (
                _level(spend, behaviour.spend, "low spend", "high spend"),
                _level(orders, behaviour.orders, "one or two orders", "frequent buyers"),
            )
            if p
        ]
        if recency >= 180:
            parts.append("lapsed 180+ days")
        elif recency >= 90:
            parts.append("lapsing 90+ days")
        elif recency <= 30:
            parts.append("bought in the last 30 days")
        themes = _themes(per_cluster.get(c, Counter()), overall, int(members.sum()), len(labels))
        if themes:
            parts.append("buys " + ", ".join(themes))
        descriptions.append(", ".join(parts) or "typical customers")
        profiles.append(
            {
                "cluster": c,
                "customers": int(members.sum()),
                "median_spend": spend,
                "median_orders": orders,
                "median_recency_days": recency,
                "themes": themes,
            }
        )
    return profiles, _unique(descriptions)


def _themes(
    words: Counter, overall: Counter, members: int, everyone: int, top: int = 3
) -> list[str]:
    """Words bought by many of the cluster and relatively more than by everyone else."""
    scored = []
    for word, count in words.items():
        share = count / members
        lift = share / (overall[word] / everyone)
        if share >= 0.1 and lift >= 1.15:
            scored.append((share * np.log(lift), word))
    return [w for _, w in sorted(scored, reverse=True)[:top]]


def _unique(descriptions: list[str]) -> list[str]:
    seen: Counter = Counter()
    out = []
    for text in descriptions:
        seen[text] += 1
        out.append(text if seen[text] == 1 else f"{text} ({seen[text]})")
    return out
