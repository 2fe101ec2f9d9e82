"""campaigns.api.views, the campaign API end to end: a real worker launches and sends (file e-mail
backend)."""

import pytest
from rest_framework.test import APIClient

from campaigns.models import Campaign, Message
from crm import services
from crm.models import Segment, Workspace
from tests.campaigns.factories import make_audience
from tests.campaigns.helpers import PUBLIC, wait_for_status

SCOPES = ["campaigns:read", "campaigns:write", "tasks:read"]


def client_for(workspace: Workspace, scopes=SCOPES) -> APIClient:
    _, secret = services.api_key_create(workspace=workspace, name="test", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.django_db
def test_bad_campaigns_get_field_errors_and_foreign_segments_are_refused(workspace):
    other = Workspace.objects.create(slug="other", name="Other")
    foreign = Segment.objects.create(workspace=other, name="theirs", kind="static")
    api = client_for(workspace)
    body = {"name": "", "holdout_percent": 80, "channel": "fax", "include_segments": [foreign.pk]}
    response = api.post("/api/v1/campaigns", body)
    assert response.status_code == 400
    assert {"name", "holdout_percent", "channel", "include_segments"} <= set(response.json())
    readonly = client_for(workspace, ["campaigns:read"])
    assert readonly.post("/api/v1/campaigns", {"name": "x"}).status_code == 403
    assert client_for(workspace, ["crm:read"]).get("/api/v1/campaigns").status_code == 403
    theirs = Campaign.objects.create(workspace=other, name="theirs")
    assert api.get(f"/api/v1/campaigns/{theirs.pk}").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from_email", "not an email"),
        ("from_email", "a@b.c\r\nBcc: x@y.z"),  # would add a header
        ("from_email", "Shop <a@b.c>\nBcc: x@y.z"),
        ("from_email", "Shop <not an address>"),
        ("ab_wait_hours", 721),
        ("ab_wait_hours", -1),
        ("ab_wait_hours", 1e308),  # the A/B decision's timedelta overflowed
        ("targeting_percent", True),  # JSON true was taken as 1.0
        ("holdout_percent", True),
        ("explore_percent", False),
    ],
)
def test_a_sender_or_ab_wait_that_cannot_work_is_refused(workspace, field, value):
    api = client_for(workspace)
    created = api.post("/api/v1/campaigns", {"name": "c", field: value}, format="json")
    assert created.status_code == 400 and set(created.json()) == {field}, created.content
    draft = api.post("/api/v1/campaigns", {"name": "d"}, format="json").json()
    patched = api.patch(f"/api/v1/campaigns/{draft['id']}", {field: value}, format="json")
    assert patched.status_code == 400 and set(patched.json()) == {field}, patched.content
    assert not Campaign.objects.exclude(**{field: Campaign._meta.get_field(field).get_default()})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from_email", ""),
        ("from_email", "news@shop.example"),
        ("from_email", "Shop News <news@shop.example>"),
        ("ab_wait_hours", 0),
        ("ab_wait_hours", 720),
        ("ab_wait_hours", 0.5),
    ],
)
def test_a_sender_and_ab_wait_that_work_are_kept(workspace, field, value):
    api = client_for(workspace)
    created = api.post("/api/v1/campaigns", {"name": "c", field: value}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()[field] == value


@pytest.mark.django_db(transaction=True)
def test_create_approve_launch_send_and_read_results(workspace, live_worker):
    segment = make_audience(workspace, 40)
    api = client_for(workspace)
    created = api.post(
        "/api/v1/campaigns",
        {"name": "Autumn", "include_segments": [segment.pk], "holdout_percent": 10, "seed": 4},
    )
    assert created.status_code == 201, created.json()
    base = f"/api/v1/campaigns/{created.json()['id']}"
    assert api.post(f"{base}/launch").status_code == 400  # nothing approved yet
    variant = api.post(
        f"{base}/variants",
        {"name": "A", "subject": "Hi {{ customer.first_name }}", "body_html": "<p>{% if %}</p>"},
    )
    assert variant.status_code == 201
    vbase = f"{base}/variants/{variant.json()['id']}"
    refused = api.post(f"{vbase}/approve")
    assert refused.status_code == 400 and "body_html" in refused.json()
    api.patch(
        vbase, {"body_html": '<p>Hello {{ first_name }}, <a href="https://x.example/">look</a></p>'}
    )
    assert api.post(f"{vbase}/approve").json()["status"] == "approved"
    launched = api.post(f"{base}/launch")
    assert launched.status_code == 202
    task = launched.json()["task"]
    assert api.get(f"/api/v1/tasks/{task}").status_code == 200
    campaign = wait_for_status(Campaign.objects.get(pk=created.json()["id"]), "sent", timeout=60)
    stats = api.get(f"{base}/stats").json()
    held = Message.objects.filter(campaign=campaign, holdout=True).count()
    assert stats["sent"] == 40 - held and stats["audience"] == 40
    assert stats["holdout"]["recipients"] == held
    assert stats["variants"][0]["sent"] == 40 - held
    messages = api.get(f"{base}/messages", {"state": "sent"}).json()
    assert len(messages["results"]) == 40 - held
    assert api.post(f"{base}/pause").status_code == 400
    assert api.patch(base, {"name": "renamed"}).status_code == 400  # launched: frozen


@pytest.mark.django_db
def test_webhook_endpoints_and_their_delivery_log(workspace, dns):
    dns["crm.example.com"] = [PUBLIC]  # registration resolves the name (tests/.../test_outbound)
    api = client_for(workspace)
    bad = api.post("/api/v1/webhooks", {"url": "not a url", "events": ["message.exploded"]})
    assert bad.status_code == 400 and {"url", "events"} <= set(bad.json())
    made = api.post(
        "/api/v1/webhooks", {"url": "https://crm.example.com/hook", "events": ["message.sent"]}
    )
    assert made.status_code == 201 and len(made.json()["secret"]) == 40
    hook = made.json()["id"]
    assert api.get(f"/api/v1/webhooks/{hook}/deliveries").json()["results"] == []
    assert api.patch(f"/api/v1/webhooks/{hook}", {"active": False}).json()["active"] is False
    assert api.delete(f"/api/v1/webhooks/{hook}").status_code == 204


@pytest.mark.django_db(transaction=True)
def test_a_campaign_with_nobody_to_send_to_finishes(workspace, live_worker):
    empty = Segment.objects.create(workspace=workspace, name="nobody", kind="static")
    api = client_for(workspace)
    made = api.post("/api/v1/campaigns", {"name": "Empty", "include_segments": [empty.pk]}).json()
    base = f"/api/v1/campaigns/{made['id']}"
    variant = api.post(f"{base}/variants", {"name": "A", "subject": "Hi", "body_html": "<p>x</p>"})
    api.post(f"{base}/variants/{variant.json()['id']}/approve")
    assert api.post(f"{base}/launch").status_code == 202
    campaign = wait_for_status(Campaign.objects.get(pk=made["id"]), "sent", timeout=60)
    assert campaign.finished_at and api.get(f"{base}/stats").json()["audience"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_launch_the_broker_never_got_is_sent_again_by_the_sweeper(workspace, live_worker):
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.models import Variant
    from campaigns.services.variants import variant_approve
    from campaigns.tasks import launch
    from workers.models import TaskRun
    from workers.sweeper import sweep_runs

    segment = make_audience(workspace, 5)
    campaign = Campaign.objects.create(
        workspace=workspace,
        name="Lost",
        status="scheduled",
        launched_at=timezone.now() - timedelta(minutes=5),
    )
    campaign.include_segments.add(segment)
    variant = Variant.objects.create(campaign=campaign, name="A", subject="Hi", body_html="<p></p>")
    variant_approve(variant=variant)
    # What a launch leaves when its message never reached Redis: a queued run, no ledger.
    TaskRun.objects.create(
        kind=launch.name, params={"campaign": campaign.pk}, queue="default", workspace=workspace
    )
    assert sweep_runs()["sent"] == 1  # the one sweeper of every run
    wait_for_status(campaign, "sent", timeout=60)
    assert campaign.messages.filter(state="sent").count() == 5


@pytest.mark.django_db
def test_a_bandit_with_best_hour_timing_is_refused(workspace):
    api = client_for(workspace)
    both = {"name": "b", "bandit": "thompson", "timing": "best"}
    created = api.post("/api/v1/campaigns", both, format="json")
    assert created.status_code == 400 and "bandit" in created.json(), created.content
    draft = api.post("/api/v1/campaigns", {"name": "d", "timing": "best"}, format="json").json()
    patched = api.patch(f"/api/v1/campaigns/{draft['id']}", {"bandit": "thompson"}, format="json")
    assert patched.status_code == 400 and "bandit" in patched.json()


@pytest.mark.django_db
def test_the_approve_address_only_approves(workspace):
    from drf_spectacular.generators import SchemaGenerator

    api = client_for(workspace)
    made = api.post("/api/v1/campaigns", {"name": "Approve only"}).json()
    base = f"/api/v1/campaigns/{made['id']}/variants"
    variant = api.post(base, {"name": "A", "subject": "Hi", "body_html": "<p>x</p>"}).json()
    approve = f"{base}/{variant['id']}/approve"
    assert api.delete(approve).status_code == 405
    assert api.patch(approve, {"subject": "changed"}).status_code == 405
    assert api.get(approve).status_code == 405
    assert api.get(f"{base}/{variant['id']}").json()["subject"] == "Hi"  # still there
    assert api.post(approve).json()["status"] == "approved"
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    listed = next(v for k, v in paths.items() if k.endswith("/approve"))
    assert set(listed) == {"post"}
