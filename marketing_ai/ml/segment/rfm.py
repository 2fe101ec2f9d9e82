"""RFM: recency, frequency and monetary value scored 1-5 by quintile, and the usual named groups.

Scores are ranks within the shop's own customers (5 = most recent / most frequent / highest
spend), so they mean the same thing for a gift shop and a wholesaler.
"""

import numpy as np

# (name, rule on recency score R and the frequency-monetary score FM), first match wins.
GROUPS = [
    ("Champions", lambda r, fm: (r >= 4) & (fm >= 4)),
    ("Loyal", lambda r, fm: (r >= 3) & (fm >= 4)),
    ("Potential loyalists", lambda r, fm: (r >= 4) & (fm >= 2)),
    ("New", lambda r, fm: (r >= 4) & (fm < 2)),
    ("Needs attention", lambda r, fm: (r == 3) & (fm >= 2)),
    ("Cannot lose them", lambda r, fm: (r <= 2) & (fm >= 4)),
    ("At risk", lambda r, fm: (r <= 2) & (fm >= 2)),
    ("About to sleep", lambda r, fm: r == 3),
    ("Hibernating", lambda r, fm: r <= 2),
]


def quintile_scores(values: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """1..5 by rank (ties share the lower rank's quintile)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.array([], dtype=int)
    order = values if higher_is_better else -values
    ranks = np.argsort(np.argsort(order, kind="stable"), kind="stable")
    return 1 + (ranks * 5 // len(values)).astype(int)


def rfm(recency_days, frequency, monetary) -> dict[str, np.ndarray]:
    """R, F, M scores and each customer's group name."""
    r = quintile_scores(recency_days, higher_is_better=False)
    f = quintile_scores(frequency)
    m = quintile_scores(monetary)
    fm = np.rint((f + m) / 2).astype(int)
    names = np.full(len(r), "", dtype=object)
    for name, rule in GROUPS:
        names[(names == "") & rule(r, fm)] = name
    return {"r": r, "f": f, "m": m, "group": names}
