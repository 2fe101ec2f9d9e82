"""campaigns.services.recipients: writing a launched campaign's ledger. Each customer of the
audience gets one row, skipped with the reason (no address, no consent, suppressed, frequency
cap) or queued; the holdout is drawn reproducibly from the seed; and each address is read with
the channel's own `address_of`, the one delivery uses, so an address stored with spaces (or
capitals) is read the same way at launch and at send: suppressed, missing or recorded alike."""

import pytest
from django.utils import timezone

from campaigns.channels import channel_for
from campaigns.models import Campaign, Message, Suppression
from campaigns.services.recipients import build_ledger
from crm.models import Consent, Customer, Segment, SegmentMembership
from tests.campaigns.factories import launch_now, make_audience, make_campaign
from tests.campaigns.helpers import deliver_until_done

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sends_in_this_process")
def test_launch_records_why_each_customer_is_skipped_and_draws_a_reproducible_holdout(workspace):
    segment = make_audience(workspace, 400)
    people = list(Customer.objects.filter(workspace=workspace).order_by("id"))
    Customer.objects.filter(pk__in=[p.pk for p in people[:3]]).update(email=None)
    Consent.objects.filter(customer__in=people[3:5]).update(status="unsubscribed")
    Suppression.objects.create(workspace=workspace, channel="email", address=people[5].email)
    one = make_campaign(workspace, segment, name="one", holdout_percent=20, seed=11)
    two = make_campaign(workspace, segment, name="two", holdout_percent=20, seed=11)
    counts = launch_now(one)
    launch_now(two)
    assert counts["audience"] == 400 and counts["skipped"] == 6
    reasons = dict(
        Message.objects.filter(campaign=one, state="skipped", holdout=False).values_list(
            "customer_id", "reason"
        )
    )
    assert reasons[people[0].pk] == "no email address"
    assert reasons[people[3].pk] == "no consent"
    assert reasons[people[5].pk] == "address suppressed"
    held_one = set(
        Message.objects.filter(campaign=one, holdout=True).values_list("customer", flat=True)
    )
    held_two = set(
        Message.objects.filter(campaign=two, holdout=True).values_list("customer", flat=True)
    )
    assert held_one == held_two  # same seed, same customers
    assert 0.12 < len(held_one) / 394 < 0.28
    assert Message.objects.filter(campaign=one).count() == 400
    assert build_ledger(campaign=one) == {"already_written": True}  # a re-run writes nothing


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sends_in_this_process")
def test_frequency_cap_counts_messages_from_other_campaigns(workspace, sink_factory, smtp_settings):
    smtp_settings(sink_factory())
    segment = make_audience(workspace, 20)
    first = make_campaign(workspace, segment, name="first")
    launch_now(first)
    deliver_until_done(first)
    second = make_campaign(workspace, segment, name="second", frequency_cap=1, frequency_days=7)
    counts = launch_now(second)
    assert counts["queued"] == 0 and counts["skipped"] == 20
    assert Message.objects.filter(campaign=second, reason__startswith="frequency cap").count() == 20


def audience_of(workspace, channel: str, values: list[str]) -> Segment:
    field = "email" if channel == "email" else "phone"
    segment = Segment.objects.create(workspace=workspace, name=channel, kind=Segment.Kind.STATIC)
    for i, value in enumerate(values):
        # Stored as some path left them (an import, the admin), spaces included.
        customer = Customer.objects.create(
            workspace=workspace, first_name=f"P{i}", **{field: value}
        )
        Consent.objects.create(
            customer=customer, channel=channel, status="subscribed", updated_at=timezone.now()
        )
        SegmentMembership.objects.create(segment=segment, customer=customer)
    return segment


def ledger_of(campaign: Campaign) -> dict[int, tuple[str, str, str]]:
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    build_ledger(campaign=campaign)
    return {
        customer: (state, reason, address)
        for customer, state, reason, address in Message.objects.filter(
            campaign=campaign
        ).values_list("customer_id", "state", "reason", "address")
    }


@pytest.mark.parametrize(
    ("channel", "stored", "suppressed", "addresses"),
    [
        ("email", [" Ann@Example.com ", "bob@example.com\t", "   "], "ann@example.com",
         ["ann@example.com", "bob@example.com", ""]),
        ("sms", [" +44 7700 900123 ", "+44 7700 900456 ", " "], "+44 7700 900123",
         ["+44 7700 900123", "+44 7700 900456", ""]),
    ],
)  # fmt: skip
def test_addresses_with_spaces_are_read_at_launch_as_at_send(
    workspace, channel, stored, suppressed, addresses
):
    segment = audience_of(workspace, channel, stored)
    Suppression.objects.create(workspace=workspace, channel=channel, address=suppressed)
    rows = ledger_of(make_campaign(workspace, segment, channel=channel))
    first, second, blank = Customer.objects.filter(workspace=workspace).order_by("pk")
    assert rows[first.pk] == ("skipped", "address suppressed", addresses[0])
    assert rows[second.pk] == ("queued", "", addresses[1])
    assert rows[blank.pk] == ("skipped", f"no {channel} address", "")
    sending = channel_for(channel)
    for customer in (first, second, blank):  # the address delivery will send to
        assert rows[customer.pk][2] == sending.address_of(customer)
