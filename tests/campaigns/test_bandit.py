"""campaigns.decisions.allocation and campaigns.services.bandit: bandit campaigns send in waves,
each wave's variants chosen by the policy refitted on the waves before it; every queued message
logs the probability of its variant (split, A/B and bandit alike); a wave is assigned once."""

import threading
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone

from campaigns.decisions import allocation
from campaigns.models import Campaign, Message
from campaigns.services import bandit
from campaigns.services.abtest import ab_decide_due
from campaigns.services.recipients import build_ledger
from tests.campaigns.factories import make_audience, make_campaign
from tests.crm.factories import OrderFactory

pytestmark = pytest.mark.django_db(transaction=True)


def launched(workspace, n=400, **fields):
    campaign = make_campaign(workspace, make_audience(workspace, n), variants=2, seed=11, **fields)
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SENDING, launched_at=timezone.now()
    )
    campaign.refresh_from_db()
    build_ledger(campaign=campaign)
    return campaign


def send_out(campaign, rates: dict[str, float], *, seed=0, ago=timedelta(hours=1)) -> None:
    """What delivery and tracking would do: every queued message with a variant is sent
    (`ago`), and clicked with its variant's rate in `rates` (a draw per message)."""
    rng = np.random.default_rng(seed)
    due = Message.objects.filter(campaign=campaign, state="queued", variant__isnull=False)
    rows = list(due.values_list("pk", "variant__name"))
    due.update(state="sent", sent_at=timezone.now() - ago)
    clicked = [pk for pk, name in rows if rng.random() < rates[name]]
    Message.objects.filter(pk__in=clicked).update(clicked_at=timezone.now() - ago / 2)


def wave_shares(campaign, wave: int) -> dict[str, float]:
    rows = Message.objects.filter(campaign=campaign, wave=wave, variant__isnull=False)
    names = list(rows.values_list("variant__name", flat=True))
    return {name: names.count(name) / len(names) for name in ("A", "B")}


def test_launch_draws_waves_and_gives_wave_one_uniform_variants(workspace):
    campaign = launched(workspace, bandit="thompson", waves=4, ab_metric="click")
    rows = Message.objects.filter(campaign=campaign, state="queued")
    waves = list(rows.values_list("wave", flat=True))
    assert len(waves) == 400 and set(waves) == {1, 2, 3, 4}
    assert all(60 < waves.count(w) < 140 for w in (1, 2, 3, 4))  # a quarter each, about
    first = rows.filter(wave=1)
    assert not first.filter(variant__isnull=True).exists()
    assert set(first.values_list("propensity", flat=True)) == {0.5}
    decision = first.first().decision
    assert decision["policy"] == "thompson" and decision["wave"] == 1
    assert decision["probabilities"] == {"A": 0.5, "B": 0.5}
    later = rows.exclude(wave=1)
    assert not later.filter(variant__isnull=False).exists()
    assert not later.filter(propensity__isnull=False).exists()
    # Reproducible: the same seed draws the same wave and variant for the same customer.
    again = allocation.for_launch(campaign, bandit.arms(campaign))
    for m in rows.order_by("id")[:50]:
        variant, propensity, wave, _ = again.first(m.customer_id, False)
        assert (wave, variant) == (m.wave, m.variant_id)


def test_waves_move_toward_the_clearly_better_variant(workspace):
    campaign = launched(workspace, n=1600, bandit="thompson", waves=4, wave_hours=0)
    rates = {"A": 0.04, "B": 0.25}
    for wave in (2, 3, 4):
        send_out(campaign, rates, seed=wave)
        assert bandit.wave_decide_due(campaign_id=campaign.pk, now=timezone.now()) == wave
    send_out(campaign, rates, seed=5)
    assert abs(wave_shares(campaign, 1)["B"] - 0.5) < 0.1
    assert wave_shares(campaign, 2)["B"] > 0.9 and wave_shares(campaign, 4)["B"] > 0.9
    campaign.refresh_from_db()
    recorded = campaign.ab_result["waves"]
    assert [w["wave"] for w in recorded] == [2, 3, 4]
    assert recorded[0]["probabilities"]["B"] > 0.95
    assert recorded[0]["observed"][1]["variant"] == "B" and recorded[0]["observed"][1]["sent"]
    # Nothing left to decide, and the summary staff see has every wave with its figures.
    assert bandit.wave_decide_due(campaign_id=campaign.pk, now=timezone.now()) is None
    summary = bandit.bandit_summary(campaign)
    assert [w["wave"] for w in summary["waves"]] == [1, 2, 3, 4]
    assert all(w["assigned"] and w["waiting"] == 0 for w in summary["waves"])
    assert summary["waves"][1]["arms"][1]["share"] > 0.95


def test_every_queued_message_logs_the_probability_of_its_variant(workspace):
    # A bandit: each message's propensity is its variant's share in the wave's decision.
    campaign = launched(workspace, bandit="thompson", waves=3, wave_hours=0)
    for wave in (2, 3):
        send_out(campaign, {"A": 0.1, "B": 0.2}, seed=wave)
        bandit.wave_decide_due(campaign_id=campaign.pk, now=timezone.now())
    for m in Message.objects.filter(campaign=campaign, holdout=False).select_related("variant"):
        assert m.variant is not None and 0 < m.propensity <= 1
        assert m.propensity == pytest.approx(m.decision["probabilities"][m.variant.name], abs=1e-6)
        assert sum(m.decision["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    # A fixed split by weights 3:1: the share.
    split = make_campaign(
        workspace,
        make_audience(workspace, 200, prefix="s", name="S"),
        variants=2,
        seed=3,
        name="split",
    )
    split.variants.filter(name="A").update(weight=3)
    Campaign.objects.filter(pk=split.pk).update(status="sending")
    build_ledger(campaign=split)
    shares = dict(Message.objects.filter(campaign=split).values_list("variant__name", "propensity"))
    assert shares == {"A": 0.75, "B": 0.25}
    # A/B: the test share by its split, the rest 1 (the winner, chosen with certainty).
    ab = make_campaign(
        workspace,
        make_audience(workspace, 200, prefix="ab", name="AB"),
        variants=2,
        name="ab",
        seed=4,
        ab_test_percent=30,
        ab_wait_hours=0,
    )
    Campaign.objects.filter(pk=ab.pk).update(status="sending")
    build_ledger(campaign=ab)
    test = Message.objects.filter(campaign=ab, ab_test=True)
    assert set(test.values_list("propensity", flat=True)) == {0.5}
    test.update(state="sent", sent_at=timezone.now() - timedelta(minutes=5))
    assert ab_decide_due(campaign_id=ab.pk, now=timezone.now())
    rest = Message.objects.filter(campaign=ab, ab_test=False, holdout=False)
    assert set(rest.values_list("propensity", flat=True)) == {1.0}
    for campaign in (split, ab):
        queued = Message.objects.filter(campaign=campaign, holdout=False, state="queued")
        assert not queued.filter(propensity__isnull=True).exists()


def test_a_wave_waits_for_the_one_before_and_its_wave_hours(workspace):
    campaign = launched(workspace, bandit="thompson", waves=2, wave_hours=4)
    now = timezone.now()
    assert bandit.wave_decide_due(campaign_id=campaign.pk, now=now) is None  # wave 1 not out
    send_out(campaign, {"A": 0.1, "B": 0.1}, ago=timedelta(hours=1))
    assert bandit.wave_decide_due(campaign_id=campaign.pk, now=now) is None  # 1 h of 4
    later = now + timedelta(hours=3, minutes=1)
    assert bandit.wave_decide_due(campaign_id=campaign.pk, now=later) == 2


def test_two_workers_at_once_assign_a_wave_once(workspace):
    if connection.vendor != "postgresql":
        pytest.skip("two connections writing at once: PostgreSQL (SQLite runs one writer)")
    campaign = launched(workspace, n=3000, bandit="thompson", waves=2, wave_hours=0)
    send_out(campaign, {"A": 0.1, "B": 0.3})
    start, answers = threading.Barrier(2), []

    def worker():
        try:
            start.wait()
            answers.append(bandit.wave_decide_due(campaign_id=campaign.pk, now=timezone.now()))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers, key=str) == [2, None]
    campaign.refresh_from_db()
    assert [w["wave"] for w in campaign.ab_result["waves"]] == [2]
    second = Message.objects.filter(campaign=campaign, wave=2)
    assert not second.filter(variant__isnull=True).exists()
    assert campaign.ab_result["waves"][0]["messages"] == second.count()


def test_a_decision_that_dies_half_way_leaves_the_wave_to_the_next_beat(workspace):
    campaign = launched(workspace, bandit="thompson", waves=2, wave_hours=0)
    send_out(campaign, {"A": 0.1, "B": 0.3})

    class Died(Exception):
        pass

    with pytest.raises(Died), transaction.atomic():  # the worker dies before its commit
        assert bandit.wave_decide(campaign_id=campaign.pk, wave=2, now=timezone.now())
        raise Died
    second = Message.objects.filter(campaign=campaign, wave=2)
    assert not second.filter(variant__isnull=False).exists()
    campaign.refresh_from_db()
    assert "waves" not in campaign.ab_result
    assert bandit.wave_decide_due(campaign_id=campaign.pk, now=timezone.now()) == 2
    assert not second.filter(variant__isnull=True).exists()


def test_a_cancelled_or_paused_campaign_decides_no_wave(workspace):
    campaign = launched(workspace, bandit="thompson", waves=2, wave_hours=0)
    send_out(campaign, {"A": 0.1, "B": 0.3})
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    assert bandit.waves_decide_due(now=timezone.now()) == []
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    assert bandit.waves_decide_due(now=timezone.now()) == [campaign.pk]


def test_contextual_policy_learns_who_prefers_which_from_features_at_decision(workspace):
    segment = make_audience(workspace, 1200)
    campaign = make_campaign(
        workspace, segment, variants=2, seed=5, bandit="contextual", waves=3, wave_hours=0
    )
    customers = sorted(segment.memberships.values_list("customer_id", flat=True))
    buyers = set(customers[::2])
    long_ago = timezone.now() - timedelta(days=40)
    for pk in buyers:
        for i in range(3):
            OrderFactory(workspace=workspace, customer_id=pk, placed_at=long_ago + timedelta(i))
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", launched_at=timezone.now())
    campaign.refresh_from_db()
    build_ledger(campaign=campaign)
    first = Message.objects.filter(campaign=campaign, wave=1)
    contexts = {m.customer_id: m.decision["context"] for m in first}
    assert all(c["orders"] == 3 and c["no_orders"] == 0 for k, c in contexts.items() if k in buyers)
    assert all(c["no_orders"] == 1 for k, c in contexts.items() if k not in buyers)

    def simulate(seed):
        rng = np.random.default_rng(seed)
        due = Message.objects.filter(campaign=campaign, state="queued", variant__isnull=False)
        rows = list(due.values_list("pk", "customer_id", "variant__name"))
        due.update(state="sent", sent_at=timezone.now() - timedelta(hours=1))
        # Buyers click A, browsers click B.
        rate = {(True, "A"): 0.35, (True, "B"): 0.03, (False, "A"): 0.03, (False, "B"): 0.35}
        clicked = [pk for pk, c, name in rows if rng.random() < rate[(c in buyers, name)]]
        Message.objects.filter(pk__in=clicked).update(clicked_at=timezone.now())

    simulate(1)
    assert bandit.wave_decide_due(campaign_id=campaign.pk, now=timezone.now()) == 2
    # An order placed after the decision is not in what the decision logged.
    second = list(Message.objects.filter(campaign=campaign, wave=2).select_related("variant"))
    late = next(m for m in second if m.customer_id not in buyers)
    OrderFactory(workspace=workspace, customer_id=late.customer_id)
    late.refresh_from_db()
    assert late.decision["context"]["orders"] == 0 and late.decision["policy"] == "contextual"
    picks = {(m.customer_id in buyers, m.variant.name) for m in second}
    share_a_buyers = np.mean([m.variant.name == "A" for m in second if m.customer_id in buyers])
    share_b_browsers = np.mean(
        [m.variant.name == "B" for m in second if m.customer_id not in buyers]
    )
    assert share_a_buyers > 0.8 and share_b_browsers > 0.8, picks
    for m in second:
        assert m.propensity == pytest.approx(m.decision["probabilities"][m.variant.name], abs=1e-6)


def test_journey_choose_follows_the_messages_own_results(workspace):
    segment = make_audience(workspace, 400)
    message = make_campaign(
        workspace, segment, variants=2, seed=2, kind="journey", bandit="thompson"
    )
    variants = bandit.arms(message)
    customers = list(segment.memberships.values_list("customer_id", flat=True))
    # No results yet: every arm as likely as the other.
    fresh = allocation.journey_choose(message, variants, customers[:200])
    assert all(abs(p - 0.5) < 0.05 for _, p, _ in fresh.values())
    assert {f["policy"] for _, _, f in fresh.values()} == {"thompson"}
    # 200 sent before: B clicked far more often.
    a, b = variants
    rows = [
        Message(
            campaign=message,
            customer_id=pk,
            variant=(a, b)[i % 2],
            state="sent",
            sent_at=timezone.now(),
            send_at=timezone.now(),
            clicked_at=timezone.now() if (i % 2 and i % 3) or i % 20 == 0 else None,
        )
        for i, pk in enumerate(customers[:200])
    ]
    Message.objects.bulk_create(rows)
    chosen = allocation.journey_choose(message, variants, customers[200:])
    picks = [v for v, _, _ in chosen.values()]
    assert picks.count(b.pk) > 0.9 * len(picks)
    for variant_id, propensity, facts in chosen.values():
        name = a.name if variant_id == a.pk else b.name
        assert propensity == pytest.approx(facts["probabilities"][name], abs=1e-6)
    # Customer rows work as ids do, and a split message gives its shares.
    objects = list(workspace.customers.filter(pk__in=customers[200:210]))
    assert set(allocation.journey_choose(message, variants, objects)) == {c.pk for c in objects}
    Campaign.objects.filter(pk=message.pk).update(bandit="")
    message.refresh_from_db()
    split = allocation.journey_choose(message, variants, customers[:10])
    assert {p for _, p, f in split.values()} == {0.5}


def test_journey_choose_contextual_logs_the_features_it_saw(workspace):
    segment = make_audience(workspace, 60)
    message = make_campaign(
        workspace, segment, variants=2, seed=2, kind="journey", bandit="contextual"
    )
    customers = list(segment.memberships.values_list("customer_id", flat=True))
    OrderFactory(workspace=workspace, customer_id=customers[0])
    chosen = allocation.journey_choose(message, bandit.arms(message), customers)
    assert chosen[customers[0]][2]["context"]["orders"] == 1
    assert chosen[customers[1]][2]["context"]["no_orders"] == 1
    assert all(0 < p < 1 for _, p, _ in chosen.values())
