"""A journey's send step goes through the send ledger: one row per enrolment and step, the
broadcast's rules for who may get it, delivery as for a broadcast, the trigger in the template."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns import rendering
from campaigns.journeys import engine, services
from campaigns.journeys.models import Enrolment, Journey
from campaigns.models import Campaign, Message, Suppression
from campaigns.services import lifecycle
from campaigns.services.delivery import deliver
from crm import services as crm
from crm.models import Customer
from tests.campaigns.journeys.helpers import journey_message


def cart_journey(workspace, campaign: Campaign, **changes):
    definition = {
        "trigger": {"type": "event", "event": "cart_updated"},
        "start": "wait",
        "steps": {
            "wait": {"type": "wait_event", "event": "purchase", "timeout": "1h",
                     "yes": "bought", "no": "mail"},
            "mail": {"type": "send", "campaign": campaign.pk, "next": "end"},
            "bought": {"type": "exit"},
            "end": {"type": "exit"},
        },
        **changes,
    }  # fmt: skip
    journey = services.journey_create(workspace=workspace, name="Cart", definition=definition)
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    return journey


def shoppers(workspace) -> dict[str, Customer]:
    crm.customer_bulk_upsert(
        workspace=workspace,
        rows=[{"email": f"{name}@example.com"} for name in ("ada", "bob", "cyd")],
    )
    return {c.email.split("@")[0]: c for c in Customer.objects.filter(workspace=workspace)}


def event(workspace, who, kind, **properties) -> None:
    crm.event_bulk_create(
        workspace=workspace,
        rows=[{"customer": str(who.pk), "type": kind, "properties": properties,
               "occurred_at": timezone.now().isoformat()}],
    )  # fmt: skip
    engine.events_arrived()


# Delivery commits its hand-off itself (campaigns.ledger): the test needs real transactions.
@pytest.mark.django_db(transaction=True)
# The send step queues delivery tasks; the suite's shared worker (if a test started it) would
# race this test's own deliver() for the message, and has no way to reach its SMTP server.
@pytest.mark.usefixtures("sends_in_this_process")
def test_a_cart_left_alone_gets_one_message_and_a_bought_one_none(
    workspace, sink_factory, smtp_settings
):
    sink = sink_factory()
    smtp_settings(sink)
    campaign = journey_message(workspace)
    cart_journey(workspace, campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING  # publishing put its message to work
    who = shoppers(workspace)
    event(workspace, who["ada"], "cart_updated", items=[{"sku": "TEAPOT", "quantity": 2}])
    event(workspace, who["bob"], "cart_updated", items=[{"sku": "MUG", "quantity": 1}])
    event(workspace, who["bob"], "purchase")
    assert engine.advance_due(now=timezone.now() + timedelta(hours=1, seconds=1)) == 1
    (message,) = Message.objects.filter(campaign=campaign)
    enrolment = Enrolment.objects.get(customer=who["ada"])
    assert (message.customer_id, message.enrolment_id, message.step) == (
        who["ada"].pk, enrolment.pk, "mail"
    )  # fmt: skip
    assert message.state == Message.State.QUEUED and enrolment.state == Enrolment.State.FINISHED
    assert ("mail", "queued") in enrolment.history.values_list("step", "outcome")
    rendered = rendering.compiled(message.variant).render_for(
        who["ada"], trigger=enrolment.context, unsubscribe_url="#", preferences_url="#"
    )
    assert "2 x TEAPOT" in rendered.html
    # The engine ran an hour ahead (the wait's timeout); delivery goes by the clock.
    Message.objects.filter(pk=message.pk).update(send_at=timezone.now())
    result = deliver(campaign_id=campaign.pk)
    assert result["sent"] == 1 and sink.received() == {"ada@example.com": 1}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING  # a live journey's message is never done
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(
            campaign=campaign, customer=who["ada"], enrolment_id=enrolment.pk, step="mail",
            send_at=timezone.now(),
        )  # fmt: skip


def test_who_may_not_get_it_is_recorded_with_the_reason_and_the_holdout_is_counted(workspace):
    campaign = journey_message(workspace)
    cart_journey(workspace, campaign, holdout_percent=0)
    who = shoppers(workspace)
    crm.consent_set(customer=who["bob"], channel="email", status="unsubscribed")
    Suppression.objects.create(workspace=workspace, channel="email", address="cyd@example.com")
    for name in who:
        event(workspace, who[name], "cart_updated")
    engine.advance_due(now=timezone.now() + timedelta(hours=2))
    reasons = dict(
        Message.objects.filter(campaign=campaign).values_list("customer__email", "reason")
    )
    assert reasons == {
        "ada@example.com": "",
        "bob@example.com": "no consent",
        "cyd@example.com": "address suppressed",
    }


def test_leaving_the_journey_takes_back_a_message_not_sent_yet(workspace):
    campaign = journey_message(workspace)
    journey = cart_journey(workspace, campaign, exit_on=["purchase"])
    ada = shoppers(workspace)["ada"]
    event(workspace, ada, "cart_updated")
    engine.advance_due(now=timezone.now() + timedelta(hours=2))
    message = Message.objects.get(campaign=campaign)
    assert message.state == Message.State.QUEUED
    # Still inside: put it at a wait after the send, as a longer journey would be.
    enrolment = Enrolment.objects.get(journey=journey)
    Enrolment.objects.filter(pk=enrolment.pk).update(state=Enrolment.State.ACTIVE, finished_at=None)
    engine.exit_enrolments(journey=journey, customer_ids=[ada.pk], reason="exit event")
    message.refresh_from_db()
    assert message.state == Message.State.SKIPPED
    assert message.reason == "left the journey: exit event"


def test_a_journeys_message_is_not_launched_and_a_broadcast_is_not_a_send_step(workspace):
    campaign = journey_message(workspace)
    with pytest.raises(lifecycle.CampaignError) as refused:
        lifecycle.campaign_launch(campaign=campaign)
    assert "kind" in refused.value.errors
    broadcast = Campaign.objects.create(workspace=workspace, name="News")
    journey = services.journey_create(workspace=workspace, name="Bad", definition={
        "start": "m", "steps": {"m": {"type": "send", "campaign": broadcast.pk, "next": "e"},
                                "e": {"type": "exit"}},
    })  # fmt: skip
    with pytest.raises(services.JourneyError) as refused:
        services.journey_publish(journey=journey)
    assert "steps.m.campaign" in refused.value.errors


def test_a_cancelled_message_is_not_sent_and_the_step_says_why(workspace):
    campaign = journey_message(workspace)
    journey = cart_journey(workspace, campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)
    ada = shoppers(workspace)["ada"]
    event(workspace, ada, "cart_updated")
    engine.advance_due(now=timezone.now() + timedelta(hours=2))
    assert not Message.objects.filter(campaign=campaign).exists()
    enrolment = Enrolment.objects.get(journey=journey)
    assert ("mail", "message cancelled") in enrolment.history.values_list("step", "outcome")


def test_a_message_is_sent_by_one_send_step_only(workspace):
    """The outside tester's: two steps (or two journeys) sending one message mailed it twice
    at once, and each step's results counted the other's."""
    message = journey_message(workspace)
    cart_journey(workspace, message)
    twice = {"start": "a", "steps": {
        "a": {"type": "send", "campaign": message.pk, "next": "b"},
        "b": {"type": "send", "campaign": message.pk, "next": "end"},
        "end": {"type": "exit"}}}  # fmt: skip
    other = services.journey_create(workspace=workspace, name="Twice", definition=twice)
    with pytest.raises(services.JourneyError) as refused:
        services.journey_publish(journey=other)
    assert "already sent by Cart, step mail" in refused.value.errors["steps.a.campaign"][0]
    assert "already sent by" in refused.value.errors["steps.b.campaign"][0]
    cart = Journey.objects.get(pk=cart_id(workspace))
    services.journey_publish(journey=cart)  # its own message: it may publish again
    other.delete()
    alone = services.journey_create(workspace=workspace, name="Alone", definition=twice)
    Journey.objects.filter(pk=cart_id(workspace)).update(status=Journey.Status.STOPPED)
    with pytest.raises(services.JourneyError) as refused:
        services.journey_publish(journey=alone)  # a stopped journey's message is free again
    assert set(refused.value.errors) == {"steps.b.campaign"}
    assert "already sent by step a" in refused.value.errors["steps.b.campaign"][0]


def cart_id(workspace) -> int:
    return Journey.objects.get(workspace=workspace, name="Cart").pk
