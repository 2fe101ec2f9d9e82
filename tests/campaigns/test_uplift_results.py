"""campaigns.services.uplift_results: a targeted campaign's observed Qini curve beside the
model's, and what the targeting earned against its random control share and the holdout; the
results page shows them."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from campaigns.models import Message
from campaigns.services.uplift_data import features_at
from campaigns.services.uplift_demo import true_effect
from campaigns.services.uplift_results import qini_observed, uplift_results
from campaigns.services.uplift_training import uplift_train
from campaigns.uplift_charts import qini_chart
from crm.models import Event
from tests.campaigns.factories import launch_now, make_campaign
from tests.campaigns.uplift_world import sent_campaign, shop

pytestmark = pytest.mark.django_db


def send_and_convert(campaign, seed: int = 3) -> None:
    """Marks the queued rows sent ten days ago and draws conversions from the simulated truth:
    the sent at their chance with the message, the rest (held out, not targeted) without."""
    at = (timezone.now() - timedelta(days=10)).replace(microsecond=0)
    rows = Message.objects.filter(campaign=campaign)
    rows.filter(state="queued").update(state="sent", sent_at=at, send_at=at)
    rows.update(send_at=at)
    ledger = list(rows.values_list("customer_id", "state"))
    ids = np.array([pk for pk, _ in ledger])
    sent = np.array([state == "sent" for _, state in ledger])
    p_held, p_sent = true_effect(features_at(campaign.workspace_id, ids, [at] * len(ids)))
    converts = np.random.default_rng(seed).random(len(ids)) < np.where(sent, p_sent, p_held)
    Event.objects.bulk_create(
        [
            Event(
                workspace_id=campaign.workspace_id,
                customer_id=int(pk),
                type="purchase",
                occurred_at=at + timedelta(hours=2),
            )
            for pk in ids[converts]
        ]
    )


@pytest.fixture
def trained(workspace):
    segment, kinds = shop(workspace, n=800)
    sent_campaign(workspace, segment)
    version = uplift_train(workspace=workspace, goal="purchase")
    assert version.status == "active"
    return segment, kinds


def test_targeting_earns_more_per_message_and_the_model_ranks_this_campaign(
    workspace, trained, admin_client
):
    segment, _ = trained
    campaign = make_campaign(
        workspace,
        segment,
        name="targeted",
        holdout_percent=40,
        targeting="uplift_top",
        targeting_percent=25,
        targeting_control_percent=40,
        seed=9,
    )
    launch_now(campaign)
    send_and_convert(campaign)
    result = uplift_results(campaign=campaign)
    assert result["targeted"] and result["scored"] == 800
    qini = result["qini"]
    # the control share vs the holdout: both random, ranked by the launch's scores
    assert (
        qini["treated"]
        == Message.objects.filter(
            campaign=campaign, decision__targeting_control=True, state="sent"
        ).count()
    )
    assert len(qini["observed"]) == len(qini["predicted"]) == 101
    assert qini["observed"][0] == qini["predicted"][0] == 0
    # ~190 sent (the control share) vs ~320 held out: noisy, but better than a random ranking
    assert qini["qini"] > 0 and qini["qini_ci95"][0] <= qini["qini"] <= qini["qini_ci95"][1]
    assert max(qini["predicted"]) > 0

    earned = result["earned"]
    assert sum(earned[arm]["members"] for arm in ("targeted", "control_share", "holdout")) == 800
    assert earned["control_share"]["sent"] == earned["control_share"]["members"]
    assert earned["targeted"]["sent"] < 0.5 * earned["targeted"]["members"]
    # the selected gain far more from the message than the average customer (~0.25 vs ~0.03)
    assert earned["lift_on_selected"]["value"] > 0.1
    assert earned["lift_on_selected"]["value"] > earned["control_share_vs_holdout"]["value"]
    low, high = earned["targeted_vs_control_share"]["ci95"]
    assert low < earned["targeted_vs_control_share"]["value"] < high

    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/results/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="uplift-qini"' in body and "What the targeting earned" in body
    assert "model&#x27;s prediction" in body or "model's prediction" in body


def test_a_campaign_to_everyone_measures_the_model_but_earned_nothing_by_targeting(
    workspace, trained, admin_client
):
    segment, _ = trained
    campaign = make_campaign(workspace, segment, name="everyone", holdout_percent=50, seed=4)
    launch_now(campaign)
    send_and_convert(campaign)
    result = uplift_results(campaign=campaign)
    assert result["earned"] is None and result["qini"]["qini"] > 0
    assert result["qini"]["treated"] + result["qini"]["control"] == 800
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/results/")
    assert page.status_code == 200 and "<svg" in page.content.decode()


def test_a_campaign_without_scores_has_no_uplift_section(workspace, admin_client):
    segment, _ = shop(workspace, n=20)
    campaign = sent_campaign(workspace, segment)
    assert uplift_results(campaign=campaign) is None
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/results/")
    assert page.status_code == 200 and 'id="results-uplift"' not in page.content.decode()


def test_the_predicted_curve_is_the_treated_times_the_mean_predicted_uplift():
    y = np.array([1, 0, 0, 1])
    treated = np.array([1, 0, 1, 0])
    score = np.array([0.4, 0.2, 0.1, -0.1])
    result = qini_observed(y, treated, score)
    # at n = 1, 2, 3, 4 of 4 rows: treated so far 1, 1, 2, 2; mean score 0.4, 0.3, 0.233, 0.15
    ends = [result["predicted"][i] for i in (25, 50, 75, 100)]
    assert ends == pytest.approx([0.4, 0.3, 0.467, 0.3], abs=1e-3)
    assert result["observed"][100] == pytest.approx(1 - 1 * 2 / 2)
    assert qini_observed(y, np.ones(4, int), score) is None
    svg = qini_chart(result["observed"], result["predicted"], title="Qini")
    assert svg.startswith("<svg") and svg.count("<path") >= 6
