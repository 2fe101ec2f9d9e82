"""The journeys API: definitions checked on publish with each problem named, enrolments by API
(idempotent by key), counts per step, and the abandoned cart through the public API."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from campaigns import rendering
from campaigns.journeys import engine, ready_made
from campaigns.journeys.models import Enrolment, Journey
from campaigns.models import Campaign, Message
from campaigns.services.delivery import deliver, with_products
from crm import services as crm
from crm.models import ApiKey, Customer
from tests.campaigns.factories import client_for
from tests.campaigns.journeys.helpers import journey_message

pytestmark = pytest.mark.django_db

CART = {
    "trigger": {"type": "event", "event": "cart_updated"},
    "exit_on": ["purchase"],
    "start": "wait",
    "steps": {
        "wait": {"type": "wait_event", "event": "purchase", "timeout": "30s",
                 "yes": "done", "no": "done"},
        "done": {"type": "exit"},
    },
}  # fmt: skip


@pytest.fixture
def api(workspace):
    return client_for(workspace, list(ApiKey.SCOPES))


def test_a_definition_is_checked_when_published_each_problem_named(api):
    wait = {**CART["steps"]["wait"], "timeout": "soon", "no": "gone"}
    broken = {**CART, "steps": {**CART["steps"], "wait": wait}}
    created = api.post("/api/v1/journeys", {"name": "Cart", "definition": broken}, format="json")
    assert created.status_code == 201, created.content
    journey = created.json()
    assert journey["status"] == "draft" and journey["version"] is None
    refused = api.post(f"/api/v1/journeys/{journey['id']}/publish")
    assert refused.status_code == 400
    assert set(refused.json()) == {"steps.wait.timeout", "steps.wait.no"}
    fixed = api.patch(f"/api/v1/journeys/{journey['id']}", {"definition": CART}, format="json")
    assert fixed.status_code == 200
    published = api.post(f"/api/v1/journeys/{journey['id']}/publish")
    assert published.status_code == 200, published.content
    assert (
        published.json()["journey"] | {"status": "live", "version": 1}
        == published.json()["journey"]
    )
    again = api.post("/api/v1/journeys", {"name": "Cart", "definition": CART}, format="json")
    assert again.status_code == 400 and "name" in again.json()
    assert (
        api.post("/api/v1/journeys", {"name": "X", "definition": [1]}, format="json").status_code
        == 400
    )


def test_enrolling_by_api_with_a_key_is_idempotent_and_a_customer_inside_is_refused(api, workspace):
    Customer.objects.create(workspace=workspace, email="ada@example.com")
    journey = api.post("/api/v1/journeys", {"name": "Cart", "definition": CART}, format="json")
    pk = journey.json()["id"]
    api.post(f"/api/v1/journeys/{pk}/publish")
    body = {"customer": "email:ada@example.com", "key": "k-1", "context": {"why": "test"}}
    first = api.post(f"/api/v1/journeys/{pk}/enrolments", body, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["state"] == "waiting" and first.json()["context"]["why"] == "test"
    second = api.post(f"/api/v1/journeys/{pk}/enrolments", body, format="json")
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    inside = api.post(f"/api/v1/journeys/{pk}/enrolments", {"customer": "email:ada@example.com"})
    assert inside.status_code == 409
    unknown = api.post(f"/api/v1/journeys/{pk}/enrolments", {"customer": "email:no@example.com"})
    assert unknown.status_code == 404
    stats = api.get(f"/api/v1/journeys/{pk}/stats").json()
    assert stats["steps"]["wait"] == {"entered": 1, "now": 1, "left": 0}
    mine = api.get("/api/v1/customers/email:ada@example.com/journeys").json()["results"]
    assert [e["journey"] for e in mine] == [pk]
    out = api.post(f"/api/v1/journeys/{pk}/enrolments/{first.json()['id']}/exit")
    assert out.status_code == 200 and out.json()["state"] == "exited"
    assert api.post(f"/api/v1/journeys/{pk}/pause").status_code == 200
    assert api.post(f"/api/v1/journeys/{pk}/pause").status_code == 400
    assert api.post(f"/api/v1/journeys/{pk}/resume").status_code == 200
    stopped = api.post(f"/api/v1/journeys/{pk}/stop")
    assert stopped.status_code == 200 and stopped.json()["journey"]["status"] == "stopped"
    assert api.delete(f"/api/v1/journeys/{pk}").status_code == 400  # only a draft goes


def test_the_abandoned_cart_through_the_public_api(api, workspace):
    """A cart event and no purchase: one message naming the cart; a purchase inside the wait:
    none; a second cart event while inside: still one enrolment."""
    campaign = journey_message(workspace)
    definition = {**CART, "steps": {
        "wait": {**CART["steps"]["wait"], "no": "mail"},
        "mail": {"type": "send", "campaign": campaign.pk, "next": "done"},
        "done": {"type": "exit"},
    }}  # fmt: skip
    pk = api.post("/api/v1/journeys", {"name": "Cart", "definition": definition},
                  format="json").json()["id"]  # fmt: skip
    assert api.post(f"/api/v1/journeys/{pk}/publish").status_code == 200
    for email in ("ada@example.com", "bob@example.com"):
        Customer.objects.create(workspace=workspace, email=email)
    now = timezone.now().isoformat()

    def post(email: str, kind: str, **properties) -> None:
        response = api.post("/api/v1/events", {
            "customer": f"email:{email}", "type": kind, "occurred_at": now,
            "properties": properties,
        }, format="json")  # fmt: skip
        assert response.status_code == 201, response.content
        engine.events_arrived()  # what the nudged worker does

    post("ada@example.com", "cart_updated", items=[{"sku": "TEAPOT", "quantity": 2}])
    post("ada@example.com", "cart_updated", items=[{"sku": "TEAPOT", "quantity": 3}])
    post("bob@example.com", "cart_updated", items=[{"sku": "MUG", "quantity": 1}])
    post("bob@example.com", "purchase")
    assert engine.advance_due(now=timezone.now() + timedelta(seconds=31)) == 1
    (message,) = Message.objects.filter(campaign=campaign)
    assert message.customer.email == "ada@example.com" and message.state == "queued"
    stats = api.get(f"/api/v1/journeys/{pk}/stats").json()
    assert stats["enrolments"]["finished"] == 2
    assert stats["steps"]["mail"]["entered"] == 1


def test_a_ready_made_journey_installs_with_its_settings_and_refuses_bad_ones(api, workspace):
    made = api.post(
        "/api/v1/journeys/templates/abandoned_cart",
        {"settings": {"wait": "30s"}, "publish": True},
        format="json",
    )
    assert made.status_code == 201, made.content
    journey = made.json()
    assert journey["status"] == "live" and journey["name"] == "Abandoned cart"
    assert journey["definition"]["steps"]["wait"]["timeout"] == "30s"
    messages = Campaign.objects.filter(workspace=workspace, kind=Campaign.Kind.JOURNEY)
    assert messages.count() == 2 and all(c.status == "sending" for c in messages)
    again = api.post("/api/v1/journeys/templates/abandoned_cart", {}, format="json")
    assert again.json()["name"] == "Abandoned cart (2)" and again.json()["status"] == "draft"
    bad = api.post("/api/v1/journeys/templates/abandoned_cart",
                   {"settings": {"wait": "soon", "colour": "red"}}, format="json")  # fmt: skip
    assert bad.status_code == 400 and set(bad.json()) == {"colour"}
    bad = api.post("/api/v1/journeys/templates/abandoned_cart",
                   {"settings": {"wait": "soon"}}, format="json")  # fmt: skip
    assert bad.status_code == 400 and set(bad.json()) == {"wait"}
    assert api.post("/api/v1/journeys/templates/nope", {}, format="json").status_code == 404


def test_the_command_installs_and_publishes_and_prints_the_id(workspace):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "journey_template", "abandoned_cart", "--workspace", workspace.slug,
        "--set", "wait=30s", "--publish", stdout=out, stderr=err,
    )  # fmt: skip
    journey = Journey.objects.get(pk=int(out.getvalue()))
    assert journey.status == "live" and "live" in err.getvalue()
    with pytest.raises(CommandError, match="wait"):
        call_command("journey_template", "abandoned_cart", "--workspace", workspace.slug,
                     "--set", "wait=never")  # fmt: skip
    with pytest.raises(CommandError, match="no workspace"):
        call_command("journey_template", "welcome", "--workspace", "nowhere")


@pytest.mark.django_db(transaction=True)
# The send step queues delivery tasks; the suite's shared worker (if a test started it) would
# race this test's own deliver() for the message, and has no way to reach its SMTP server.
@pytest.mark.usefixtures("sends_in_this_process")
def test_the_ready_made_cart_names_the_products_left_behind(workspace, sink_factory, smtp_settings):
    sink = sink_factory()
    smtp_settings(sink)
    journey = ready_made.install(
        workspace=workspace, name="abandoned_cart", given={"wait": "30s"}, publish=True
    )
    crm.product_bulk_upsert(workspace=workspace, rows=[
        {"sku": "TEAPOT", "name": "Blue teapot", "price": "20"},
    ])  # fmt: skip
    crm.customer_bulk_upsert(workspace=workspace, rows=[{
        "email": "ada@example.com", "consent": {"email": {"status": "subscribed"}},
    }])  # fmt: skip
    ada = Customer.objects.get(workspace=workspace, email="ada@example.com")
    crm.event_bulk_create(workspace=workspace, rows=[{
        "customer": str(ada.pk), "type": "checkout_started",
        "occurred_at": timezone.now().isoformat(),
        "properties": {"items": [{"sku": "TEAPOT", "quantity": 2}, {"sku": "GONE", "quantity": 1}]},
    }])  # fmt: skip
    engine.events_arrived()
    later = timezone.now() + timedelta(seconds=31)
    assert engine.advance_due(now=later) == 1
    message = Message.objects.get(campaign__workspace=workspace, customer=ada)
    Message.objects.filter(pk=message.pk).update(send_at=timezone.now())  # the engine ran ahead
    assert deliver(campaign_id=message.campaign_id)["sent"] == 1
    assert sink.received() == {"ada@example.com": 1}
    enrolment = Enrolment.objects.get(journey=journey)
    assert enrolment.state == "waiting" and enrolment.step == "wait_more"
    # What delivery rendered: the cart's products by name, the unknown SKU left out.
    trigger = with_products(workspace.pk, {enrolment.pk: enrolment.context})[enrolment.pk]
    rendered = rendering.compiled(message.variant).render_for(
        ada, trigger=trigger, unsubscribe_url="#", preferences_url="#"
    )
    assert "2 &times; Blue teapot" in rendered.html and "GONE" not in rendered.html


def test_the_demo_installs_its_cart_journey_once_and_leaves_carts_for_it(workspace):
    def install() -> int:
        out = io.StringIO()
        call_command(
            "journey_template", "abandoned_cart", "--workspace", workspace.slug,
            "--set", "wait=2m", "--publish", "--if-missing", stdout=out, stderr=io.StringIO(),
        )  # fmt: skip
        return int(out.getvalue())

    assert install() == install()
    crm.product_bulk_upsert(workspace=workspace, rows=[{"sku": "T", "name": "Tea", "price": "3"}])
    crm.customer_bulk_upsert(workspace=workspace, rows=[
        {"email": f"c{i}@example.com", "consent": {"email": {"status": "subscribed"}}}
        for i in range(3)
    ])  # fmt: skip
    for customer in Customer.objects.filter(workspace=workspace):
        crm.order_bulk_upsert(workspace=workspace, rows=[{
            "external_id": f"o-{customer.pk}", "customer": str(customer.pk),
            "placed_at": timezone.now().isoformat(), "currency": "GBP",
            "lines": [{"sku": "T", "quantity": 1, "unit_price": "3"}],
        }])  # fmt: skip
    engine.events_arrived()  # the purchases
    for _ in range(2):
        call_command("demo_carts", "--workspace", workspace.slug, stdout=io.StringIO())
    engine.events_arrived()
    inside = Enrolment.objects.filter(journey__name="Abandoned cart", state="waiting")
    assert inside.count() == 3
    assert all(e.context["properties"]["items"] == [{"sku": "T", "quantity": 1}] for e in inside)


def test_a_template_setting_that_makes_a_bad_definition_is_a_400_and_the_draft_shows_apart(api):
    bad = api.post(
        "/api/v1/journeys/templates/welcome",
        {"settings": {"event": "x y"}, "publish": True},
        format="json",
    )
    assert bad.status_code == 400 and "trigger.event" in bad.json()
    made = api.post("/api/v1/journeys/templates/post_purchase", {"publish": True}, format="json")
    pk = made.json()["id"]
    edited = api.patch(f"/api/v1/journeys/{pk}", {"definition": {"a": 1}}, format="json").json()
    assert edited["definition"] == {"a": 1}  # the draft
    assert edited["published"]["steps"]["picks"]["type"] == "send"  # what runs


def test_win_back_starts_when_the_churn_model_puts_someone_over_the_line(api, workspace):
    from crm.models import CustomerScore, Segment
    from crm.services.segments import segment_refresh

    made = api.post("/api/v1/journeys/templates/win_back", {"publish": True}, format="json")
    assert made.status_code == 201, made.content
    segment = Segment.objects.get(workspace=workspace, name="Churn risk over 0.6")
    crm.customer_bulk_upsert(workspace=workspace, rows=[
        {"email": f"w{i}@example.com", "consent": {"email": {"status": "subscribed"}}}
        for i in range(2)
    ])  # fmt: skip
    risky, safe = Customer.objects.filter(workspace=workspace).order_by("pk")
    for customer, risk in ((risky, 0.8), (safe, 0.2)):
        CustomerScore.objects.create(
            workspace=workspace, customer=customer, kind="churn_risk", value=risk,
            computed_at=timezone.now(),
        )  # fmt: skip
    segment_refresh(segment=segment)  # the nightly (or after-scoring) refresh
    engine.memberships_changed()
    (enrolment,) = Enrolment.objects.filter(journey_id=made.json()["id"])
    assert enrolment.customer_id == risky.pk and enrolment.step == "wait"
    offer = Message.objects.get(customer=risky)
    assert offer.state == "queued" and offer.campaign.name.startswith("Win back")


def test_stats_show_each_send_steps_results_against_the_journeys_holdout(api, workspace):
    campaign = journey_message(workspace)
    definition = {"holdout_percent": 50, "start": "mail", "steps": {
        "mail": {"type": "send", "campaign": campaign.pk, "next": "done"},
        "done": {"type": "exit"},
    }}  # fmt: skip
    pk = api.post("/api/v1/journeys", {"name": "Held", "definition": definition},
                  format="json").json()["id"]  # fmt: skip
    api.post(f"/api/v1/journeys/{pk}/publish")
    crm.customer_bulk_upsert(workspace=workspace, rows=[
        {"email": f"h{i}@example.com"} for i in range(40)
    ])  # fmt: skip
    journey = Journey.objects.get(pk=pk)
    engine.enrol(
        version=journey.version,
        entrants=[(c.pk, {}) for c in Customer.objects.filter(workspace=workspace)],
    )
    results = api.get(f"/api/v1/journeys/{pk}/stats").json()["steps"]["mail"]["results"]
    held = Enrolment.objects.filter(journey=journey, holdout=True).count()
    assert results["holdout"]["recipients"] == held and 8 <= held <= 32
    assert results["treated"]["recipients"] + held == 40
    assert results["variants"][0]["name"] == "A"
    # The journey's bounce rate, over its send steps' messages (campaigns.protection.rates).
    mail = Message.objects.filter(enrolment_id__isnull=False, holdout=False).order_by("id")
    Message.objects.filter(pk=mail[0].pk).update(state="failed", reason="RCPT: 550 5.1.1 gone")
    mail.exclude(pk=mail[0].pk).update(state="sent")
    health = api.get(f"/api/v1/journeys/{pk}/stats").json()["sender_health"]
    assert (health["hard_bounces"], health["attempted"]) == (1, 40 - held)


def test_staff_move_those_inside_onto_the_published_version_over_the_api(api, workspace):
    created = api.post("/api/v1/journeys", {"name": "Move", "definition": CART}, format="json")
    pk = created.json()["id"]
    assert api.post(f"/api/v1/journeys/{pk}/move").status_code == 400  # nothing published
    api.post(f"/api/v1/journeys/{pk}/publish")
    ada = Customer.objects.create(workspace=workspace, email="mover@example.com")
    assert api.post(f"/api/v1/journeys/{pk}/enrolments", {"customer": str(ada.pk)},
                    format="json").status_code == 201  # fmt: skip
    api.post(f"/api/v1/journeys/{pk}/publish")  # version 2, the same steps
    moved = api.post(f"/api/v1/journeys/{pk}/move")
    assert moved.status_code == 200, moved.content
    assert (moved.json()["moved"], moved.json()["stayed"]) == (1, {})
    assert moved.json()["journey"]["version"] == 2
    assert Enrolment.objects.get(customer=ada).version.number == 2


@pytest.mark.parametrize(
    "context",
    [{"properties": "x"}, {"properties": [1]}, {"properties": {"items": "x"}},
     {"properties": {"items": [1, None, {"sku": ["x"]}]}}],
)  # fmt: skip
def test_a_context_of_any_shape_names_no_products_and_blocks_no_send(workspace, context):
    """The outside tester's: one enrolment with `properties` a string stopped every send."""
    assert with_products(workspace.pk, {1: context, 2: {}}) == {1: context, 2: {}}
