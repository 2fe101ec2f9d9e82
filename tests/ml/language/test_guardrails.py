"""Each brand rule catches what it should, and clean copy passes them all."""

import pytest

from marketing_ai.ml.language.guardrails import BrandRules, Facts, check

BRIEF = Facts(
    brief="Bring back tea lovers. Regency teacup and saucer: bone china with roses. "
    "Offer: 15% off with code TEA15 until Sunday.",
    products=["Regency teacup and saucer"],
    catalogue=["Regency teacup and saucer", "White hanging heart t-light holder"],
    people=["Lila Patel"],
)
RULES = BrandRules(
    banned_words=["cheap"],
    banned_claims=["guaranteed", "best in the world"],
    required_phrases=["You get this e-mail because you subscribed."],
)
FOOTER = "\n\nYou get this e-mail because you subscribed."
CLEAN = {
    "subject": "Tea time with our Regency teacup",
    "preheader": "Bone china with roses, made for slow mornings.",
    "body": "Our Regency teacup and saucer brings roses to your table. Take 15% off with code "
    "TEA15 until Sunday." + FOOTER,
}


def rules_failed(fields):
    return {(f.rule, f.field) for f in check(fields, RULES, BRIEF).failures}


def test_clean_copy_passes():
    report = check(CLEAN, RULES, BRIEF)
    assert report.passed, report.failures


@pytest.mark.parametrize(
    ("field", "text", "rule"),
    [
        ("subject", "A cheap Regency teacup", "banned_words"),
        ("preheader", "Guaranteed to brighten your morning tea", "banned_claims"),
        ("body", "The Regency teacup is the best in the world." + FOOTER, "banned_claims"),
        ("body", "Our Regency teacup is now only £9.99 for you." + FOOTER, "prices"),
        ("body", "Our Regency teacup is now 30% off for you today." + FOOTER, "discounts"),
        ("body", "Our Regency teacup is on sale for a short while." + FOOTER, "discounts"),
        ("body", "Order the Regency teacup before Friday to get it in time." + FOOTER, "dates"),
        ("body", "Order the Regency teacup by 12/03 for delivery in time." + FOOTER, "dates"),
        ("body", "Our Regency teacup ships in tonight's post, order now." + FOOTER, "dates"),
        ("body", "Over 500 people bought the Regency teacup last month." + FOOTER, "numbers"),
        ("body", "Pair the Regency teacup with our white hanging heart t-light holder."
         + FOOTER, "products"),
        ("body", "The Regency teacup was designed by Elsbeth Morrow in her studio." + FOOTER,
         "names"),
        ("body", "Lila Patel loved her Regency teacup, and so will you." + FOOTER,
         "personal_data"),
        ("body", "Write to lila@example.com about your Regency teacup order." + FOOTER,
         "personal_data"),
        ("body", "Our new range of garden furniture is here for the summer." + FOOTER,
         "off_topic"),
        ("subject", "Tea", "length"),
        ("subject", "Regency teacup " * 10, "length"),
    ],
)  # fmt: skip
def test_each_rule_catches_its_case(field, text, rule):
    assert (rule, field) in rules_failed({**CLEAN, field: text})


def test_required_phrase_missing():
    body = "Our Regency teacup and saucer brings roses to your table."
    assert ("required_phrases", "body") in rules_failed({**CLEAN, "body": body})


def test_language_of_the_copy():
    german = {
        "subject": "Teezeit mit unserer Regency Tasse",
        "preheader": "Feines Porzellan mit Rosen für ruhige Morgen und lange Nachmittage.",
        "body": "Unsere Regency Tasse mit Untertasse bringt Rosen auf Ihren Tisch und macht "
        "jeden Tee zu einem kleinen Fest." + FOOTER,
    }
    assert ("language", "all") in rules_failed(german)


def test_facts_in_the_brief_are_allowed_and_title_case_lines_are_not_names():
    fields = {**CLEAN, "subject": "Your Regency Teacup Is Waiting At Home"}
    assert check(fields, RULES, BRIEF).passed


def test_sms_checks_the_text_field():
    rules = BrandRules(required_phrases=["Reply STOP to opt out"])
    facts = Facts(brief="Regency teacup", products=["Regency teacup"])
    report = check({"text": "The Regency teacup is back. Call 0207 946 0000 now."}, rules, facts)
    found = {f.rule for f in report.failures}
    assert {"personal_data", "required_phrases"} <= found


def test_names_inside_the_briefs_products_are_not_other_products():
    facts = Facts(
        brief="Red spotty oven glove double",
        products=["RED SPOTTY OVEN GLOVE DOUBLE"],
        catalogue=["RED SPOTTY OVEN GLOVE", "RED SPOTTY OVEN GLOVE DOUBLE"],
    )
    body = "Our Red Spotty Oven Glove Double keeps hands safe from hot dishes."
    assert check({"body": body}, BrandRules(), facts).passed
