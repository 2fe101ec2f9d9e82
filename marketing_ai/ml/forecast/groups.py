"""Product groups learned from product names, for catalogues without categories (Online Retail
II has none): the names' sentence embeddings (all-MiniLM-L6-v2, the encoder the clustering and
retrieval use) clustered by k-means."""

import numpy as np

from marketing_ai.ml.language.embeddings import encoder


def group_products(names: list[str], n_groups: int = 20, seed: int = 0, location=None) -> list[int]:
    """A group number 0..k-1 per name, in the order given (k = n_groups, or fewer where there are
    fewer distinct names). Equal names always share a group."""
    if not names:
        return []
    # scikit-learn: only a forecast run that asks for groups pays for importing it
    from sklearn.cluster import KMeans

    distinct = sorted({(name or "").strip().lower() for name in names})
    k = max(1, min(n_groups, len(distinct)))
    if k == 1:
        return [0] * len(names)
    vectors = encoder(location).encode(distinct)
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(vectors)
    # Groups numbered by size, largest first, so group 0 means the same kind of thing each run.
    sizes = np.bincount(labels, minlength=k)
    order = {old: new for new, old in enumerate(np.argsort(-sizes, kind="stable"))}
    by_name = {name: order[int(label)] for name, label in zip(distinct, labels, strict=True)}
    return [by_name[(name or "").strip().lower()] for name in names]
