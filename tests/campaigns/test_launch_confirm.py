"""The campaign admin's Launch asks first (campaigns.admin.campaigns, launch_preview in
campaigns.services.recipients): pressing Launch shows how many get the message after consent,
suppression and the holdout, who does not and why, and a sample, and sends nothing; saying yes
launches, and a real send (the launch run and delivery in this process, a real SMTP server)
reaches exactly as many addresses as the page said, the sample among them."""

import re

import pytest

from campaigns.models import Campaign, Message, Suppression
from crm.models import Consent
from tests.campaigns.factories import make_audience, make_campaign
from tests.campaigns.helpers import wait_for_status
from workers.models import TaskRun

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sends_in_this_process"),
]


def audience_with_exceptions(workspace):
    """40 customers: 4 unsubscribed, 3 suppressed, a 25% holdout among the rest."""
    segment = make_audience(workspace, 40)
    customers = list(workspace.customers.order_by("pk"))
    Consent.objects.filter(customer__in=customers[:4]).update(status="unsubscribed")
    for c in customers[4:7]:
        Suppression.objects.create(workspace=workspace, channel="email", address=c.email)
    return make_campaign(workspace, segment, holdout_percent=25)


def test_launch_without_confirmation_sends_nothing(admin_client, workspace):
    campaign = audience_with_exceptions(workspace)
    url = f"/admin/campaigns/campaign/{campaign.pk}/act/launch/"
    page = admin_client.post(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert (
        "Yes, send to" in text
        and "sends an e-mail message to" in text
        and "no consent" in text
        and "address suppressed" in text
    )
    for answer in (page, admin_client.post(url, {"confirm": "no"})):
        assert answer.status_code == 200
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT and campaign.launched_at is None
    assert not Message.objects.filter(campaign=campaign).exists()
    assert not TaskRun.objects.filter(kind="campaigns.tasks.launch").exists()


def test_the_count_shown_is_the_count_sent(admin_client, workspace, sink_factory, smtp_settings):
    sink = sink_factory()
    smtp_settings(sink)
    campaign = audience_with_exceptions(workspace)
    url = f"/admin/campaigns/campaign/{campaign.pk}/act/launch/"
    page = admin_client.post(url)
    preview = page.context["preview"]
    shown = int(re.search(r'id="launch-recipients">(\d+)<', page.content.decode()).group(1))
    assert shown == preview["recipients"] and 0 < shown < 33
    not_sent = dict(preview["not_sent"])
    assert not_sent["no consent"] == 4 and not_sent["address suppressed"] == 3
    assert not_sent["holdout"] == 33 - shown  # the 33 who may be sent to, less the holdout
    assert preview["audience"] == 40

    answer = admin_client.post(url, {"confirm": "yes"})
    assert answer.status_code == 302
    wait_for_status(campaign, Campaign.Status.SENT, timeout=60)
    received = sink.received()
    assert len(received) == shown and set(received.values()) == {1}
    assert {r["address"] for r in preview["sample"]} <= set(received)
    assert Message.objects.filter(campaign=campaign, holdout=True).count() == not_sent["holdout"]


def test_a_campaign_that_cannot_launch_goes_back_with_the_reasons(admin_client, workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 3), variants=0)
    answer = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/act/launch/", follow=True)
    assert "approve at least one variant" in answer.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT and campaign.seed is None


def test_another_workspaces_campaign_has_no_launch_page(client, workspace):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from crm.models import Workspace

    other = Workspace.objects.create(slug="other", name="Other")
    campaign = make_campaign(workspace, make_audience(workspace, 3))
    user = get_user_model().objects.create_user("m", password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="campaigns"))
    other.members.add(user)
    client.force_login(user)
    answer = client.post(f"/admin/campaigns/campaign/{campaign.pk}/act/launch/")
    assert answer.status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
