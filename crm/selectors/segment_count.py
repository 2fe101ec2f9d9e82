"""The segment builder's live count: exact where that is quick, estimated from a fixed sample
where an exact count would keep the marketer waiting.

A rule such as "GB, at least 2 views in 90 days, churn risk over 0.6" is checked per customer
(the event probe reads each GB customer's own index entries), so its exact count over a quarter
of a million GB customers takes about a second, every time a row of the builder changes. The
count is first taken over one customer in SAMPLE_EVERY (id mod SAMPLE_EVERY = 0: the same
customers every time, so the figure does not jitter as the marketer edits); that query's time,
scaled up, says what the exact count would cost. Within the budget the exact count follows;
past it the sample's count, scaled, is the answer, with its 95% interval and the word
"estimated" (as Braze and Klaviyo show audience sizes). Saving a segment still counts exactly.
"""

import math
import time

from django.conf import settings
from django.db.models import F, QuerySet
from django.db.models.functions import Mod

from crm.models import Customer

SAMPLE_EVERY = 16


def live_count(matching: QuerySet[Customer], *, budget_ms: float | None = None) -> dict:
    """{"count", "estimated"} and, when estimated, "low" / "high" (a 95% interval) and
    "sampled" (one customer in how many was checked)."""
    if budget_ms is None:
        budget_ms = getattr(settings, "SEGMENT_LIVE_EXACT_BUDGET_MS", 250)
    sample = matching.order_by().annotate(bucket=Mod(F("pk"), SAMPLE_EVERY)).filter(bucket=0)
    started = time.perf_counter()
    hits = sample.count()
    took_ms = (time.perf_counter() - started) * 1000
    if took_ms * SAMPLE_EVERY <= budget_ms:
        return {"count": matching.order_by().count(), "estimated": False}
    return {"estimated": True, "sampled": SAMPLE_EVERY, **_scaled(hits, SAMPLE_EVERY)}


def _scaled(hits: int, every: int) -> dict:
    """The total from `hits` members among one customer in `every`: each member is in the
    sample with probability 1/every, so hits is binomial and the estimate hits × every has the
    standard error every × sqrt(hits × (1 − 1/every)). Where no member was sampled the interval
    is the rule of three's (under 3 × every at 95%)."""
    estimate = hits * every
    if hits == 0:
        return {"count": 0, "low": 0, "high": 3 * every}
    spread = 1.96 * every * math.sqrt(hits * (1 - 1 / every))
    return {
        "count": estimate,
        "low": max(hits, math.floor(estimate - spread)),
        "high": math.ceil(estimate + spread),
    }
