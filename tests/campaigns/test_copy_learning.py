"""campaigns.services.copy_results: each generated variant's results from the ledger beside how
it was written, the workspace's past winners, and the brief that carries them as examples."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import BrandRules, Campaign, Message, Variant
from campaigns.sandbox import literal
from campaigns.services.copy import copy_brief, variants_generate
from campaigns.services.copy_results import past_winners, variant_results
from campaigns.services.engagement import message_clicked, message_opened
from crm import services
from crm.models import Customer
from marketing_ai.ml.language import copywriter
from tests.crm.factories import CustomerFactory, WorkspaceFactory

FOOTER = "You receive this e-mail because you subscribed."
PERSON = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Gecko/20100101 Firefox/120.0"
MAIL_PRIVACY = "Mozilla/5.0"  # Apple's proxy fetching the pixel, not the reader
SCANNER = "Barracuda Sentinel link protection"


def people(workspace, n: int, prefix: str) -> list[Customer]:
    return Customer.objects.bulk_create(
        [
            CustomerFactory.build(workspace=workspace, email=f"{prefix}{i}@example.com")
            for i in range(n)
        ]
    )


def generated(campaign, name, subject, *, goal="Sell more bags", status="approved", body=None):
    """A model-written variant as campaigns.services.copy stores it."""
    return Variant.objects.create(
        campaign=campaign,
        name=name,
        subject=literal(subject),
        preheader=literal("Have a look inside."),
        body_html=copywriter.as_html(body or f"Our Jumbo Bag is roomy.\n\n{FOOTER}"),
        status=status,
        provenance={
            "generated": True,
            "model": "SmolLM2-135M-Instruct",
            "backend": "in-process",
            "device": "cpu",
            "prompts": {"subject": [{"role": "user", "content": "Write a headline"}]},
            "seed": 3,
            "parameters": {"k": 4, "temperature": 0.7},
            "brief": f"{goal}\nJUMBO BAG RED RETROSPOT",
            "brief_products": ["JUMBO BAG RED RETROSPOT"],
            "goal": goal,
            "offer": "",
        },
    )


def send(variant, customers, *, clicks=0, hours_ago=5) -> list[Message]:
    """Sent messages of `variant` to `customers`, the first `clicks` of them clicked by people."""
    at = timezone.now() - timedelta(hours=hours_ago)
    messages = Message.objects.bulk_create(
        [
            Message(
                campaign=variant.campaign,
                customer=c,
                variant=variant,
                state=Message.State.SENT,
                sent_at=at,
                send_at=at,
            )
            for c in customers
        ]
    )
    for m in messages[:clicks]:
        message_clicked(message=m, url="https://shop.example.com/bags", user_agent=PERSON)
    return messages


@pytest.mark.django_db
def test_each_variants_results_come_from_the_ledger_with_how_it_was_written(workspace):
    campaign = Campaign.objects.create(workspace=workspace, name="Bags")
    variant = generated(campaign, "AI 1", "Bags for {you}?")
    customers = people(workspace, 13, "a")
    messages = send(variant, customers[:10])
    message_opened(message=messages[0], user_agent=PERSON)
    message_opened(message=messages[1], user_agent=MAIL_PRIVACY)  # a machine open: not counted
    message_clicked(message=messages[2], url="https://shop.example.com/", user_agent=PERSON)
    message_clicked(message=messages[3], url="https://shop.example.com/", user_agent=SCANNER)
    Message.objects.filter(pk=messages[4].pk).update(converted_at=timezone.now())
    # Neither the holdout nor a skipped row was sent this copy.
    Message.objects.create(
        campaign=campaign, customer=customers[10], holdout=True, send_at=timezone.now()
    )
    Message.objects.create(
        campaign=campaign,
        customer=customers[11],
        variant=variant,
        state=Message.State.SKIPPED,
        send_at=timezone.now(),
    )
    # Staff-written copy and a generated draft never approved have no place here.
    staff = Variant.objects.create(campaign=campaign, name="B", subject="Hi", status="approved")
    send(staff, customers[12:], clicks=1)

    (row,) = variant_results(workspace=workspace)
    assert (row["variant"], row["campaign"], row["channel"], row["sent"]) == (
        variant.pk,
        campaign.pk,
        "email",
        10,
    )
    assert row["opens"]["count"] == 2  # one person's open and one click; not the proxy's
    assert row["clicks"]["count"] == 1 and row["clicks"]["rate"] == 0.1  # not the scanner's
    assert row["conversions"]["count"] == 1 and row["clicks"]["ci95"][0] > 0
    assert row["fields"] == {
        "subject": "Bags for {you}?",
        "preheader": "Have a look inside.",
        "body": f"Our Jumbo Bag is roomy.\n\n{FOOTER}",
    }
    assert row["prompts"]["subject"][0]["content"] == "Write a headline"
    assert (row["seed"], row["parameters"]["k"], row["model"]["model"]) == (
        3,
        4,
        "SmolLM2-135M-Instruct",
    )
    assert row["goal"] == "Sell more bags" and row["brief"]["products"] == [
        "JUMBO BAG RED RETROSPOT"
    ]
    assert variant_results(workspace=workspace, channel="sms") == []
    assert variant_results(workspace=workspace, goal="SELL MORE BAGS ")[0]["variant"] == variant.pk
    assert variant_results(workspace=workspace, goal="Christmas") == []


@pytest.mark.django_db
def test_winners_rank_by_the_lower_bound_and_a_variant_without_sends_is_none(workspace):
    campaign = Campaign.objects.create(workspace=workspace, name="Bags")
    customers = people(workspace, 62, "b")
    lucky = generated(campaign, "AI 1", "Lucky")  # 1 click of 2 sends: 50%, bound 9%
    steady = generated(campaign, "AI 2", "Steady")  # 6 of 20: 30%, bound 15%
    silent = generated(campaign, "AI 3", "Silent")  # 0 of 20
    draft = generated(campaign, "AI 4", "Never approved", status="draft")
    unsent = generated(campaign, "AI 5", "Never sent")
    send(lucky, customers[:2], clicks=1)
    send(steady, customers[2:22], clicks=6)
    send(silent, customers[22:42])
    send(draft, customers[42:62], clicks=20)

    winners = past_winners(workspace=workspace, channel="email", min_sends=2)
    assert [w["variant"] for w in winners] == [steady.pk, lucky.pk]
    assert winners[0]["subject"] == "Steady"
    # Under the product's own minimum (100 sends) none of these says enough to be a winner.
    assert past_winners(workspace=workspace, channel="email") == []
    listed = {row["variant"] for row in variant_results(workspace=workspace)}
    assert listed == {lucky.pk, steady.pk, silent.pk} and unsent.pk not in listed


@pytest.mark.django_db
def test_winners_never_come_from_another_workspace(workspace):
    other = WorkspaceFactory(slug="rival", name="Rival")
    theirs = generated(Campaign.objects.create(workspace=other, name="Theirs"), "AI 1", "Theirs")
    send(theirs, people(other, 10, "r"), clicks=8)
    ours = generated(Campaign.objects.create(workspace=workspace, name="Ours"), "AI 1", "Ours")
    send(ours, people(workspace, 10, "o"), clicks=1)

    assert [
        w["variant"] for w in past_winners(workspace=workspace, channel="email", min_sends=5)
    ] == [ours.pk]
    assert [r["variant"] for r in variant_results(workspace=workspace)] == [ours.pk]
    assert [w["variant"] for w in past_winners(workspace=other, channel="email", min_sends=5)] == [
        theirs.pk
    ]


@pytest.mark.django_db
def test_the_brief_carries_the_winners_for_its_channel_and_goal(workspace):
    services.product_bulk_upsert(
        workspace=workspace, rows=[{"sku": "CAKE", "name": "REGENCY CAKESTAND 3 TIER"}]
    )
    BrandRules.objects.create(workspace=workspace, required_phrases=FOOTER)
    past = Campaign.objects.create(workspace=workspace, name="Past")
    customers = people(workspace, 300, "p")
    same_goal = generated(past, "AI 1", "Bags for you?", goal="Introduce new arrivals")
    other_goal = generated(past, "AI 2", "Big bag news", goal="Thank loyal customers")
    send(same_goal, customers[:100], clicks=5)
    send(other_goal, customers[100:200], clicks=30)  # better, but written for another goal
    campaign = Campaign.objects.create(workspace=workspace, name="New cakestands")

    brief = copy_brief(
        campaign=campaign, params={"products": ["CAKE"], "goal": "Introduce new arrivals"}
    )
    assert [e["variant"] for e in brief.examples] == [same_goal.pk]
    assert brief.examples[0]["body"] == "Our Jumbo Bag is roomy."  # the footer is the writer's
    conversation = copywriter.prompt(brief, "subject")
    assert {"role": "assistant", "content": "Bags for you?"} in conversation
    assert "Regency Cakestand" in conversation[-1]["content"]

    # No winner for this goal: the channel's best of any goal, best first.
    thanks = copy_brief(campaign=campaign, params={"products": ["CAKE"], "goal": "Spring sale"})
    assert [e["variant"] for e in thanks.examples] == [other_goal.pk, same_goal.pk]
    # A text message is not conditioned on e-mails.
    sms = Campaign.objects.create(workspace=workspace, name="Texts", channel="sms")
    assert copy_brief(campaign=sms, params={"products": ["CAKE"], "goal": "Spring"}).examples == []


@pytest.mark.django_db
def test_variants_written_from_a_brief_with_winners_say_which_conditioned_them(workspace):
    from marketing_ai.ml.language import llm  # torch and transformers: only this test loads them

    services.product_bulk_upsert(
        workspace=workspace, rows=[{"sku": "CAKE", "name": "REGENCY CAKESTAND 3 TIER"}]
    )
    # A text message (one field to write, so the model's part of this test stays short).
    past = Campaign.objects.create(workspace=workspace, name="Past", channel="sms")
    winner = generated(past, "AI 1", "")
    Variant.objects.filter(pk=winner.pk).update(body_text=literal("Bags for you? Come and see."))
    send(winner, people(workspace, 100, "w"), clicks=9)
    campaign = Campaign.objects.create(workspace=workspace, name="Cakestands", channel="sms")
    params = {"products": ["CAKE"], "goal": "Sell more bags", "k": 1, "rounds": 1, "seed": 2}

    done = variants_generate(campaign=campaign, params=params, model=llm.language_model())
    (variant,) = Variant.objects.filter(pk__in=done["variants"])
    assert variant.provenance["examples_from"] == [winner.pk]
    shown = {"role": "assistant", "content": "Bags for you? Come and see."}
    assert shown in variant.provenance["prompts"]["text"]
    # The checks ran on what the model wrote, examples or not.
    assert "passed" in variant.provenance["guardrails"]
