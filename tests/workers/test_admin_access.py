"""workers.admin_access: every extra admin page and every admin action needs a model
permission, not staff status.

The cases below are checked against what the admin really registers (each ModelAdmin's
get_urls() and actions): a page or action added without an entry here fails the first test,
and one added without a permission check fails the others.
"""

import json

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from campaigns.deliverability.services import sending_domain_create
from campaigns.models import Campaign, Message, Suppression
from crm.models import Customer, Product, Segment, Workspace
from crm.services import api_key_create
from tests.campaigns.factories import launch_now, make_audience, make_campaign
from workers import services
from workers.admin_access import STAFF_ONLY
from workers.models import ModelVersion, TaskRun

pytestmark = pytest.mark.django_db

STANDARD = ("changelist", "add", "history", "delete", "change")


# Django's own extra page, which checks change_user itself.
CHECKED_BY_DJANGO = {"auth_user_password_change"}


def custom_urls() -> dict[str, object]:
    """{url name: view} of the pages the ModelAdmins add beside the standard ones."""
    found = {}
    for model, model_admin in admin.site._registry.items():
        standard = {f"{model._meta.app_label}_{model._meta.model_name}_{s}" for s in STANDARD}
        for pattern in model_admin.get_urls():
            if pattern.name and pattern.name not in standard | CHECKED_BY_DJANGO:
                found[pattern.name] = pattern.callback
    return found


def custom_actions() -> dict[str, object]:
    """{'<app>.<model>.<action>': function} for every action but Django's delete_selected."""
    found = {}
    for model, model_admin in admin.site._registry.items():
        for func, name, _ in model_admin._get_base_actions():
            if name != "delete_selected":
                found[f"{model._meta.app_label}.{model._meta.model_name}.{name}"] = func
    return found


# url name -> (permission the page needs, permission a POST needs as well, or None)
PAGES = {
    "campaigns_campaign_act": ("campaigns.change_campaign", None),
    "campaigns_campaign_preview": ("campaigns.view_campaign", "campaigns.change_campaign"),
    "campaigns_campaign_results": ("campaigns.view_campaign", None),
    "campaigns_campaign_policy_evaluation": ("campaigns.view_campaign", None),
    "campaigns_campaign_generate": ("campaigns.change_campaign", None),
    "campaigns_campaign_generate_products": ("campaigns.change_campaign", None),
    "campaigns_campaign_messages": ("campaigns.view_campaign", None),
    "campaigns_campaign_message": ("campaigns.view_campaign", None),
    "crm_customer_import": ("crm.add_customer", None),
    "crm_forecast_run": ("crm.add_forecast", None),
    "crm_segment_live": ("crm.view_segment", None),
    "crm_segment_choices": ("crm.view_segment", None),
    "crm_workspace_switch": (STAFF_ONLY, None),
    "workers_taskrun_selfcheck": ("workers.add_taskrun", None),
    "workers_modelversion_train": ("workers.add_modelversion", None),
}
ACTIONS = {
    "campaigns.campaign.train_uplift": "campaigns.change_campaign",
    "campaigns.sendingdomain.new_key": "campaigns.change_sendingdomain",
    "campaigns.suppression.lift": "campaigns.delete_suppression",
    "crm.apikey.revoke": "crm.change_apikey",
    "crm.product.deactivate": "crm.change_product",
    "crm.product.activate": "crm.change_product",
    "crm.customer.erase": "crm.delete_customer",
    "crm.segment.refresh": "crm.change_segment",
    "workers.taskrun.cancel_runs": "workers.change_taskrun",
    "workers.modelversion.promote": "workers.change_modelversion",
    "workers.modelversion.make_shadow": "workers.change_modelversion",
    "workers.modelversion.retire": "workers.change_modelversion",
    "workers.modelversion.roll_back": "workers.change_modelversion",
    # django-celery-beat's, given permissions in workers/admin.py
    "django_celery_beat.periodictask.enable_tasks": "django_celery_beat.change_periodictask",
    "django_celery_beat.periodictask.disable_tasks": "django_celery_beat.change_periodictask",
    "django_celery_beat.periodictask.toggle_tasks": "django_celery_beat.change_periodictask",
    "django_celery_beat.periodictask.run_tasks": "django_celery_beat.change_periodictask",
}


def test_every_custom_page_and_action_is_listed_here_and_checked():
    pages = custom_urls()
    assert set(pages) == set(PAGES), "a new admin page needs its permission in PAGES"
    for name, view in pages.items():
        assert getattr(view, "admin_permission", None), f"{name} is not a guarded_view"
    actions = custom_actions()
    assert set(actions) == set(ACTIONS), "a new admin action needs its permission in ACTIONS"
    for name, func in actions.items():
        assert getattr(func, "allowed_permissions", None), f"{name} declares no permissions"


@pytest.fixture
def workspace(db):
    return Workspace.objects.create(slug="acme", name="Acme")


@pytest.fixture
def login(client, workspace):
    """Logs in a fresh staff member of `workspace` holding exactly the given permissions."""
    count = [0]

    def as_user(*perms: str):
        count[0] += 1
        user = get_user_model().objects.create_user(
            f"staff{count[0]}", password="pw-for-tests", is_staff=True
        )
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        workspace.members.add(user)
        client.force_login(user)
        return client

    return as_user


def all_view_permissions() -> list[str]:
    return [
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(codename__startswith="view_").select_related(
            "content_type"
        )
    ]


@pytest.fixture
def objects(workspace):
    segment = make_audience(workspace, 2)
    campaign = make_campaign(workspace, segment)
    return {"campaign": campaign, "segment": segment, "workspace": workspace}


def a_message(campaign: Campaign) -> Message:
    """A message of `campaign` (its ledger written), the campaign left a draft for the checks
    that it stays one."""
    message = Message.objects.filter(campaign=campaign).first()
    if message is None:
        launch_now(campaign)
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.DRAFT)
        message = Message.objects.filter(campaign=campaign).first()
    return message


def request(client, name: str, objects: dict, *, post: bool):
    """One request to the page `name` with arguments that it accepts."""
    campaign = objects["campaign"]
    urls = {
        "campaigns_campaign_act": reverse(
            "admin:campaigns_campaign_act", args=[campaign.pk, "cancel"]
        ),
        "campaigns_campaign_preview": reverse(
            "admin:campaigns_campaign_preview", args=[campaign.pk]
        ),
        "campaigns_campaign_policy_evaluation": reverse(
            "admin:campaigns_campaign_policy_evaluation", args=[campaign.pk]
        ),
        "campaigns_campaign_results": reverse(
            "admin:campaigns_campaign_results", args=[campaign.pk]
        ),
        "campaigns_campaign_generate": reverse(
            "admin:campaigns_campaign_generate", args=[campaign.pk]
        ),
        "campaigns_campaign_generate_products": reverse(
            "admin:campaigns_campaign_generate_products", args=[campaign.pk]
        ),
        "campaigns_campaign_messages": reverse(
            "admin:campaigns_campaign_messages", args=[campaign.pk]
        ),
    }
    if name == "campaigns_campaign_message":
        urls[name] = reverse(
            "admin:campaigns_campaign_message", args=[campaign.pk, a_message(campaign).pk]
        )
    url = urls.get(name) or reverse(f"admin:{name}")
    if name == "crm_segment_choices":
        url += f"?workspace={objects['workspace'].pk}"
    if name == "crm_segment_live":
        body = json.dumps({"workspace": objects["workspace"].pk, "rules": {"event": "view"}})
        return client.post(url, body, content_type="application/json")
    data = {
        "campaigns_campaign_preview": {"address": "qa@example.com"},
        "workers_taskrun_selfcheck": {"queue": "default"},
        "workers_modelversion_train": {"workspace": objects["workspace"].pk, "model": "rfm"},
        "crm_forecast_run": {"workspace": objects["workspace"].pk},
    }.get(name, {})
    return client.post(url, data) if post else client.get(url)


@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages_refuse_staff_without_the_permission(login, objects, name):
    needed, _ = PAGES[name]
    viewer = login(*[p for p in all_view_permissions() if p != needed])
    if needed == STAFF_ONLY:
        assert request(viewer, name, objects, post=True).status_code == 302
        return
    for post in (False, True):
        assert request(viewer, name, objects, post=post).status_code == 403, (name, post)
    assert Campaign.objects.get().status == Campaign.Status.DRAFT  # the cancel did not happen
    assert not TaskRun.objects.exists() and not mail.outbox


READ_ONLY = (  # GET pages
    "campaigns_campaign_generate_products",
    "campaigns_campaign_results",
    "campaigns_campaign_policy_evaluation",
    "campaigns_campaign_messages",
    "campaigns_campaign_message",
    "crm_segment_choices",
)


@pytest.mark.parametrize("name", sorted(n for n, (p, _) in PAGES.items() if p != STAFF_ONLY))
def test_pages_serve_staff_with_the_permission(login, objects, name):
    needed, write = PAGES[name]
    user = login(needed, *([write] if write else []))
    response = request(user, name, objects, post=name not in READ_ONLY)
    assert response.status_code in (200, 302), (name, response.status_code)
    if write:
        # The page itself is open to viewers; only what it writes on POST needs more.
        reader = login(needed)
        assert request(reader, name, objects, post=False).status_code == 200
        assert request(reader, name, objects, post=True).status_code == 403


def test_campaign_state_changes_need_change_campaign(login, objects):
    campaign = objects["campaign"]
    viewer = login(*all_view_permissions())
    for action in ("approve", "launch", "pause", "resume", "cancel", "resend"):
        url = reverse("admin:campaigns_campaign_act", args=[campaign.pk, action])
        assert viewer.post(url).status_code == 403, action
    page = viewer.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert "/act/cancel/" not in page.content.decode()  # no buttons it cannot press

    editor = login("campaigns.view_campaign", "campaigns.change_campaign")
    editor.post(reverse("admin:campaigns_campaign_act", args=[campaign.pk, "cancel"]))
    assert Campaign.objects.get().status == Campaign.Status.CANCELLED
    page = login("campaigns.view_campaign", "campaigns.change_campaign").get(
        reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
    )
    assert page.status_code == 200


def test_test_send_needs_change_campaign(login, objects):
    url = reverse("admin:campaigns_campaign_preview", args=[objects["campaign"].pk])
    assert login("campaigns.view_campaign").post(url, {"address": "qa@x.io"}).status_code == 403
    assert not mail.outbox
    editor = login("campaigns.view_campaign", "campaigns.change_campaign")
    assert editor.post(url, {"address": "qa@x.io"}).status_code == 200
    assert [m.to for m in mail.outbox] == [["qa@x.io"]]


def periodic_task(name: str, enabled: bool) -> PeriodicTask:
    every = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.DAYS)[0]
    # The campaign sweep: harmless whenever it runs (beat runs it every 15 s).
    return PeriodicTask.objects.create(
        name=name, task="campaigns.tasks.sweep", interval=every, enabled=enabled
    )


def action_cases(workspace: Workspace) -> dict:
    """{action: (selected object, check(page after the POST) -> whether the action ran)}."""
    key, _ = api_key_create(workspace=workspace, name="shop", scopes=["crm:read"])
    shoe = Product.objects.create(workspace=workspace, sku="s1", name="Shoe", active=True)
    hat = Product.objects.create(workspace=workspace, sku="h1", name="Hat", active=False)
    person = Customer.objects.create(workspace=workspace, email="erase-me@example.com")
    segment = Segment.objects.create(
        workspace=workspace, name="Rules", kind=Segment.Kind.RULES, rules={"event": "view"}
    )
    run = TaskRun.objects.create(kind="workers.tasks.selfcheck", workspace=workspace)

    def version(family: str, *, promote: bool = False, status: str = "") -> ModelVersion:
        made = services.model_version_create(family=family, workspace=workspace, metrics={})
        if promote:
            services.model_version_promote(version=made)
        if status:
            services.model_version_set_status(version=made, status=status)
        return made

    old = version("predict.churn", promote=True)
    current = version("predict.churn", promote=True)
    candidate = version("predict.clv")
    shadow = version("predict.rfm", status=ModelVersion.Status.RETIRED)
    retiring = version("predict.clusters")
    off, on, flip = periodic_task("off", False), periodic_task("on", True), periodic_task("f", True)
    sending = sending_domain_create(workspace=workspace, domain="shop.example")
    bounced = Suppression.objects.create(
        workspace=workspace, channel="email", address="gone@example.com"
    )

    def row(obj):
        return type(obj).objects.get(pk=obj.pk)

    return {
        "crm.apikey.revoke": (key, lambda _: row(key).revoked_at is not None),
        "crm.product.deactivate": (shoe, lambda _: not row(shoe).active),
        "crm.product.activate": (hat, lambda _: row(hat).active),
        "crm.customer.erase": (person, lambda _: row(person).erased_at is not None),
        "crm.segment.refresh": (segment, lambda _: row(segment).refreshed_at is not None),
        "workers.taskrun.cancel_runs": (run, lambda _: row(run).status == "cancelled"),
        "workers.modelversion.promote": (candidate, lambda _: row(candidate).status == "active"),
        "workers.modelversion.make_shadow": (shadow, lambda _: row(shadow).status == "shadow"),
        "workers.modelversion.retire": (retiring, lambda _: row(retiring).status == "retired"),
        "workers.modelversion.roll_back": (current, lambda _: row(old).status == "active"),
        "django_celery_beat.periodictask.enable_tasks": (off, lambda _: row(off).enabled),
        "django_celery_beat.periodictask.disable_tasks": (on, lambda _: not row(on).enabled),
        "django_celery_beat.periodictask.toggle_tasks": (flip, lambda _: not row(flip).enabled),
        "django_celery_beat.periodictask.run_tasks": (on, lambda page: "successfully run" in page),
        "campaigns.campaign.train_uplift": (
            Campaign.objects.create(workspace=workspace, name="Uplift source"),
            lambda page: "Training the uplift model" in page,
        ),
        "campaigns.sendingdomain.new_key": (
            sending,
            lambda _: row(sending).public_key != sending.public_key,
        ),
        # Lifting asks for its note first: the action ran when its form is shown.
        "campaigns.suppression.lift": (bounced, lambda page: 'name="note"' in page),
    }


def post_action(client, name: str, obj) -> str:
    """The page that the admin answers a POST of action `name` on `obj` with."""
    app_label, model, action = name.split(".")
    url = reverse(f"admin:{app_label}_{model}_changelist")
    response = client.post(url, {"action": action, "_selected_action": [obj.pk]}, follow=True)
    return response.content.decode()


def test_actions_need_their_permission(login, workspace):
    cases = action_cases(workspace)
    assert set(cases) == set(ACTIONS)
    viewer = login(*all_view_permissions())
    for name, (obj, happened) in cases.items():
        assert not happened(post_action(viewer, name, obj)), f"{name} ran for a view-only user"
        app_label, model, action = name.split(".")
        page = viewer.get(reverse(f"admin:{app_label}_{model}_changelist")).content.decode()
        assert f'value="{action}"' not in page, f"{name} is offered to a view-only user"

    for name, (obj, happened) in cases.items():
        app_label, model, _ = name.split(".")
        user = login(f"{app_label}.view_{model}", ACTIONS[name])
        assert happened(post_action(user, name, obj)), f"{name} did not run with {ACTIONS[name]}"
