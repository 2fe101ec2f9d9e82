"""The sending domains' admin: adding one makes its key, the page shows the records to publish
and never the private key, and staff see only their workspaces' domains; suppressions show
their report and are lifted with a note."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from campaigns.deliverability.reports import report_record
from campaigns.deliverability.services import sending_domain_create
from campaigns.models import DeliveryReport, Message, SendingDomain, Suppression
from campaigns.models.deliverability import BounceMailbox
from crm.models import AuditEntry, Customer, Workspace
from marketing_ai import sealed
from tests.campaigns.factories import make_audience, make_campaign

pytestmark = pytest.mark.django_db


def test_adding_a_domain_makes_a_key_and_shows_the_records_but_not_the_private_key(
    admin_client, workspace
):
    response = admin_client.post(
        reverse("admin:campaigns_sendingdomain_add"),
        {
            "workspace": workspace.pk,
            "domain": "Shop.Example",
            "bounce_domain": "bounces.shop.example",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    domain = SendingDomain.objects.get(workspace=workspace)
    assert domain.domain == "shop.example" and not domain.signing
    # Stored sealed: the column alone (a dump, a support copy) holds no key to sign with.
    assert "PRIVATE KEY" not in domain.private_key
    pem = sealed.unseal(domain.private_key)
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    page = admin_client.get(reverse("admin:campaigns_sendingdomain_change", args=[domain.pk]))
    html = page.content.decode()
    assert f"{domain.selector}._domainkey.shop.example" in html
    assert f"v=DKIM1; k=rsa; p={domain.public_key}" in html
    assert "v=spf1" in html and "_dmarc.shop.example" in html
    secret = pem.splitlines()[1]
    assert "PRIVATE KEY" not in html and secret not in html and domain.private_key not in html


def test_a_bad_domain_is_a_form_error(admin_client, workspace):
    response = admin_client.post(
        reverse("admin:campaigns_sendingdomain_add"),
        {"workspace": workspace.pk, "domain": "not a domain", "bounce_domain": ""},
    )
    assert (
        response.status_code == 200 and "a domain name in lower case" in response.content.decode()
    )
    assert not SendingDomain.objects.exists()


def test_staff_see_only_their_workspaces_domains(client, workspace):
    other = Workspace.objects.create(slug="rival", name="Rival")
    ours = sending_domain_create(workspace=workspace, domain="shop.example")
    theirs = sending_domain_create(workspace=other, domain="rival.example")
    user = get_user_model().objects.create_user("staff", password="pw-for-tests", is_staff=True)
    workspace.members.add(user)
    user.user_permissions.add(*Permission.objects.filter(codename__endswith="_sendingdomain"))
    client.force_login(user)
    listing = client.get(reverse("admin:campaigns_sendingdomain_changelist")).content.decode()
    assert "shop.example" in listing and "rival.example" not in listing
    url = reverse("admin:campaigns_sendingdomain_change", args=[theirs.pk])
    assert client.get(url).status_code in (302, 404)
    assert (
        client.get(reverse("admin:campaigns_sendingdomain_change", args=[ours.pk])).status_code
        == 200
    )


def test_reports_list_shows_what_came_back_for_the_staffs_workspaces_only(client, workspace):
    other = Workspace.objects.create(slug="rival", name="Rival")
    rows = []
    for space, address in ((workspace, "ours@example.com"), (other, "theirs@example.com")):
        campaign = make_campaign(space, make_audience(space, 1, prefix=address.split("@")[0]))
        customer = Customer.objects.get(workspace=space)
        message = Message.objects.create(
            campaign=campaign, customer=customer, send_at=timezone.now(), address=address
        )
        rows.append(
            DeliveryReport.objects.create(
                message=message,
                kind="hard",
                status="5.1.1",
                address=address,
                excerpt="550 5.1.1 User unknown",
                source="lmtp",
                report_id=f"<r-{address}>",
            )  # fmt: skip
        )
    user = get_user_model().objects.create_user("staff", password="pw-for-tests", is_staff=True)
    workspace.members.add(user)
    user.user_permissions.add(*Permission.objects.filter(codename="view_deliveryreport"))
    client.force_login(user)
    listing = client.get(reverse("admin:campaigns_deliveryreport_changelist")).content.decode()
    assert "ours@example.com" in listing and "User unknown" in listing
    assert "theirs@example.com" not in listing
    page = client.get(reverse("admin:campaigns_deliveryreport_change", args=[rows[1].pk]))
    assert page.status_code in (302, 404)


def test_staff_turn_signing_on_and_a_second_row_for_a_domain_is_a_form_error(
    admin_client, workspace
):
    domain = sending_domain_create(workspace=workspace, domain="shop.example")
    url = reverse("admin:campaigns_sendingdomain_change", args=[domain.pk])
    response = admin_client.post(url, {"signing": "on", "bounce_domain": "bounces.shop.example"})
    assert response.status_code == 302
    domain.refresh_from_db()
    assert domain.signing and domain.bounce_domain == "bounces.shop.example"
    assert domain.domain == "shop.example"  # read only once the key is made for it
    again = admin_client.post(
        reverse("admin:campaigns_sendingdomain_add"),
        {"workspace": workspace.pk, "domain": "shop.example", "bounce_domain": ""},
    )
    assert again.status_code == 200 and "already exists" in again.content.decode()
    assert SendingDomain.objects.count() == 1


def test_staff_see_why_an_address_is_suppressed_and_lift_it_with_a_note(admin_client, workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    customer = Customer.objects.get(workspace=workspace)
    message = Message.objects.create(
        campaign=campaign, customer=customer, send_at=timezone.now(), state="sent",
        address=customer.email,
    )  # fmt: skip
    report_record(message=message, kind="hard", address=customer.email, report_id="r1",
                  status="5.1.1", excerpt="550 5.1.1 no such user", source="lmtp")  # fmt: skip
    suppression = Suppression.objects.get()
    listing = admin_client.get(reverse("admin:campaigns_suppression_changelist")).content.decode()
    assert "550 5.1.1 no such user" in listing and "hard bounce" in listing
    url = reverse("admin:campaigns_suppression_changelist")
    chosen = {"action": "lift", "_selected_action": [suppression.pk]}
    asked = admin_client.post(url, chosen)
    assert asked.status_code == 200 and "lift-confirm" in asked.content.decode()
    assert Suppression.objects.exists()  # nothing lifted without a note
    done = admin_client.post(url, {**chosen, "note": "the customer fixed their mailbox"})
    assert done.status_code == 302
    assert not Suppression.objects.exists()
    entry = AuditEntry.objects.get(action="suppression.lift")
    assert entry.actor == "admin" and entry.details["note"] == "the customer fixed their mailbox"
    assert entry.customer_id == customer.pk


def test_a_bounce_mailbox_added_in_the_admin_is_sealed_scheduled_and_checked(
    admin_client, workspace, settings
):
    form = {"workspace": workspace.pk, "protocol": "imap", "host": "127.0.0.1", "port": 143,
            "username": "bounces", "new_password": "pw", "folder": "INBOX", "done_folder": "",
            "poll_seconds": 30, "active": "on"}  # fmt: skip
    url = reverse("admin:campaigns_bouncemailbox_add")
    refused = admin_client.post(url, form)
    assert refused.status_code == 200 and "loopback" in refused.content.decode()
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    assert admin_client.post(url, form).status_code == 302
    mailbox = BounceMailbox.objects.get()
    assert mailbox.password and mailbox.password != "pw"
    assert PeriodicTask.objects.filter(name=f"bounce-mailbox-{mailbox.pk}", enabled=True).exists()
