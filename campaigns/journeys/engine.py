"""The journey engine: enrolments enter a version's graph and move through it, step by step,
each step run once.

Where an enrolment rests it holds a timer (a delay, or the timeout of a wait for an event), or it
is finished. Moving on happens in one transaction that claims what moves (due timers, claimed
in batches with FOR UPDATE SKIP LOCKED on PostgreSQL; or the timer of a waiting enrolment whose
event came, deleted where it is still unclaimed), runs the steps that follow at once
(conditions, splits, updates, webhooks) for the whole batch, and writes where each enrolment
rests next. A worker killed midway rolls the transaction back and the timers are due again: no
step runs twice and no enrolment is left without a timer or an end.

Steps are run set-wise (campaigns.journeys.steps), which is what lets a million enrolments due
at once move at thousands a second.
"""

import logging
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.journeys import steps
from campaigns.journeys.models import (
    Enrolment,
    EnrolmentStep,
    Journey,
    JourneyTimer,
    JourneyVersion,
)
from campaigns.models import Message
from crm.models import Customer, Event, EventOutbox, MembershipOutbox, Segment
from crm.segments import customers_matching

log = logging.getLogger(__name__)

UNFINISHED = (Enrolment.State.ACTIVE, Enrolment.State.WAITING)


# --- entering ---------------------------------------------------------------------------


def enrol(
    *,
    version: JourneyVersion,
    entrants: list[tuple[int, dict]],
    now: datetime | None = None,
    key: str = "",
) -> list[int]:
    """Takes customers (id, the context that started it) into `version` as its re-entry policy
    allows and runs them to their first rest. Returns the new enrolments' ids. Call inside a
    transaction; a customer already inside is not taken in again (the database refuses it)."""
    now = now or timezone.now()
    journey = version.journey
    definition = version.definition
    wanted = {}
    for customer_id, context in entrants:
        wanted.setdefault(customer_id, context)  # the first event that started it
    if not wanted:
        return []
    if definition.get("entry_filter"):
        allowed = set(
            customers_matching(
                journey.workspace, definition["entry_filter"], customer_ids=list(wanted)
            ).values_list("pk", flat=True)
        )
    else:
        allowed = set(
            Customer.objects.filter(
                pk__in=list(wanted), workspace_id=journey.workspace_id, erased_at__isnull=True
            ).values_list("pk", flat=True)
        )
    before = Enrolment.objects.filter(journey=journey, customer_id__in=allowed)
    policy = definition["reentry"]
    if policy["policy"] == "once":
        allowed -= set(before.values_list("customer_id", flat=True))
    elif policy["policy"] == "after_days":
        recent = now - timedelta(days=policy["days"])
        allowed -= set(before.filter(entered_at__gte=recent).values_list("customer_id", flat=True))
    inside = set(before.filter(finished_at__isnull=True).values_list("customer_id", flat=True))
    allowed -= inside
    if not allowed:
        return []
    start = definition["start"]
    rows = [
        Enrolment(
            workspace_id=journey.workspace_id,
            journey=journey,
            version=version,
            customer_id=c,
            step=start,
            context=wanted[c],
            entered_at=now,
            key=key,
        )
        for c in sorted(allowed)
    ]
    # A concurrent enrolment of the same customer (another batch, another worker) loses here.
    Enrolment.objects.bulk_create(rows, ignore_conflicts=True)
    ids = list(
        Enrolment.objects.filter(
            journey=journey, customer_id__in=allowed, entered_at=now, finished_at__isnull=True
        ).values_list("pk", flat=True)
    )
    if definition.get("holdout_percent"):
        held = [e for e in ids if steps.in_holdout(e, definition["holdout_percent"])]
        Enrolment.objects.filter(pk__in=held).update(holdout=True)
    batch = steps.batch_for(version, ids, now)
    steps.announce(journey, version, ids, "journey.entered", customers=batch.customers)
    steps.run(batch, start, ids)
    steps.write(batch)
    return ids


# --- timers -----------------------------------------------------------------------------


def _claim_due(now: datetime, limit: int) -> uuid.UUID:
    """Marks up to `limit` due timers of live journeys as this transaction's. On PostgreSQL
    SKIP LOCKED lets workers claim side by side; SQLite runs one writer at a time anyway. A
    paused journey's timers are left where they are until it resumes."""
    claim = uuid.uuid4()
    timers, enrolments, journeys = (
        JourneyTimer._meta.db_table,
        Enrolment._meta.db_table,
        Journey._meta.db_table,
    )
    lock = " FOR UPDATE OF t SKIP LOCKED" if connection.vendor == "postgresql" else ""
    # Table names are the models' own; every value is a bound parameter.
    sql = (
        f"UPDATE {timers} SET claim = %s WHERE id IN ("  # noqa: S608
        f"SELECT t.id FROM {timers} t JOIN {enrolments} e ON e.id = t.enrolment_id"
        f" JOIN {journeys} j ON j.id = e.journey_id"
        f" WHERE t.due_at <= %s AND t.claim IS NULL AND j.status = %s"
        # A timer only moves an enrolment that still rests where the timer says (one the
        # sweeper gave a moment before the enrolment finished otherwise is left to it).
        f" AND e.state IN (%s, %s) AND e.step = t.step"
        f" ORDER BY t.due_at LIMIT %s{lock})"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                claim.hex if connection.vendor == "sqlite" else claim,
                now,
                Journey.Status.LIVE,
                *UNFINISHED,
                limit,
            ],
        )
    return claim


@transaction.atomic
def advance_due(*, now: datetime | None = None, limit: int = 2000) -> int:
    """Moves on the enrolments whose timers are due (at most `limit`): the delay's next step, or
    a wait's "no" branch. Returns how many moved."""
    now = now or timezone.now()
    claim = _claim_due(now, limit)
    timers = list(
        JourneyTimer.objects.filter(claim=claim).values_list(
            "pk", "enrolment_id", "step", "enrolment__version_id", "met"
        )
    )
    if not timers:
        return 0
    groups: dict[tuple[int, str, bool], list[int]] = defaultdict(list)
    for _, enrolment, step, version, met in timers:
        groups[(version, step, met)].append(enrolment)
    JourneyTimer.objects.filter(claim=claim).delete()
    versions = JourneyVersion.objects.select_related("journey__workspace").in_bulk(
        {version for version, _, _ in groups}
    )
    for (version_id, step_id, met), ids in groups.items():
        version = versions[version_id]
        step = version.definition["steps"][step_id]
        if step["type"] == "delay":
            after = step["next"]
        else:  # met: its event came while the journey was paused
            after = step["yes"] if met else step["no"]
            _left(ids, step_id, "event came" if met else "timed out")
        batch = steps.batch_for(version, ids, now)
        steps.run(batch, after, ids)
        steps.write(batch)
    return len(timers)


def _left(ids: list[int], step_id: str, outcome: str) -> None:
    """Writes how the enrolments left a wait onto the history row of their arrival there."""
    EnrolmentStep.objects.filter(enrolment_id__in=ids, step=step_id, outcome="").update(
        outcome=outcome
    )


# --- events -----------------------------------------------------------------------------

# Transaction-scoped advisory locks: one reader of each outbox at a time. Two readers side by
# side (SKIP LOCKED) could take one customer's cart and purchase in different batches and act
# on the purchase before the cart had enrolled them; one at a time, every customer's events are
# read in the order they were recorded. A second reader waits for the first to commit.
EVENTS_LOCK = 0x6A6F75726E657931  # "journey1"
MEMBERSHIPS_LOCK = 0x6A6F75726E657932


class ReaderBusy(Exception):
    """Another reader has the outbox now (and reads on until it is empty)."""


def _take(outbox, columns: tuple[str, ...], limit: int, lock: int, wait: bool) -> list[tuple]:
    """Deletes the oldest `limit` rows of an outbox and returns their `columns`; the caller acts
    on them in the same transaction. One reader at a time: on PostgreSQL the advisory lock
    `lock` (waited for, or with `wait` false ReaderBusy at once: a worker's process is not
    held up behind a reader that will see the same rows); on SQLite the DELETE takes the
    database's one write lock first."""
    table = outbox._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock])
        elif connection.vendor == "postgresql":
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock])
            if not cursor.fetchone()[0]:
                raise ReaderBusy
        # The table and column names are the model's own; the limit is a bound parameter.
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id"  # noqa: S608
            f" LIMIT %s) RETURNING {', '.join(columns)}",
            [limit],
        )
        return cursor.fetchall()


def _matches(where: dict | None, properties: dict) -> bool:
    return all(properties.get(key) == value for key, value in (where or {}).items())


@transaction.atomic
def events_arrived(*, limit: int = 2000, now: datetime | None = None, wait: bool = True) -> int:
    """Takes a batch of recorded events from the outbox and acts on them: enrolments waiting
    for one move on its "yes" branch, exit events end enrolments, and triggers take customers
    in. The outbox rows go in the same transaction. Returns how many events were read; with
    `wait` false, ReaderBusy where another reader is at it."""
    now = now or timezone.now()
    taken = _take(EventOutbox, ("event_id",), limit, EVENTS_LOCK, wait)
    event_ids = [row[0] for row in taken]
    if not event_ids:
        return 0
    # Events that happened long ago (a back-filled history) or claim to come from the future
    # start nothing and meet no wait: a journey answers what customers do now.
    fresh = timedelta(hours=settings.JOURNEY_EVENT_MAX_AGE_HOURS)
    events = list(
        Event.objects.filter(
            pk__in=event_ids,
            occurred_at__gte=now - fresh,
            occurred_at__lte=now + timedelta(hours=1),
        )
        .order_by("pk")
        .values("pk", "workspace_id", "customer_id", "type", "properties")
    )
    # Each customer's events in the order they were recorded: the k-th event of every customer
    # goes in wave k, and a wave is handled set-wise (so a cart then a purchase in one batch
    # enrols, then meets the wait).
    waves: dict[int, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    seen: dict[int, int] = defaultdict(int)
    for event in events:
        wave = seen[event["customer_id"]]
        seen[event["customer_id"]] += 1
        waves[wave][event["workspace_id"]].append(event)
    for wave in sorted(waves):
        for workspace_id, items in waves[wave].items():
            _workspace_events(workspace_id, items, now)
    return len(event_ids)


def _workspace_events(workspace_id: int, events: list[dict], now: datetime) -> None:
    # A paused journey takes no one in, but its enrolments still leave on an exit event and
    # remember that the event they wait for came.
    journeys = list(
        Journey.objects.filter(
            workspace_id=workspace_id,
            status__in=(Journey.Status.LIVE, Journey.Status.PAUSED),
            version__isnull=False,
        ).select_related("version", "workspace")
    )
    if not journeys:
        return
    customers = {e["customer_id"] for e in events}
    _waits_met(customers, events, now)
    for journey in journeys:
        version = journey.version
        version.journey = journey
        definition = version.definition
        exits = set(definition.get("exit_on") or [])
        if exits:
            leaving = {e["customer_id"] for e in events if e["type"] in exits}
            if leaving:
                exit_enrolments(journey=journey, customer_ids=leaving, reason="exit event", now=now)
        trigger = definition["trigger"]
        if trigger["type"] != "event" or journey.status != Journey.Status.LIVE:
            continue
        entrants = [
            (
                e["customer_id"],
                {"event": e["type"], "event_id": e["pk"], "properties": e["properties"]},
            )
            for e in events
            if e["type"] in trigger["events"] and _matches(trigger.get("where"), e["properties"])
        ]
        if entrants:
            enrol(version=version, entrants=entrants, now=now)


def _waits_met(customers: set[int], events: list[dict], now: datetime) -> None:
    waiting = list(
        Enrolment.objects.filter(
            customer_id__in=customers, state=Enrolment.State.WAITING
        ).select_related("version__journey__workspace")
    )
    moved: dict[tuple[int, str], list[int]] = defaultdict(list)
    versions = {}
    for enrolment in waiting:
        status = enrolment.version.journey.status
        if status not in (Journey.Status.LIVE, Journey.Status.PAUSED):
            continue
        step = enrolment.version.definition["steps"].get(enrolment.step, {})
        if step.get("type") != "wait_event":
            continue
        if not any(
            e["customer_id"] == enrolment.customer_id
            and e["type"] == step["event"]
            and _matches(step.get("where"), e["properties"])
            for e in events
        ):
            continue
        timer = JourneyTimer.objects.filter(enrolment_id=enrolment.pk, claim__isnull=True)
        if status == Journey.Status.PAUSED:
            # It moves on its "yes" branch as soon as the journey resumes.
            timer.update(met=True, due_at=now)
            continue
        # The timeout's timer goes first: where a timer worker has claimed it, it has the
        # enrolment, and this event is too late for it.
        if timer.delete()[0]:
            moved[(enrolment.version_id, enrolment.step)].append(enrolment.pk)
            versions[enrolment.version_id] = enrolment.version
    for (version_id, step_id), ids in moved.items():
        _left(ids, step_id, "event came")
        batch = steps.batch_for(versions[version_id], ids, now)
        steps.run(batch, versions[version_id].definition["steps"][step_id]["yes"], ids)
        steps.write(batch)


@transaction.atomic
def memberships_changed(
    *, limit: int = 5000, now: datetime | None = None, wait: bool = True
) -> int:
    """Takes a batch of segment comings and goings from the outbox and acts on them: journeys
    that start on entering (or leaving) a segment take those customers in, and enrolments of
    journeys that end on leaving one end. Returns how many changes were read."""
    now = now or timezone.now()
    columns = ("id", "segment_id", "customer_id", "change")
    changes = sorted(_take(MembershipOutbox, columns, limit, MEMBERSHIPS_LOCK, wait))
    if not changes:
        return 0
    # The last word per customer and segment counts (entered, then left again: left).
    last: dict[tuple[int, int], str] = {}
    for _, segment_id, customer_id, change in changes:
        last[(segment_id, customer_id)] = change
    segments = {segment_id for segment_id, _ in last}
    workspaces = dict(Segment.objects.filter(pk__in=segments).values_list("pk", "workspace_id"))
    journeys = Journey.objects.filter(
        workspace_id__in=set(workspaces.values()),
        status__in=(Journey.Status.LIVE, Journey.Status.PAUSED),
        version__isnull=False,
    ).select_related("version", "workspace")
    for journey in journeys:
        version = journey.version
        version.journey = journey
        definition = version.definition
        leaving_segments = {int(x) for x in definition.get("exit_on_leaving") or []}
        leavers = {
            c for (seg, c), change in last.items() if change == "leave" and seg in leaving_segments
        }
        if leavers:
            exit_enrolments(journey=journey, customer_ids=leavers, reason="left a segment", now=now)
        trigger = definition["trigger"]
        if trigger["type"] != "segment" or journey.status != Journey.Status.LIVE:
            continue
        entrants = [
            (customer_id, {"segment": segment_id, "change": change})
            for (segment_id, customer_id), change in sorted(last.items())
            if segment_id == int(trigger["segment"]) and change == trigger["on"]
        ]
        if entrants:
            enrol(version=version, entrants=entrants, now=now)
    return len(changes)


def exit_enrolments(
    *, journey: Journey | None, customer_ids=None, enrolment_ids=None, reason: str, now=None
) -> int:
    """Ends unfinished enrolments where they are: the journey's (all of them, or these
    customers' or these enrolments'), or with no journey, these customers' in every journey."""
    now = now or timezone.now()
    inside = Enrolment.objects.filter(state__in=UNFINISHED)
    if journey is not None:
        inside = inside.filter(journey=journey)
    if customer_ids is not None:
        inside = inside.filter(customer_id__in=list(customer_ids))
    if enrolment_ids is not None:
        inside = inside.filter(pk__in=list(enrolment_ids))
    leaving = list(inside.select_related("journey", "version").order_by("pk"))
    ids = [e.pk for e in leaving]
    if not ids:
        return 0
    JourneyTimer.objects.filter(enrolment_id__in=ids).delete()
    # A message not sent yet (quiet hours, a retry) is not sent once its enrolment has left.
    Message.objects.filter(enrolment_id__in=ids, state=Message.State.QUEUED).update(
        state=Message.State.SKIPPED, reason=f"left the journey: {reason}"[:300]
    )
    exited = Enrolment.objects.filter(pk__in=ids, state__in=UNFINISHED).update(
        state=Enrolment.State.EXITED, finished_at=now, exit_reason=reason[:100]
    )
    by_version = defaultdict(list)
    for enrolment in leaving:
        by_version[enrolment.version_id].append(enrolment)
    for members in by_version.values():
        steps.announce(
            members[0].journey, members[0].version, [e.pk for e in members], "journey.exited",
            customers={e.pk: e.customer_id for e in members}, reason=reason,
        )  # fmt: skip
    return exited


def sweep(*, now: datetime | None = None) -> dict:
    """The invariant's keeper: every unfinished enrolment holds a timer. One that holds none (it
    should never happen: every rest writes its timer in the transaction that moves it there) is
    given one due now at the step it stands at, so it moves on from there, once; a timer whose
    enrolment has finished or stands elsewhere is deleted. Both are logged."""
    now = now or timezone.now()
    lost = list(
        Enrolment.objects.filter(state__in=UNFINISHED, timer__isnull=True).values_list(
            "pk", "step"
        )[:10_000]
    )
    if lost:
        JourneyTimer.objects.bulk_create(
            [JourneyTimer(enrolment_id=pk, step=step, due_at=now) for pk, step in lost],
            ignore_conflicts=True,  # a timer written since by the engine is the right one
        )
        log.error("journeys: %d enrolments held no timer; each given one due now", len(lost))
    stray = JourneyTimer.objects.filter(claim__isnull=True).exclude(enrolment__state__in=UNFINISHED)
    strays = stray.delete()[0]
    if strays:
        log.warning("journeys: %d timers of finished enrolments deleted", strays)
    return {"repaired": len(lost), "stray_timers": strays}


def stuck(*, journey: Journey | None = None) -> int:
    """Unfinished enrolments holding no timer: there should be none (every rest writes one)."""
    inside = Enrolment.objects.filter(state__in=UNFINISHED, timer__isnull=True)
    if journey is not None:
        inside = inside.filter(journey=journey)
    return inside.count()
