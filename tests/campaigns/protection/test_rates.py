"""campaigns.protection.rates: bounce and complaint rates from the ledger and the reports."""

import pytest
from django.utils import timezone

from campaigns.models import DeliveryReport, Message, SenderProtection, SendingDomain
from campaigns.protection import rates
from campaigns.services.recipients import build_ledger
from tests.campaigns.factories import make_audience, make_campaign

pytestmark = pytest.mark.django_db


_made = iter(range(10**6))


def sent_campaign(workspace, n: int = 20, **fields):
    """A campaign to `n` new customers (addresses of their own) whose messages were all sent."""
    i = next(_made)
    segment = make_audience(workspace, n, prefix=f"c{i}p", name=f"audience {i}")
    campaign = make_campaign(workspace, segment, name=f"campaign {i}", **fields)
    campaign.status = "sending"
    campaign.save(update_fields=["status"])
    build_ledger(campaign=campaign)
    Message.objects.filter(campaign=campaign, state="queued").update(
        state="sent", sent_at=timezone.now(), claimed_at=timezone.now()
    )
    return campaign


def refuse_at_rcpt(messages, code: int = 550) -> None:
    """As the SMTP channel leaves a message the server refused at RCPT."""
    Message.objects.filter(pk__in=[m.pk for m in messages]).update(
        state="failed", sent_at=None, reason=f"RCPT: {code} 5.1.1 No such mailbox"
    )


def report(message: Message, kind: str, n: int = 0) -> None:
    DeliveryReport.objects.create(
        message=message, kind=kind, address=message.address or "x@example.com",
        source="lmtp", report_id=f"<r{message.pk}-{kind}-{n}@mx>",
    )  # fmt: skip


def test_rates_count_session_refusals_reports_and_complaints_per_message(workspace):
    campaign = sent_campaign(workspace, n=50)
    rows = list(Message.objects.filter(campaign=campaign).order_by("id"))
    refuse_at_rcpt(rows[:3])
    # A 4xx that gave up and a 5xx at the end of data are failures, not mailbox-unknown bounces.
    Message.objects.filter(pk=rows[3].pk).update(state="failed", reason="RCPT: 421 4.7.0 busy")
    report(rows[10], "hard")
    report(rows[11], "soft")
    report(rows[12], "soft")
    report(rows[12], "hard")  # soft then hard: one hard bounce
    report(rows[20], "complaint")
    report(rows[20], "complaint", n=1)  # the same complaint twice is one message

    figures = rates.campaign_rates(campaign=campaign)

    assert figures.sent == 46 and figures.attempted == 49
    assert figures.hard_bounces == 3 + 2
    assert figures.soft_bounces == 1
    assert figures.complaints == 1
    assert figures.bounce_percent == round(100 * 5 / 49, 3)
    assert figures.complaint_percent == round(100 / 46, 3)
    assert figures.complaint_warning  # 2.2% is past the 0.1% warning


def test_an_unsent_campaign_has_no_rates_and_no_warning(workspace):
    campaign = sent_campaign(workspace, n=5)
    Message.objects.filter(campaign=campaign).update(state="queued", sent_at=None)
    figures = rates.campaign_rates(campaign=campaign)
    assert (figures.attempted, figures.bounce_percent, figures.complaint_percent) == (0, None, None)
    assert not figures.complaint_warning


def test_the_warning_follows_the_workspace_setting(workspace):
    campaign = sent_campaign(workspace, n=40)
    report(Message.objects.filter(campaign=campaign).first(), "complaint")  # 2.5%
    assert rates.campaign_rates(campaign=campaign).complaint_warning
    SenderProtection.objects.create(workspace=workspace, complaint_warning_percent=3)
    assert not rates.campaign_rates(campaign=campaign).complaint_warning


def test_the_window_since_a_moment_counts_only_what_was_claimed_after_it(workspace):
    campaign = sent_campaign(workspace, n=10)
    rows = list(Message.objects.filter(campaign=campaign).order_by("id"))
    early = timezone.now() - timezone.timedelta(hours=2)
    Message.objects.filter(campaign=campaign).update(claimed_at=early)
    refuse_at_rcpt(rows[:5])
    later = timezone.now()
    Message.objects.filter(pk__in=[m.pk for m in rows[5:]]).update(claimed_at=later)
    figures = rates.campaign_rates(campaign=campaign, since=later)
    assert (figures.attempted, figures.hard_bounces) == (5, 0)


def test_sending_domain_rates_take_the_campaigns_from_it_and_its_subdomains(workspace, settings):
    settings.DEFAULT_FROM_EMAIL = "news@other.example"
    shop = sent_campaign(workspace, n=10, from_email="Shop <hello@shop.example>")
    news = sent_campaign(workspace, n=10, from_email="news@mail.shop.example")
    elsewhere = sent_campaign(workspace, n=10)  # the default From: other.example
    for campaign in (shop, news, elsewhere):
        refuse_at_rcpt(Message.objects.filter(campaign=campaign)[:1])
    domain = SendingDomain.objects.create(
        workspace=workspace, domain="shop.example", selector="s", private_key="-",
        public_key="-", key_created_at=timezone.now(),
    )  # fmt: skip
    figures = rates.sending_domain_rates(sending_domain=domain)
    assert (figures.attempted, figures.hard_bounces) == (20, 2)


def test_sending_domain_rates_stay_in_their_workspace(workspace):
    from tests.crm.factories import WorkspaceFactory

    other = WorkspaceFactory(slug="other")
    theirs = sent_campaign(other, n=10, from_email="a@shop.example")
    refuse_at_rcpt(Message.objects.filter(campaign=theirs))
    domain = SendingDomain.objects.create(
        workspace=workspace, domain="shop.example", selector="s", private_key="-",
        public_key="-", key_created_at=timezone.now(),
    )  # fmt: skip
    assert rates.sending_domain_rates(sending_domain=domain).attempted == 0
