"""Reads of journeys: how many enrolments entered each step, stand there now and left it."""

from django.db.models import Count, Q

from campaigns.journeys.models import Enrolment, EnrolmentStep, Journey
from campaigns.models.broadcasts import Message
from campaigns.services.results import reported_figures

UNFINISHED = (Enrolment.State.ACTIVE, Enrolment.State.WAITING)


def _reported(journey: Journey) -> dict:
    # The journey's messages, every version's: what came back about them (bounces, complaints).
    messages = Message.objects.filter(
        enrolment_id__in=Enrolment.objects.filter(journey=journey).values("pk")
    )
    sent = messages.filter(state=Message.State.SENT).count()
    return reported_figures(messages, sent)


def journey_stats(*, journey: Journey) -> dict:
    """Counts for the journey's current version, per step, and its enrolments by state."""
    version = journey.version
    states = dict(
        Enrolment.objects.filter(journey=journey)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    body = {
        "journey": journey.pk,
        "status": journey.status,
        "version": version.number if version else None,
        "enrolments": {state: states.get(state, 0) for state in Enrolment.State.values},
        "holdout": Enrolment.objects.filter(journey=journey, holdout=True).count(),
        "steps": {},
        **_reported(journey),
    }
    if version is None:
        return body
    entered = dict(
        EnrolmentStep.objects.filter(version=version)
        .values_list("step")
        .annotate(n=Count("pk"))
        .values_list("step", "n")
    )
    here = dict(
        Enrolment.objects.filter(version=version)
        .values_list("step")
        .annotate(n=Count("pk", filter=Q(state__in=UNFINISHED)))
        .values_list("step", "n")
    )
    for step_id in version.definition["steps"]:
        now = here.get(step_id, 0)
        came = entered.get(step_id, 0)
        body["steps"][step_id] = {"entered": came, "now": now, "left": came - now}
    return body
