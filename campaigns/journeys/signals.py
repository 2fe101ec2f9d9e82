"""What the journeys listen to: events recorded through the API and bulk writes start a read of
the event outbox at once, so an event reaches its journeys within a second, not at the next
beat; and an erased customer leaves every journey, what started their enrolments forgotten.
A person's enrolments are in their privacy export and on their timeline."""

from campaigns.journeys import engine, services
from campaigns.journeys.models import Enrolment
from crm import selectors
from crm.models import Customer, Workspace
from crm.signals import customer_erased, events_recorded


def _events_recorded(sender, workspace_id: int, **_) -> None:
    if Workspace.objects.filter(pk=workspace_id, event_outbox=True).exists():
        services.events_soon()


def _erased(sender, customer: Customer, counts: dict, **_) -> None:
    counts["journeys_left"] = engine.exit_enrolments(
        journey=None, customer_ids=[customer.pk], reason="customer erased"
    )
    # The rows stay (a journey's counts do not change), without what they said of the person.
    counts["enrolments"] = Enrolment.objects.filter(customer=customer).update(context={}, key="")


def enrolments_export(customer: Customer) -> list[dict]:
    return list(
        Enrolment.objects.filter(customer=customer)
        .order_by("pk")
        .values(
            "id",
            "journey_id",
            "journey__name",
            "state",
            "step",
            "context",
            "entered_at",
            "finished_at",
            "exit_reason",
        )  # fmt: skip
    )


def enrolments_timeline(customer: Customer, limit: int) -> list[dict]:
    rows = Enrolment.objects.filter(customer=customer).order_by("-entered_at")[:limit]
    return [
        {"at": e.entered_at, "kind": "journey", "id": e.pk, "journey": e.journey_id,
         "state": e.state, "step": e.step}
        for e in rows
    ]  # fmt: skip


def connect() -> None:
    events_recorded.connect(_events_recorded, dispatch_uid="campaigns.journeys.events")
    customer_erased.connect(_erased, dispatch_uid="campaigns.journeys.erased")
    selectors.EXPORT_SECTIONS["journeys"] = enrolments_export
    selectors.TIMELINE_SOURCES.append(enrolments_timeline)
