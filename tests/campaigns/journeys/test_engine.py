"""campaigns.journeys.engine and services: events reach journeys through the outbox, enrolments
move through the graph, each step once, and none is left without a timer or an end."""

import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.db import connection, transaction
from django.utils import timezone

from campaigns.journeys import engine, selectors, services
from campaigns.journeys.models import Enrolment, EnrolmentStep, Journey, JourneyTimer
from campaigns.models import WebhookDelivery, WebhookEndpoint
from crm import services as crm
from crm.models import Customer, EventOutbox, Segment, Workspace
from tests.conftest import start_worker, stop_worker, wait_for_worker, wait_until


@pytest.fixture
def shop(db):
    workspace = Workspace.objects.create(slug="shop", name="Shop")
    crm.customer_bulk_upsert(
        workspace=workspace,
        rows=[
            {"email": "ada@example.com", "country": "GB", "time_zone": "Europe/London"},
            {"email": "bob@example.com", "country": "US", "time_zone": "America/New_York"},
            {"email": "cyd@example.com", "country": "JP", "time_zone": "Asia/Tokyo"},
        ],
    )
    return workspace


def people(workspace) -> dict[str, Customer]:
    return {c.email.split("@")[0]: c for c in Customer.objects.filter(workspace=workspace)}


def event(workspace, who: Customer, kind: str, key: str | None = None, **properties):
    result = crm.event_bulk_create(
        workspace=workspace,
        rows=[{"customer": str(who.pk), "type": kind, "properties": properties,
               "idempotency_key": key, "occurred_at": timezone.now().isoformat()}],
    )  # fmt: skip
    assert not result.errors, result.errors


def abandoned_cart(workspace, name: str = "Cart", **changes) -> Journey:
    nudged, _ = Segment.objects.get_or_create(
        workspace=workspace, name="Nudged", kind=Segment.Kind.STATIC
    )
    definition = {
        "trigger": {"type": "event", "event": "cart_updated"},
        "start": "wait",
        "steps": {
            "wait": {"type": "wait_event", "event": "purchase", "timeout": "4h",
                     "yes": "bought", "no": "nudge"},
            "nudge": {"type": "segment", "action": "add", "segment": nudged.pk, "next": "done"},
            "bought": {"type": "exit"},
            "done": {"type": "exit"},
        },
        **changes,
    }  # fmt: skip
    journey = services.journey_create(workspace=workspace, name=name, definition=definition)
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    return journey


def path(enrolment: Enrolment) -> list[tuple[str, str]]:
    return list(enrolment.history.order_by("pk").values_list("step", "outcome"))


def test_the_outbox_has_every_event_the_database_kept_once(shop):
    ada = people(shop)["ada"]
    event(shop, ada, "viewed")
    assert not EventOutbox.objects.exists()  # nobody asked for this workspace's events yet
    Workspace.objects.filter(pk=shop.pk).update(event_outbox=True)
    event(shop, ada, "cart_updated", key="cart-1")
    event(shop, ada, "cart_updated", key="cart-1")  # the same event again: kept once
    crm.product_bulk_upsert(workspace=shop, rows=[{"sku": "T1", "name": "Teapot", "price": "9"}])
    ordered = crm.order_bulk_upsert(workspace=shop, rows=[{
        "external_id": "o-1", "customer": str(ada.pk), "placed_at": timezone.now().isoformat(),
        "currency": "GBP", "lines": [{"sku": "T1", "quantity": 1, "unit_price": "9"}],
    }])  # fmt: skip
    assert not ordered.errors, ordered.errors
    assert sorted(EventOutbox.objects.values_list("type", flat=True)) == [
        "cart_updated",
        "purchase",
    ]


def test_a_cart_with_no_purchase_moves_on_when_the_wait_times_out(shop):
    journey = abandoned_cart(shop)
    ada = people(shop)["ada"]
    event(shop, ada, "cart_updated", items=[{"sku": "T1", "quantity": 2}])
    assert engine.events_arrived() == 1
    enrolment = Enrolment.objects.get(journey=journey)
    assert enrolment.state == Enrolment.State.WAITING and enrolment.step == "wait"
    assert enrolment.context["properties"]["items"] == [{"sku": "T1", "quantity": 2}]
    assert engine.advance_due() == 0  # not due yet
    later = timezone.now() + timedelta(hours=4, seconds=1)
    assert engine.advance_due(now=later) == 1
    enrolment.refresh_from_db()
    assert enrolment.state == Enrolment.State.FINISHED and enrolment.step == "done"
    assert path(enrolment) == [("wait", "timed out"), ("nudge", "add"), ("done", "")]
    assert Segment.objects.get(name="Nudged").memberships.filter(customer=ada).exists()
    assert engine.stuck() == 0 and not JourneyTimer.objects.exists()


def test_a_purchase_inside_the_wait_takes_the_yes_branch_and_the_timer_goes(shop):
    journey = abandoned_cart(shop)
    ada = people(shop)["ada"]
    event(shop, ada, "cart_updated")
    event(shop, ada, "cart_updated")  # a second cart while inside: still one enrolment
    event(shop, ada, "purchase")
    engine.events_arrived()
    (enrolment,) = Enrolment.objects.filter(journey=journey)
    assert enrolment.state == Enrolment.State.FINISHED and enrolment.step == "bought"
    assert path(enrolment) == [("wait", "event came"), ("bought", "")]
    assert not JourneyTimer.objects.exists() and engine.stuck() == 0
    assert engine.advance_due(now=timezone.now() + timedelta(days=1)) == 0


def test_an_exit_event_ends_an_enrolment_wherever_it_waits(shop):
    journey = abandoned_cart(shop, exit_on=["unsubscribed"])
    bob = people(shop)["bob"]
    event(shop, bob, "cart_updated")
    engine.events_arrived()
    event(shop, bob, "unsubscribed")
    engine.events_arrived()
    enrolment = Enrolment.objects.get(journey=journey)
    assert enrolment.state == Enrolment.State.EXITED and enrolment.exit_reason == "exit event"
    assert not JourneyTimer.objects.exists()


def test_reentry_once_ever_and_again_after_it_finished(shop):
    once = abandoned_cart(shop, reentry={"policy": "once"})
    ada = people(shop)["ada"]
    for _ in range(2):
        event(shop, ada, "cart_updated")
        event(shop, ada, "purchase")
        engine.events_arrived()
    assert Enrolment.objects.filter(journey=once).count() == 1
    services.journey_stop(journey=once)
    again = abandoned_cart(shop, name="Cart again", reentry={"policy": "not_inside"})
    for _ in range(2):
        event(shop, ada, "cart_updated")
        event(shop, ada, "purchase")
        engine.events_arrived()
    assert Enrolment.objects.filter(journey=again, state=Enrolment.State.FINISHED).count() == 2


def branching(workspace) -> Journey:
    definition = {
        "trigger": {"type": "api"},
        "start": "gb",
        "steps": {
            "gb": {"type": "condition", "yes": "mark", "no": "morning",
                   "rules": {"attribute": "country", "op": "eq", "value": "GB"}},
            "mark": {"type": "update_attribute", "attribute": "tier", "value": "uk", "next": "end"},
            "morning": {"type": "delay", "until_time": "09:00", "next": "end"},
            "end": {"type": "exit"},
        },
    }  # fmt: skip
    journey = services.journey_create(workspace=workspace, name="Branch", definition=definition)
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    return journey


def test_a_condition_splits_and_a_local_time_delay_waits_for_each_time_zone(shop):
    journey = branching(shop)
    who = people(shop)
    version = journey.version
    now = timezone.now().replace(
        year=2026, month=12, day=2, hour=12, minute=0, second=0, microsecond=0
    )
    engine.enrol(version=version, entrants=[(c.pk, {}) for c in who.values()], now=now)
    ada = Enrolment.objects.get(customer=who["ada"])
    assert ada.state == Enrolment.State.FINISHED and path(ada) == [("gb", "yes"), ("mark", ""),
                                                                    ("end", "")]  # fmt: skip
    assert Customer.objects.get(pk=who["ada"].pk).attributes["tier"] == "uk"
    due = {t.enrolment.customer.email[:3]: t.due_at for t in JourneyTimer.objects.select_related(
        "enrolment__customer")}  # fmt: skip
    # 12:00 UTC is 07:00 in New York (09:00 comes today) and 21:00 in Tokyo (tomorrow's).
    assert due["bob"] == now.replace(hour=14)
    assert due["cyd"] == now.replace(hour=0) + timedelta(days=1)
    assert engine.advance_due(now=now + timedelta(hours=2)) == 1
    assert engine.advance_due(now=now + timedelta(hours=13)) == 1
    assert engine.stuck() == 0
    assert set(Enrolment.objects.values_list("state", flat=True)) == {Enrolment.State.FINISHED}


def test_a_paused_journey_keeps_its_enrolments_where_they_are(shop):
    journey = abandoned_cart(shop)
    event(shop, people(shop)["ada"], "cart_updated")
    engine.events_arrived()
    services.journey_pause(journey=journey)
    later = timezone.now() + timedelta(hours=5)
    assert engine.advance_due(now=later) == 0
    event(shop, people(shop)["bob"], "cart_updated")
    engine.events_arrived()
    assert Enrolment.objects.count() == 1  # a paused journey takes no one in
    services.journey_resume(journey=journey)
    assert engine.advance_due(now=later) == 1
    services.journey_stop(journey=journey)
    with pytest.raises(services.JourneyError):
        services.journey_publish(journey=journey)


def test_publishing_refuses_a_segment_of_another_workspace(shop):
    other = Workspace.objects.create(slug="other", name="Other")
    theirs = Segment.objects.create(workspace=other, name="Theirs", kind=Segment.Kind.STATIC)
    journey = services.journey_create(workspace=shop, name="Leaky", definition={
        "start": "a", "steps": {"a": {"type": "segment", "action": "add", "segment": theirs.pk,
                                      "next": "b"}, "b": {"type": "exit"}},
    })  # fmt: skip
    with pytest.raises(services.JourneyError) as refused:
        services.journey_publish(journey=journey)
    assert "steps.a.segment" in refused.value.errors
    journey.refresh_from_db()
    assert journey.status == Journey.Status.DRAFT and journey.version is None


def delays(workspace, n: int) -> Journey:
    definition = {
        "start": "wait",
        "steps": {
            "wait": {"type": "delay", "duration": "1h", "next": "split"},
            "split": {"type": "split", "branches": [{"weight": 1, "next": "a"},
                                                    {"weight": 1, "next": "b"}]},
            "a": {"type": "exit"},
            "b": {"type": "exit"},
        },
    }  # fmt: skip
    journey = services.journey_create(workspace=workspace, name=f"Delay {n}", definition=definition)
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    rows = [{"email": f"p{i}@example.com"} for i in range(n)]
    crm.customer_bulk_upsert(workspace=workspace, rows=rows)
    ids = Customer.objects.filter(workspace=workspace, email__startswith="p").values_list(
        "pk", flat=True
    )
    engine.enrol(version=journey.version, entrants=[(pk, {}) for pk in ids])
    return journey


@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_due_timers_move_each_enrolment_once():
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite runs one writer at a time")
    workspace = Workspace.objects.create(slug="race", name="Race")
    journey = delays(workspace, 3000)
    later = timezone.now() + timedelta(hours=2)
    moved: list[int] = []

    def worker() -> None:
        try:
            while True:
                done = engine.advance_due(now=later, limit=250)
                if not done:
                    return
                moved.append(done)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(moved) == 3000
    left = EnrolmentStep.objects.filter(enrolment__journey=journey, step="split")
    assert left.count() == 3000 and left.values("enrolment").distinct().count() == 3000
    finished = Enrolment.objects.filter(journey=journey, state=Enrolment.State.FINISHED)
    assert finished.count() == 3000 and engine.stuck() == 0
    a = finished.filter(step="a").count()
    assert 1300 < a < 1700  # the split's weights, drawn per enrolment


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_moves_an_api_enrolment_through_its_delay(live_worker):
    workspace = Workspace.objects.create(slug="live", name="Live")
    crm.customer_bulk_upsert(workspace=workspace, rows=[{"email": "eve@example.com"}])
    eve = Customer.objects.get(workspace=workspace)
    journey = services.journey_create(workspace=workspace, name="Soon", definition={
        "start": "wait", "steps": {"wait": {"type": "delay", "duration": "1s", "next": "end"},
                                   "end": {"type": "exit"}},
    })  # fmt: skip
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    enrolment, created = services.enrolment_create(journey=journey, customer=eve, key="k-1")
    assert created and enrolment.state == Enrolment.State.ACTIVE
    again, created = services.enrolment_create(journey=journey, customer=eve, key="k-1")
    assert again.pk == enrolment.pk and not created  # the same key: the same enrolment

    def nudge_and_check() -> bool:
        services.advance_soon()  # the beat does this every second in a running platform
        enrolment.refresh_from_db()
        return enrolment.state == Enrolment.State.FINISHED

    wait_until(nudge_and_check, timeout=30, interval=0.5)
    assert path(enrolment) == [("wait", ""), ("end", "")]
    assert engine.stuck() == 0


def test_stats_count_who_entered_each_step_stands_there_and_left(shop):
    journey = abandoned_cart(shop)
    who = people(shop)
    for name in ("ada", "bob", "cyd"):
        event(shop, who[name], "cart_updated")
    event(shop, who["ada"], "purchase")
    engine.events_arrived()
    stats = selectors.journey_stats(journey=journey)
    assert stats["enrolments"]["waiting"] == 2 and stats["enrolments"]["finished"] == 1
    assert stats["steps"]["wait"] == {"entered": 3, "now": 2, "left": 1}
    assert stats["steps"]["bought"] == {"entered": 1, "now": 0, "left": 1}
    assert stats["steps"]["nudge"]["entered"] == 0


def test_a_webhook_step_signs_a_delivery_for_each_enrolment_but_the_holdout(shop):
    endpoint = WebhookEndpoint.objects.create(
        workspace=shop, url="https://hooks.example.com/j", secret="s", events=["journey.step"]
    )
    journey = services.journey_create(workspace=shop, name="Hook", definition={
        "holdout_percent": 50, "start": "hook",
        "steps": {"hook": {"type": "webhook", "endpoint": endpoint.pk, "next": "end"},
                  "end": {"type": "exit"}},
    })  # fmt: skip
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    crm.customer_bulk_upsert(
        workspace=shop, rows=[{"email": f"h{i}@example.com"} for i in range(40)]
    )
    customers = Customer.objects.filter(workspace=shop, email__startswith="h")
    engine.enrol(version=journey.version, entrants=[(c.pk, {"why": "test"}) for c in customers])
    held = Enrolment.objects.filter(journey=journey, holdout=True).count()
    assert 8 <= held <= 32  # about half, drawn per enrolment
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint, event="journey.step")
    assert deliveries.count() == 40 - held
    payload = deliveries.first().payload["data"]
    assert payload["journey"] == journey.pk and payload["step"] == "hook"
    assert payload["trigger"] == {"why": "test"}
    assert Enrolment.objects.filter(journey=journey, state=Enrolment.State.FINISHED).count() == 40


def test_while_paused_an_exit_event_still_ends_and_a_met_wait_takes_yes_on_resume(shop):
    journey = abandoned_cart(shop, exit_on=["unsubscribed"])
    who = people(shop)
    event(shop, who["ada"], "cart_updated")
    event(shop, who["bob"], "cart_updated")
    engine.events_arrived()
    services.journey_pause(journey=journey)
    event(shop, who["ada"], "purchase")  # what ada waited for, while the journey is paused
    event(shop, who["bob"], "unsubscribed")
    engine.events_arrived()
    bob = Enrolment.objects.get(customer=who["bob"])
    assert bob.state == Enrolment.State.EXITED  # an exit applies paused or not
    assert engine.advance_due() == 0  # nothing moves while paused
    services.journey_resume(journey=journey)
    assert engine.advance_due() == 1  # at once, not at the timeout
    ada = Enrolment.objects.get(customer=who["ada"])
    assert ada.step == "bought" and path(ada) == [("wait", "event came"), ("bought", "")]
    assert not Segment.objects.get(name="Nudged").memberships.exists()


def test_an_old_event_starts_nothing(shop, settings):
    settings.JOURNEY_EVENT_MAX_AGE_HOURS = 24
    journey = abandoned_cart(shop)
    ada = people(shop)["ada"]
    crm.event_bulk_create(workspace=shop, rows=[{
        "customer": str(ada.pk), "type": "cart_updated",
        "occurred_at": (timezone.now() - timedelta(days=2)).isoformat(),
    }])  # fmt: skip
    assert engine.events_arrived() == 1  # read, and left
    assert not Enrolment.objects.filter(journey=journey).exists()


def test_erasure_takes_a_customer_out_of_every_journey_and_forgets_why_they_came(shop):
    from crm.services import privacy

    abandoned_cart(shop)
    ada = people(shop)["ada"]
    event(shop, ada, "cart_updated", note="Ada Lovelace, 12 Acacia Avenue")
    engine.events_arrived()
    exported = privacy.privacy_export(customer=ada, actor="test")
    assert exported["journeys"][0]["context"]["properties"]["note"].startswith("Ada")
    privacy.privacy_erase(customer=ada, actor="test")
    enrolment = Enrolment.objects.get(customer=ada)
    assert enrolment.state == Enrolment.State.EXITED and enrolment.context == {}
    assert not JourneyTimer.objects.exists()


def test_exiting_an_old_enrolment_leaves_the_customers_current_one(shop):
    journey = abandoned_cart(shop, reentry={"policy": "not_inside"})
    ada = people(shop)["ada"]
    event(shop, ada, "cart_updated")
    engine.events_arrived()
    first = Enrolment.objects.get(customer=ada)
    assert services.enrolment_exit(enrolment=first)
    event(shop, ada, "cart_updated")
    engine.events_arrived()
    second = Enrolment.objects.get(customer=ada, finished_at__isnull=True)
    assert not services.enrolment_exit(enrolment=first)  # it had ended
    second.refresh_from_db()
    assert second.state == Enrolment.State.WAITING
    other = people(shop)["bob"]
    services.enrolment_create(journey=journey, customer=other, key="k")
    with pytest.raises(services.JourneyError) as refused:
        services.enrolment_create(journey=journey, customer=ada, key="k")
    assert "key" in refused.value.errors


def test_publishing_a_paused_journey_keeps_it_paused(shop):
    journey = abandoned_cart(shop)
    services.journey_pause(journey=journey)
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    assert journey.status == Journey.Status.PAUSED and journey.version.number == 2


def test_entering_and_leaving_are_told_to_the_endpoints_that_subscribed(shop):
    told = WebhookEndpoint.objects.create(
        workspace=shop, url="https://hooks.example.com/j", secret="s",
        events=["journey.entered", "journey.exited"],
    )  # fmt: skip
    WebhookEndpoint.objects.create(
        workspace=shop, url="https://hooks.example.com/other", secret="s", events=["message.sent"]
    )
    journey = abandoned_cart(shop, exit_on=["unsubscribed"])
    who = people(shop)
    event(shop, who["ada"], "cart_updated")
    event(shop, who["bob"], "cart_updated")
    event(shop, who["ada"], "purchase")
    event(shop, who["bob"], "unsubscribed")
    engine.events_arrived()
    sent = [
        (d.event, d.payload["data"]["customer"], d.payload["data"].get("reason"))
        for d in WebhookDelivery.objects.order_by("pk")
    ]
    assert sorted(sent, key=str) == sorted([
        ("journey.entered", who["ada"].pk, None),
        ("journey.entered", who["bob"].pk, None),
        ("journey.exited", who["ada"].pk, "finished at bought"),
        ("journey.exited", who["bob"].pk, "exit event"),
    ], key=str)  # fmt: skip
    assert all(d.endpoint_id == told.pk for d in WebhookDelivery.objects.all())
    assert WebhookDelivery.objects.first().payload["data"]["journey"] == journey.pk


def test_entering_a_segment_starts_a_journey_and_leaving_another_ends_it(shop):
    from crm.services.segments import segment_add_members

    vip = Segment.objects.create(workspace=shop, name="VIP", kind=Segment.Kind.STATIC)
    keep = Segment.objects.create(workspace=shop, name="Keep", kind=Segment.Kind.STATIC)
    journey = services.journey_create(workspace=shop, name="VIP welcome", definition={
        "trigger": {"type": "segment", "segment": vip.pk},
        "exit_on_leaving": [keep.pk],
        "start": "wait",
        "steps": {"wait": {"type": "delay", "duration": "1d", "next": "end"},
                  "end": {"type": "exit"}},
    })  # fmt: skip
    services.journey_publish(journey=journey)
    who = people(shop)
    segment_add_members(segment=keep, customer_ids=[who["ada"].pk, who["bob"].pk])
    segment_add_members(segment=vip, customer_ids=[who["ada"].pk, who["bob"].pk])
    unheard = Segment.objects.create(workspace=shop, name="Unheard", kind=Segment.Kind.STATIC)
    segment_add_members(segment=unheard, customer_ids=[who["cyd"].pk])
    assert engine.memberships_changed() == 4  # the two segments it listens to, not the third
    inside = Enrolment.objects.filter(journey=journey)
    assert {e.customer_id for e in inside} == {who["ada"].pk, who["bob"].pk}
    assert inside.first().context == {"segment": vip.pk, "change": "enter"}
    keep.memberships.filter(customer=who["bob"]).delete()
    assert engine.memberships_changed() == 1
    bob = Enrolment.objects.get(journey=journey, customer=who["bob"])
    assert bob.state == Enrolment.State.EXITED and bob.exit_reason == "left a segment"
    assert Enrolment.objects.get(journey=journey, customer=who["ada"]).state == "active"


def test_a_segment_of_another_workspace_cannot_start_a_journey(shop):
    other = Workspace.objects.create(slug="other2", name="Other")
    theirs = Segment.objects.create(workspace=other, name="Theirs", kind=Segment.Kind.STATIC)
    journey = services.journey_create(workspace=shop, name="Leaky 2", definition={
        "trigger": {"type": "segment", "segment": theirs.pk}, "exit_on_leaving": [theirs.pk],
        "start": "e", "steps": {"e": {"type": "exit"}},
    })  # fmt: skip
    with pytest.raises(services.JourneyError) as refused:
        services.journey_publish(journey=journey)
    assert set(refused.value.errors) == {"trigger.segment", "exit_on_leaving.0"}


@pytest.mark.django_db(transaction=True)
def test_readers_side_by_side_still_read_each_customers_events_in_order():
    """Four readers taking one event at a time: every cart is enrolled before its purchase is
    read, so each purchase meets its wait (side by side with SKIP LOCKED, some would not)."""
    if connection.vendor != "postgresql":
        pytest.skip("the readers' lock is PostgreSQL's; SQLite runs one writer at a time")
    workspace = Workspace.objects.create(slug="order", name="Order")
    journey = abandoned_cart(workspace)
    crm.customer_bulk_upsert(workspace=workspace, rows=[
        {"email": f"o{i}@example.com"} for i in range(60)
    ])  # fmt: skip
    now = timezone.now().isoformat()
    rows = []
    for customer in Customer.objects.filter(workspace=workspace).order_by("pk"):
        for kind in ("cart_updated", "purchase"):
            rows.append({"customer": str(customer.pk), "type": kind, "occurred_at": now})
    assert not crm.event_bulk_create(workspace=workspace, rows=rows).errors

    def reader() -> None:
        try:
            while engine.events_arrived(limit=1):
                pass
        finally:
            connection.close()

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    states = set(Enrolment.objects.filter(journey=journey).values_list("step", "state"))
    assert states == {("bought", Enrolment.State.FINISHED)}
    assert Enrolment.objects.filter(journey=journey).count() == 60


class _Hooks(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        type(self).received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.django_db(transaction=True)
def test_an_event_reaches_the_webhook_step_and_its_receiver_without_waiting_for_a_sweep(own_redis):
    # No beat runs here: only the nudges (events written, deliveries queued) move it.
    server = HTTPServer(("127.0.0.1", 0), _Hooks)
    _Hooks.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"hooks-{uuid.uuid4().hex[:6]}"
    allow = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1", "WEBHOOK_ALLOW_HTTP": "1"}
    worker = start_worker("default,sends", name, {"REDIS_URL": own_redis.url, **allow})
    try:
        workspace = Workspace.objects.create(slug="hooks", name="Hooks")
        endpoint = WebhookEndpoint.objects.create(
            workspace=workspace, url=f"http://127.0.0.1:{server.server_port}/hook", secret="s",
            events=["journey.step"],
        )  # fmt: skip
        journey = services.journey_create(workspace=workspace, name="Hook", definition={
            "trigger": {"type": "event", "event": "signal"}, "start": "hook",
            "steps": {"hook": {"type": "webhook", "endpoint": endpoint.pk, "next": "end"},
                      "end": {"type": "exit"}},
        })  # fmt: skip
        services.journey_publish(journey=journey)
        crm.customer_bulk_upsert(workspace=workspace, rows=[{"email": "sig@example.com"}])
        wait_for_worker(name)
        event(workspace, Customer.objects.get(workspace=workspace), "signal", n=1)
        wait_until(lambda: _Hooks.received, timeout=20, interval=0.05)
        assert _Hooks.received[0]["data"]["trigger"]["properties"] == {"n": 1}
        # The run writes its outcomes once its posts are answered: a moment after the receipt.
        delivered = WebhookDelivery.objects.filter(state=WebhookDelivery.State.DELIVERED)
        wait_until(delivered.exists, timeout=10, interval=0.05)
        assert WebhookDelivery.objects.count() == 1
    finally:
        stop_worker(worker)
        server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_a_worker_finding_another_reader_at_the_outbox_moves_on_instead_of_waiting():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is no second reader to find")
    holding, release = threading.Event(), threading.Event()

    def other_reader() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [engine.EVENTS_LOCK])
            holding.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_reader)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(engine.ReaderBusy):
            engine.events_arrived(wait=False)
    finally:
        release.set()
        thread.join()
    assert engine.events_arrived(wait=False) == 0  # the outbox is free again (and empty)


def test_staff_move_those_inside_an_old_version_to_the_step_of_the_same_id_in_the_new(shop):
    first = {
        "start": "where",
        "steps": {
            "where": {"type": "condition", "rules": {"attribute": "country", "op": "eq",
                      "value": "GB"}, "yes": "a", "no": "b"},
            "a": {"type": "delay", "duration": "1h", "next": "end"},
            "b": {"type": "wait_event", "event": "purchase", "timeout": "1h", "yes": "end",
                  "no": "end"},
            "end": {"type": "exit"},
        },
    }  # fmt: skip
    journey = services.journey_create(workspace=shop, name="Moving", definition=first)
    with pytest.raises(services.JourneyError):
        services.journey_move(journey=journey)  # nothing published: nothing to move onto
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    who = people(shop)
    now = timezone.now()
    engine.enrol(version=journey.version, entrants=[(c.pk, {}) for c in who.values()], now=now)
    ada = Enrolment.objects.get(customer=who["ada"])
    due = JourneyTimer.objects.get(enrolment=ada).due_at
    # The second version keeps "a" (a delay still) and drops "b"; "a" now leads to a new step.
    journey.definition = {
        "start": "a",
        "steps": {
            "a": {"type": "delay", "duration": "2h", "next": "mark"},
            "mark": {"type": "update_attribute", "attribute": "moved", "value": True,
                     "next": "end"},
            "end": {"type": "exit"},
        },
    }  # fmt: skip
    journey.save()
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    assert services.journey_move(journey=journey) == {"moved": 1, "stayed": {"v1 b": 2}}
    ada.refresh_from_db()
    assert ada.version == journey.version
    assert JourneyTimer.objects.get(enrolment=ada).due_at == due  # its wait is not restarted
    assert services.journey_move(journey=journey) == {"moved": 0, "stayed": {"v1 b": 2}}
    engine.advance_due(now=due + timedelta(seconds=1))
    ada.refresh_from_db()
    assert ada.state == Enrolment.State.FINISHED
    assert path(ada) == [("where", "yes"), ("a", ""), ("mark", ""), ("end", "")]
    assert Customer.objects.get(pk=who["ada"].pk).attributes["moved"] is True
    # The others finish the version they entered: its "b" times out onto its own "end".
    assert set(Enrolment.objects.filter(state=Enrolment.State.FINISHED).values_list(
        "version__number", flat=True)) == {1, 2}  # fmt: skip
    assert engine.stuck() == 0


def test_an_enrolment_a_worker_is_moving_on_stays_in_its_version(shop):
    journey = services.journey_create(workspace=shop, name="Busy", definition={
        "start": "a", "steps": {"a": {"type": "delay", "duration": "1h", "next": "end"},
                                "end": {"type": "exit"}},
    })  # fmt: skip
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    ada = people(shop)["ada"]
    engine.enrol(version=journey.version, entrants=[(ada.pk, {})])
    JourneyTimer.objects.update(claim=uuid.uuid4())  # a worker has it
    services.journey_publish(journey=journey)  # the same draft again: version 2
    journey.refresh_from_db()
    assert services.journey_move(journey=journey) == {"moved": 0, "stayed": {"v1 a": 1}}


def test_the_sweeper_gives_an_enrolment_without_a_timer_one_and_drops_a_finished_ones(shop):
    journey = delays(shop, 3)
    enrolments = list(Enrolment.objects.filter(journey=journey).order_by("pk"))
    lost, done, fine = enrolments
    JourneyTimer.objects.filter(enrolment=lost).delete()  # as a bug would leave it
    assert engine.stuck() == 1
    Enrolment.objects.filter(pk=done.pk).update(state=Enrolment.State.FINISHED)  # timer kept
    now = timezone.now()
    assert engine.sweep(now=now) == {"repaired": 1, "stray_timers": 1}
    assert engine.stuck() == 0
    assert engine.sweep(now=now) == {"repaired": 0, "stray_timers": 0}
    assert engine.advance_due(now=now) == 1  # the repaired one, from the step it stood at
    lost.refresh_from_db()
    assert lost.state == Enrolment.State.FINISHED
    assert [s for s, _ in path(lost)].count("wait") == 1  # nothing ran twice
    assert JourneyTimer.objects.filter(enrolment=fine).exists()


def test_a_timer_no_longer_where_its_enrolment_stands_moves_nothing(shop):
    journey = delays(shop, 1)
    enrolment = Enrolment.objects.get(journey=journey)
    JourneyTimer.objects.update(step="elsewhere", due_at=timezone.now())
    assert engine.advance_due() == 0
    enrolment.refresh_from_db()
    assert enrolment.state == Enrolment.State.ACTIVE


def test_a_version_that_loops_without_resting_stops_instead_of_spinning(shop):
    """A version published before the checker refused it: the engine stops the loop."""
    journey = services.journey_create(workspace=shop, name="Spin", definition={
        "start": "a", "steps": {"a": {"type": "delay", "duration": "1h", "next": "end"},
                                "end": {"type": "exit"}},
    })  # fmt: skip
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    journey.version.definition = {**journey.version.definition, "start": "c", "steps": {
        "c": {"type": "condition", "rules": {"attribute": "country", "op": "eq", "value": "x"},
              "yes": "end", "no": "u"},
        "u": {"type": "update_attribute", "attribute": "spun", "value": 1, "next": "c"},
        "end": {"type": "exit"},
    }}  # fmt: skip
    journey.version.save()
    ada = people(shop)["ada"]
    engine.enrol(version=journey.version, entrants=[(ada.pk, {})])
    enrolment = Enrolment.objects.get(customer=ada)
    assert enrolment.state == Enrolment.State.FINISHED
    assert path(enrolment)[-1] == ("c", "stopped: a loop")
    assert engine.stuck() == 0
