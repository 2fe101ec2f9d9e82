"""What staff and integrators do with journeys: save a draft definition, publish it as the next
version, pause, resume and stop, enrol a customer through the API, take one out."""

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from campaigns.decisions import targeting
from campaigns.journeys import engine, graph
from campaigns.journeys.models import Enrolment, Journey, JourneyTimer, JourneyVersion
from campaigns.models import Campaign, Variant, WebhookEndpoint
from crm.models import Customer, Segment, Workspace
from crm.segments import RuleError, compile_rules
from workers.services import nudge_on_commit

ADVANCE = "campaigns.journeys.tasks.advance"
EVENTS = "campaigns.journeys.tasks.events"


class JourneyError(Exception):
    """A request the journey's state or definition does not allow; field -> messages."""

    def __init__(self, errors: dict[str, list[str]] | str) -> None:
        self.errors = errors if isinstance(errors, dict) else {"detail": [errors]}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))


def definition_check(*, workspace: Workspace, definition, journey: Journey | None = None) -> dict:
    """The definition checked against the workspace (its rules compile, its segments and
    webhook endpoints are the workspace's own; each send step sends a message no other step,
    of this journey (`journey`) or another, sends); raises JourneyError naming each problem."""

    def rules_check(rules) -> str | None:
        try:
            compile_rules(workspace, rules)
        except RuleError as exc:
            return str(exc)
        return None

    try:
        checked = graph.check(definition, rules_check=rules_check)
    except graph.GraphError as exc:
        raise JourneyError(exc.errors) from None
    errors: dict[str, list[str]] = {}
    for place, segment_id in listened_segments(checked).items():
        if not Segment.objects.filter(pk=segment_id, workspace=workspace).exists():
            errors[place] = ["not a segment of this workspace"]
    sent_by = _messages_of_other_journeys(workspace, journey)
    for step_id, step in checked["steps"].items():
        if step["type"] == "send":
            where = f"steps.{step_id}.campaign"
            if int(step["campaign"]) in sent_by:
                errors[where] = [
                    f"already sent by {sent_by[int(step['campaign'])]}: each send step sends a "
                    "message of its own (its results are that step's)"
                ]
            sent_by.setdefault(int(step["campaign"]), f"step {step_id}")
            campaign = Campaign.objects.filter(
                pk=step["campaign"], workspace=workspace, kind=Campaign.Kind.JOURNEY
            ).first()
            if campaign is None:
                errors[where] = [
                    "not a journey message (a campaign of kind journey) of this workspace"
                ]
            elif not campaign.variants.filter(status=Variant.Status.APPROVED).exists():
                errors[f"steps.{step_id}.campaign"] = ["approve one of its variants first"]
            elif campaign.targeting != Campaign.Targeting.EVERYONE:
                # a half-set rule, or no active model, would send to no one: say so now
                problems = targeting.journey_rule_problems(
                    campaign, targeting.message_rule(campaign)
                )
                if problems:
                    errors[where] = [
                        f"its targeting: {field} {' '.join(messages)}"
                        for field, messages in problems.items()
                    ]
        if (
            step["type"] == "segment"
            and not Segment.objects.filter(
                pk=step["segment"], workspace=workspace, kind=Segment.Kind.STATIC
            ).exists()
        ):
            errors[f"steps.{step_id}.segment"] = ["not a static segment of this workspace"]
        if (
            step["type"] == "webhook"
            and not WebhookEndpoint.objects.filter(
                pk=step["endpoint"], workspace=workspace
            ).exists()
        ):
            errors[f"steps.{step_id}.endpoint"] = ["not a webhook endpoint of this workspace"]
    if errors:
        raise JourneyError(errors)
    return checked


def _messages_of_other_journeys(workspace: Workspace, journey: Journey | None) -> dict[int, str]:
    """The messages (campaign ids) the published versions of the workspace's other journeys
    send (a stopped journey's are free again), to the journey and step that sends each."""
    found = {}
    others = Journey.objects.filter(workspace=workspace, version__isnull=False).exclude(
        status=Journey.Status.STOPPED
    )
    if journey is not None:
        others = others.exclude(pk=journey.pk)
    for other in others.select_related("version"):
        for step_id, step in other.version.definition["steps"].items():
            if step["type"] == "send":
                found.setdefault(int(step["campaign"]), f"{other.name}, step {step_id}")
    return found


def listened_segments(definition: dict) -> dict[str, int]:
    """The segments whose members entering or leaving the journey reacts to, by place."""
    found = {}
    if definition["trigger"]["type"] == "segment":
        found["trigger.segment"] = int(definition["trigger"]["segment"])
    for index, segment in enumerate(definition.get("exit_on_leaving") or []):
        found[f"exit_on_leaving.{index}"] = int(segment)
    return found


def journey_create(*, workspace: Workspace, name: str, definition: dict) -> Journey:
    """A draft journey; its definition is checked when it is published (a draft may be
    incomplete while staff build it)."""
    return Journey.objects.create(workspace=workspace, name=name, definition=definition or {})


@transaction.atomic
def journey_publish(*, journey: Journey) -> JourneyVersion:
    """Checks the draft and makes it the next version; the journey goes live. Customers already
    inside finish the version they entered."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == Journey.Status.STOPPED:
        raise JourneyError({"status": ["a stopped journey cannot be published again"]})
    checked = definition_check(
        workspace=journey.workspace, definition=journey.definition, journey=journey
    )
    latest = journey.versions.aggregate(n=Max("number"))["n"] or 0
    version = JourneyVersion.objects.create(
        journey=journey, number=latest + 1, definition=checked, published_at=timezone.now()
    )
    # A paused journey stays paused with its new version; a draft goes live.
    status = (
        Journey.Status.PAUSED if journey.status == Journey.Status.PAUSED else Journey.Status.LIVE
    )
    Journey.objects.filter(pk=journey.pk).update(version=version, status=status)
    # Its messages' campaigns send from now on (delivery sends active campaigns' due rows).
    sending = [s["campaign"] for s in checked["steps"].values() if s["type"] == "send"]
    Campaign.objects.filter(pk__in=sending, status=Campaign.Status.DRAFT).update(
        status=Campaign.Status.SENDING, launched_at=timezone.now()
    )
    # From now on the workspace's events are kept for journeys to read (crm.EventOutbox), and
    # so are the comings and goings of the segments it listens to (crm.MembershipOutbox).
    Workspace.objects.filter(pk=journey.workspace_id, event_outbox=False).update(event_outbox=True)
    Segment.objects.filter(pk__in=listened_segments(checked).values()).update(member_outbox=True)
    journey.refresh_from_db()
    return version


def _status(journey: Journey, allowed: tuple, to: str) -> None:
    if not Journey.objects.filter(pk=journey.pk, status__in=allowed).update(status=to):
        journey.refresh_from_db()
        raise JourneyError({"status": [f"cannot go from {journey.status} to {to}"]})
    journey.refresh_from_db()


def journey_pause(*, journey: Journey) -> None:
    """Takes no one in; enrolments inside stay where they are until it resumes."""
    _status(journey, (Journey.Status.LIVE,), Journey.Status.PAUSED)


def journey_resume(*, journey: Journey) -> None:
    _status(journey, (Journey.Status.PAUSED,), Journey.Status.LIVE)
    advance_soon()


@transaction.atomic
def journey_move(*, journey: Journey) -> dict:
    """Moves the customers inside older versions onto the published one, each to the step of
    the same id where it is a step of the same kind there (a delay keeps its due time, a wait its
    deadline and whether its event came). Those at a step the new version does not have, or has
    as another kind, finish the version they are in. Returns {"moved": n, "stayed": {"v1 step":
    n}}."""
    current = journey.version
    if current is None:
        raise JourneyError({"version": ["not published yet: nothing to move onto"]})
    steps = current.definition["steps"]
    older = Enrolment.objects.filter(journey=journey, state__in=engine.UNFINISHED).exclude(
        version=current
    )
    # Each enrolment moved with its timer locked; one a worker holds now is moving on in its own
    # version this moment, and stays in it.
    free = set(
        JourneyTimer.objects.filter(enrolment__in=older, claim__isnull=True)
        .select_for_update(skip_locked=True, of=("self",))
        .values_list("enrolment_id", flat=True)
    )
    moving, stayed = [], {}
    rows = older.values_list("pk", "step", "version__number", "version__definition")
    for pk, step, number, definition in rows:
        before = definition["steps"].get(step, {}).get("type")
        if pk in free and steps.get(step, {}).get("type") == before:
            moving.append(pk)
        else:
            stayed[f"v{number} {step}"] = stayed.get(f"v{number} {step}", 0) + 1
    for start in range(0, len(moving), 5000):
        Enrolment.objects.filter(pk__in=moving[start : start + 5000]).update(version=current)
    return {"moved": len(moving), "stayed": stayed}


@transaction.atomic
def journey_stop(*, journey: Journey) -> int:
    """Ends it for good: every enrolment inside exits. Returns how many."""
    _status(
        journey,
        (Journey.Status.LIVE, Journey.Status.PAUSED, Journey.Status.DRAFT),
        Journey.Status.STOPPED,
    )
    return engine.exit_enrolments(journey=journey, reason="journey stopped")


# What staff do to a journey as a whole, by the name the API's and the admin's buttons give.
ACTIONS = {
    "publish": journey_publish,
    "pause": journey_pause,
    "resume": journey_resume,
    "stop": journey_stop,
    "move": journey_move,
}


@transaction.atomic
def enrolment_create(
    *, journey: Journey, customer: Customer, context: dict | None = None, key: str = ""
) -> tuple[Enrolment | None, bool]:
    """Enrols a customer through the API. With `key`, asking again returns the same enrolment
    (created False). None when the re-entry policy or entry filter keeps them out."""
    if journey.status != Journey.Status.LIVE or journey.version_id is None:
        raise JourneyError({"journey": ["only a live journey takes customers in"]})
    if key:
        found = Enrolment.objects.filter(journey=journey, key=key).first()
        if found is not None and found.customer_id != customer.pk:
            raise JourneyError({"key": ["already used for another customer's enrolment"]})
        if found is not None:
            return found, False
    version = journey.version
    version.journey = journey
    ids = engine.enrol(
        version=version, entrants=[(customer.pk, {"api": True, **(context or {})})], key=key
    )
    advance_soon()
    return (Enrolment.objects.get(pk=ids[0]) if ids else None), bool(ids)


def enrolment_exit(*, enrolment: Enrolment, reason: str = "exited by staff") -> bool:
    """Ends this enrolment where it is (not the customer's later ones); False if it had ended."""
    with transaction.atomic():
        done = engine.exit_enrolments(
            journey=enrolment.journey, enrolment_ids=[enrolment.pk], reason=reason
        )
    enrolment.refresh_from_db()
    return bool(done)


def advance_soon() -> None:
    """Nudges a worker to move due enrolments once the transaction commits (the beat does it
    every second anyway; this saves a new enrolment's first step the wait)."""
    nudge_on_commit(ADVANCE)


def events_soon() -> None:
    """Nudges a worker to read the event outbox once the transaction commits."""
    nudge_on_commit(EVENTS)
