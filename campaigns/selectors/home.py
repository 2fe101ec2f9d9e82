"""The campaigns part of the admin home page for one workspace: campaigns sending or waiting,
the latest launched broadcasts with their results, journeys running with how many people are in
them, and paused sends.

Bounded at scale: RECENT campaigns, their ledger rows counted in one grouped query through the
(campaign, state, send_at) index, kept in the cache with the rest of the home page's counts
(crm.selectors.home.cached)."""

from django.db.models import Count, Q, Sum

from campaigns.journeys.models import Enrolment, Journey
from campaigns.models import Campaign, Message
from crm.models import Workspace
from crm.selectors.home import cache_key, cached

RECENT = 5
RUNNING = (Campaign.Status.SCHEDULED, Campaign.Status.SENDING, Campaign.Status.PAUSED)


def campaign_results(*, workspace_id: int) -> list[dict]:
    """The RECENT latest launched broadcasts, newest first: {"id", "name", "status",
    "launched_at", "sent", "opened", "clicked", "converted", "revenue"} (the held-out group not
    counted as sent)."""
    campaigns = list(
        Campaign.objects.filter(
            workspace_id=workspace_id, kind=Campaign.Kind.BROADCAST, launched_at__isnull=False
        )
        .order_by("-launched_at")
        .values("id", "name", "status", "launched_at")[:RECENT]
    )
    sent = Q(state=Message.State.SENT, holdout=False)
    figures = {
        row["campaign_id"]: row
        for row in Message.objects.filter(campaign_id__in=[c["id"] for c in campaigns])
        .values("campaign_id")
        .annotate(
            sent=Count("id", filter=sent),
            opened=Count("id", filter=sent & Q(opened_at__isnull=False)),
            clicked=Count("id", filter=sent & Q(clicked_at__isnull=False)),
            converted=Count("id", filter=sent & Q(converted_at__isnull=False)),
            revenue=Sum("revenue", filter=sent),
        )
    }
    out = []
    for c in campaigns:
        row = figures.get(c["id"], {})
        out.append(
            {
                **c,
                **{k: int(row.get(k) or 0) for k in ("sent", "opened", "clicked", "converted")},
                "revenue": float(row.get("revenue") or 0),
            }
        )
    return out


def running_campaigns(*, workspace_id: int) -> list[dict]:
    """Broadcasts scheduled, sending or paused: [{"id", "name", "status"}], newest first."""
    return list(
        Campaign.objects.filter(
            workspace_id=workspace_id, kind=Campaign.Kind.BROADCAST, status__in=RUNNING
        )
        .order_by("-created_at")
        .values("id", "name", "status")[:20]
    )


def running_journeys(*, workspace_id: int) -> list[dict]:
    """Journeys live or paused: [{"id", "name", "status", "in_progress", "finished"}]."""
    journeys = list(
        Journey.objects.filter(
            workspace_id=workspace_id, status__in=[Journey.Status.LIVE, Journey.Status.PAUSED]
        )
        .order_by("name")
        .values("id", "name", "status")[:20]
    )
    inside = (Enrolment.State.ACTIVE, Enrolment.State.WAITING)
    counts = {
        row["journey_id"]: row
        for row in Enrolment.objects.filter(journey_id__in=[j["id"] for j in journeys])
        .values("journey_id")
        .annotate(
            in_progress=Count("id", filter=Q(state__in=inside)),
            finished=Count("id", filter=Q(state=Enrolment.State.FINISHED)),
        )
    }
    for j in journeys:
        row = counts.get(j["id"], {})
        j["in_progress"] = int(row.get("in_progress") or 0)
        j["finished"] = int(row.get("finished") or 0)
    return journeys


def campaigns_home(*, workspace: Workspace) -> dict:
    """The above for the home page: {"results", "campaigns", "journeys"}, the ledger's and the
    enrolments' counts from the cache."""
    pk = workspace.pk
    return {
        "results": cached(
            cache_key(workspace, "campaigns"), lambda: campaign_results(workspace_id=pk)
        ),
        "campaigns": running_campaigns(workspace_id=pk),  # a pause shows at once
        "journeys": cached(
            cache_key(workspace, "journeys"), lambda: running_journeys(workspace_id=pk), 60
        ),
    }
