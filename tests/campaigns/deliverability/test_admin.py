"""The sending domains' admin: adding one makes its key, the page shows the records to publish
and never the private key, and staff see only their workspaces' domains."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from campaigns.deliverability.services import sending_domain_create
from campaigns.models import SendingDomain
from crm.models import Workspace

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
    assert domain.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
    page = admin_client.get(reverse("admin:campaigns_sendingdomain_change", args=[domain.pk]))
    html = page.content.decode()
    assert f"{domain.selector}._domainkey.shop.example" in html
    assert f"v=DKIM1; k=rsa; p={domain.public_key}" in html
    assert "v=spf1" in html and "_dmarc.shop.example" in html
    secret = domain.private_key.splitlines()[1]
    assert "PRIVATE KEY" not in html and secret not in html


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
