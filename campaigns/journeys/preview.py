"""*Try with a customer*: the way one customer would go through a journey's definition if they
entered now, step by step, with each send step's message rendered as delivery renders it.
Nothing is sent and nothing is written: conditions are read with crm.segments (as the engine
reads them), splits, variants and the holdout are drawn as the engine draws them
(steps.unit) from a stand-in enrolment id, since a real enrolment's id exists only once it is
written."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from campaigns import rendering, schedule
from campaigns.channels import channel_for
from campaigns.decisions import targeting, timing
from campaigns.journeys import dates, graph
from campaigns.journeys.models import Enrolment, Journey
from campaigns.journeys.steps import (
    best_hour_settings,
    date_due,
    in_holdout,
    send_variant,
    split_branch,
    time_of_day_due,
)
from campaigns.models import Campaign, Suppression, Variant, WebhookEndpoint
from campaigns.services import recipients
from campaigns.services.delivery import with_products
from crm.models import Customer, Event, Segment
from crm.segments import RuleError, customers_matching

MAX_STOPS = 60  # a path that loops (through delays) is shown this far


@dataclass
class Stop:
    """One step on the customer's way: what happens there and where they go next."""

    step: str
    kind: str
    what: str  # e.g. "waits up to 4h for purchase"
    outcome: str = ""  # yes / no / branch 2 / ...
    at: datetime | None = None  # when they reach it (UTC)
    local: str = ""  # `at`, or a delay's due time, in the customer's time zone
    next: str | None = None
    not_taken: list[tuple[str, Any]] = field(default_factory=list)  # (label, step id)
    message: rendering.Rendered | None = None
    to: str = ""
    variant: str = ""
    skipped: str = ""  # why delivery would not send it
    problem: str = ""


@dataclass
class Path:
    customer: Customer
    stand_in: int
    context: dict
    holdout: bool
    entry: list[str]  # what entering says: the entry filter, the re-entry policy, inside now
    stops: list[Stop]
    ends: str  # how the walk ends: finished at X, loops back to X, ...
    exit_on: list[str]


def sample_context(journey: Journey, definition: dict, customer: Customer) -> dict:
    """What a trigger would give the enrolment: an event trigger's latest event of this
    customer (else of anyone in the workspace) of a type it listens to, with its properties;
    a segment trigger's entering; a date trigger's date (today); an API enrolment's
    {"api": true}."""
    trigger = definition.get("trigger") or {}
    if trigger.get("type") == "event":
        types = trigger.get("events") or [trigger.get("event")]
        types = [t for t in types if isinstance(t, str)]
        events = Event.objects.filter(workspace=journey.workspace, type__in=types)
        found = (
            events.filter(customer=customer).order_by("-occurred_at").first()
            or events.order_by("-occurred_at").first()
        )
        if found is not None:
            return {"event": found.type, "event_id": found.pk, "properties": found.properties}
        where = trigger.get("where") if isinstance(trigger.get("where"), dict) else {}
        return {"event": types[0] if types else "", "event_id": None, "properties": where}
    if trigger.get("type") == "segment":
        return {"segment": trigger.get("segment"), "change": trigger.get("on", "enter")}
    if trigger.get("type") == "date":  # as date_triggers gives it: the date and the day
        return {"date": trigger.get("date"), "day": timezone.now().date().isoformat()}
    return {"api": True}


def walk(
    *,
    journey: Journey,
    definition: dict,
    customer: Customer,
    context: dict,
    stand_in: int,
    now: datetime | None = None,
) -> Path:
    """The customer's way through `definition` (checked: graph.check's output) from now on.
    Waits for an event are taken as timing out (the "no" way); conditions read the customer as
    they are now. Reads only."""
    now = now or timezone.now()
    workspace = journey.workspace
    tz = schedule.zone(customer.time_zone or "", settings.TIME_ZONE)
    entry = _entry(journey, definition, customer)
    holdout = in_holdout(stand_in, definition.get("holdout_percent") or 0)
    trigger = with_products(workspace.pk, {0: context})[0]
    steps = definition["steps"]
    stops: list[Stop] = []
    seen: set[str] = set()
    at, step_id, ends = now, definition["start"], ""
    while True:
        if step_id in seen and len(stops) >= MAX_STOPS:
            ends = f"goes on round the loop through {step_id}; shown {MAX_STOPS} steps"
            break
        seen.add(step_id)
        step = steps[step_id]
        stop = Stop(step=step_id, kind=step["type"], what=_what(step), at=at)
        stop.local = _local(at, tz)
        stops.append(stop)
        kind = step["type"]
        if kind == "delay":
            due = _delay_due(step, at, tz, customer)
            stop.local = _local(due, tz)
            if step.get("until_date") is not None and due == at:
                stop.outcome = "no date ahead: moves on at once"
            stop.what += f": until {stop.local}"
            at, stop.next = due, step["next"]
        elif kind == "wait_event":
            due = at + timedelta(seconds=graph.seconds(step["timeout"]))
            where = f" where {step['where']}" if step.get("where") else ""
            stop.what = (
                f"waits up to {step['timeout']} for {step['event']}{where}: "
                f"yes → {step['yes']}, no → {step['no']}"
            )
            stop.outcome = f"no (the event does not come by {_local(due, tz)})"
            stop.not_taken = [("yes", step["yes"])]
            at, stop.next = due, step["no"]
        elif kind == "condition":
            try:
                matched = customers_matching(
                    workspace, step["rules"], customer_ids=[customer.pk]
                ).exists()
            except RuleError as exc:
                stop.problem = str(exc)
                ends = f"stops at {step_id}: its rules do not compile"
                break
            stop.outcome = "yes" if matched else "no"
            stop.next = step["yes"] if matched else step["no"]
            stop.not_taken = [("no" if matched else "yes", step["no" if matched else "yes"])]
        elif kind == "split":
            branches = step["branches"]
            chosen = split_branch(step, step_id, stand_in)
            stop.outcome = f"branch {chosen + 1}"
            stop.next = branches[chosen]["next"]
            stop.not_taken = [
                (f"branch {i + 1}", b["next"]) for i, b in enumerate(branches) if i != chosen
            ]
        elif kind == "update_attribute":
            stop.what = f"would set {step['attribute']} = {step['value']!r} (not written here)"
            stop.next = step["next"]
        elif kind == "segment":
            segment = Segment.objects.filter(pk=step["segment"], workspace=workspace).first()
            name = segment.name if segment else f"segment {step['segment']} (not found)"
            verb = "add them to" if step["action"] == "add" else "remove them from"
            stop.what = f"would {verb} {name} (not written here)"
            stop.next = step["next"]
        elif kind == "webhook":
            endpoint = WebhookEndpoint.objects.filter(
                pk=step["endpoint"], workspace=workspace
            ).first()
            stop.what = (
                f"would post journey.step to {endpoint.url if endpoint else 'no such endpoint'}"
                + (" (not: in the holdout)" if holdout else "")
                + " (nothing is posted here)"
            )
            stop.next = step["next"]
        elif kind == "send":
            _send(stop, step, journey, customer, trigger, stand_in, holdout, at, tz)
            stop.next = step["next"]
        elif kind == "exit":
            ends = f"finishes at {step_id}"
            break
        step_id = stop.next
    return Path(
        customer=customer, stand_in=stand_in, context=context, holdout=holdout, entry=entry,
        stops=stops, ends=ends, exit_on=list(definition.get("exit_on") or []),
    )  # fmt: skip


def _entry(journey: Journey, definition: dict, customer: Customer) -> list[str]:
    said = []
    rules = definition.get("entry_filter")
    if rules:
        try:
            ok = customers_matching(journey.workspace, rules, customer_ids=[customer.pk]).exists()
        except RuleError as exc:
            ok = None
            said.append(f"the entry filter does not compile: {exc}")
        if ok is not None:
            said.append(
                "the entry filter lets them in" if ok else "the entry filter keeps them out"
            )
    before = Enrolment.objects.filter(journey=journey, customer=customer)
    if before.filter(finished_at__isnull=True).exists():
        said.append("they are inside this journey now: a trigger would not take them in again")
    policy = definition.get("reentry") or {}
    if policy.get("policy") == "once" and before.exists():
        said.append("they were in it before and the journey takes each customer once")
    elif policy.get("policy") == "after_days":
        since = timezone.now() - timedelta(days=policy["days"])
        if before.filter(entered_at__gte=since).exists():
            said.append(f"they entered within the last {policy['days']} days: kept out")
    return said


def _what(step: dict) -> str:
    kind = step["type"]
    if kind == "delay":
        if step.get("duration") is not None:
            return f"waits {step['duration']}"
        if step.get("until_date") is not None:
            offset = step.get("offset_days", 0)
            return (
                f"waits until their {step['until_date']}"
                + (f" {offset:+d} days" if offset else "")
                + (" (yearly)" if step.get("yearly") else "")
                + f" at {step.get('at') or '09:00'}, their local time"
            )
        if step.get("until_best_hour") is not None:
            return "waits until their best hour"
        return f"waits until {step['until_time']}, their local time"
    if kind == "condition":
        return "checks a condition"
    if kind == "split":
        return "random split " + " / ".join(str(b["weight"]) for b in step["branches"])
    if kind == "send":
        return f"sends message {step['campaign']}"
    return kind


def _delay_due(step: dict, at: datetime, tz, customer: Customer) -> datetime:
    """As steps._delay sets the timer: a duration from now, the customer's date (+ offset) at a
    local time (a date past or missing: at once), or the next local time of day."""
    if step.get("duration") is not None:
        return at + timedelta(seconds=graph.seconds(step["duration"]))
    if step.get("until_date") is not None:
        day = dates.of_customers(step["until_date"], [customer.pk], lambda pk: tz).get(customer.pk)
        return date_due(step, day, now=at, tz=tz)
    if step.get("until_best_hour") is not None:
        hours = best_hour_settings(step)
        due = timing.best_hour_due(
            customer.workspace_id, [customer.pk], at, hours["window_hours"],
            hours["explore_percent"],
        )  # fmt: skip
        return due.get(customer.pk, (at, {}))[0]
    return time_of_day_due(graph.time_of_day(step["until_time"]), now=at, tz=tz)


def _local(at: datetime, tz) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _send(stop, step, journey, customer, trigger, stand_in, holdout, at, tz) -> None:
    """The message as delivery renders it (the same variant choice, the same trigger data with
    its products), and why delivery would not send it, if it would not."""
    campaign = Campaign.objects.filter(
        pk=step["campaign"], workspace=journey.workspace, kind=Campaign.Kind.JOURNEY
    ).first()
    if campaign is None:
        stop.problem = "not a journey message of this workspace"
        return
    stop.what = f"sends {campaign.name} ({campaign.channel})"
    variants = list(campaign.variants.filter(status=Variant.Status.APPROVED).order_by("name"))
    if not variants:
        stop.problem = "no approved variant: nothing would be sent"
        return
    variant = send_variant(variants, stop.step, stand_in)
    stop.variant = variant.name
    if campaign.bandit:
        stop.variant += " (for now: the bandit chooses when it sends)"
    facts = recipients.with_send_facts(campaign, Customer.objects.filter(pk=customer.pk)).first()
    address = channel_for(campaign.channel).address_of(facts) if facts else ""
    suppressed = set(
        Suppression.objects.filter(
            workspace=journey.workspace, channel=campaign.channel, address=address
        ).values_list("address", flat=True)
    )
    stop.to = address
    stop.skipped = recipients.skip_reason(campaign, facts, address, suppressed) if facts else ""
    if campaign.status == Campaign.Status.DRAFT:
        stop.what += " (it sends once the journey is published)"
    elif campaign.status != Campaign.Status.SENDING and not stop.skipped:
        stop.skipped = f"message {campaign.status}"  # staff paused or cancelled it, as steps say
    if not stop.skipped and holdout:
        stop.skipped = "holdout (the journey's control group gets no messages)"
    if not stop.skipped and campaign.targeting != Campaign.Targeting.EVERYONE:
        try:
            stop.skipped = targeting.journey_allows(
                campaign, [customer.pk], targeting.message_rule(campaign)
            )[customer.pk][0]
        except ValueError as exc:  # a half-set rule: the step sends to no one, and says why
            stop.skipped = f"targeting: {exc}"
    due = schedule.due_time(
        timing=Campaign.Timing.NOW,
        tz=schedule.zone(customer.time_zone or "", settings.CAMPAIGN_DEFAULT_TIME_ZONE),
        now=at,
        quiet_start=campaign.quiet_start,
        quiet_end=campaign.quiet_end,
    )
    if due > at:
        stop.what += f", held for quiet hours until {_local(due, tz)}"
    try:
        stop.message = rendering.compiled(variant).render_for(
            customer, unsubscribe_url="#", preferences_url="#", trigger=trigger
        )
    except Exception as exc:  # shown to staff, who are fixing the template
        stop.problem = f"{type(exc).__name__}: {exc}"
