"""Every workspace is sealed from every other through the admin: staff who are members of one
workspace never see another's names, on any page the admin registers.

Workspace B holds one of everything, each named with SECRET; a staff member of workspace A
holding every view, add and change permission opens every registered admin's change list (its
filters included), its add form and the change form of one of A's rows, and types B's ids into
A's forms. No page may carry SECRET. The admins are read from the admin site, so a new one is
checked here without being listed.
"""

import uuid

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from campaigns.journeys.engine import enrol
from campaigns.journeys.services import journey_publish
from campaigns.models import (
    BrandRules,
    Campaign,
    Journey,
    Message,
    SendingSettings,
    Suppression,
    Variant,
    WebhookDelivery,
    WebhookEndpoint,
)
from crm import services
from crm.models import (
    AuditEntry,
    ChatMessage,
    Conversation,
    Customer,
    Event,
    KnowledgeArticle,
    Order,
    OrderLine,
    Product,
    Segment,
    SegmentMembership,
    Workspace,
)
from marketing_ai import sealed
from workers.models import ModelVersion, TaskRun

pytestmark = pytest.mark.django_db

SECRET = "bee-only"

JOURNEY = {
    "start": "d",
    "steps": {"d": {"type": "delay", "duration": "1d", "next": "e"}, "e": {"type": "exit"}},
}


def one_of_everything(workspace: Workspace, label: str) -> dict:
    """A row of every model the admin lists, in `workspace`, each name carrying `label`."""
    now = timezone.now()
    customer = Customer.objects.create(
        workspace=workspace, email=f"{label}@example.com", first_name=label
    )
    product = Product.objects.create(
        workspace=workspace, sku=f"{label}-sku", name=f"{label} product", category=label, price=5
    )
    order = Order.objects.create(
        workspace=workspace,
        customer=customer,
        external_id=f"{label}-o1",
        placed_at=now,
        total=5,
        currency="EUR",
    )
    OrderLine.objects.create(order=order, product=product, quantity=1, unit_price=5, amount=5)
    Event.objects.create(workspace=workspace, customer=customer, type="view", occurred_at=now)
    segment = Segment.objects.create(
        workspace=workspace, name=f"{label} segment", kind=Segment.Kind.STATIC
    )
    SegmentMembership.objects.create(segment=segment, customer=customer)
    campaign = Campaign.objects.create(workspace=workspace, name=f"{label} campaign")
    campaign.include_segments.add(segment)
    variant = Variant.objects.create(
        campaign=campaign, name="A", subject=f"{label} subject", body_html="<p>hi</p>"
    )
    Message.objects.create(
        campaign=campaign, customer=customer, variant=variant, send_at=now, address=customer.email
    )
    endpoint = WebhookEndpoint.objects.create(
        workspace=workspace, url=f"https://{label}.example/hook", secret=label
    )
    WebhookDelivery.objects.create(
        endpoint=endpoint, event="message.sent", payload={}, next_attempt_at=now
    )
    Suppression.objects.create(
        workspace=workspace, address=f"{label}-gone@example.com", channel="email", reason="manual"
    )
    BrandRules.objects.create(workspace=workspace, brand_name=f"{label} brand")
    services.api_key_create(workspace=workspace, name=f"{label} key", scopes=["crm:read"])
    run = TaskRun.objects.create(kind="workers.tasks.selfcheck", workspace=workspace, message=label)
    ModelVersion.objects.create(
        workspace=workspace, family="rfm", version=1, metrics={}, task_run=run
    )
    KnowledgeArticle.objects.create(
        workspace=workspace, title=f"{label} article", slug=f"{label}-article", body=label
    )
    conversation = Conversation.objects.create(
        workspace=workspace, customer=customer, token=f"{label}-{uuid.uuid4().hex}"
    )
    ChatMessage.objects.create(conversation=conversation, role="customer", text="hello")
    AuditEntry.objects.create(workspace=workspace, action="erase", actor=label, details={})
    SendingSettings.objects.create(
        workspace=workspace,
        email_provider="smtp",
        smtp_host=f"{label}.smtp.example",
        smtp_username=label,
        smtp_password_sealed=sealed.seal(label),
    )
    journey = Journey.objects.create(
        workspace=workspace, name=f"{label} journey", definition=JOURNEY
    )
    journey_publish(journey=journey)
    journey.refresh_from_db()
    enrol(version=journey.version, entrants=[(customer.pk, {})])
    return {"customer": customer, "product": product, "order": order, "segment": segment}


@pytest.fixture
def worlds(db):
    a = Workspace.objects.create(slug="ay", name="A")
    b = Workspace.objects.create(slug="bee", name=f"B {SECRET}")
    b.members.add(
        get_user_model().objects.create_user(
            f"{SECRET}-staff", email=f"{SECRET}@staff.example", is_staff=True
        )
    )
    return one_of_everything(a, "ay"), one_of_everything(b, SECRET)


@pytest.fixture
def staff(client, worlds):
    """A member of workspace A only, allowed to view, add and change everything."""
    user = get_user_model().objects.create_user("a-staff", password="pw-for-tests", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__regex=r"^(view|add|change)_"),
    )
    Workspace.objects.get(slug="ay").members.add(user)
    client.force_login(user)
    return client


def registered() -> list[tuple[type, admin.ModelAdmin]]:
    return sorted(admin.site._registry.items(), key=lambda pair: pair[0]._meta.label)


def admin_url(model, page: str, *args) -> str | None:
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}", args=args)
    except NoReverseMatch:
        return None


def leaked(response) -> bool:
    assert response.status_code in (200, 302, 403), response.status_code
    return SECRET.encode() in response.content


def test_no_admin_page_names_another_workspaces_rows(staff, worlds):
    leaks, seen_own = [], 0
    for model, model_admin in registered():
        name = model._meta.label
        response = staff.get(admin_url(model, "changelist"))
        seen_own += b"ay" in response.content
        if leaked(response):
            leaks.append(f"{name} change list")
        add = admin_url(model, "add")
        if add and leaked(staff.get(add)):
            leaks.append(f"{name} add form")
        row = model_admin.get_queryset(as_staff()).order_by("pk").first()
        if row is not None and leaked(staff.get(admin_url(model, "change", row.pk))):
            leaks.append(f"{name} change form of A's row")
    assert not leaks
    assert (
        seen_own > 10
    )  # the pages did show A's own rows: a page that shows nothing proves nothing


def as_staff():
    """A request of the staff member, for the admin's own queryset of what they may see."""
    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="a-staff")
    request.session = {}
    return request


def test_typing_another_workspaces_id_into_a_form_names_nothing_and_saves_nothing(staff, worlds):
    mine, theirs = worlds
    order = mine["order"]
    line = order.lines.get()
    url = admin_url(Order, "change", order.pk)
    form = {
        "workspace": order.workspace_id,
        "external_id": order.external_id,
        "kind": order.kind,
        "customer": theirs["customer"].pk,
        "placed_at_0": order.placed_at.date().isoformat(),
        "placed_at_1": "10:00:00",
        "total": "5",
        "currency": order.currency,
        "status": order.status,
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "1",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-id": line.pk,
        "lines-0-order": order.pk,
        "lines-0-product": theirs["product"].pk,
        "lines-0-quantity": "1",
        "lines-0-unit_price": "5",
        "lines-0-amount": "5",
    }
    response = staff.post(url, form)
    assert response.status_code == 200  # the form again, with its errors
    assert SECRET.encode() not in response.content
    order.refresh_from_db()
    line.refresh_from_db()
    assert order.customer_id == mine["customer"].pk
    assert line.product_id == mine["product"].pk
    campaign = Campaign.objects.get(name="ay campaign")
    response = staff.post(
        admin_url(Campaign, "change", campaign.pk),
        {"workspace": campaign.workspace_id, "include_segments": [theirs["segment"].pk]},
    )
    assert SECRET.encode() not in response.content
    assert list(campaign.include_segments.all()) == [mine["segment"]]
