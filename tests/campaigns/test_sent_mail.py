"""The admin's Sent mail (campaigns.selectors.sent_mail, campaigns.admin.campaigns) and the
development outbox (campaigns.channels.outbox): each message as its recipient got it, from the
outbox's file of that message where there is one, else rendered again with its own token; its
HTML only inside a sandboxed frame, without the open pixel; reachable from the campaign and the
customer's page; no other workspace's message shown."""

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from campaigns import tracking
from campaigns.models import Message
from crm.models import Workspace
from tests.campaigns.factories import launch_now, make_audience, make_campaign, sent_campaign
from tests.campaigns.helpers import deliver_until_done

pytestmark = pytest.mark.django_db


def page_of(client, message: Message) -> str:
    response = client.get(f"/admin/campaigns/campaign/{message.campaign_id}/messages/{message.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_message_is_rendered_again_with_its_token_and_no_pixel(admin_client, workspace):
    campaign = sent_campaign(workspace, 3)
    message = campaign.messages.filter(state="sent").select_related("customer").first()
    page = page_of(admin_client, message)
    token = message.token.hex
    assert f"Variant 0: for {message.customer.first_name}" in page
    assert "rendered again" in page
    assert tracking.open_url(token) not in page  # reading it is not an open
    frame = re.search(r'<iframe id="message-html"[^>]* sandbox=""[^>]* srcdoc="([^"]*)"', page)
    shown = html.unescape(frame.group(1))
    assert f"Hello {message.customer.first_name}" in shown
    assert token in shown  # the links carry the message's own token, as sent
    listing = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/messages/")
    assert listing.content.decode().count("view as sent") == 3
    customer_page = admin_client.get(f"/admin/crm/customer/{message.customer_id}/change/")
    assert f"/admin/campaigns/campaign/{campaign.pk}/messages/{message.pk}/" in (
        customer_page.content.decode()
    )


def test_a_messages_script_never_runs_in_the_admin(admin_client, workspace):
    campaign = sent_campaign(workspace, 1)
    campaign.variants.update(
        body_html='<p>Hi</p><script>alert("x")</script><img src=x onerror="alert(1)">'
    )
    page = page_of(admin_client, campaign.messages.get())
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page  # only as the sandboxed frame's escaped text


def test_holdout_and_skipped_rows_say_why_they_were_not_sent(admin_client, workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 20), holdout_percent=50, seed=1)
    launch_now(campaign)
    held = campaign.messages.filter(holdout=True).first()
    page = page_of(admin_client, held)
    assert "Not sent: holdout." in page and "message-html" not in page


def test_another_workspaces_messages_are_not_shown(client, workspace):
    campaign = sent_campaign(workspace, 2)
    message = campaign.messages.first()
    other = Workspace.objects.create(slug="other", name="Other")
    theirs = sent_campaign(other, 1)
    user = get_user_model().objects.create_user("m", password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="campaigns"))
    other.members.add(user)
    client.force_login(user)
    for url in (
        f"/admin/campaigns/campaign/{campaign.pk}/messages/",
        f"/admin/campaigns/campaign/{campaign.pk}/messages/{message.pk}/",
        # their own campaign's address with someone else's message
        f"/admin/campaigns/campaign/{theirs.pk}/messages/{message.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.get(f"/admin/campaigns/campaign/{theirs.pk}/messages/").status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sends_in_this_process")
def test_outbox_keeps_one_file_per_message_and_the_page_reads_it(
    admin_client, workspace, settings, tmp_path
):
    settings.EMAIL_BACKEND = "campaigns.channels.outbox.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path
    campaign = make_campaign(workspace, make_audience(workspace, 4))
    launch_now(campaign)
    deliver_until_done(campaign)
    sent = list(campaign.messages.filter(state="sent").select_related("customer"))
    assert len(sent) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{m.token.hex}.eml" for m in sent)
    message = sent[0]
    # The customer's name changed since: the page shows what was sent, from the file.
    name = message.customer.first_name
    message.customer.first_name = "Renamed"
    message.customer.save()
    page = page_of(admin_client, message)
    assert f"the copy in the development outbox ({message.token.hex}.eml)" in page
    assert f"Variant 0: for {name}" in page and "Renamed" not in page
    assert tracking.open_url(message.token.hex) not in page
    (tmp_path / f"{message.token.hex}.eml").unlink()  # gone: rendered again
    assert "Variant 0: for Renamed" in page_of(admin_client, message)
