"""Off-policy evaluation of a campaign's (or a journey message's) logs (issue 17): what other
policies would have earned on the same recipients, judged from the messages already sent, before
staff switch one on.

Every sent message logged the probability with which its variant was chosen (`propensity`) and
what decided it (`decision`); its outcome is the campaign's metric (open, click, conversion).
Each candidate policy gives a probability to every variant for each logged recipient; IPW, SNIPW
and DR (marketing_ai.ml.bandit.ope) turn those into the candidate's estimated value per message,
each with its 95% interval, beside the value the logged policy was observed to earn.

Messages chosen with certainty (the A/B winner's rest, propensity 1) are left out: no other
variant could have been sent to them, so they say nothing about a policy that would have chosen
another. The learning candidates (Thompson, contextual) are cross-fitted: each half of the logs
is judged by the policy refitted on the other half, so a policy is never scored on the rows it
learnt from.
"""

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.utils import timezone

from campaigns.models import Campaign, Message, Variant
from campaigns.services import bandit
from marketing_ai.ml.experiment import wilson_interval

# Below this many randomised messages the intervals are too wide to tell policies apart.
MIN_LOGS = 30
MIN_HITS = 10  # outcomes (clicks, opens, conversions) among them
MIN_ESS = 30  # effective messages below which an estimate is flagged as resting on a few
CERTAIN = 0.999999


@dataclass
class Logs:
    """A campaign's randomised, sent messages as arrays."""

    variants: list[Variant]
    rewards: np.ndarray  # (n,) 0/1
    arms: np.ndarray  # (n,) index into variants
    pscores: np.ndarray  # (n,) the logging policy's probability of the arm sent
    X: np.ndarray  # (n, d) the context each decision saw (or the features at launch)
    context: str  # where X came from
    certain: int  # sent with propensity 1, left out
    unlogged: int  # sent before propensities were logged, left out
    policies: dict[str, int]  # logged policy -> messages
    recent: int = 0  # sent too recently to have had their chance: left out


def campaign_logs(campaign: Campaign, metric: str | None = None) -> Logs:
    """The randomised logs of `campaign` (a broadcast or a journey's message): every sent
    message with a variant and a propensity below 1, its reward on `metric` (the campaign's
    `ab_metric` by default)."""
    variants = bandit.arms(campaign)
    index = {v.pk: i for i, v in enumerate(variants)}
    metric = metric or campaign.ab_metric
    hit = bandit.HIT[metric]
    # A message sent minutes ago has not had its chance to be clicked or to convert: counted
    # now, it would read as a miss. Only those past the wait (A/B's) or the attribution window.
    ripe = timezone.now() - (
        timedelta(days=campaign.attribution_days)
        if metric == Campaign.AbMetric.CONVERSION
        else timedelta(hours=campaign.ab_wait_hours)
    )
    sent = Message.objects.filter(campaign=campaign, state=Message.State.SENT, variant__in=variants)
    recent = sent.filter(sent_at__gt=ripe).count()
    rows = list(
        sent.filter(sent_at__lte=ripe)
        .order_by("id")
        .values_list("customer_id", "variant_id", "propensity", "decision", hit, "send_at")
    )
    unlogged = sum(1 for r in rows if r[2] is None)
    certain = sum(1 for r in rows if r[2] is not None and r[2] >= CERTAIN)
    rows = [r for r in rows if r[2] is not None and 0 < r[2] < CERTAIN]
    decisions = [r[3] if isinstance(r[3], dict) else {} for r in rows]
    policies: dict[str, int] = {}
    for d in decisions:
        name = str(d.get("policy") or "split")
        policies[name] = policies.get(name, 0) + 1
    if rows and all(isinstance(d.get("context"), dict) for d in decisions):
        X, context = bandit.design([d["context"] for d in decisions]), "logged at each decision"
    elif rows:
        # Features as they were before the first of these decisions: older than what each
        # decision could have seen, never newer, so nothing of the outcome leaks in.
        at = min([campaign.launched_at] if campaign.launched_at else [r[5] for r in rows])
        table = bandit.Contexts(campaign.workspace, at)
        X = bandit.design([table.of(r[0]) for r in rows])
        context = f"the customers' features at {at:%Y-%m-%d %H:%M} UTC"
    else:
        X, context = np.zeros((0, len(bandit.context_names()))), ""
    return Logs(
        variants=variants,
        rewards=np.array([r[4] is not None for r in rows], dtype=np.float64),
        arms=np.array([index[r[1]] for r in rows], dtype=np.int64),
        pscores=np.array([r[2] for r in rows], dtype=np.float64),
        X=X,
        context=context,
        certain=certain,
        unlogged=unlogged,
        policies=policies,
        recent=recent,
    )


def _halves(n: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[: n // 2], order[n // 2 :]]


def _thompson(logs: Logs, seed: int) -> np.ndarray:
    """(n, K): for each half, Beta-Thompson's shares fitted on the other half's counts."""
    # numpy/LightGBM with it: loaded on use, not in the web process
    from marketing_ai.ml.bandit.policies import BetaThompson

    k = len(logs.variants)
    out = np.empty((len(logs.rewards), k))
    halves = _halves(len(logs.rewards), seed)
    for rows, other in (halves, halves[::-1]):
        trials = np.bincount(logs.arms[other], minlength=k).astype(float)
        successes = np.bincount(logs.arms[other], weights=logs.rewards[other], minlength=k)
        out[rows] = BetaThompson().probabilities(successes, trials, draws=20_000, seed=seed)
    return out


def _contextual(logs: Logs, seed: int) -> np.ndarray:
    """(n, K): for each half, the linear Thompson policy fitted on the other half."""
    # numpy/LightGBM with it: loaded on use, not in the web process
    from marketing_ai.ml.bandit.policies import LinearThompson

    k = len(logs.variants)
    out = np.empty((len(logs.rewards), k))
    halves = _halves(len(logs.rewards), seed)
    for rows, other in (halves, halves[::-1]):
        policy = LinearThompson().fit(
            logs.X[other], logs.arms[other], logs.rewards[other], n_arms=k
        )
        out[rows] = policy.probabilities(logs.X[rows], draws=bandit.CONTEXT_DRAWS, seed=seed)
    return out


def _shown(estimate) -> dict:
    # Not clipped: an IPW above 1 (a rate no policy can earn) says the estimate rests on a few
    # heavily weighted messages, and the page says so beside it (`few`).
    return {
        "value": float(estimate.value),
        "low": float(estimate.low),
        "high": float(estimate.high),
    }


def evaluate(campaign: Campaign, metric: str | None = None) -> dict:
    """The candidates' estimated values on the campaign's logs: {"metric", "messages",
    "variants", "logged": {value, low, high}, "candidates": [{policy, ipw, snipw, dr, dm,
    ess, better}], "context", "certain", "unlogged", "policies", "enough", "note"}. A value is
    the expected `metric` rate per message (0.04: 4 in 100 messages clicked)."""
    # numpy/LightGBM with it: loaded on use, not in the web process
    from marketing_ai.ml.bandit import ope

    metric = metric or campaign.ab_metric
    logs = campaign_logs(campaign, metric)
    n, k = len(logs.rewards), len(logs.variants)
    answer = {
        "metric": metric,
        "messages": n,
        "variants": [v.name for v in logs.variants],
        "context": logs.context,
        "certain": logs.certain,
        "unlogged": logs.unlogged,
        "recent": logs.recent,
        "policies": logs.policies,
        "candidates": [],
        "logged": None,
        "enough": False,
        "note": "",
    }
    if k < 2:
        answer["note"] = "one approved variant: there is no other policy to judge"
        return answer
    if n < MIN_LOGS:
        answer["note"] = (
            f"{n} randomised messages sent so far; at least {MIN_LOGS} are needed to judge "
            "another policy on them"
        )
        return answer
    hits = int(logs.rewards.sum())
    if hits < MIN_HITS:
        answer["note"] = (
            f"{hits} {metric}s among {n} messages old enough to count; at least {MIN_HITS} are "
            "needed before one policy can be told from another"
        )
        return answer
    low, high = wilson_interval(hits, n)
    logged = {"value": hits / n, "low": low, "high": high}
    seed = (campaign.seed or 0) % 2**32
    reward_hat = ope.reward_model(logs.X, logs.arms, logs.rewards, n_arms=k, folds=2, seed=seed)
    candidates = [
        (f"always {v.name}", np.eye(k)[np.full(n, i)]) for i, v in enumerate(logs.variants)
    ]
    candidates += [
        ("uniform", np.full((n, k), 1.0 / k)),
        ("Thompson (refitted)", _thompson(logs, seed)),
        ("contextual (refitted)", _contextual(logs, seed)),
    ]
    rows = np.arange(n)
    for name, target in candidates:
        of_logged = target[rows, logs.arms]
        weights = of_logged / logs.pscores
        dr = ope.dr(logs.rewards, logs.arms, logs.pscores, target, reward_hat)
        answer["candidates"].append(
            {
                "policy": name,
                "ipw": _shown(ope.ipw(logs.rewards, logs.pscores, of_logged)),
                "snipw": _shown(ope.snipw(logs.rewards, logs.pscores, of_logged))
                if weights.sum() > 0
                else None,
                "dr": _shown(dr),
                "dm": _shown(ope.dm(reward_hat, target)),
                # How many logged messages the estimate effectively rests on.
                "ess": (
                    ess := float(weights.sum() ** 2 / (weights**2).sum()) if weights.any() else 0.0
                ),
                "few": ess < MIN_ESS,
                "better": bool(dr.low > logged["value"]),
            }
        )
    answer.update(logged=logged, enough=True)
    return answer
