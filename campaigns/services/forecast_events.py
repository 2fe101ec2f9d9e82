"""Campaign sends as the forecast's known events: the send ledger's messages per day, those sent
and those a launched campaign has planned, so the forecasting run (crm.services.forecasts)
learns what a send does to demand and expects the sends to come."""

from datetime import date

from django.db.models import Count
from django.db.models.functions import TruncDate

from campaigns.models import Message
from crm.services import forecasts


def sends_per_day(workspace_id: int) -> list[tuple[date, int]]:
    """[(day (UTC), messages)] of the workspace's campaigns and journeys: sent, or queued for
    their time; holdouts (never sent), skipped and failed ones left out."""
    return list(
        Message.objects.filter(campaign__workspace_id=workspace_id, holdout=False)
        .exclude(state__in=[Message.State.SKIPPED, Message.State.FAILED])
        .annotate(day=TruncDate("send_at"))
        .values("day")
        .annotate(messages=Count("id"))
        .order_by("day")
        .values_list("day", "messages")
    )


def connect() -> None:
    forecasts.events_source_register(sends_per_day)
