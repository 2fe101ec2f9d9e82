"""Bandit campaigns (issue 17): the send goes out in waves, and each wave's variants are chosen
by a policy refitted on what the waves before it earned.

At launch (campaigns.decisions.allocation) every queued recipient is drawn into one of
`campaign.waves` waves with the campaign's seed; wave 1 gets its variants from the uniform
policy and the others wait without one. Once a wave is out and `wave_hours` have passed since
its last send, `wave_decide_due` (beat: campaigns.tasks.bandit_waves) refits the policy on every
message sent so far (reward: the campaign's `ab_metric`) and gives the next wave its variants,
each message logging the probability of its variant (`propensity`) and what the policy saw
(`decision`), so that any other policy can be judged on these logs (campaigns.services.policy_eval).

A wave is assigned once: the decision holds the campaign's row (a first UPDATE: a row lock on
PostgreSQL, the write lock on SQLite) while it re-reads which wave is next, and it writes only
rows that are still queued without a variant, all in one transaction, so a second worker waits
and then finds nothing to do, and a crash half-way leaves the wave undecided for the next beat.
"""

from datetime import datetime, timedelta

import numpy as np
import orjson
from django.db import connection, transaction
from django.db.models import Count, Max, Q

from campaigns.models import Campaign, Message, Variant
from campaigns.services.draws import unit
from campaigns.services.lifecycle import PENDING
from campaigns.services.results import attribute_conversions
from crm.models import Workspace
from marketing_ai.ml.experiment import wilson_interval

HIT = {"open": "opened_at", "click": "clicked_at", "conversion": "converted_at"}
LIVE = (Campaign.Status.SCHEDULED, Campaign.Status.SENDING)
# Draws behind "P(arm is best)": 20,000 put each share within about 0.4 points.
THOMPSON_DRAWS = 20_000
CONTEXT_DRAWS = 200
BATCH = 1000
TABLE = Message._meta.db_table


def arms(campaign: Campaign) -> list[Variant]:
    """The arms: the campaign's approved variants by name (the order the launch used)."""
    return list(campaign.variants.filter(status=Variant.Status.APPROVED).order_by("name"))


def reward_counts(campaign: Campaign, variants: list[Variant]) -> tuple[np.ndarray, np.ndarray]:
    """(successes, trials) per arm over the campaign's sent messages; a success is a message
    with the campaign's `ab_metric` (opened, clicked, converted)."""
    hit = HIT[campaign.ab_metric]
    rows = dict(
        (variant_id, (hits, sent))
        for variant_id, hits, sent in Message.objects.filter(
            campaign=campaign, state=Message.State.SENT, variant__in=variants
        )
        .values("variant_id")
        .annotate(hits=Count("id", filter=Q(**{f"{hit}__isnull": False})), sent=Count("id"))
        .values_list("variant_id", "hits", "sent")
    )
    successes = np.array([rows.get(v.pk, (0, 0))[0] for v in variants], dtype=np.float64)
    trials = np.array([rows.get(v.pk, (0, 0))[1] for v in variants], dtype=np.float64)
    return successes, trials


def pick(probabilities, u: float) -> int:
    """The arm whose share of `probabilities` contains `u` in [0, 1): a draw with exactly those
    probabilities, so the one logged is the one used."""
    edge = 0.0
    for arm, p in enumerate(probabilities):
        edge += float(p)
        if u < edge:
            return arm
    return len(probabilities) - 1


def shares(variants: list[Variant], probabilities) -> dict[str, float]:
    return {v.name: round(float(p), 6) for v, p in zip(variants, probabilities, strict=True)}


# --- context for the contextual policy ----------------------------------------------------------


def context_names() -> list[str]:
    from crm.services.churn import FEATURES  # its module loads LightGBM: only when asked

    return [*FEATURES, "no_orders"]


class Contexts:
    """Customers' features as they were at `at` (crm's churn features: recency, tenure, orders,
    spend... from orders placed before `at` only), read in one query for the workspace. A
    customer with no order then has zeros and `no_orders` 1."""

    def __init__(self, workspace: Workspace, at: datetime) -> None:
        from crm.services.churn import FEATURES, customer_features  # loads LightGBM: when asked

        self.names = FEATURES
        ids, table = customer_features(workspace, at)
        self.rows = {int(pk): row for pk, row in zip(ids, table, strict=True)}

    def of(self, customer_id: int) -> dict[str, float]:
        row = self.rows.get(customer_id)
        if row is None:
            return dict.fromkeys(self.names, 0.0) | {"no_orders": 1.0}
        return {n: round(float(v), 4) for n, v in zip(self.names, row, strict=True)} | {
            "no_orders": 0.0
        }


def contexts_at(workspace: Workspace, customer_ids, at: datetime) -> dict[int, dict[str, float]]:
    """{customer id: features at `at`} (Contexts)."""
    table = Contexts(workspace, at)
    return {pk: table.of(pk) for pk in customer_ids}


def design(contexts: list[dict]) -> np.ndarray:
    """The policy's input from logged contexts: log(1 + x) of the counts, days and money, whose
    scales differ by orders of magnitude while one ridge penalty serves them all (the policy
    adds its own intercept)."""
    names = context_names()
    X = np.array([[float(c.get(n) or 0.0) for n in names] for c in contexts], dtype=np.float64)
    return np.log1p(np.maximum(X.reshape(-1, len(names)), 0.0))


# --- the wave step ------------------------------------------------------------------------------


def _next_wave(campaign_id: int) -> int | None:
    """The lowest wave whose queued messages still wait for a variant, or None."""
    return (
        Message.objects.filter(
            campaign_id=campaign_id,
            state=Message.State.QUEUED,
            variant__isnull=True,
            holdout=False,
            wave__isnull=False,
        )
        .order_by("wave")
        .values_list("wave", flat=True)
        .first()
    )


def _due(campaign: Campaign, wave: int, now: datetime) -> bool:
    """Whether `wave` may be decided: every earlier wave is out (nothing of it pending) and the
    last of them went `wave_hours` ago, so its opens, clicks or conversions had time to come."""
    earlier = Message.objects.filter(campaign=campaign, wave__lt=wave)
    if earlier.filter(state__in=PENDING, variant__isnull=False).exists():
        return False
    last = earlier.aggregate(last=Max("sent_at"))["last"]
    return last is None or last + timedelta(hours=campaign.wave_hours) <= now


def wave_decide_due(*, campaign_id: int, now: datetime) -> int | None:
    """Decides the campaign's next wave if its time has come; returns its number, or None."""
    campaign = Campaign.objects.get(pk=campaign_id)
    if not campaign.bandit or campaign.status not in LIVE:
        return None
    wave = _next_wave(campaign_id)
    if wave is None or not _due(campaign, wave, now):
        return None
    if campaign.ab_metric == Campaign.AbMetric.CONVERSION:
        attribute_conversions(campaign=campaign)
    return wave if wave_decide(campaign_id=campaign_id, wave=wave, now=now) else None


def waves_decide_due(*, now: datetime) -> list[int]:
    """Decides every live bandit campaign's due wave; the ids of those that got one."""
    ids = Campaign.objects.filter(status__in=LIVE).exclude(bandit="").values_list("pk", flat=True)
    return [pk for pk in ids if wave_decide_due(campaign_id=pk, now=now) is not None]


@transaction.atomic
def wave_decide(*, campaign_id: int, wave: int, now: datetime) -> dict | None:
    """Gives wave `wave` its variants from the policy refitted on every message sent so far,
    and records the wave on the campaign (`ab_result["waves"]`). None if another worker decided
    it first, or the campaign is no longer live."""
    # The lock first: whoever holds the campaign's row decides; the other waits, then re-reads.
    if not Campaign.objects.filter(pk=campaign_id, status__in=LIVE).update(updated_at=now):
        return None
    campaign = Campaign.objects.get(pk=campaign_id)
    if _next_wave(campaign_id) != wave or not _due(campaign, wave, now):
        return None
    variants = arms(campaign)
    rows = list(
        Message.objects.filter(
            campaign=campaign,
            wave=wave,
            state=Message.State.QUEUED,
            variant__isnull=True,
            holdout=False,
        ).only("id", "customer_id", "decision", "send_at")
    )
    successes, trials = reward_counts(campaign, variants)
    if campaign.bandit == Campaign.Bandit.CONTEXTUAL:
        table = _contextual(campaign, variants, rows, wave, now)
    else:
        table = _thompson(campaign, variants, rows, wave, successes, trials)
    for message in rows:
        arm, probabilities, context = table[message.pk]
        message.variant_id = variants[arm].pk
        message.propensity = round(float(probabilities[arm]), 6)
        facts = {
            "policy": campaign.bandit,
            "wave": wave,
            "probabilities": shares(variants, probabilities),
        }
        if context is not None:
            facts["context"] = context
        message.decision = {**(message.decision or {}), **facts}
        message.send_at = max(message.send_at, now)
    written = _assign(rows)
    assigned = {v.name: 0 for v in variants}
    for message in rows:
        assigned[variants[table[message.pk][0]].name] += 1
    record = {
        "wave": wave,
        "decided_at": now.isoformat(),
        "policy": campaign.bandit,
        "messages": written,
        "assigned": assigned,
        "observed": observed_table(variants, successes, trials),
    }
    if campaign.bandit == Campaign.Bandit.THOMPSON:
        record["probabilities"] = shares(variants, table.probabilities)
    else:
        mean = np.mean([t[1] for t in table.values()], axis=0) if rows else None
        record["probabilities"] = shares(variants, mean) if mean is not None else {}
    result = dict(campaign.ab_result or {})
    result.setdefault("bandit", campaign.bandit)
    result.setdefault("metric", campaign.ab_metric)
    result["waves"] = [w for w in result.get("waves", []) if w.get("wave") != wave] + [record]
    Campaign.objects.filter(pk=campaign_id).update(ab_result=result)
    return record


def _assign(rows: list[Message]) -> int:
    """Writes each row's variant, propensity, decision and due time, conditionally, as every
    ledger write is: a row no longer queued without a variant (cancelled meanwhile) is left as it
    is. One UPDATE ... FROM (VALUES ...) per batch: bulk_update's CASE per column spent 2 ms of
    Python per row (10 s for a wave of 5,000). Returns how many rows were written."""
    ops = connection.ops
    decision = "CAST(v.column4 AS jsonb)" if connection.vendor == "postgresql" else "v.column4"
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            params: list = []
            for m in chunk:
                params += [m.pk, m.variant_id, m.propensity, orjson.dumps(m.decision).decode(),
                           ops.adapt_datetimefield_value(m.send_at)]  # fmt: skip
            values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"UPDATE {TABLE} SET variant_id = v.column2, propensity = v.column3, "  # noqa: S608
                f"decision = {decision}, send_at = v.column5 FROM (VALUES {values}) AS v "
                f"WHERE {TABLE}.id = v.column1 AND {TABLE}.state = 'queued' "
                f"AND {TABLE}.variant_id IS NULL",
                params,
            )
            written += cursor.rowcount
    return written


class _Table(dict):
    """message id -> (arm, probabilities, context); `probabilities` when one vector serves all."""

    probabilities = None


def _thompson(campaign, variants, rows, wave, successes, trials) -> _Table:
    # numpy/LightGBM with it: loaded on use, not in the web process
    from marketing_ai.ml.bandit.policies import BetaThompson

    seed = campaign.seed or 0
    probabilities = BetaThompson(prior_a=1.0, prior_b=1.0).probabilities(
        successes, trials, draws=THOMPSON_DRAWS, seed=(seed + wave) % 2**32
    )
    table = _Table()
    table.probabilities = probabilities
    for m in rows:
        table[m.pk] = (
            pick(probabilities, unit(seed, f"wave:{wave}", m.customer_id)),
            probabilities,
            None,
        )
    return table


def logged_contexts(campaign: Campaign, variants: list[Variant]):
    """(X, arms, rewards) of the campaign's sent messages whose decision logged a context."""
    hit = HIT[campaign.ab_metric]
    index = {v.pk: i for i, v in enumerate(variants)}
    rows = list(
        Message.objects.filter(
            campaign=campaign, state=Message.State.SENT, variant__in=variants
        ).values_list("variant_id", "decision", hit)
    )
    rows = [r for r in rows if isinstance(r[1], dict) and isinstance(r[1].get("context"), dict)]
    X = design([r[1]["context"] for r in rows])
    chosen = np.array([index[r[0]] for r in rows], dtype=np.int64)
    rewards = np.array([r[2] is not None for r in rows], dtype=np.float64)
    return X, chosen, rewards


def _contextual(campaign, variants, rows, wave, now) -> _Table:
    # numpy/LightGBM with it: loaded on use, not in the web process
    from marketing_ai.ml.bandit.policies import LinearThompson

    seed = campaign.seed or 0
    X, chosen, rewards = logged_contexts(campaign, variants)
    policy = LinearThompson(l2=1.0, scale=1.0).fit(X, chosen, rewards, n_arms=len(variants))
    # Features as they are now, at the decision: nothing the customer does after it.
    contexts = contexts_at(campaign.workspace, [m.customer_id for m in rows], now)
    table = _Table()
    if not rows:
        return table
    probabilities = policy.probabilities(
        design([contexts[m.customer_id] for m in rows]),
        draws=CONTEXT_DRAWS,
        seed=(seed + wave) % 2**32,
    )
    for m, p in zip(rows, probabilities, strict=True):
        arm = pick(p, unit(seed, f"wave:{wave}", m.customer_id))
        table[m.pk] = (arm, p, contexts[m.customer_id])
    return table


def observed_table(variants: list[Variant], successes, trials) -> list[dict]:
    """Per variant: sent, hits, rate and its 95% Wilson interval."""
    table = []
    for v, hits, sent in zip(variants, successes, trials, strict=True):
        low, high = wilson_interval(int(hits), int(sent))
        table.append(
            {
                "variant": v.name,
                "sent": int(sent),
                "hits": int(hits),
                "rate": float(hits / sent) if sent else None,
                "ci95": [low, high] if sent else None,
            }
        )
    return table


# --- what staff see -----------------------------------------------------------------------------


def bandit_summary(campaign: Campaign) -> dict:
    """The campaign's waves as the ledger has them: per wave, its messages per variant (sent,
    hits, rate), whether its variants are assigned yet, and what the decision recorded (time,
    probabilities, the figures it saw)."""
    variants = arms(campaign)
    names = {v.pk: v.name for v in variants}
    hit = HIT.get(campaign.ab_metric, "clicked_at")
    rows = (
        Message.objects.filter(campaign=campaign, holdout=False, wave__isnull=False)
        .values("wave", "variant_id")
        .annotate(
            n=Count("id"),
            sent=Count("id", filter=Q(state=Message.State.SENT)),
            hits=Count("id", filter=Q(state=Message.State.SENT, **{f"{hit}__isnull": False})),
            queued=Count("id", filter=Q(state=Message.State.QUEUED)),
        )
        .order_by("wave")
    )
    recorded = {w["wave"]: w for w in (campaign.ab_result or {}).get("waves", [])}
    waves: dict[int, dict] = {}
    for r in rows:
        wave = waves.setdefault(
            r["wave"],
            {"wave": r["wave"], "messages": 0, "waiting": 0, "variants": {}},
        )
        wave["messages"] += r["n"]
        if r["variant_id"] is None:
            wave["waiting"] += r["queued"]
            continue
        wave["variants"][names.get(r["variant_id"], str(r["variant_id"]))] = {
            "messages": r["n"],
            "sent": r["sent"],
            "hits": r["hits"],
            "rate": r["hits"] / r["sent"] if r["sent"] else None,
        }
    uniform = {v.name: round(1 / len(variants), 6) for v in variants} if variants else {}
    out = []
    for number in sorted(waves):
        wave = waves[number]
        record = recorded.get(number, {})
        if number == 1 and not record:
            record = {"decided_at": campaign.launched_at.isoformat() if campaign.launched_at
                      else None, "probabilities": uniform, "policy": "uniform"}  # fmt: skip
        probabilities = record.get("probabilities", {})
        out.append(
            {
                **wave,
                # In the variants' order, for a table.
                "arms": [
                    {"variant": v.name, "share": probabilities.get(v.name)}
                    | wave["variants"].get(v.name, {"messages": 0, "sent": 0, "hits": 0})
                    for v in variants
                ],
                "assigned": wave["waiting"] == 0,
                "decided_at": record.get("decided_at"),
                "policy": record.get("policy", campaign.bandit),
                "probabilities": probabilities,
                "observed": record.get("observed", []),
            }
        )
    return {
        "bandit": campaign.bandit,
        "metric": campaign.ab_metric,
        "variants": [v.name for v in variants],
        "waves": out,
    }
