"""Campaigns for tests (factory_boy): campaigns, variants approved through the real service,
audiences of consenting customers, and campaigns whose ledger is written."""

from datetime import timedelta

import factory
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign, Message, Variant
from campaigns.services.recipients import build_ledger
from campaigns.services.variants import variant_approve
from crm.models import Consent, Customer, Segment, Workspace
from tests.crm import factories as crm_factories

# What a campaign integration's key holds unless a test says otherwise.
CAMPAIGN_SCOPES = ["campaigns:read", "campaigns:write", "tasks:read"]

HTML = (
    "<html><body><h1>Hello {{ customer.first_name }}</h1>"
    '<p>Our <a href="https://shop.example.com/new?a=1&amp;b=2">new collection</a> is here.</p>'
    "</body></html>"
)


class CampaignFactory(factory.django.DjangoModelFactory):
    """A draft e-mail campaign; `include_segments=[segment, ...]` names its audience."""

    class Meta:
        model = Campaign
        skip_postgeneration_save = True

    workspace = factory.SubFactory(crm_factories.WorkspaceFactory)
    name = "Spring"

    @factory.post_generation
    def include_segments(campaign, create, segments, **_):
        if create and segments:
            campaign.include_segments.add(*segments)


class VariantFactory(factory.django.DjangoModelFactory):
    """A variant, approved by campaigns.services.variants.variant_approve (which compiles and
    renders it, so a broken template fails here); `approved=False` leaves it a draft."""

    class Meta:
        model = Variant
        skip_postgeneration_save = True

    campaign = factory.SubFactory(CampaignFactory)
    name = "A"
    subject = "Variant 0: for {{ customer.first_name }}"
    body_html = HTML

    @factory.post_generation
    def approved(variant, create, approved, **_):
        if create and approved is not False:
            variant_approve(variant=variant)


def make_audience(
    workspace: Workspace,
    n: int,
    *,
    consent: str = "subscribed",
    name: str = "Everyone",
    prefix: str = "person",
) -> Segment:
    """A static segment of `n` customers (<prefix>0@example.com, first name P0, ...; in London)
    whose e-mail consent is `consent`. Written in bulk: some tests need a thousand."""
    customers = Customer.objects.bulk_create(
        [
            crm_factories.CustomerFactory.build(
                workspace=workspace,
                email=f"{prefix}{i}@example.com",
                first_name=f"P{i}",
                time_zone="Europe/London",
            )
            for i in range(n)
        ]
    )
    now = timezone.now()
    Consent.objects.bulk_create(
        [Consent(customer=c, channel="email", status=consent, updated_at=now) for c in customers]
    )
    return crm_factories.SegmentFactory(workspace=workspace, name=name, members=customers)


def make_campaign(
    workspace: Workspace, segment: Segment, *, variants: int = 1, **fields
) -> Campaign:
    """A draft campaign to `segment` with `variants` approved variants (A and B for two; their
    subjects say which), other campaign fields as given."""
    campaign = CampaignFactory(workspace=workspace, include_segments=[segment], **fields)
    for i in range(variants):
        VariantFactory(
            campaign=campaign,
            name="AB"[i] if variants <= 2 else str(i),
            subject=f"Variant {i}: for {{{{ customer.first_name }}}}",
        )
    return campaign


def launch_now(campaign: Campaign) -> dict:
    """Writes the ledger of a campaign launched now, as the launch run does; returns its counts."""
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    return build_ledger(campaign=campaign)


def sent_campaign(workspace: Workspace, n: int = 20, **fields) -> Campaign:
    """A campaign to `n` new customers whose every queued message was sent an hour ago."""
    campaign = make_campaign(workspace, make_audience(workspace, n), **fields)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    build_ledger(campaign=campaign)
    Message.objects.filter(campaign=campaign, state="queued").update(
        state="sent", sent_at=timezone.now() - timedelta(hours=1)
    )
    return campaign


def client_for(workspace: Workspace, scopes: list[str] = CAMPAIGN_SCOPES) -> APIClient:
    """An API client holding a new key of `workspace` with `scopes` (campaigns' by default)."""
    return crm_factories.client_for(workspace, scopes)
