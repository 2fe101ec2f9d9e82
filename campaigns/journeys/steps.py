"""The steps themselves, run set-wise: the enrolments of a batch that stand at the same step of
the same version go through it together (one query for a condition over a thousand customers,
one insert for their timers and history), until each rests at a delay or a wait, or finishes.
The engine (campaigns.journeys.engine) decides what moves; this module moves it."""

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from campaigns import schedule
from campaigns.channels import channel_for
from campaigns.decisions import allocation, targeting, timing
from campaigns.journeys import dates, graph
from campaigns.journeys.models import Enrolment, EnrolmentStep, JourneyTimer, JourneyVersion
from campaigns.models import Campaign, Message, Suppression, Variant, WebhookEndpoint
from campaigns.services import recipients
from campaigns.services.fanout import deliveries_queue_on_commit
from campaigns.services.recipients import pick_variant
from campaigns.services.webhooks import endpoints_for, webhook_emit_many
from crm.models import Customer, Segment
from crm.segments import customers_matching
from crm.services.segments import segment_add_members

log = logging.getLogger(__name__)


def unit(enrolment_id: int, purpose: str) -> float:
    """A number in [0, 1) drawn from the enrolment and what it is for: the same every time."""
    digest = hashlib.sha256(f"{enrolment_id}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# The engine's draws and due times, one enrolment at a time: the steps below use them, and so
# does *Try with a customer* (campaigns.journeys.preview), so the path it shows is the path.


def in_holdout(enrolment_id: int, percent: float) -> bool:
    return unit(enrolment_id, "holdout") < float(percent or 0) / 100


def split_branch(step: dict, step_id: str, enrolment_id: int) -> int:
    """The index of the split's branch this enrolment takes (by the branches' weights)."""
    branches = step["branches"]
    u, edge = unit(enrolment_id, f"split:{step_id}") * sum(b["weight"] for b in branches), 0
    for index, branch in enumerate(branches):
        edge += branch["weight"]
        if u < edge:
            return index
    return len(branches) - 1


def send_variant(variants: list[Variant], step_id: str, enrolment_id: int) -> Variant:
    """The variant a send step gives this enrolment (`variants`: approved, ordered by name)."""
    return pick_variant(variants, unit(enrolment_id, f"variant:{step_id}"))


def time_of_day_due(when, *, now: datetime, tz) -> datetime:
    """The next `when` (a local time of day) in `tz` after `now`."""
    local = now.astimezone(tz)
    due = datetime.combine(local.date(), when, tzinfo=tz)
    if due <= local:
        due = datetime.combine(local.date() + timedelta(days=1), when, tzinfo=tz)
    return due


def date_due(step: dict, day, *, now: datetime, tz) -> datetime:
    """A delay until a date: the customer's `day` + offset at the local time; none: now."""
    if day is None:
        return now
    return dates.next_due(
        day,
        offset_days=step.get("offset_days", 0),
        yearly=step.get("yearly", False),
        at=graph.time_of_day(step.get("at") or "09:00"),
        tz=tz,
        now=now,
    )


@dataclass
class Batch:
    """Enrolments of one version moving together, with what the steps need to know of them."""

    version: JourneyVersion
    now: datetime
    customers: dict[int, int]  # enrolment id -> customer id
    holdout: dict[int, bool]
    context: dict[int, dict]
    history: list[EnrolmentStep] = field(default_factory=list)
    timers: list[JourneyTimer] = field(default_factory=list)
    resting: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # step -> state -> ids

    @property
    def definition(self) -> dict:
        return self.version.definition

    def log(self, ids, step: str, outcome: str = "") -> None:
        self.history += [
            EnrolmentStep(
                enrolment_id=e, version=self.version, step=step, at=self.now, outcome=outcome
            )
            for e in ids
        ]

    def rest(self, ids, step: str, state: str) -> None:
        self.resting.setdefault(step, {}).setdefault(state, []).extend(ids)


def batch_for(version: JourneyVersion, enrolment_ids, now: datetime) -> Batch:
    rows = Enrolment.objects.filter(pk__in=list(enrolment_ids)).values_list(
        "pk", "customer_id", "holdout", "context"
    )
    batch = Batch(version=version, now=now, customers={}, holdout={}, context={})
    for pk, customer_id, holdout, context in rows:
        batch.customers[pk], batch.holdout[pk], batch.context[pk] = customer_id, holdout, context
    return batch


def run(batch: Batch, step_id: str, ids: list[int]) -> None:
    """Takes `ids` into `step_id` and on, until each rests at a waiting step or finishes."""
    steps = batch.definition["steps"]
    todo = [(step_id, list(ids))]
    visits: dict[str, int] = defaultdict(int)
    while todo:
        step_id, ids = todo.pop()
        if not ids:
            continue
        visits[step_id] += 1
        if visits[step_id] > graph.MAX_STEPS:
            # Only a loop comes back this often without resting; the checker refuses one that
            # can, but a version published before it did must not hold a worker for ever.
            log.error("journey %s: a loop at %s, its enrolments stopped there",
                      batch.version.journey_id, step_id)  # fmt: skip
            batch.log(ids, step_id, "stopped: a loop")
            batch.rest(ids, step_id, Enrolment.State.FINISHED)
            continue
        step = steps[step_id]
        kind = step["type"]
        if kind == "delay":
            if step.get("until_date") is None:  # that one logs whether the customer had a date
                batch.log(ids, step_id)
            _delay(batch, step_id, step, ids)
        elif kind == "wait_event":
            batch.log(ids, step_id)
            due = batch.now + timedelta(seconds=graph.seconds(step["timeout"]))
            batch.timers += [JourneyTimer(enrolment_id=e, step=step_id, due_at=due) for e in ids]
            batch.rest(ids, step_id, Enrolment.State.WAITING)
        elif kind == "condition":
            customer_ids = [batch.customers[e] for e in ids]
            workspace = batch.version.journey.workspace
            matching = set(
                customers_matching(workspace, step["rules"], customer_ids=customer_ids).values_list(
                    "pk", flat=True
                )
            )
            yes = [e for e in ids if batch.customers[e] in matching]
            no = [e for e in ids if batch.customers[e] not in matching]
            batch.log(yes, step_id, "yes")
            batch.log(no, step_id, "no")
            todo += [(step["yes"], yes), (step["no"], no)]
        elif kind == "split":
            branches = step["branches"]
            chosen: dict[int, list[int]] = defaultdict(list)
            for e in ids:
                chosen[split_branch(step, step_id, e)].append(e)
            for index, members in chosen.items():
                batch.log(members, step_id, f"branch {index + 1}")
                todo.append((branches[index]["next"], members))
        elif kind == "update_attribute":
            batch.log(ids, step_id)
            _update_attribute(batch, step, ids)
            todo.append((step["next"], ids))
        elif kind == "segment":
            batch.log(ids, step_id, step["action"])
            _segment(batch, step, ids)
            todo.append((step["next"], ids))
        elif kind == "webhook":
            batch.log(ids, step_id)
            _webhook(batch, step_id, step, ids)
            todo.append((step["next"], ids))
        elif kind == "send":
            for outcome, members in _send(batch, step_id, step, ids).items():
                batch.log(members, step_id, outcome)
            todo.append((step["next"], ids))
        elif kind == "exit":
            batch.log(ids, step_id)
            batch.rest(ids, step_id, Enrolment.State.FINISHED)


def _delay(batch: Batch, step_id: str, step: dict, ids: list[int]) -> None:
    if step.get("duration") is not None:
        due = batch.now + timedelta(seconds=graph.seconds(step["duration"]))
        batch.timers += [JourneyTimer(enrolment_id=e, step=step_id, due_at=due) for e in ids]
    elif step.get("until_date") is not None:
        _until_date(batch, step_id, step, ids)
    elif step.get("until_best_hour") is not None:
        _until_best_hour(batch, step_id, step, ids)
    else:
        at = graph.time_of_day(step["until_time"])
        zones = dict(
            Customer.objects.filter(pk__in={batch.customers[e] for e in ids}).values_list(
                "pk", "time_zone"
            )
        )
        due_by_zone: dict[str, datetime] = {}
        for e in ids:
            name = zones.get(batch.customers[e]) or ""
            if name not in due_by_zone:
                tz = schedule.zone(name, settings.TIME_ZONE)
                due_by_zone[name] = time_of_day_due(at, now=batch.now, tz=tz)
            batch.timers.append(
                JourneyTimer(enrolment_id=e, step=step_id, due_at=due_by_zone[name])
            )
    batch.rest(ids, step_id, Enrolment.State.ACTIVE)


def _until_date(batch: Batch, step_id: str, step: dict, ids: list[int]) -> None:
    """A timer at the customer's date + offset, local time `at`; a date once and past, or no
    date at all, is due now (the next tick moves it on; its history says which)."""
    customer_ids = {batch.customers[e] for e in ids}
    zones = {
        pk: schedule.zone(name, settings.TIME_ZONE)
        for pk, name in Customer.objects.filter(pk__in=customer_ids).values_list("pk", "time_zone")
    }
    utc = schedule.zone("UTC", "UTC")
    days = dates.of_customers(step["until_date"], customer_ids, lambda pk: zones.get(pk, utc))
    for e in ids:
        customer = batch.customers[e]
        due = date_due(step, days.get(customer), now=batch.now, tz=zones.get(customer, utc))
        batch.timers.append(JourneyTimer(enrolment_id=e, step=step_id, due_at=due))
    batch.log([e for e in ids if batch.customers[e] in days], step_id)
    batch.log([e for e in ids if batch.customers[e] not in days], step_id, "no date")


def best_hour_settings(step: dict) -> dict:
    """A delay's `until_best_hour` ({"window_hours", "explore_percent"}, or true) with defaults."""
    given = step["until_best_hour"] if isinstance(step["until_best_hour"], dict) else {}
    return {
        "window_hours": int(given.get("window_hours", 24)),
        "explore_percent": float(given.get("explore_percent", 10)),
    }


def _until_best_hour(batch: Batch, step_id: str, step: dict, ids: list[int]) -> None:
    """A timer at each customer's best local hour within the window (an explore share at a
    random hour, so the gain can be measured); the history says which and why."""
    settings_ = best_hour_settings(step)
    due = timing.best_hour_due(
        batch.version.journey.workspace_id,
        [batch.customers[e] for e in ids],
        batch.now,
        settings_["window_hours"],
        settings_["explore_percent"],
    )
    by_outcome = defaultdict(list)
    for e in ids:
        at, facts = due.get(batch.customers[e], (batch.now, {}))
        batch.timers.append(JourneyTimer(enrolment_id=e, step=step_id, due_at=at))
        if facts.get("hour_explore"):
            by_outcome["random hour (explore)"].append(e)
        elif facts.get("best_hour") is None:
            by_outcome["no best hour: now"].append(e)
        else:
            by_outcome[""].append(e)
    for outcome, members in by_outcome.items():
        batch.log(members, step_id, outcome)


def _update_attribute(batch: Batch, step: dict, ids: list[int]) -> None:
    customer_ids = {batch.customers[e] for e in ids}
    changed = []
    live = Customer.objects.filter(pk__in=customer_ids, erased_at__isnull=True)
    for customer in live.only("pk", "attributes"):
        customer.attributes = {**(customer.attributes or {}), step["attribute"]: step["value"]}
        customer.updated_at = batch.now  # what syncs by updated_at sees the change
        changed.append(customer)
    Customer.objects.bulk_update(changed, ["attributes", "updated_at"], batch_size=1000)


def _segment(batch: Batch, step: dict, ids: list[int]) -> None:
    workspace_id = batch.version.journey.workspace_id
    segment = Segment.objects.filter(
        pk=step["segment"], workspace_id=workspace_id, kind=Segment.Kind.STATIC
    ).first()
    if segment is None:  # deleted since publishing: the step does nothing and says so
        log.warning("journey %s: segment %s is gone", batch.version.journey_id, step["segment"])
        return
    customer_ids = [batch.customers[e] for e in ids]
    if step["action"] == "add":
        segment_add_members(segment=segment, customer_ids=customer_ids)
    else:
        segment.memberships.filter(customer_id__in=customer_ids).delete()


def _webhook(batch: Batch, step_id: str, step: dict, ids: list[int]) -> None:
    journey = batch.version.journey
    endpoint = WebhookEndpoint.objects.filter(
        pk=step["endpoint"], workspace_id=journey.workspace_id, active=True
    ).first()
    if endpoint is None:
        log.warning("journey %s: webhook endpoint %s is gone", journey.pk, step["endpoint"])
        return
    items = [
        (
            {
                "journey": journey.pk,
                "version": batch.version.number,
                "step": step_id,
                "enrolment": e,
                "customer": batch.customers[e],
                "trigger": batch.context[e],
            },
            None,
        )
        for e in ids
        if not batch.holdout[e]  # the control group gets no messages
    ]
    webhook_emit_many(
        workspace_id=journey.workspace_id, event="journey.step", items=items, endpoints=[endpoint]
    )


def _send(batch: Batch, step_id: str, step: dict, ids: list[int]) -> dict[str, list[int]]:
    """One ledger row per enrolment for the step's campaign: queued with its variant and due
    time (quiet hours kept, in the customer's time zone), or skipped with the reason a
    broadcast would give (no address, no consent, suppressed, the frequency cap shared with
    every campaign, the holdout). Delivery sends the queued ones as it sends a broadcast's.
    Returns the enrolments by outcome ("queued", or the reason)."""
    journey = batch.version.journey
    campaign = Campaign.objects.filter(
        pk=step["campaign"], workspace_id=journey.workspace_id, kind=Campaign.Kind.JOURNEY
    ).first()
    variants = (
        list(campaign.variants.filter(status=Variant.Status.APPROVED).order_by("name"))
        if campaign
        else []
    )
    if not variants:  # deleted or unapproved since publishing: nothing is sent, and it says so
        log.warning("journey %s: step %s has no approved message", journey.pk, step_id)
        return {"no approved message": ids}
    if campaign.status != Campaign.Status.SENDING:  # staff cancelled or paused its message
        log.warning("journey %s: step %s's message is %s", journey.pk, step_id, campaign.status)
        return {f"message {campaign.status}": ids}
    channel = channel_for(campaign.channel)
    customers = {
        c.pk: c
        for c in recipients.with_send_facts(
            campaign, Customer.objects.filter(pk__in={batch.customers[e] for e in ids})
        ).only("id", "email", "phone", "time_zone")
    }
    suppressed = set(
        Suppression.objects.filter(
            workspace_id=journey.workspace_id, channel=campaign.channel
        ).values_list("address", flat=True)
    )
    zones: dict[str, datetime] = {}
    rows, outcomes = [], defaultdict(list)
    reasons, facts = {}, defaultdict(dict)
    for e in ids:
        customer = customers.get(batch.customers[e])
        address = channel.address_of(customer) if customer else ""
        reasons[e] = (
            recipients.skip_reason(campaign, customer, address, suppressed)
            if customer
            else "customer erased"
        )
    # Who (the message's uplift targeting; the holdout's scores recorded too) and which variant
    # (its bandit, or the fixed split), decided for the batch at once.
    if campaign.targeting != Campaign.Targeting.EVERYONE:
        rule = targeting.message_rule(campaign)
        asked = [e for e in ids if not reasons[e]]
        try:
            allowed = targeting.journey_allows(campaign, [batch.customers[e] for e in asked], rule)
        except ValueError as exc:  # the message's targeting was saved half-set: send to no one
            log.warning("journey %s: step %s: %s", journey.pk, step_id, exc)
            allowed = {batch.customers[e]: (f"targeting: {exc}"[:300], {}) for e in asked}
        for e in asked:
            why, known = allowed.get(batch.customers[e], ("", {}))
            facts[e].update(known)
            if not batch.holdout[e]:
                reasons[e] = why
    split = allocation.FixedSplit(campaign, variants)  # each variant's share: its propensity
    chosen = {}
    if campaign.bandit:
        to_send = [batch.customers[e] for e in ids if not reasons[e] and not batch.holdout[e]]
        chosen = allocation.journey_choose(campaign, variants, to_send)
    for e in ids:
        customer = customers.get(batch.customers[e])
        address = channel.address_of(customer) if customer else ""
        reason = reasons[e]
        if not reason and batch.holdout[e]:
            reason = "holdout"
        name = (customer.time_zone if customer else "") or ""
        if name not in zones:
            zones[name] = schedule.due_time(
                timing=Campaign.Timing.NOW,
                tz=schedule.zone(name, settings.CAMPAIGN_DEFAULT_TIME_ZONE),
                now=batch.now,
                quiet_start=campaign.quiet_start,
                quiet_end=campaign.quiet_end,
            )
        variant = send_variant(variants, step_id, e)
        propensity = round(split.share[variant.pk], 6)
        decision = {**facts[e], "policy": "split"} if not reason else facts[e]
        if batch.customers[e] in chosen:
            variant_id, propensity, known = chosen[batch.customers[e]]
            variant = next(v for v in variants if v.pk == variant_id)
            decision = {**facts[e], **known}
        rows.append(
            Message(
                campaign=campaign,
                customer_id=batch.customers[e],
                enrolment_id=e,
                step=step_id,
                variant=None if reason else variant,
                propensity=None if reason else propensity,
                decision=decision,
                holdout=reason == "holdout",
                state=Message.State.SKIPPED if reason else Message.State.QUEUED,
                reason=reason,
                send_at=zones[name],
                address=address,
            )
        )
        # the history keeps a short outcome ("not targeted"); the ledger row has the whole reason
        outcomes[(reason if len(reason) <= 40 else reason.split(":")[0][:40]) or "queued"].append(e)
    # The ledger's own rule (one row per enrolment and step) refuses a second row.
    Message.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    if outcomes.get("queued"):
        deliveries_queue_on_commit(campaign.pk)
    return outcomes


def write(batch: Batch) -> None:
    """Writes where each enrolment of the batch rests now, its timers and its history."""
    for step_id, by_state in batch.resting.items():
        for state, ids in by_state.items():
            changes = {"step": step_id, "state": state}
            if state == Enrolment.State.FINISHED:
                changes["finished_at"] = batch.now
            Enrolment.objects.filter(pk__in=ids).update(**changes)
            if state == Enrolment.State.FINISHED:
                announce(
                    batch.version.journey, batch.version, ids, "journey.exited",
                    customers=batch.customers, reason=f"finished at {step_id}",
                )  # fmt: skip
    JourneyTimer.objects.bulk_create(batch.timers, batch_size=2000)
    EnrolmentStep.objects.bulk_create(batch.history, batch_size=2000)


def announce(journey, version, ids, event: str, *, customers: dict[int, int], reason: str = ""):
    """`journey.entered` / `journey.exited` for each enrolment, to the workspace's endpoints that
    subscribed (none subscribed: one query, nothing written)."""
    endpoints = endpoints_for(journey.workspace_id, event)
    if not endpoints or not ids:
        return
    items = []
    for e in ids:
        data = {"journey": journey.pk, "version": version.number, "enrolment": e,
                "customer": customers[e]}  # fmt: skip
        if reason:
            data["reason"] = reason
        items.append((data, None))
    webhook_emit_many(
        workspace_id=journey.workspace_id, event=event, items=items, endpoints=endpoints
    )
