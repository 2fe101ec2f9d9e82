"""campaigns.services.privacy: a customer's messages are in their export and timeline, and
erasure blanks their address while the campaign's totals stay."""

import pytest

from campaigns.models import Message
from crm import selectors
from crm.services.privacy import privacy_erase, privacy_export
from tests.campaigns.factories import sent_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def test_messages_are_in_the_export_and_timeline_and_erasure_blanks_them(workspace):
    campaign = sent_campaign(workspace, n=3)
    message = Message.objects.filter(campaign=campaign, state="sent").first()
    customer = message.customer
    exported = privacy_export(customer=customer, actor="test")["messages"]
    assert exported[0]["address"] == customer.email and exported[0]["state"] == "sent"
    timeline = selectors.customer_timeline(customer=customer)
    assert any(
        item["kind"] == "message" and item["campaign__name"] == campaign.name for item in timeline
    )
    audit = privacy_erase(customer=customer, actor="test")
    assert audit.details["messages_anonymised"] == 1
    message.refresh_from_db()
    assert message.address == "" and message.state == "sent"  # totals unchanged, person gone
