"""Mail our SMTP path sends (campaigns.channels.email through campaigns.services.delivery) is
DKIM-signed with its workspace's key for the From domain, verifies with dkimpy against the
record the admin tells staff to publish, and goes out with a signed VERP return path."""

import dkim
import pytest

from campaigns.deliverability import selectors
from campaigns.deliverability.services import sending_domain_create, sending_domain_new_key
from campaigns.models import Message, SendingDomain
from campaigns.services.delivery import deliver
from crm.models import Workspace
from tests.campaigns.factories import launch_now, make_audience, make_campaign
from tests.campaigns.helpers import deliver_until_done

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sends_in_this_process"),
]


def published(sending_domain: SendingDomain):
    """dkimpy's DNS look-up answered from the records the admin shows for the domain."""
    records = {f"{r.name}.": r.value for r in selectors.dns_records_for(sending_domain)}

    def dnsfunc(name: bytes, timeout: int = 5):
        value = records.get(name.decode().lower())
        return value.encode() if value else None

    return dnsfunc


def signing_domain(workspace, domain="shop.example", **fields) -> SendingDomain:
    made = sending_domain_create(workspace=workspace, domain=domain, **fields)
    SendingDomain.objects.filter(pk=made.pk).update(signing=True)  # staff published the record
    made.refresh_from_db()
    return made


def send(workspace, keeper, n: int, from_email: str = "Shop <news@shop.example>"):
    campaign = make_campaign(workspace, make_audience(workspace, n), from_email=from_email)
    launch_now(campaign)
    deliver_until_done(campaign)
    assert len(keeper.envelopes) == n
    return campaign


def test_sent_mail_verifies_against_the_published_key_and_tampering_breaks_it(workspace, keeper):
    domain = signing_domain(workspace, bounce_domain="bounces.shop.example")
    campaign = send(workspace, keeper, 3)
    tokens = dict(Message.objects.filter(campaign=campaign).values_list("customer__email", "token"))
    for return_path, [recipient], data in keeper.envelopes:
        assert data.startswith(b"DKIM-Signature:")
        assert dkim.verify(data, dnsfunc=published(domain)), recipient
        head = data.split(b"\r\n\r\n", 1)[0]
        assert b"List-Unsubscribe: <" in head and b"List-Unsubscribe-Post: " in head
        assert b"list-unsubscribe : list-unsubscribe-post" in head.lower().replace(b"\r\n ", b" ")
        # The return path names this message, under our signature.
        assert return_path.startswith("bounce+") and return_path.endswith("@bounces.shop.example")
        assert selectors.message_token_of(return_path) == tokens[recipient].hex
        tampered = data.replace(b"Variant 0", b"Variant 1", 1)
        assert tampered != data and not dkim.verify(tampered, dnsfunc=published(domain))
        unsubscribe = data.replace(b"/u/", b"/x/", 1)
        assert unsubscribe != data and not dkim.verify(unsubscribe, dnsfunc=published(domain))


def test_mail_from_a_subdomain_is_signed_with_the_parent_domain(workspace, keeper):
    domain = signing_domain(workspace)
    send(workspace, keeper, 1, from_email="news@mail.shop.example")
    [(return_path, _, data)] = keeper.envelopes
    assert b"d=shop.example;" in data and dkim.verify(data, dnsfunc=published(domain))
    assert return_path == "news@mail.shop.example"  # no bounce domain: no VERP


def test_no_signature_until_staff_say_the_record_is_published_or_after_a_new_key(workspace, keeper):
    sending_domain_create(workspace=workspace, domain="shop.example")
    send(workspace, keeper, 1)
    domain = signing_domain(workspace, domain="other.example")
    sending_domain_new_key(sending_domain=domain)
    campaign = make_campaign(
        workspace, make_audience(workspace, 1, prefix="later", name="Later"),
        from_email="news@other.example", name="Later",
    )  # fmt: skip
    launch_now(campaign)
    deliver_until_done(campaign)
    assert [data[:15] for _, _, data in keeper.envelopes] == [
        b"From: Shop <new",
        b"From: news@othe",
    ]


def test_another_workspace_key_for_the_same_domain_never_signs_our_mail(workspace, keeper):
    signing_domain(Workspace.objects.create(slug="rival", name="Rival"))
    send(workspace, keeper, 1)
    assert b"DKIM-Signature" not in keeper.envelopes[0][2]


def test_the_default_bounce_domain_gives_verp_without_a_sending_domain(workspace, keeper, settings):
    settings.CAMPAIGN_BOUNCE_DOMAIN = "returns.example"
    campaign = send(workspace, keeper, 1)
    [(return_path, _, data)] = keeper.envelopes
    assert b"DKIM-Signature" not in data
    token = Message.objects.get(campaign=campaign).token.hex
    assert selectors.message_token_of(return_path) == token


def test_every_new_key_gets_a_dns_name_of_its_own(workspace):
    domain = sending_domain_create(workspace=workspace, domain="keys.example")
    names = [domain.selector]
    for _ in range(4):  # within the same minute, as staff clicking the action again do
        names.append(sending_domain_new_key(sending_domain=domain).selector)
    assert len(set(names)) == 5, names


def test_a_key_no_configured_secret_opens_holds_the_mail_instead_of_sending_it_unsigned(
    workspace, keeper, settings
):
    """The DKIM key is stored sealed; sealed under a key since dropped (a rotation gone wrong),
    the mail waits with the reason rather than going out unsigned for DMARC to fail."""
    signing_domain(workspace)
    settings.MARKETING_AI_SECRETS_KEY = "another key of thirty-two or more characters"
    campaign = make_campaign(workspace, make_audience(workspace, 2), from_email="news@shop.example")
    launch_now(campaign)
    deliver(campaign_id=campaign.pk, budget_seconds=5)
    assert keeper.envelopes == []
    reasons = set(Message.objects.filter(campaign=campaign).values_list("reason", flat=True))
    assert len(reasons) == 1 and next(iter(reasons)).startswith("DKIM key: ")
