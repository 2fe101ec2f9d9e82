"""campaigns.services.results: conversions attributed within the window, and the lift over the
holdout with its 95% interval."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message, Variant
from campaigns.services.results import campaign_stats
from campaigns.services.uplift_results import uplift_results
from crm.models import Customer, Event
from tests.campaigns.factories import client_for, sent_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def test_conversions_and_lift_over_the_holdout(workspace):
    campaign = sent_campaign(workspace, n=600, holdout_percent=30, seed=5, attribution_days=3)
    treated = list(Message.objects.filter(campaign=campaign, holdout=False, state="sent"))
    control = list(Message.objects.filter(campaign=campaign, holdout=True))
    now = timezone.now()
    buyers = treated[: len(treated) // 5] + control[: len(control) // 10]
    late = treated[-3:]  # bought after the window: not a conversion
    Event.objects.bulk_create(
        [
            Event(
                workspace=workspace,
                customer_id=m.customer_id,
                type="purchase",
                occurred_at=now,
                properties={"total": "20.00"},
            )
            for m in buyers
        ]
        + [
            Event(
                workspace=workspace,
                customer_id=m.customer_id,
                type="purchase",
                occurred_at=now + timedelta(days=5),
                properties={"total": "9.00"},
            )
            for m in late
        ]
    )
    Message.objects.filter(pk__in=[m.pk for m in control]).update(send_at=now - timedelta(hours=1))
    stats = campaign_stats(campaign=campaign)
    t_rate = (len(treated) // 5) / len(treated)
    c_rate = (len(control) // 10) / len(control)
    assert stats["treated"]["conversions"]["rate"] == pytest.approx(t_rate)
    assert stats["holdout"]["conversions"]["rate"] == pytest.approx(c_rate)
    lift = stats["lift"]
    assert lift["conversion_rate"] == pytest.approx(t_rate - c_rate)
    low, high = lift["conversion_rate_ci95"]
    assert low < t_rate - c_rate < high and low > 0  # a real 10-point lift on 600 is significant
    assert stats["treated"]["revenue"] == pytest.approx(20.0 * (len(treated) // 5))
    assert stats["variants"][0]["conversions"]["count"] == len(treated) // 5
    assert campaign_stats(campaign=campaign)["lift"] == lift  # attribution is idempotent


def targeted_ledger(workspace, groups: dict[str, tuple[int, int]]):
    """A sent campaign targeted by uplift whose ledger holds, for each group, (members,
    conversions): "selected_sent", "selected_held" (held out, would have been selected),
    "other_held", "share_sent" (the control share, not selected), "selected_share" (the
    control share, selected), "not_targeted" (skipped)."""
    campaign = Campaign.objects.create(
        workspace=workspace, name="targeted", targeting="uplift_top", targeting_percent=20,
        status="sent", launched_at=timezone.now(),
    )  # fmt: skip
    variant = Variant.objects.create(campaign=campaign, name="A", subject="s", body_html="b")
    at = timezone.now() - timedelta(days=10)
    facts = {
        "selected_sent": dict(holdout=False, state="sent", targeted=True, control=False),
        "selected_held": dict(holdout=True, state="queued", targeted=True, control=None),
        "other_held": dict(holdout=True, state="queued", targeted=False, control=None),
        "share_sent": dict(holdout=False, state="sent", targeted=False, control=True),
        "selected_share": dict(holdout=False, state="sent", targeted=True, control=True),
        "not_targeted": dict(holdout=False, state="skipped", targeted=False, control=False),
    }
    rows = []
    for name, (members, converted) in groups.items():
        fact = facts[name]
        customers = Customer.objects.bulk_create(
            Customer(workspace=workspace, email=f"{name}{i}@example.com") for i in range(members)
        )
        for i, customer in enumerate(customers):
            decision = {"uplift": 0.1 if fact["targeted"] else -0.1, "targeted": fact["targeted"],
                        "targeting": "uplift_top"}  # fmt: skip
            if fact["control"] is not None:
                decision["targeting_control"] = fact["control"]
            rows.append(
                Message(
                    campaign=campaign,
                    customer=customer,
                    variant=variant,
                    holdout=fact["holdout"],
                    state=fact["state"],
                    send_at=at,
                    sent_at=at if fact["state"] == "sent" else None,
                    reason="not targeted: uplift below the top 20%"
                    if name == "not_targeted"
                    else "",
                    decision=decision,
                    converted_at=at + timedelta(hours=1) if i < converted else None,
                )  # fmt: skip
            )
    Message.objects.bulk_create(rows)
    return campaign


def test_a_targeted_campaigns_lift_compares_the_selected_sent_with_the_selected_held_out(
    workspace,
):
    campaign = targeted_ledger(
        workspace,
        {
            "selected_sent": (100, 30),
            "selected_held": (50, 5),
            "other_held": (150, 3),
            "share_sent": (40, 1),
            "selected_share": (20, 2),
            "not_targeted": (300, 6),
        },
    )
    stats = campaign_stats(campaign=campaign)
    lift = stats["lift"]
    # like for like: the 32/120 selected and sent (the control share's selected among them)
    # against the 5/50 selected and held out; not the 33/160 sent against the holdout's 8/200
    assert lift["conversion_rate"] == pytest.approx(32 / 120 - 0.10)
    assert (lift["treated"], lift["control"]) == (120, 50)
    assert lift["incremental_conversions"] == pytest.approx((32 / 120 - 0.10) * 120)
    assert "selected" in lift["compares"] and "would have selected" in lift["compares"]
    low, high = lift["conversion_rate_ci95"]
    assert low < 32 / 120 - 0.10 < high
    # the whole holdout stays in the stats, as what it is
    assert stats["holdout"]["recipients"] == 200
    assert stats["selected"]["sent"]["recipients"] == 120
    assert stats["selected"]["held_out"]["conversions"]["rate"] == pytest.approx(0.10)
    # the uplift section's effect on the selected is the same figure
    earned = uplift_results(campaign=campaign)["earned"]
    assert earned["lift_on_selected"]["value"] == pytest.approx(lift["conversion_rate"])
    assert earned["lift_on_selected"]["ci95"] == pytest.approx(lift["conversion_rate_ci95"])
    # per audience member, the targeted arm (sent if selected: 36 of 400) against the holdout
    assert earned["targeted_vs_holdout"]["value"] == pytest.approx(36 / 400 - 8 / 200)


def test_a_campaign_to_everyone_compares_everyone_sent_with_the_whole_holdout(workspace):
    campaign = sent_campaign(workspace, n=40, holdout_percent=25, seed=3)
    stats = campaign_stats(campaign=campaign)
    held = stats["holdout"]["recipients"]
    assert (stats["lift"]["treated"], stats["lift"]["control"]) == (40 - held, held)
    assert "whole holdout" in stats["lift"]["compares"] and stats["selected"] is None


def test_the_results_page_says_what_the_targeted_lift_compares(workspace, admin_client):
    campaign = targeted_ledger(
        workspace, {"selected_sent": (30, 9), "selected_held": (20, 2), "other_held": (30, 1)}
    )
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/results/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "like for like" in body and "would have selected (the rest" in body
    assert 'id="results-selected"' in body and "Held out, would have been selected" in body
    assert "(30 against 20)" in body
    assert "What choosing by score earned, per audience member" in body
    assert "effect on those the targeting selected" in body


def test_the_results_page_shows_every_rate_as_a_percentage(workspace, admin_client):
    """One format, as the sender-health figures read (0.00%): rates and shares as percentages,
    differences of rates as percentage points; never 0.3000 beside 0.00%."""
    campaign = targeted_ledger(
        workspace, {"selected_sent": (30, 9), "selected_held": (20, 2), "other_held": (30, 1)}
    )
    body = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/results/").content.decode()
    assert "<td>30.00% (" in body and "<td>10.00% (" in body  # 9 of 30, 2 of 20
    assert "sent minus held out: +20.00 points (95% interval " in body
    assert not re.findall(r"(?<![\d.])-?0\.\d{4}(?!\d)", body)


def openapi_schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def undocumented(value, schema: dict, components: dict, where: str = "") -> list[str]:
    """The keys of `value` (an API answer) that `schema` does not describe, at any depth."""
    while "$ref" in schema or "allOf" in schema:
        schema = (
            components[schema["$ref"].rsplit("/", 1)[-1]]
            if "$ref" in schema
            else schema["allOf"][0]
        )
    if isinstance(value, dict) and "properties" in schema:
        missing = [f"{where}.{key}" for key in value if key not in schema["properties"]]
        for key, inner in value.items():
            if key in schema["properties"]:
                missing += undocumented(
                    inner, schema["properties"][key], components, f"{where}.{key}"
                )
        return missing
    if isinstance(value, list) and "items" in schema:
        return [
            m for item in value[:1] for m in undocumented(item, schema["items"], components, where)
        ]
    return []


def test_the_stats_api_reports_the_uplift_results_as_its_schema_documents(workspace):
    campaign = targeted_ledger(
        workspace,
        {"selected_sent": (60, 18), "selected_held": (40, 4), "other_held": (60, 2),
         "share_sent": (40, 3), "not_targeted": (100, 2)},
    )  # fmt: skip
    answer = client_for(workspace).get(f"/api/v1/campaigns/{campaign.pk}/stats")
    assert answer.status_code == 200
    body = answer.json()
    uplift = body["uplift"]
    expected = uplift_results(campaign=campaign, attribute=False)
    assert uplift["qini"]["observed"] == expected["qini"]["observed"]
    assert len(uplift["qini"]["observed"]) == len(uplift["qini"]["predicted"]) == 101
    assert uplift["qini"]["qini"] == expected["qini"]["qini"]
    earned = uplift["earned"]
    assert earned["lift_on_selected"]["value"] == pytest.approx(body["lift"]["conversion_rate"])
    assert earned["targeted_vs_holdout"]["value"] == pytest.approx(20 / 160 - 6 / 100)
    schema = openapi_schema()
    answer_schema = schema["paths"]["/api/v1/campaigns/{id}/stats"]["get"]["responses"]["200"]
    documented = answer_schema["content"]["application/json"]["schema"]
    components = schema["components"]["schemas"]
    assert undocumented(body, documented, components) == []
    # (the walk reaches the uplift section's depths: a key the schema lacks there is found)
    stray = {"uplift": {"earned": {"lift_on_selected": {"stray": 1}}}}
    assert undocumented(stray, documented, components) == [".uplift.earned.lift_on_selected.stray"]
    stats = components["CampaignStats"]["properties"]
    assert {"uplift", "lift", "selected"} <= stats.keys()
    assert "lift_on_selected" in components["UpliftEarned"]["properties"]
    assert "observed" in components["UpliftQini"]["properties"]
    # a campaign without scores has none
    plain = sent_campaign(workspace, n=10, name="plain")
    assert client_for(workspace).get(f"/api/v1/campaigns/{plain.pk}/stats").json()["uplift"] is None
