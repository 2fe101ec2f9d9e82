"""crm.segments: a rule naming another segment must name one of its own workspace (#17), in the
API (400 with the rules field), the admin form and live count, and journeys' rules; rules saved
before a referenced segment was deleted still refresh (matching nobody through it)."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from crm import segments
from crm.models import Customer, Segment, SegmentMembership
from crm.services import segments as segment_services
from tests.crm.factories import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def vip(workspace):
    ann = Customer.objects.create(workspace=workspace, email="ann@acme.io")
    Customer.objects.create(workspace=workspace, email="bob@acme.io")
    segment = Segment.objects.create(workspace=workspace, name="VIP", kind=Segment.Kind.STATIC)
    SegmentMembership.objects.create(segment=segment, customer=ann)
    return segment


@pytest.fixture
def theirs(other_workspace):
    return Segment.objects.create(workspace=other_workspace, name="Theirs", kind="static")


def test_compiler_refuses_missing_and_foreign_segments(workspace, vip, theirs):
    assert segments.customers_matching(workspace, {"segment": vip.pk}).count() == 1
    missing = Segment.objects.order_by("-pk").first().pk + 100
    for pk in (missing, theirs.pk):
        with pytest.raises(segments.RuleError, match=f"rules.any\\[1\\].segment: no segment {pk}"):
            segments.compile_rules(workspace, {"any": [{"segment": vip.pk}, {"segment": pk}]})


def test_api_answers_400_on_the_rules_field(workspace, vip, theirs):
    api = client_for(workspace)
    for pk in (theirs.pk, vip.pk + 1000):
        rules = {"all": [{"segment": pk}]}
        saved = api.post("/api/v1/segments", {"name": "X", "rules": rules}, format="json")
        assert saved.status_code == 400, saved.content
        assert f"no segment {pk} in this workspace" in saved.json()["rules"][0]
        preview = api.post("/api/v1/segments/preview", {"rules": rules}, format="json")
        assert preview.status_code == 400 and "rules" in preview.json()
    made = api.post("/api/v1/segments", {"name": "Y", "rules": {"segment": vip.pk}}, format="json")
    assert made.status_code == 201, made.content
    patched = api.patch(
        f"/api/v1/segments/{made.json()['id']}", {"rules": {"segment": theirs.pk}}, format="json"
    )
    assert patched.status_code == 400 and "rules" in patched.json()
    assert not Segment.objects.filter(workspace=workspace, name="X").exists()


def test_admin_form_and_live_count_refuse_them(client, workspace, other_workspace, vip, theirs):
    user = get_user_model().objects.create_user("marketer", password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="crm"))
    workspace.members.add(user)
    client.force_login(user)
    page = client.post(
        "/admin/crm/segment/add/",
        {
            "workspace": workspace.pk,
            "name": "Borrowed",
            "kind": "rules",
            "rules": json.dumps({"segment": theirs.pk}),
        },
    )
    assert page.status_code == 200  # the form again, with the error on the rules field
    assert (
        f"no segment {theirs.pk} in this workspace"
        in page.context["adminform"].form.errors["rules"][0]
    )
    assert not Segment.objects.filter(name="Borrowed").exists()
    live = client.post(
        "/admin/crm/segment/live/",
        json.dumps({"workspace": workspace.pk, "rules": {"segment": theirs.pk}}),
        content_type="application/json",
    )
    assert live.status_code == 400 and "no segment" in live.json()["error"]


def test_a_deleted_reference_still_refreshes(workspace, vip):
    followers = segment_services.segment_save(
        workspace=workspace, name="Followers", rules={"segment": vip.pk}
    )
    assert segment_services.segment_refresh(segment=followers)["members"] == 1
    vip.delete()
    # Saved rules are evaluated without the check: the nightly refresh goes on, and the
    # reference now has no members.
    assert segment_services.segment_refresh(segment=followers)["members"] == 0
    with pytest.raises(segments.RuleError):
        segment_services.segment_save(
            workspace=workspace, name="Followers", rules=followers.rules, segment=followers
        )
