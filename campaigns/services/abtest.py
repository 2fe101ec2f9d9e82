"""A/B mode: a test share gets the variants first; once the last test message is older than the
wait, the variant with the best rate on the goal metric (opens, clicks or conversions per sent
message) goes to everyone else. The decision and its figures are recorded on the campaign."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, F, Max, Q
from django.db.models.functions import Greatest

from campaigns.models import Campaign, Message
from campaigns.services.lifecycle import PENDING
from campaigns.services.results import attribute_conversions
from marketing_ai.ml.experiment import wilson_interval


def ab_decide_due(*, campaign_id: int, now: datetime) -> bool:
    campaign = Campaign.objects.get(pk=campaign_id)
    if not campaign.ab_test_percent or campaign.winner_id:
        return False
    test = Message.objects.filter(campaign=campaign, ab_test=True)
    if test.filter(state__in=PENDING).exists():
        return False
    last = test.aggregate(last=Max("sent_at"))["last"]
    if last is not None and last + timedelta(hours=campaign.ab_wait_hours) > now:
        return False
    ab_decide(campaign=campaign, now=now)
    return True


@transaction.atomic
def ab_decide(*, campaign: Campaign, now: datetime) -> dict:
    attribute_conversions(campaign=campaign)
    hit = {"open": "opened_at", "click": "clicked_at", "conversion": "converted_at"}[
        campaign.ab_metric
    ]
    rows = (
        Message.objects.filter(campaign=campaign, ab_test=True, state=Message.State.SENT)
        .values("variant_id", "variant__name")
        .annotate(sent=Count("id"), hits=Count("id", filter=Q(**{f"{hit}__isnull": False})))
    )
    table = []
    for row in rows:
        low, high = wilson_interval(row["hits"], row["sent"])
        rate = row["hits"] / row["sent"] if row["sent"] else 0.0
        table.append(
            {
                "variant": row["variant__name"],
                "variant_id": row["variant_id"],
                "sent": row["sent"],
                "hits": row["hits"],
                "rate": rate,
                "ci95": [low, high],
            }
        )
    if not table:  # nothing of the test went out: fall back to the first approved variant
        first = campaign.variants.filter(status="approved").order_by("name").first()
        table = [
            {
                "variant": first.name,
                "variant_id": first.pk,
                "sent": 0,
                "hits": 0,
                "rate": 0.0,
                "ci95": [0.0, 1.0],
            }
        ]
    table.sort(key=lambda r: (-r["rate"], r["variant"]))
    winner = table[0]
    result = {
        "metric": campaign.ab_metric,
        "decided_at": now.isoformat(),
        "variants": table,
        "winner": winner["variant"],
    }
    Campaign.objects.filter(pk=campaign.pk).update(winner_id=winner["variant_id"], ab_result=result)
    Message.objects.filter(
        campaign=campaign, variant__isnull=True, holdout=False, state=Message.State.QUEUED
    ).update(
        variant_id=winner["variant_id"],
        send_at=Greatest(F("send_at"), now),
        propensity=1.0,  # the winner goes to everyone left: a choice made with certainty
        decision={"policy": "ab winner"},
    )
    return result
