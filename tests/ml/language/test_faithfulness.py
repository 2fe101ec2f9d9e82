"""The checks for copy about the wrong thing reject what issue #19 quotes from the AI button, and
pass good copy about the same products."""

import pytest

from marketing_ai.ml.language import copywriter, faithfulness, guardrails
from marketing_ai.ml.language.copywriter import Brief, Product
from marketing_ai.ml.language.guardrails import BrandRules, Failure

RULES = BrandRules(required_phrases=["You get this e-mail because you subscribed."])
FOOTER = "\n\nYou get this e-mail because you subscribed."
CATALOGUE = ["REGENCY CAKESTAND 3 TIER", "SPACEBOY LUNCH BOX", "WHITE HANGING HEART T-LIGHT"]
CAKESTAND = Brief(
    goal="Get ready for Christmas gifting", products=[Product("REGENCY CAKESTAND 3 TIER")]
)
LUNCH_BOX = Brief(goal="Introduce new arrivals", products=[Product("SPACEBOY LUNCH BOX")])


def failures(brief: Brief, fields: dict, month: int | None = None) -> set[tuple[str, str]]:
    report = guardrails.check(fields, RULES, brief.facts(CATALOGUE, month=month))
    return {(f.rule, f.field) for f in report.failures}


GOOD_CAKESTAND = {
    "subject": "Three tiers of Christmas treats",
    "preheader": "Our Regency Cakestand is ready for the festive table.",
    "body": "Our Regency Cakestand 3 Tier is the centrepiece your Christmas table has been "
    "waiting for. Stack it high with mince pies and little cakes for the whole family." + FOOTER,
}
GOOD_LUNCH_BOX = {
    "subject": "Lunch is better in space",
    "preheader": "Meet the Spaceboy Lunch Box, new this week.",
    "body": "Meet the Spaceboy Lunch Box, our newest arrival for school days. It keeps "
    "sandwiches, fruit and snacks together for a lunch break with rockets on the lid." + FOOTER,
}


@pytest.mark.parametrize(
    ("brief", "fields"), [(CAKESTAND, GOOD_CAKESTAND), (LUNCH_BOX, GOOD_LUNCH_BOX)]
)
def test_good_copy_for_the_same_products_passes(brief, fields):
    report = guardrails.check(fields, RULES, brief.facts(CATALOGUE, month=12))
    assert report.passed, report.failures


def test_the_cakestand_that_became_smart_glass_is_rejected():
    body = (
        "Our Regency Cakestand 3 Tier is an innovative smart glass that will help you enjoy a "
        "more comfortable winter experience. It is crafted with traditional glassblowing "
        "techniques." + FOOTER
    )
    report = guardrails.check({**GOOD_CAKESTAND, "body": body}, RULES, CAKESTAND.facts(CATALOGUE))
    details = [f.detail for f in report.failures if f.rule == "category"]
    assert any("'glass'" in d for d in details) and any("glassblowing" in d for d in details)
    assert not report.passed


def test_a_sentence_about_something_else_entirely_is_unsupported():
    body = "Improve your golf swing with precision-weighted clubs designed by professionals."
    found = failures(LUNCH_BOX, {**GOOD_LUNCH_BOX, "body": GOOD_LUNCH_BOX["body"] + " " + body})
    assert ("unsupported", "body") in found
    assert ("unsupported", "body") not in failures(LUNCH_BOX, GOOD_LUNCH_BOX)


def test_a_lunch_box_is_not_a_t_shirt():
    body = "Our Spaceboy Lunch Box is a soft cotton T-shirt you will want to wear daily." + FOOTER
    found = failures(LUNCH_BOX, {**GOOD_LUNCH_BOX, "body": body})
    assert ("category", "body") in found


@pytest.mark.parametrize(
    ("sentence", "wrong"),
    [
        ("Our Spaceboy Lunch Box is a powerful vacuum cleaner that picks up every crumb.", True),
        ("The Spaceboy Lunch Box is a comfortable pair of trainers for your morning run.", True),
        ("This handy garden hose reaches every corner of your lawn.", True),
        ("Our Spaceboy Lunch Box is the perfect companion for school days.", False),
        ("Curl up on the sofa after school and open the Spaceboy Lunch Box.", False),
        ("The Spaceboy Lunch Box is a lovely gift for little astronauts.", False),
    ],
)
def test_what_the_product_is_said_to_be(sentence, wrong):
    found = failures(LUNCH_BOX, {**GOOD_LUNCH_BOX, "body": sentence + FOOTER})
    assert bool(found & {("category", "body"), ("unsupported", "body")}) == wrong, found


def test_a_summer_adventure_in_a_winter_mail_is_rejected():
    brief = Brief(
        goal="Warm up the winter evenings", products=[Product("REGENCY CAKESTAND 3 TIER")]
    )
    body = "Get ready for a summer adventure with our Regency Cakestand 3 Tier." + FOOTER
    assert ("season", "body") in failures(brief, {**GOOD_CAKESTAND, "body": body})


def test_the_send_month_gives_the_season_when_the_brief_names_none():
    body = "Our Spaceboy Lunch Box is ready for summer picnics in the park with friends." + FOOTER
    assert ("season", "body") not in failures(LUNCH_BOX, {**GOOD_LUNCH_BOX, "body": body}, 7)
    assert ("season", "body") in failures(LUNCH_BOX, {**GOOD_LUNCH_BOX, "body": body}, 12)
    # No season in the brief and no month: a season is something the brief never said.
    assert ("season", "body") in failures(LUNCH_BOX, {**GOOD_LUNCH_BOX, "body": body})


def test_an_occasion_brings_its_season_but_not_the_other_way_round():
    grounds = faithfulness.Grounds("get ready for christmas gifting", ["x"])
    assert faithfulness.season("cosy winter nights", grounds) == []
    winter = faithfulness.Grounds("warm up the winter evenings", ["x"])
    assert [rule for rule, _ in faithfulness.season("a merry christmas", winter)] == ["season"]


@pytest.mark.parametrize(
    "preheader",
    [
        "Your order will be delivered shortly after",
        "Thank you for your order, it is on its way to you.",
        "Track your parcel with the link below.",
    ],
)
def test_order_talk_in_a_promotional_mail_is_rejected(preheader):
    assert ("order_talk", "preheader") in failures(
        LUNCH_BOX, {**GOOD_LUNCH_BOX, "preheader": preheader}
    )


def test_asking_for_an_order_is_promotion_not_order_talk():
    preheader = "Place your order today and lunch is sorted."
    assert ("order_talk", "preheader") not in failures(
        LUNCH_BOX, {**GOOD_LUNCH_BOX, "preheader": preheader}
    )
    # A chat answer (facts without products) may talk about the customer's order.
    chat = guardrails.Facts("Orders are delivered in three to five working days.")
    found = guardrails.check_field("text", "Your order will be delivered soon.", RULES, chat)
    assert not [f for f in found if f.rule == "order_talk"]


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("subject", "Discover the Regency Cakestand 3 Tier, perfect for the"),
        ("subject", "Three tiers of treats, a festive centrepie"),
        ("preheader", "Our Regency Cakestand 3 Tier is ready for a festive table with"),
        ("preheader", "Stack it high with mince pies and little cakes,"),
        ("subject", "Three tiers of festive treats..."),
        # What passed all the checks in the outside tester's run:
        ("subject", "The Regency Cakestand 3 Tier is a special item that has"),
        ("preheader", "Our Regency Cakestand 3 Tier is"),
    ],
)
def test_subjects_and_preheaders_cut_mid_sentence_are_rejected(field, text):
    assert ("truncated", field) in failures(CAKESTAND, {**GOOD_CAKESTAND, field: text})


@pytest.mark.parametrize(
    "subject", ["Cake cases: a pack of 72", "Regency Cakestand 3 Tier", "Bake and share"]
)
def test_a_subject_that_ends_whole_is_not_cut(subject):
    brief = Brief(goal="Bake more", products=[Product("PACK OF 72 RETRO SPOT CAKE CASES")])
    assert ("truncated", "subject") not in failures(brief, {**GOOD_CAKESTAND, "subject": subject})


def test_html_entities_are_rejected_and_clean_unescapes_them():
    subject = "Tea &amp; cakes on three tiers"
    assert ("entities", "subject") in failures(CAKESTAND, {**GOOD_CAKESTAND, "subject": subject})
    assert ("entities", "body") in failures(
        CAKESTAND, {**GOOD_CAKESTAND, "body": "It&#39;s the " + GOOD_CAKESTAND["body"]}
    )
    assert copywriter.clean("subject", "Tea &amp; cakes, it&#39;s time", RULES) == (
        "Tea & cakes, it's time"
    )


def test_a_family_word_in_the_product_name_allows_its_family():
    brief = Brief(goal="Introduce new arrivals", products=[Product("ZINC METAL HEART DECORATION")])
    body = "Our Zinc Metal Heart Decoration is a sturdy steel heart for the garden gate." + FOOTER
    assert not {r for r, _ in failures(brief, {**GOOD_LUNCH_BOX, "body": body})} & {"category"}
    described = Brief(
        goal="Introduce new arrivals",
        products=[Product("REGENCY CAKESTAND 3 TIER", "Fine bone china with gold trim")],
    )
    body = "Our Regency Cakestand 3 Tier is made of delicate porcelain for elegant teas." + FOOTER
    assert ("category", "body") not in failures(described, {**GOOD_CAKESTAND, "body": body})
    assert ("category", "body") in failures(LUNCH_BOX, {**GOOD_LUNCH_BOX, "body": body})


def test_prepared_sentences_are_encoded_once():
    context = guardrails.Context(CAKESTAND.facts(CATALOGUE), RULES)
    bodies = [GOOD_CAKESTAND["body"], "Our Regency Cakestand 3 Tier makes any tea a party."]
    context.prepare(bodies)
    cached = dict(context.grounds._cache)
    assert len(cached) == 3  # the footer is the brand's line, not the model's
    for body in bodies:
        guardrails.check_field("body", body, RULES, CAKESTAND.facts(CATALOGUE), context)
    assert context.grounds._cache == cached


@pytest.mark.parametrize("rule", sorted(guardrails.DESCRIPTIONS))
def test_every_rule_is_described_in_plain_words(rule):
    said = guardrails.describe(Failure(rule, "subject", "the detail"))
    assert said.startswith("Subject ") and "the detail" in said and "_" not in said.split(":")[0]


def test_every_rule_the_checks_raise_has_a_description():
    raised = {"unsupported", "category", "season", "order_talk", "truncated", "entities"}
    raised |= {"placeholders", "voice"}
    raised |= guardrails.INVENTED | {"length", "banned_words", "banned_claims", "off_topic"}
    raised |= {"required_phrases", "personal_data", "language"}
    assert raised <= set(guardrails.DESCRIPTIONS)
    assert guardrails.describe(Failure("language", "all", "reads as 'de'")).startswith(
        "The copy is not written"
    )


def test_a_template_blank_left_in_is_rejected():
    for field in ("preheader", "subject"):
        found = failures(CAKESTAND, {**GOOD_CAKESTAND, field: "Dear [Customer Name], treats await"})
        assert ("placeholders", field) in found
    body = "Dear [Customer's Name], our Regency Cakestand 3 Tier is ready for Christmas." + FOOTER
    assert ("placeholders", "body") in failures(CAKESTAND, {**GOOD_CAKESTAND, "body": body})


@pytest.mark.parametrize(
    "sentence",
    [
        "I'm sorry for any confusion. Please answer my question if you need it.",
        "Hello, I'm your marketing specialist and our Regency Cakestand 3 Tier is here.",
        "I'm thrilled to be your go-to bakery consultant for the Regency Cakestand 3 Tier!",
    ],
)
def test_a_chatbot_or_salesperson_voice_is_rejected(sentence):
    body = sentence + FOOTER
    assert ("voice", "body") in failures(CAKESTAND, {**GOOD_CAKESTAND, "body": body}, month=12)
    # The brand's "we" is its voice.
    ours = "We think our Regency Cakestand 3 Tier is the star of a Christmas table." + FOOTER
    assert ("voice", "body") not in failures(CAKESTAND, {**GOOD_CAKESTAND, "body": ours}, month=12)


# The outside tester's session-13 cases: a gift shop cast as a bakery, a cake stand "made of
# strawberries", an invented shop in the greeting, the brief's offer left out.
@pytest.mark.parametrize(
    "sentence",
    [
        "Our bakery is proud to present the Regency Cakestand 3 Tier for your Christmas table.",
        "Welcome to Sweet Treats Bakery, home of the Regency Cakestand 3 Tier.",
    ],
)
def test_the_shop_cast_as_a_bakery_is_rejected(sentence):
    found = failures(CAKESTAND, {**GOOD_CAKESTAND, "body": sentence + FOOTER})
    assert ("category", "body") in found


def test_a_cakestand_made_of_strawberries_is_rejected():
    body = "Our Regency Cakestand 3 Tier is made of strawberries for a sweet Christmas table."
    report = guardrails.check({**GOOD_CAKESTAND, "body": body + FOOTER}, RULES, CAKESTAND.facts())
    details = [f.detail for f in report.failures if f.rule == "category"]
    assert any("made of strawberries" in d for d in details), report.failures
    # The product's own words make them fair: a strawberry-print box may say strawberry.
    box = Brief(goal="New arrivals", products=[Product("STRAWBERRY CERAMIC TRINKET BOX")])
    grounds = guardrails.Context(box.facts(), RULES).grounds
    assert not faithfulness.category("a ceramic box with a strawberry on the lid", grounds)
    assert not faithfulness.made_of("made with love, and made of ceramic", grounds)


def test_a_greeting_that_invents_a_shop_is_rejected_and_plain_ones_pass():
    body = "Dear Sweet Treats customers, the Regency Cakestand 3 Tier is ready for Christmas."
    found = failures(CAKESTAND, {**GOOD_CAKESTAND, "body": body + FOOTER})
    assert ("salutation", "body") in found
    grounds = guardrails.Context(
        Brief(goal="Christmas", products=CAKESTAND.products, brand="Hearth & Home").facts(), RULES
    ).grounds
    fine_greetings = [
        "Dear customers, hello.",
        "Hello there! Christmas is near.",
        "Dear Hearth & Home friends, look.",
        "Hi Regency Cakestand fans, look.",
    ]
    for fine in fine_greetings:
        assert not faithfulness.salutation(fine, grounds), fine


OFFER = Brief(
    goal="Get ready for Christmas gifting",
    products=[Product("REGENCY CAKESTAND 3 TIER")],
    offer="10% off with code GIFT10 this week",
)


def test_a_body_without_the_briefs_offer_fails_and_the_writer_puts_it_back():
    assert ("offer", "body") in failures(OFFER, GOOD_CAKESTAND, month=12)
    for said in ["Use code GIFT10 at the checkout.", "Take 10 % off this week."]:
        body = GOOD_CAKESTAND["body"].replace(FOOTER, f" {said}{FOOTER}")
        assert ("offer", "body") not in failures(OFFER, {**GOOD_CAKESTAND, "body": body}, 12)
    body = copywriter.with_offer("body", GOOD_CAKESTAND["body"].replace(FOOTER, ""), OFFER, RULES)
    assert body.endswith("10% off with code GIFT10 this week.")
    fields = {**GOOD_CAKESTAND, "body": copywriter.with_required("body", body, RULES)}
    assert guardrails.check(fields, RULES, OFFER.facts(CATALOGUE, month=12)).passed
    sms = copywriter.with_offer("text", "The Regency Cakestand 3 Tier. " * 6, OFFER, RULES)
    assert len(sms) <= RULES.max_length["text"] and "GIFT10" in sms
    # "free …" offers count by their words; the templates carry the offer too.
    assert faithfulness.offer_terms("Free gift wrapping on every order") == ["free gift wrapping"]
    for template in copywriter.template_copy(OFFER, 2, RULES):
        assert guardrails.check(template, RULES, OFFER.facts(CATALOGUE, month=12)).passed
