"""campaigns.services.lifecycle: the one rule for a campaign being done (the launch run, delivery
and the sweeper all use it) and the one rule for taking an approval back after an edit (the
admin's inline and the API's PATCH both use it)."""

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign, Message, Variant
from campaigns.services import lifecycle, variants
from campaigns.services.delivery import deliver
from campaigns.services.recipients import build_ledger
from campaigns.services.sweep import sweep
from campaigns.tasks import launch
from crm import services
from crm.models import Consent, Segment
from tests.campaigns.factories import make_audience, make_campaign
from workers.models import TaskRun
from workers.services import task_run_start

pytestmark = pytest.mark.django_db


def scheduled(workspace, n: int, **fields) -> Campaign:
    name = fields.setdefault("name", "Spring")
    segment = make_audience(workspace, n, name=name, prefix=name)
    campaign = make_campaign(workspace, segment, **fields)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    campaign.refresh_from_db()
    return campaign


def settle_all(campaign: Campaign) -> None:
    """Every waiting row of the ledger handed off, as delivery would leave them."""
    Message.objects.filter(campaign=campaign, state__in=lifecycle.PENDING).update(
        state=Message.State.SENT, sent_at=timezone.now()
    )


def status_of(campaign: Campaign) -> str:
    campaign.refresh_from_db()
    return campaign.status


# --- done -----------------------------------------------------------------------------------


def test_a_campaign_is_done_once_its_written_ledger_has_no_waiting_row(workspace):
    campaign = scheduled(workspace, 3)
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)  # no ledger yet
    build_ledger(campaign=campaign)
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)  # three rows queued
    Message.objects.filter(campaign=campaign).update(state=Message.State.SENDING)
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)  # claimed, in flight
    settle_all(campaign)
    assert lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT and campaign.finished_at is not None
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)  # once


def test_an_empty_ledger_is_done_only_for_the_run_that_just_wrote_it(workspace):
    campaign = scheduled(workspace, 0)
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)
    assert lifecycle.campaign_finish_if_done(campaign_id=campaign.pk, ledger_written=True)
    assert status_of(campaign) == Campaign.Status.SENT


def test_the_ab_rest_waiting_for_a_winner_keeps_the_campaign_going(workspace):
    campaign = scheduled(workspace, 40, variants=2, ab_test_percent=20, seed=1)
    build_ledger(campaign=campaign)
    Message.objects.filter(campaign=campaign, ab_test=True).update(state=Message.State.SENT)
    assert Message.objects.filter(campaign=campaign, variant__isnull=True).exists()
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)


@pytest.mark.parametrize("status", ["draft", "paused", "cancelled"])
def test_only_a_scheduled_or_sending_campaign_is_marked_sent(workspace, status):
    campaign = scheduled(workspace, 2)
    build_ledger(campaign=campaign)
    settle_all(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk, ledger_written=True)
    assert status_of(campaign) == status


def run_launch(campaign: Campaign) -> TaskRun:
    """The launch run in this process (the test's transaction holds its queued message back)."""
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    run = task_run_start(
        task=launch, params={"campaign": campaign.pk}, workspace=campaign.workspace
    )
    launch.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    return run


def test_the_launch_run_finishes_a_campaign_with_nobody_or_only_skipped_rows(workspace):
    nobody = make_campaign(
        workspace, Segment.objects.create(workspace=workspace, name="none", kind="static"),
        name="nobody",
    )  # fmt: skip
    run_launch(nobody)
    assert status_of(nobody) == Campaign.Status.SENT and not nobody.messages.exists()
    segment = make_audience(workspace, 3, prefix="gone", name="gone")
    skipped = make_campaign(workspace, segment, name="skipped")
    Consent.objects.filter(customer__in=segment.memberships.values("customer")).update(
        status="unsubscribed"
    )
    run_launch(skipped)
    assert status_of(skipped) == Campaign.Status.SENT
    assert set(skipped.messages.values_list("reason", flat=True)) == {"no consent"}


def test_delivery_and_the_sweeper_finish_by_the_same_rule(workspace):
    delivered = scheduled(workspace, 2, name="delivered")
    swept = scheduled(workspace, 2, name="swept")
    for campaign in (delivered, swept):
        build_ledger(campaign=campaign)
    assert sweep()["finished"] == []  # rows due: not done
    for campaign in (delivered, swept):
        settle_all(campaign)
    deliver(campaign_id=delivered.pk, budget_seconds=5)
    assert status_of(delivered) == Campaign.Status.SENT
    assert sweep()["finished"] == [swept.pk] and status_of(swept) == Campaign.Status.SENT


# --- re-approval after an edit ---------------------------------------------------------------


def api_for(workspace) -> APIClient:
    _, secret = services.api_key_create(workspace=workspace, name="t", scopes=["campaigns:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def admin_for(workspace, client):
    staff = User.objects.create_superuser("boss", password="a-long-password-2")
    workspace.members.add(staff)
    client.force_login(staff)

    def edit(campaign: Campaign, variant: Variant, **changes) -> None:
        """Saves the campaign's change form as the page posts it, with `changes` to the variant."""
        url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
        page = client.get(url)
        forms = [page.context["adminform"].form]
        for inline in page.context["inline_admin_formsets"]:
            forms += [inline.formset.management_form, *inline.formset.forms]
        data = {}
        for form in forms:
            for name in form.fields:
                value = form[name].value()
                if value is not None and value is not False:
                    data[form.add_prefix(name)] = value
        (prefix,) = {f.prefix for f in forms[2:] if f.instance.pk == variant.pk}
        data.update({f"{prefix}-{name}": value for name, value in changes.items()})
        answer = client.post(url, data)
        assert answer.status_code == 302, answer.context and answer.context["errors"]

    return edit


def api_edit(workspace):
    api = api_for(workspace)

    def edit(campaign: Campaign, variant: Variant, **changes) -> None:
        answer = api.patch(f"/api/v1/campaigns/{campaign.pk}/variants/{variant.pk}", changes)
        assert answer.status_code == 200, answer.content

    return edit


@pytest.fixture(params=["admin", "api"])
def edit(request, workspace, client):
    return admin_for(workspace, client) if request.param == "admin" else api_edit(workspace)


def approved(variant: Variant) -> bool:
    variant.refresh_from_db()
    return variant.status == Variant.Status.APPROVED and variant.approved_at is not None


def test_an_edit_of_the_copy_takes_the_approval_back_in_the_admin_and_the_api(workspace, edit):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    variant = campaign.variants.get()
    assert approved(variant)
    edit(campaign, variant, weight=3, name="Renamed")  # no copy changed: still approved
    assert approved(variant) and (variant.weight, variant.name) == (3, "Renamed")
    edit(campaign, variant, subject="Now 90% off")
    variant.refresh_from_db()
    assert variant.subject == "Now 90% off" and not approved(variant)
    assert variant.status == Variant.Status.DRAFT and variant.approved_by is None


def test_an_edit_with_the_same_copy_keeps_the_approval(workspace, edit):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    variant = campaign.variants.get()
    edit(campaign, variant, subject=variant.subject, body_html=variant.body_html)
    assert approved(variant)


def test_a_launched_campaigns_copy_is_frozen(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    variant = campaign.variants.get()
    with pytest.raises(lifecycle.CampaignError) as refused:
        variants.variant_update(variant=variant, fields={"subject": "changed"})
    assert "frozen" in str(refused.value.errors["status"])
    answer = api_for(workspace).patch(
        f"/api/v1/campaigns/{campaign.pk}/variants/{variant.pk}", {"subject": "changed"}
    )
    assert answer.status_code == 400 and "status" in answer.json()
    variant.refresh_from_db()
    assert variant.subject != "changed" and approved(variant)
