"""campaigns.services.recipients: the ledger takes each recipient's address from the channel's own
`address_of`, the one delivery uses, so an address stored with spaces (or capitals) is read
the same way at launch and at send: suppressed, missing or recorded alike."""

import pytest
from django.utils import timezone

from campaigns.channels import channel_for
from campaigns.models import Campaign, Message, Suppression
from campaigns.services.recipients import build_ledger
from crm.models import Consent, Customer, Segment, SegmentMembership
from tests.campaigns.factories import make_campaign

pytestmark = pytest.mark.django_db


def audience_of(workspace, channel: str, values: list[str]) -> Segment:
    field = "email" if channel == "email" else "phone"
    segment = Segment.objects.create(workspace=workspace, name=channel, kind=Segment.Kind.STATIC)
    for i, value in enumerate(values):
        # Stored as some path left them (an import, the admin), spaces included.
        customer = Customer.objects.create(workspace=workspace, first_name=f"P{i}",
                                           **{field: value})  # fmt: skip
        Consent.objects.create(customer=customer, channel=channel, status="subscribed",
                               updated_at=timezone.now())  # fmt: skip
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
