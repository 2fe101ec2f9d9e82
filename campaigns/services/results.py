"""Results: conversion attribution and per-campaign / per-variant figures with 95% intervals.

A conversion is the customer's first goal event (e.g. `purchase`) within the attribution window
after the send — extended to the window after their click, if they clicked. Holdout members are
measured the same way from the moment they would have been sent, so lift = treated rate minus
holdout rate compares like with like (intention to treat: every eligible non-holdout member,
sent or not, is in the treated group). A campaign targeted by uplift compares the selected with
the held-out members the rule would have selected (each row records whether it selects them).
"""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, DecimalField, F, OuterRef, Q, Subquery, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from campaigns.models import Campaign, DeliveryReport, Message
from campaigns.services.send_time import send_time_comparison
from campaigns.services.webhooks import endpoints_for, webhook_emit
from crm.models import Event
from marketing_ai.ml import experiment

TREATED = (Message.State.SENT, Message.State.FAILED, Message.State.QUEUED, Message.State.SENDING)
NOT_TARGETED = "not targeted"  # the reason uplift targeting skips with (campaigns.decisions)


def attribute_conversions(*, campaign: Campaign) -> int:
    """Marks newly converted messages (with revenue), emits `message.converted`; returns count."""
    window = timedelta(days=campaign.attribution_days)
    events = Event.objects.filter(
        customer_id=OuterRef("customer_id"),
        type=campaign.goal_event,
        occurred_at__gte=OuterRef("ref"),
        occurred_at__lte=OuterRef("ref_end"),
    )
    money = DecimalField(max_digits=14, decimal_places=2)
    revenue = (
        events.order_by()
        .values("customer_id")
        .annotate(total=Sum(Cast(KeyTextTransform("total", "properties"), money)))
        .values("total")[:1]
    )
    candidates = (
        Message.objects.filter(campaign=campaign, converted_at__isnull=True)
        # Those uplift targeting did not send to are measured like the holdout: the targeted
        # arm's conversions per member are what the targeting earned (campaigns.decisions).
        .filter(Q(state=Message.State.SENT) | Q(holdout=True) | Q(reason__startswith=NOT_TARGETED))
        .annotate(ref=Coalesce(F("sent_at"), F("send_at")))
        .annotate(ref_end=Coalesce(F("clicked_at"), F("ref")) + window)
        .filter(ref__lte=timezone.now())
        .annotate(
            first=Subquery(events.order_by("occurred_at").values("occurred_at")[:1]),
            amount=Subquery(revenue),
        )
        .filter(first__isnull=False)
        .select_related("variant")
    )
    converted = list(candidates)
    if not converted:
        return 0
    hooks = endpoints_for(campaign.workspace_id, "message.converted")
    with transaction.atomic():
        for m in converted:
            m.converted_at, m.revenue = m.first, m.amount or Decimal(0)
        Message.objects.bulk_update(converted, ["converted_at", "revenue"], batch_size=1000)
        for m in converted:
            if hooks and m.state == Message.State.SENT:
                webhook_emit(
                    workspace_id=campaign.workspace_id,
                    event="message.converted",
                    data={
                        "message": m.token.hex,
                        "campaign": campaign.pk,
                        "variant": m.variant.name if m.variant else None,
                        "customer": m.customer_id,
                        "at": m.first.isoformat(),
                        "revenue": f"{Decimal(m.revenue):.2f}",
                    },
                    message_id=m.pk,
                    endpoints=hooks,
                )
    return len(converted)


def _rate(hits: int, n: int) -> dict:
    low, high = experiment.wilson_interval(hits, n)
    return {"count": hits, "rate": hits / n if n else None, "ci95": [low, high] if n else None}


def _group_figures(rows) -> dict:
    agg = rows.aggregate(
        n=Count("id"),
        sent=Count("id", filter=Q(state=Message.State.SENT)),
        failed=Count("id", filter=Q(state=Message.State.FAILED)),
        opens=Count("id", filter=Q(state=Message.State.SENT, opened_at__isnull=False)),
        clicks=Count("id", filter=Q(state=Message.State.SENT, clicked_at__isnull=False)),
        conversions=Count("id", filter=Q(converted_at__isnull=False)),
        money=Coalesce(Sum("revenue"), Decimal(0)),
        money_sq=Coalesce(Sum(F("revenue") * F("revenue")), Decimal(0)),
    )
    figures = {k: (float(v) if isinstance(v, Decimal) else v) for k, v in agg.items()}
    figures["revenue"], figures["revenue_sq"] = figures.pop("money"), figures.pop("money_sq")
    return figures


def _shape(fig: dict, *, measured_on: str) -> dict:
    base = fig["sent"] if measured_on == "sent" else fig["n"]
    low, high = experiment.mean_interval(fig["revenue"], fig["revenue_sq"], fig["n"])
    return {
        "recipients": fig["n"],
        "sent": fig["sent"],
        "failed": fig["failed"],
        "opens": _rate(fig["opens"], fig["sent"]),
        "clicks": _rate(fig["clicks"], fig["sent"]),
        "conversions": _rate(fig["conversions"], base),
        "revenue": round(fig["revenue"], 2),
        "revenue_per_recipient": (fig["revenue"] / fig["n"]) if fig["n"] else None,
        "revenue_per_recipient_ci95": [low, high] if fig["n"] > 1 else None,
    }


def reported_figures(messages, sent: int) -> dict:
    """What came back about `messages` (campaigns.deliverability): hard and soft bounces and
    complaints, each counted once per message however many reports named it, as rates of the
    messages sent."""
    kinds = dict(
        DeliveryReport.objects.filter(message__in=messages)
        .values_list("kind")
        .annotate(n=Count("message_id", distinct=True))
        .order_by()
    )
    return {
        "bounced": _rate(kinds.get(DeliveryReport.Kind.HARD, 0), sent),
        "soft_bounced": _rate(kinds.get(DeliveryReport.Kind.SOFT, 0), sent),
        "complained": _rate(kinds.get(DeliveryReport.Kind.COMPLAINT, 0), sent),
    }


def campaign_stats(*, campaign: Campaign, attribute: bool = True) -> dict:
    if attribute:
        attribute_conversions(campaign=campaign)
    rows = Message.objects.filter(campaign=campaign)
    states = dict(rows.values_list("state").annotate(n=Count("id")).order_by())
    skipped = defaultdict(int)
    for reason, n in (
        rows.filter(state=Message.State.SKIPPED, holdout=False)
        .values_list("reason")
        .annotate(n=Count("id"))
        .order_by()
    ):
        skipped[reason] += n
    treated_rows = rows.filter(holdout=False, state__in=TREATED)
    treated = _group_figures(treated_rows)
    control = _group_figures(rows.filter(holdout=True))
    variants = []
    for variant in campaign.variants.order_by("name"):
        fig = _group_figures(treated_rows.filter(variant=variant))
        variants.append({"id": variant.pk, "name": variant.name, **_shape(fig, measured_on="sent")})
    result = {
        "campaign": campaign.pk,
        "status": campaign.status,
        "audience": sum(states.values()),
        "queued": states.get(Message.State.QUEUED, 0) + states.get(Message.State.SENDING, 0),
        "sent": states.get(Message.State.SENT, 0),
        "failed": states.get(Message.State.FAILED, 0),
        "skipped": dict(skipped),
        **reported_figures(rows, states.get(Message.State.SENT, 0)),
        "treated": _shape(treated, measured_on="recipients"),
        "holdout": _shape(control, measured_on="recipients") if control["n"] else None,
        "variants": variants,
        "lift": None,
        "ab_test": campaign.ab_result or None,
        "attribution": {"goal_event": campaign.goal_event, "days": campaign.attribution_days},
        "send_time": send_time_comparison(campaign=campaign),  # best-hour timing only
    }
    selected = None
    compared = (treated, control)
    compares = "everyone sent to, against the whole holdout"
    if campaign.targeting != Campaign.Targeting.EVERYONE:
        # Those the rule selected gain most from the message by construction: against the
        # whole holdout (mostly the unselected) their lift was the score's ranking, not the
        # message's effect. Like for like is the held-out members the rule would have chosen.
        chosen = Q(decision__targeted=True)
        selected_sent = _group_figures(treated_rows.filter(chosen))
        selected_held = _group_figures(rows.filter(chosen, holdout=True))
        selected = {
            "sent": _shape(selected_sent, measured_on="recipients"),
            "held_out": _shape(selected_held, measured_on="recipients"),
        }
        compared = (selected_sent, selected_held)
        compares = (
            "those the targeting selected and sent to, against the held-out members it would "
            "have selected (the rest of the holdout is not compared)"
        )
    result["selected"] = selected
    result["lift"] = _lift(*compared, compares=compares)
    return result


def _lift(treated: dict, control: dict, *, compares: str) -> dict | None:
    """Conversion rate and revenue per recipient of `treated` minus `control` (group figures),
    with 95% intervals; None without both."""
    if not (control["n"] and treated["n"]):
        return None
    a, b = (treated["conversions"], treated["n"]), (control["conversions"], control["n"])
    diff = experiment.difference_interval(*a, *b)
    relative = experiment.relative_lift_interval(*a, *b)
    rate_a, rate_b = a[0] / a[1], b[0] / b[1]
    return {
        "compares": compares,
        "treated": treated["n"],
        "control": control["n"],
        "conversion_rate": rate_a - rate_b,
        "conversion_rate_ci95": list(diff),
        "relative": (rate_a / rate_b - 1) if rate_b else None,
        "relative_ci95": list(relative) if relative else None,
        "incremental_conversions": (rate_a - rate_b) * treated["n"],
        "revenue_per_recipient": (
            treated["revenue"] / treated["n"] - control["revenue"] / control["n"]
        ),
        "revenue_per_recipient_ci95": list(
            experiment.mean_difference_interval(
                (treated["revenue"], treated["revenue_sq"], treated["n"]),
                (control["revenue"], control["revenue_sq"], control["n"]),
            )
        ),
    }
