"""Where staff and integrators see the sender's health: the campaign page and the sending
domain page in the admin, the campaign's stats and detail in the API."""

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Message, SendingDomain
from campaigns.protection import breaker
from tests.campaigns.factories import client_for
from tests.campaigns.protection.test_rates import refuse_at_rcpt, report, sent_campaign

pytestmark = pytest.mark.django_db


def paused_campaign(workspace):
    campaign = sent_campaign(workspace, n=200, from_email="news@shop.example")
    rows = list(Message.objects.filter(campaign=campaign).order_by("id"))
    refuse_at_rcpt(rows[:12])
    report(rows[50], "complaint")
    assert breaker.breaker_check(campaign=campaign)
    campaign.refresh_from_db()
    return campaign


def test_the_campaign_page_shows_the_rates_the_warning_and_the_breakers_reason(
    admin_client, workspace
):
    campaign = paused_campaign(workspace)
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    html = page.content.decode()
    assert "Paused by the circuit breaker: hard bounces 6.0% of 200 attempted" in html
    assert "12 (6.00% of 200 attempted)" in html
    assert "1 (0.53% of 188 sent)" in html
    assert "complaints at or above 0.1%" in html


def test_the_sending_domain_page_shows_its_rates(admin_client, workspace):
    paused_campaign(workspace)
    domain = SendingDomain.objects.create(
        workspace=workspace, domain="shop.example", selector="s", private_key="-",
        public_key="-", key_created_at=timezone.now(),
    )  # fmt: skip
    page = admin_client.get(reverse("admin:campaigns_sendingdomain_change", args=[domain.pk]))
    html = page.content.decode()
    assert "hard bounces 12 (6.0% of 200 attempted), complaints 1 (0.532% of 188 sent)" in html
    assert "filtering this domain" in html


def test_the_api_gives_the_rates_and_the_breakers_pause(workspace):
    campaign = paused_campaign(workspace)
    client = client_for(workspace)
    stats = client.get(f"/api/v1/campaigns/{campaign.pk}/stats").json()
    health = stats["sender_health"]
    assert (health["hard_bounces"], health["attempted"], health["complaints"]) == (12, 200, 1)
    assert health["complaint_warning"] is True
    assert health["paused_by_breaker"]["reason"].startswith("hard bounces 6.0%")
    detail = client.get(f"/api/v1/campaigns/{campaign.pk}").json()
    assert detail["status"] == "paused"
    assert detail["paused_by_breaker"]["figures"]["hard_bounces"] == 12
