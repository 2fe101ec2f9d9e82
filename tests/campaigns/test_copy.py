"""campaigns.services.copy, AI-written variants on the platform: the brief's validation (API and
admin), a real worker writing variants with their provenance, and approval that checks generated
copy again."""

import pytest
from rest_framework.test import APIClient

from campaigns import rendering
from campaigns.models import BrandRules, Campaign, Variant
from campaigns.services import lifecycle
from campaigns.services.variants import variant_approve
from crm import services
from marketing_ai.ml.language import copywriter
from tests.campaigns.factories import make_audience
from tests.conftest import wait_until
from tests.crm.forecast_rows import forecast_version
from workers.models import TaskRun

FOOTER = "You receive this e-mail because you subscribed."


def setup_shop(workspace) -> Campaign:
    services.product_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "sku": "TEA",
                "name": "ROSES REGENCY TEACUP AND SAUCER",
                "description": "Bone china teacup and saucer with roses",
            },
            {"sku": "HEART", "name": "WHITE HANGING HEART T-LIGHT HOLDER"},
        ],
    )
    BrandRules.objects.create(workspace=workspace, brand_name="Rosebud", required_phrases=FOOTER)
    segment = make_audience(workspace, 3, name="Tea lovers")
    campaign = Campaign.objects.create(workspace=workspace, name="Tea time")
    campaign.include_segments.add(segment)
    return campaign


def api_for(workspace, scopes=("campaigns:read", "campaigns:write")) -> APIClient:
    _, secret = services.api_key_create(workspace=workspace, name="t", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.django_db
def test_briefs_are_validated_in_the_api_and_the_admin(workspace, client, admin_user):
    campaign = setup_shop(workspace)
    api = api_for(workspace)
    wrong = {"campaign": campaign.pk, "products": ["NOPE"], "language": "xx", "k": 20}
    bad = api.post("/api/v1/content/generate", wrong)
    assert bad.status_code == 400 and {"language", "k"} <= bad.json().keys()
    unknown = api.post("/api/v1/content/generate", {"campaign": campaign.pk, "products": ["NOPE"]})
    assert unknown.status_code == 400 and "NOPE" in str(unknown.json()["products"])
    read_only = api_for(workspace, ["campaigns:read"])
    body = {"campaign": campaign.pk, "products": ["TEA"]}
    assert read_only.post("/api/v1/content/generate", body).status_code == 403
    accepted = api.post("/api/v1/content/generate", body)
    assert accepted.status_code == 202
    assert TaskRun.objects.get(pk=accepted.json()["task"]).queue == "gpu"

    workspace.members.add(admin_user)
    client.force_login(admin_user)
    url = f"/admin/campaigns/campaign/{campaign.pk}/generate/"
    assert client.get(url).status_code == 200
    form = {"products": "NOPE", "goal": "Tea time", "language": "en", "k": 2}
    assert b"not in the catalogue" in client.post(url, form).content
    assert client.post(url, {**form, "products": "TEA"}).status_code == 302
    assert TaskRun.objects.filter(kind="campaigns.tasks.generate_copy").count() == 2


@pytest.mark.django_db
def test_copy_generation_starts_alike_from_the_api_and_the_admin(workspace, client, admin_user):
    campaign = setup_shop(workspace)
    api = api_for(workspace)
    workspace.members.add(admin_user)
    client.force_login(admin_user)
    url = f"/admin/campaigns/campaign/{campaign.pk}/generate/"
    form = {"products": "TEA", "goal": "Tea time", "language": "en", "k": 2}
    started = api.post("/api/v1/content/generate", {"campaign": campaign.pk, "products": ["TEA"]})
    assert started.status_code == 202
    assert client.post(url, form).status_code == 302
    runs = TaskRun.objects.filter(kind="campaigns.tasks.generate_copy")
    by_api, by_admin = runs.order_by("created_at")
    assert str(by_api.pk) == started.json()["task"]
    for run in (by_api, by_admin):
        assert (run.queue, run.workspace, run.status) == ("gpu", workspace, TaskRun.Status.QUEUED)
        assert run.params["campaign"] == campaign.pk and run.params["products"] == ["TEA"]
    assert by_admin.created_by == admin_user and by_api.created_by is None

    # Once the campaign has left draft, both refuse with the same reason and start nothing.
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    refused = api.post("/api/v1/content/generate", {"campaign": campaign.pk, "products": ["TEA"]})
    assert refused.status_code == 400
    (reason,) = refused.json()["campaign"]
    page = client.post(url, form)
    assert page.status_code == 200 and reason in page.content.decode()
    assert runs.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_worker_writes_variants_and_approval_checks_them(workspace, live_worker):
    campaign = setup_shop(workspace)
    # The teacup is featured because the forecast has it rising: the variants say so.
    forecast_version(workspace, {"TEA": (0.3, 0.1, 0.5)})
    started = api_for(workspace).post(
        "/api/v1/content/generate",
        {
            "campaign": campaign.pk,
            "rising": ["TEA"],
            "goal": "Show tea lovers our teacups",
            "k": 2,
            "rounds": 1,  # the run's plumbing; bench/copywriting.py measures regeneration
            "seed": 5,
        },
    )
    assert started.status_code == 202, started.content
    run_id = started.json()["task"]
    wait_until(lambda: TaskRun.objects.get(pk=run_id).status in TaskRun.FINISHED, timeout=400)
    run = TaskRun.objects.get(pk=run_id)
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    # The model's variants; templates offered beside them are "Template n" (test_copy_labels).
    variants = list(campaign.variants.filter(provenance__source="model").order_by("name"))
    assert [v.name for v in variants] == ["AI 1", "AI 2"]
    for variant in variants:
        provenance = variant.provenance
        assert provenance["generated"] and provenance["seed"] == 5
        assert provenance["model"] and provenance["prompts"]["body"][1]["role"] == "user"
        assert "ROSES REGENCY TEACUP AND SAUCER" in provenance["brief"]
        assert [(r["sku"], r["change"]) for r in provenance["brief_rising"]] == [("TEA", 0.3)]
        assert FOOTER in variant.body_html and variant.status == Variant.Status.DRAFT
        if provenance["guardrails"]["passed"]:
            variant_approve(variant=variant)
            variant.refresh_from_db()
            assert variant.status == Variant.Status.APPROVED
        else:
            with pytest.raises(lifecycle.CampaignError):
                variant_approve(variant=variant)

    # An edit that invents a discount is caught at approval; an honest edit passes.
    variant = variants[0]
    variant.status = Variant.Status.DRAFT
    variant.body_html = copywriter.as_html(
        f"Our Regency teacup and saucer, now 50% off until Friday.\n\n{FOOTER}"
    )
    variant.subject, variant.preheader = "Tea time with roses", "Bone china for slow mornings."
    variant.save()
    with pytest.raises(lifecycle.CampaignError) as refused:
        variant_approve(variant=variant)
    assert {"discounts", "dates"} <= {p.split(":")[0] for p in refused.value.errors["body"]}
    variant.body_html = copywriter.as_html(
        f"Our Regency teacup and saucer brings roses to your table.\n\n{FOOTER}"
    )
    variant.save()
    variant_approve(variant=variant)
    # What the recipient gets: the approved copy, personalised, with the footer.
    customer = campaign.include_segments.get().memberships.first().customer
    rendered = rendering.compiled(variant).render_for(
        customer, unsubscribe_url="#u", preferences_url="#p"
    )
    assert "brings roses to your table" in rendered.text and FOOTER in rendered.text
