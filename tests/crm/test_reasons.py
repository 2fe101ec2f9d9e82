"""crm/selectors/reasons.py: every kind of score's reasons as sentences with direction and size,
on the customer page, in the API's timeline (`explanation` beside `reasons`) and the privacy
export."""

import pytest
from django.utils import timezone

from crm.models import CustomerScore, Segment, SegmentMembership
from crm.selectors.reasons import explanation, reason_sentences, segment_sentence
from tests.crm.factories import client_for, seed


def test_churn_reasons_say_the_fact_and_the_points_it_adds():
    sentences = reason_sentences(
        kind="churn_risk",
        value=0.5,
        reasons=[
            {"feature": "returns", "value": 0.0, "contribution": 0.1336},
            {"feature": "recency_days", "value": 200.0, "contribution": 1.2},
            {"feature": "avg_order_value", "value": None, "contribution": 0.01},
        ],
    )
    # 0.5 against sigmoid(logit(0.5) - 0.1336) = 0.4666: 3.3 points of risk.
    assert sentences == [
        "no returns: churn risk up 3.3 points",
        "last order 200 days ago: churn risk up 27 points",
        "no order value yet: churn risk up 0.2 points",
    ]


def test_lifetime_value_reasons_say_which_way_each_fact_moves_it():
    reasons = [
        {"feature": "expected_purchases", "value": 2.31},
        {"feature": "expected_order_value", "value": 104.1},
        {"feature": "repeat_purchases", "value": 7},
        {"feature": "weeks_since_last", "value": 30.0},
    ]
    assert reason_sentences(kind="clv_12m", value=240.47, reasons=reasons) == [
        "about 2.3 more purchases expected × 104.10 a purchase = 240.47",
        "7 repeat purchases: expected value up",
        "last purchase 30 weeks ago: expected value down",
    ]
    fresh = [
        {"feature": "repeat_purchases", "value": 0},
        {"feature": "weeks_since_last", "value": 1},
    ]
    assert explanation(kind="p_alive", value=0.9, reasons=fresh) == (
        "no repeat purchases: chance still a customer down; "
        "last purchase 1 week ago: chance still a customer up"
    )


def test_uplift_reasons_go_both_ways_and_outcomes_say_the_chance():
    reasons = [
        {"feature": "orders", "value": 3.0, "contribution": 0.012},
        {"feature": "recency_days", "value": 20.0, "contribution": -0.004},
    ]
    assert reason_sentences(kind="uplift.purchase", value=0.02, reasons=reasons) == [
        "3 orders: message's effect on purchase up 1.2 points",
        "last order 20 days ago: message's effect on purchase down 0.4 points",
    ]
    assert explanation(kind="uplift.purchase.if_sent", value=0.125, reasons=[]) == (
        "chance of purchase if sent: 12.5%"
    )
    assert explanation(kind="uplift.purchase.if_not", value=0.1, reasons=[]) == (
        "chance of purchase if not sent: 10.0%"
    )


def test_best_hour_reasons_name_the_hours_and_how_sure():
    reasons = [
        {"feature": "clicks_at_hour", "hour": 9, "count": 3},
        {"feature": "opens_at_hour", "hour": 21, "count": 1},
        {"feature": "events", "value": 4.0},
        {"feature": "confidence", "value": 0.42},
        {"feature": "thin", "value": True},
        {"feature": "time_zone", "value": "Europe/London"},
        {"feature": "hour_profile", "value": [0.04] * 24},
    ]
    assert reason_sentences(kind="best_hour", value=9.0, reasons=reasons) == [
        "best hour 09:00 (Europe/London)",
        "3 clicks at 09:00",
        "1 open at 21:00",
        "little data of their own: mostly the workspace's usual hour",
        "confidence 42%",
    ]


def test_model_made_segments_in_words():
    assert segment_sentence(name="RFM: Champions") == (
        "RFM group Champions: bought recently, often and for much"
    )
    described = "Cluster 2 of 4: tea lovers. Median spend 310, 4 orders, last order 12 days ago."
    assert segment_sentence(name="Cluster: tea lovers", description=described) == (
        "cluster tea lovers: median spend 310, 4 orders, last order 12 days ago"
    )
    assert segment_sentence(name="VIP list") is None


def test_odd_reasons_are_worded_or_left_out_never_an_error():
    odd = [{"feature": "x", "value": 2, "contribution": 0.5}, "junk", None, {"value": 1}]
    assert reason_sentences(kind="made_up", value=1, reasons=odd) == ["x 2: score +0.5"]
    assert reason_sentences(kind="churn_risk", value=None, reasons=odd) == []
    assert explanation(kind="churn_risk", value=0.3, reasons=None) == ""
    nan = [{"feature": "orders", "value": float("nan"), "contribution": float("inf")}]
    assert reason_sentences(kind="churn_risk", value=0.3, reasons=nan) == ["orders unknown"]


@pytest.mark.django_db
def test_customer_page_api_and_export_word_the_reasons(admin_client, workspace):
    mine = seed(workspace)
    CustomerScore.objects.filter(customer_id=mine["customer"]).update(
        reasons=[{"feature": "returns", "value": 0.0, "contribution": 0.1336}]
    )
    segment = Segment.objects.create(workspace=workspace, name="RFM: At risk", kind="static")
    SegmentMembership.objects.create(segment=segment, customer_id=mine["customer"])
    CustomerScore.objects.create(
        workspace=workspace,
        customer_id=mine["customer"],
        kind="p_alive",
        value=0.4,
        reasons=[{"feature": "repeat_purchases", "value": 2}],
        computed_at=timezone.now(),
    )
    page = admin_client.get(f"/admin/crm/customer/{mine['customer']}/change/").content.decode()
    # 0.7 against sigmoid(logit(0.7) - 0.1336): 2.9 points.
    assert "no returns: churn risk up 2.9 points" in page
    assert "2 repeat purchases: chance still a customer up" in page
    assert "RFM group At risk: bought a few times, long ago" in page
    assert "contribution" not in page  # no raw JSON

    api = client_for(workspace, ["crm:read", "crm:write", "privacy"])
    timeline = api.get(f"/api/v1/customers/{mine['customer']}/timeline").json()["results"]
    churn = next(item for item in timeline if item.get("score") == "churn_risk")
    assert churn["reasons"] == [{"feature": "returns", "value": 0.0, "contribution": 0.1336}]
    assert churn["explanation"] == "no returns: churn risk up 2.9 points"
    export = api.post("/api/v1/privacy/export", {"customer": mine["customer"]}, format="json")
    scores = {s["kind"]: s for s in export.json()["scores"]}
    assert scores["churn_risk"]["explanation"] == "no returns: churn risk up 2.9 points"
    assert scores["churn_risk"]["reasons"][0]["feature"] == "returns"
