"""Decisions inside a journey: a send step logs the probability of each variant it gives (the
fixed split's share, or the message's bandit per customer), targets by uplift when its message
says so (the holdout's scores recorded too), and a delay waits until each customer's best hour."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns.journeys import graph, services
from campaigns.journeys.models import EnrolmentStep, Journey, JourneyTimer
from campaigns.models import Campaign, Message, Variant
from campaigns.services.variants import variant_approve
from crm import services as crm
from crm.models import Customer, CustomerScore
from tests.campaigns.journeys.helpers import journey_message
from tests.campaigns.test_send_time import give_best_hours
from workers import services as run_services

pytestmark = pytest.mark.django_db


def customers(workspace, n: int) -> list[Customer]:
    crm.customer_bulk_upsert(
        workspace=workspace, rows=[{"email": f"c{i}@example.com"} for i in range(n)]
    )
    return list(Customer.objects.filter(workspace=workspace).order_by("id"))


def live_journey(workspace, steps: dict, start: str, **changes):
    journey = services.journey_create(
        workspace=workspace,
        name="Decisions",
        definition={"trigger": {"type": "api"}, "start": start, "steps": steps, **changes},
    )
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    return journey


def with_two_variants(workspace, **fields) -> Campaign:
    campaign = journey_message(workspace)
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    campaign.refresh_from_db()
    variant = Variant.objects.create(campaign=campaign, name="B", subject="Yours", weight=3)
    variant_approve(variant=variant)
    return campaign


def enrol_all(journey, people) -> None:
    for c in people:
        services.enrolment_create(journey=journey, customer=c)


def sender(campaign) -> dict:
    return {"mail": {"type": "send", "campaign": campaign.pk, "next": "end"},
            "end": {"type": "exit"}}  # fmt: skip


def test_the_fixed_split_logs_each_variants_share(workspace):
    campaign = with_two_variants(workspace)
    journey = live_journey(workspace, sender(campaign), "mail")
    enrol_all(journey, customers(workspace, 40))
    rows = list(Message.objects.filter(campaign=campaign).select_related("variant"))
    assert len(rows) == 40
    for row in rows:
        assert row.propensity == {"A": 0.25, "B": 0.75}[row.variant.name]
        assert row.decision["policy"] == "split"


def test_a_bandit_message_decides_per_customer_and_logs_the_probability(workspace):
    campaign = with_two_variants(workspace, bandit=Campaign.Bandit.THOMPSON)
    journey = live_journey(workspace, sender(campaign), "mail")
    enrol_all(journey, customers(workspace, 30))
    rows = list(Message.objects.filter(campaign=campaign))
    assert len(rows) == 30
    assert all(0 < r.propensity <= 1 and r.variant_id for r in rows)
    assert {r.decision["policy"] for r in rows} == {"thompson"}
    assert all(r.decision.get("probabilities") for r in rows)


def uplift_scored(workspace, people):
    run_services.model_version_register(
        workspace=workspace, family="uplift.purchase", artifact={"stub": True}, metrics={}
    )
    CustomerScore.objects.bulk_create(
        [
            CustomerScore(workspace=workspace, customer=c, kind="uplift.purchase",
                          value=(i - 10) / 100, computed_at=timezone.now())
            for i, c in enumerate(people)
        ]
    )  # fmt: skip


def test_targeting_by_uplift_skips_the_negative_and_records_every_score(workspace):
    campaign = with_two_variants(
        workspace, targeting=Campaign.Targeting.UPLIFT_POSITIVE, targeting_control_percent=0
    )
    people = customers(workspace, 30)
    uplift_scored(workspace, people)
    journey = live_journey(workspace, sender(campaign), "mail", holdout_percent=20)
    enrol_all(journey, people)
    rows = {m.customer_id: m for m in Message.objects.filter(campaign=campaign)}
    assert len(rows) == 30
    held = [r for r in rows.values() if r.reason == "holdout"]
    assert held and all(r.decision["uplift"] is not None for r in held)
    for i, c in enumerate(people):
        row = rows[c.pk]
        assert row.decision["uplift"] == pytest.approx((i - 10) / 100)
        if row.reason == "holdout":
            continue
        if i > 10:
            assert row.state == Message.State.QUEUED and row.decision["targeted"]
        else:
            assert row.state == Message.State.SKIPPED and row.reason.startswith("not targeted")


def test_a_half_set_targeting_is_refused_at_publish_and_sends_to_no_one_if_set_later(workspace):
    campaign = with_two_variants(workspace, targeting=Campaign.Targeting.UPLIFT_TOP)
    people = customers(workspace, 5)
    with pytest.raises(services.JourneyError) as refused:
        live_journey(workspace, sender(campaign), "mail")  # no active model, no k
    assert "steps.mail.campaign" in refused.value.errors
    uplift_scored(workspace, people)
    Campaign.objects.filter(pk=campaign.pk).update(targeting_percent=30)
    journey = Journey.objects.get()
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    # staff clear k after publishing: the step sends to no one and says why, never crashes
    Campaign.objects.filter(pk=campaign.pk).update(targeting_percent=None)
    enrol_all(journey, people)
    rows = list(Message.objects.filter(campaign=campaign))
    assert len(rows) == 5 and all(r.state == Message.State.SKIPPED for r in rows)
    assert all(r.reason.startswith("targeting: ") and "percent" in r.reason for r in rows)


def test_a_delay_until_the_best_hour_waits_for_each_customers_hour(workspace):
    campaign = journey_message(workspace)
    people = customers(workspace, 12)
    for c in people:
        c.time_zone = "Asia/Tokyo"
    Customer.objects.bulk_update(people, ["time_zone"])
    give_best_hours(people[:10], lambda c: 20)
    steps = {"later": {"type": "delay", "until_best_hour": {"explore_percent": 0},
                       "next": "mail"}, **sender(campaign)}  # fmt: skip
    journey = live_journey(workspace, steps, "later")
    before = timezone.now()
    enrol_all(journey, people)
    timers = {t.enrolment.customer_id: t for t in JourneyTimer.objects.select_related("enrolment")}
    assert len(timers) == 12
    for c in people[:10]:
        due = timers[c.pk].due_at
        assert before - timedelta(hours=1) <= due < before + timedelta(hours=24)
        assert due.astimezone(ZoneInfo("Asia/Tokyo")).hour == 20
    outcomes = set(EnrolmentStep.objects.filter(step="later").values_list("outcome", flat=True))
    assert "no best hour: now" in outcomes


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"window_hours": 0}, "steps.later.until_best_hour.window_hours"),
        ({"explore_percent": 120}, "steps.later.until_best_hour.explore_percent"),
        ({"hours": 3}, "steps.later.until_best_hour"),
        ("soon", "steps.later.until_best_hour"),
    ],
)
def test_a_bad_best_hour_delay_is_refused_with_its_field(spec, field):
    definition = {
        "trigger": {"type": "api"}, "start": "later",
        "steps": {"later": {"type": "delay", "until_best_hour": spec, "next": "end"},
                  "end": {"type": "exit"}},
    }  # fmt: skip
    with pytest.raises(graph.GraphError) as error:
        graph.check(definition)
    assert field in error.value.errors
