"""campaigns.rendering: a variant rendered for its recipient, with tracked links, the open pixel,
the unsubscribe footer and their recommendations; and the fence its templates run in (plain data
in, allow-listed tags, a budget per message), where each test reproduces a hole an outside review
found (issue 14, findings 1 and 3)."""

import time

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import rendering, sandbox, tracking
from campaigns.models import Campaign, Variant
from campaigns.services import copy
from campaigns.services.delivery import deliver
from campaigns.services.recipients import build_ledger
from crm import services
from crm.models import Customer, Product, Recommendation, Workspace
from marketing_ai.ml.language import copywriter, guardrails
from tests.campaigns.factories import make_audience, make_campaign

WALK = (
    "{% for u in customer.workspace.members.all %}{{ u.password }}"
    "{% for w in u.workspaces.all %}{% for c in w.customers.all %}[{{ c.email }}]"
    "{% endfor %}{% endfor %}{% endfor %}"
    "{{ customer.workspace.name }}{{ customer.identities.all }}pk=[{{ customer.pk }}]"
)


def compile_body(body: str, **fields) -> rendering.CompiledVariant:
    return rendering.compile_variant(
        subject=fields.get("subject", "Hi"),
        preheader="",
        body_html=body,
        body_text=fields.get("text", ""),
    )


@pytest.fixture
def two_shops(db):
    """Workspace A with a recipient; its staff member also belongs to B, which has customers."""
    a = Workspace.objects.create(slug="a", name="Shop A")
    b = Workspace.objects.create(slug="b", name="Shop B")
    staff = User.objects.create_user("both", password="a-long-password-1", is_staff=True)
    a.members.add(staff)
    b.members.add(staff)
    Customer.objects.create(workspace=b, email="secret@b.example", first_name="Bea")
    segment = make_audience(a, 1)
    return a, b, staff, segment


def test_a_template_cannot_walk_from_its_recipient_to_other_workspaces(two_shops):
    a, _, staff, segment = two_shops
    campaign = make_campaign(a, segment)
    # Written through the API, as anyone with a campaigns:write key could.
    _, secret = services.api_key_create(workspace=a, name="w", scopes=["campaigns:write"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    variant = campaign.variants.get()
    answer = api.patch(
        f"/api/v1/campaigns/{campaign.pk}/variants/{variant.pk}",
        {"body_html": f"<p>Hi {{{{ customer.first_name }}}}</p>{WALK}"},
    )
    assert answer.status_code == 200, answer.content
    variant.refresh_from_db()
    recipient = segment.memberships.get().customer

    rendered = rendering.compiled(variant).render_for(recipient)  # what a send renders
    assert f"Hi {recipient.first_name}" in rendered.html
    for leaked in ("secret@b.example", "pbkdf2", "Shop A", f"pk=[{recipient.pk}]"):
        assert leaked not in rendered.html and leaked not in rendered.text

    # The admin's preview renders the same way.
    client = APIClient()
    client.force_login(User.objects.create_superuser("boss", password="a-long-password-2"))
    a.members.add(User.objects.get(username="boss"))
    page = client.get(reverse("admin:campaigns_campaign_preview", args=[campaign.pk]))
    assert page.status_code == 200
    assert b"secret@b.example" not in page.content and b"pbkdf2" not in page.content


def test_the_context_holds_plain_data_only(two_shops):
    a, _, _, segment = two_shops
    recipient = segment.memberships.get().customer
    compiled = compile_body("<p>{{ customer }}</p>")
    context = rendering.recipient_context(recipient, compiled, unsubscribe_url="#")
    assert isinstance(context["customer"], sandbox.Record)
    assert context["customer"]["email"] == recipient.email
    with pytest.raises(TypeError, match="plain data only"):
        compiled.render({**context, "customer": recipient})  # a model object is refused
    with pytest.raises(TypeError, match="plain data only"):
        compiled.render({**context, "them": Customer.objects.all()})
    assert recipient.first_name in compiled.render(context).html  # str() of the record: a name


def test_records_are_read_only():
    record = sandbox.plain({"tags": ["a", "b"], "nested": {"x": 1}})
    compiled = compile_body("{{ customer.nested.clear }}{{ customer.tags.pop }}")
    with pytest.raises(TypeError):
        record["tags"] = []  # type: ignore[index]
    assert isinstance(record["tags"], tuple) and record["nested"]["x"] == 1
    compiled.render({"customer": record})
    assert record["nested"]["x"] == 1 and record["tags"] == ("a", "b")


@pytest.mark.parametrize(
    "source",
    [
        "{% debug %}",
        "{% include 'admin/base.html' %}",
        "{% extends 'admin/base.html' %}",
        "{% load static %}",
        "{% url 'admin:index' %}",
        "{% lorem 100000 w %}",
        "{% csrf_token %}",
        "{{ customer|pprint }}",
    ],
)
def test_tags_that_reach_outside_the_message_do_not_compile(source):
    with pytest.raises(rendering.VariantError):
        compile_body(source)


def test_old_variants_with_load_recommendations_still_compile():
    compiled = compile_body("{% load recommendations %}{% recommend customer 3 as p %}x")
    assert compiled.recommendations == 3


@pytest.mark.parametrize("body, reason", [
    # The review's 3,000 x 3,000 loop took 22 s in a web request.
    ("{% for a in customer.attributes.big %}{% for b in customer.attributes.big %}"
     "{% endfor %}{% endfor %}", "loops ran"),
    ("{% for a in customer.attributes.big %}{{ customer.attributes.text }}{% endfor %}",
     "more than"),
    ("{{ customer.first_name|ljust:'100000000' }}", "width"),
    ("{{ customer.attributes.big|join:customer.attributes.text }}", "more than"),
    ("{{ 1.5|floatformat:'100000' }}", "decimals"),
    ("{{ 'x'|stringformat:'100000000s' }}", "width"),
    # An outside tester's: each `with` doubles a string by `add`; 26 levels took 10.5 s and
    # 3.2 GB before anything was written out.
    ("".join(f"{{% with a{i + 1}=a{i}|add:a{i} %}}" for i in range(26)).replace(
        "a0|add:a0", "customer.first_name|add:customer.first_name") + "{{ a26|length }}"
     + "{% endwith %}" * 26, "more than"),
    ("{% firstof customer.attributes.text as a %}" + "{% firstof a|add:a as a %}" * 30
     + "{{ a|length }}", "more than"),
    # The second tester's: regroup walked a 458,752-character string with no loop charge
    # (9 s past a 2 s limit).
    ("{% with b0='abcdefg' %}" + "".join(f"{{% with b{i + 1}=b{i}|add:b{i} %}}" for i in range(14))
     + "{% regroup b14 by x as g %}" + "{% endwith %}" * 15, "loops ran"),
])  # fmt: skip
def test_renders_stop_at_the_budget(body, reason):
    customer = sandbox.plain(
        {"first_name": "Ann", "attributes": {"big": list(range(3000)), "text": "y" * 2000}}
    )
    compiled = compile_body(f"<p>{body}</p>")
    started = time.monotonic()
    with pytest.raises(rendering.RenderLimit, match=reason):
        compiled.render({"customer": customer, "unsubscribe_url": "#"})
    assert time.monotonic() - started < 3


def test_the_time_budget_stops_a_slow_render(settings):
    settings.CAMPAIGN_RENDER_SECONDS = 0.05
    settings.CAMPAIGN_RENDER_MAX_CHARS = 10**9  # time, not size, is what stops this one
    customer = sandbox.plain({"attributes": {"rows": ["x" * 50_000] * 300}})
    compiled = compile_body(
        "{% for r in customer.attributes.rows %}{{ r|title|slugify|length }}{% endfor %}"
    )
    with pytest.raises(rendering.RenderLimit, match="took longer"):
        compiled.render({"customer": customer, "unsubscribe_url": "#"})


def test_a_template_over_budget_fails_its_message_at_approval(two_shops):
    a, _, _, segment = two_shops
    campaign = make_campaign(a, segment)
    variant = campaign.variants.get()
    variant.body_html = (
        '{% for a in "'
        + "x" * 3000
        + '"|make_list %}'
        + ('{% for b in "' + "x" * 3000 + '"|make_list %}{% endfor %}{% endfor %}')
    )
    variant.status = Variant.Status.DRAFT
    variant.save()
    from campaigns.services import lifecycle, variants

    with pytest.raises(lifecycle.CampaignError, match="loops ran"):
        variants.variant_approve(variant=variant)


@pytest.mark.django_db
def test_generated_fields_are_text_not_template_code(two_shops, monkeypatch):
    """Every generated field (the SMS text starts with a product name an integration wrote)
    comes out as the text it is, braces and all."""
    a, _, _, segment = two_shops
    name = "{{ customer.workspace.name }}{% debug %}"
    Product.objects.create(workspace=a, sku="EVIL", name=name, price=3)
    recipient = segment.memberships.get().customer
    for channel in ("email", "sms"):
        campaign = make_campaign(a, segment, name=f"c-{channel}", channel=channel)
        draft = copywriter.Draft(
            fields=(
                {"text": f"{name} is back. Reply STOP to opt out."}
                if channel == "sms"
                else {
                    "subject": f"{name} for you",
                    "preheader": f"Only {name}",
                    "body": f"{name} is here.",
                }
            ),
            report=guardrails.Report(failures=[]),
            prompts={},
            seed=1,
            attempts=1,
        )
        brief = copy.copy_brief(campaign=campaign, params={"products": ["EVIL"], "goal": "x"})

        class Model:
            def describe(self) -> dict:
                return {"model": "test"}

        variant = copy._store(campaign, "AI 1", draft, brief, Model(), {})
        rendered = rendering.compiled(variant).render_for(recipient, unsubscribe_url="#")
        if channel == "sms":
            assert rendered.text == f"{name} is back. Reply STOP to opt out."
        else:
            assert rendered.subject == f"{name} for you"
            assert f"Only {name}" in rendered.html and f"{name} is here." in rendered.text
        assert "Shop A" not in rendered.text + rendered.html + rendered.subject
        # The brand rules read the copy as words, not as escaped template code.
        stored = variant.body_text if channel == "sms" else variant.subject
        assert "{{" not in stored and name in sandbox.unliteral(stored)
        assert copy.variant_copy_check(variant) is not None


def test_the_admins_preview_escapes_what_a_variant_renders(two_shops):
    """An outside tester's: a variant closing the preview's srcdoc attribute ran its script in
    the staff member's admin session (the rendered HTML came back marked safe)."""
    a, _, _, segment = two_shops
    campaign = make_campaign(a, segment)
    variant = campaign.variants.get()
    variant.body_html = '"></iframe><script>alert(document.domain)</script><iframe srcdoc="'
    variant.save()
    rendered = rendering.compiled(variant).render_for(segment.memberships.get().customer)
    assert type(rendered.html) is str and "<script>" in rendered.html  # the e-mail as written
    client = APIClient()
    boss = User.objects.create_superuser("boss", password="a-long-password-2")
    a.members.add(boss)
    client.force_login(boss)
    page = client.get(reverse("admin:campaigns_campaign_preview", args=[campaign.pk]))
    assert page.status_code == 200
    assert b"<script>alert" not in page.content
    assert b"&lt;script&gt;alert" in page.content


def test_a_render_error_names_no_value_of_the_context(two_shops):
    """An outside tester's: an approval error printed the whole context (Django's
    VariableDoesNotExist does), so a campaigns-only key read a recipient's address and a signed
    chat link that opened their orders."""
    a, _, _, segment = two_shops
    campaign = make_campaign(a, segment)
    variant = campaign.variants.get()
    recipient = segment.memberships.get().customer
    _, secret = services.api_key_create(
        workspace=a, name="w", scopes=["campaigns:read", "campaigns:write"]
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    url = f"/api/v1/campaigns/{campaign.pk}/variants/{variant.pk}"
    for body in (
        "<p>{{ chat_url }}{{ x|default:nope }}</p>",
        "<p>{{ customer.email|divisibleby:3 }}</p>",
    ):  # a ValueError quoting the value
        assert api.patch(url, {"body_html": body}).status_code == 200
        answer = api.post(f"{url}/approve")
        assert answer.status_code == 400, answer.content
        assert recipient.email.encode() not in answer.content
        assert b"/chat/" not in answer.content and b"Record(" not in answer.content
    assert b"nope" in answer.content or b"ValueError" in answer.content


def test_templates_have_a_size_limit(two_shops):
    """The second tester's: a 2.5 MB body took 14 s and 500 MB of a web worker to compile."""
    a, _, _, segment = two_shops
    campaign = make_campaign(a, segment)
    variant = campaign.variants.get()
    _, secret = services.api_key_create(workspace=a, name="w", scopes=["campaigns:write"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    url = f"/api/v1/campaigns/{campaign.pk}/variants/{variant.pk}"
    answer = api.patch(url, {"body_html": "{{a}}" * 40_001})
    assert answer.status_code == 400 and "body_html" in answer.json()
    answer = api.post(
        f"/api/v1/campaigns/{campaign.pk}/variants", {"name": "big", "body_text": "x" * 100_001}
    )
    assert answer.status_code == 400 and "body_text" in answer.json()
    with pytest.raises(rendering.VariantError, match="body_html: longer than 200,000"):
        compile_body("{{a}}" * 40_001)  # a row written around the API is refused at compile


@pytest.mark.django_db(transaction=True)
def test_rendered_email_has_tracked_links_pixel_and_unsubscribe(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    message_token = "cd" * 16
    variant = campaign.variants.get()
    customer = campaign.include_segments.get().memberships.get().customer
    rendered = rendering.compiled(variant).render_for(
        customer,
        unsubscribe_url=tracking.unsubscribe_url(message_token),
        preferences_url=tracking.preferences_url(message_token),
        message_token=message_token,
    )
    assert rendered.subject == f"Variant 0: for {customer.first_name}"
    assert "https://shop.example.com" not in rendered.html  # every link goes through /t/c/
    assert "/t/c/" in rendered.html and "/t/o/" in rendered.html and "/u/" in rendered.html
    assert "new collection (http" in rendered.text and "Unsubscribe (http" in rendered.text


@pytest.mark.django_db(transaction=True)
def test_variant_renders_the_customers_recommendations(workspace, sink_factory, smtp_settings):
    lamp = Product.objects.create(workspace=workspace, sku="L1", name="Brass lamp", price=30)
    mug = Product.objects.create(workspace=workspace, sku="M1", name="Owl mug", price=8)
    gone = Product.objects.create(workspace=workspace, sku="X1", name="Retired vase", active=False)
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    customer = campaign.include_segments.get().memberships.get().customer
    Recommendation.objects.create(
        workspace=workspace,
        customer=customer,
        computed_at=timezone.now(),
        products=[[mug.pk, 0.9], [gone.pk, 0.8], [lamp.pk, 0.7]],
    )
    variant = campaign.variants.get()
    variant.body_html = (
        "<p>Picked for you:</p>{% recommend customer 3 as picks %}"
        "<ul>{% for p in picks %}<li>{{ p.name }}</li>{% endfor %}</ul>"
    )
    variant.save()
    text = rendering.compiled(variant).render_for(customer).text
    assert "- Owl mug" in text and "- Brass lamp" in text and "Retired vase" not in text
    # ... and the same in the message that goes out.
    sink = sink_factory()
    smtp_settings(sink)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    build_ledger(campaign=campaign)
    deliver(campaign_id=campaign.pk, budget_seconds=10)
    assert sink.count() == 1
